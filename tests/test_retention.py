import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from bayesclv._math import NP, PT
from bayesclv.data import risk_set_table
from bayesclv.retention import (
    RETENTION_FAMILIES,
    GeometricRetention,
    WeibullRetention,
    build_retention_model,
    customer_loglik,
    risk_set_loglik,
)

WEIBULL = WeibullRetention()
GEOMETRIC = GeometricRetention()


def weibull_psi(eta, k):
    return np.array([np.log(eta), np.log(k)])


def test_weibull_survival_matches_closed_form():
    t = np.arange(0, 60)
    eta, k = 17.0, 0.7
    expected = np.exp(-((t / eta) ** k))
    np.testing.assert_allclose(WEIBULL.survival(t, weibull_psi(eta, k)), expected, rtol=1e-12)


def test_weibull_matches_scipy_weibull_min():
    from scipy import stats

    t = np.arange(1, 40)
    eta, k = 9.0, 1.6
    np.testing.assert_allclose(WEIBULL.survival(t, weibull_psi(eta, k)),
                               stats.weibull_min(k, scale=eta).sf(t), rtol=1e-10)


@pytest.mark.parametrize("eta,k", [(5.0, 0.1), (20.0, 0.7), (30.0, 1.0), (3.0, 5.0), (1e3, 2.0)])
def test_weibull_hazard_increment_is_difference_of_cumulative_hazard(eta, k):
    t = np.arange(1, 200, dtype=float)
    psi = weibull_psi(eta, k)
    direct = (t / eta) ** k - ((t - 1) / eta) ** k
    stable = np.exp(WEIBULL.log_hazard_increment(t, psi))
    np.testing.assert_allclose(stable, direct, rtol=1e-9)


def test_weibull_increment_has_no_cancellation_at_large_tenure():
    # (t/eta)^k - ((t-1)/eta)^k loses all digits in linear space at t = 1e7.
    t, eta, k = 1e7, 10.0, 0.3
    exact = (t / eta) ** k * -np.expm1(k * np.log1p(-1 / t))
    assert np.isclose(np.exp(WEIBULL.log_hazard_increment(np.array([t]), weibull_psi(eta, k)))[0],
                      exact, rtol=1e-12)


def test_geometric_is_constant_retention():
    theta = 0.07
    psi = np.array([np.log(theta / (1 - theta))])
    t = np.arange(0, 30)
    np.testing.assert_allclose(GEOMETRIC.survival(t, psi), (1 - theta) ** t, rtol=1e-12)
    hazard = -np.expm1(-np.exp(GEOMETRIC.log_hazard_increment(t[1:], psi)))
    np.testing.assert_allclose(hazard, theta, rtol=1e-12)


def test_weibull_with_k_one_equals_geometric():
    eta = 12.0
    theta = 1 - np.exp(-1 / eta)
    t = np.arange(0, 50)
    np.testing.assert_allclose(
        WEIBULL.survival(t, weibull_psi(eta, 1.0)),
        GEOMETRIC.survival(t, np.array([np.log(theta / (1 - theta))])), rtol=1e-12)


def random_table(rng, n=400, n_segments=3, max_tenure=30):
    tenure = rng.integers(1, max_tenure + 1, size=n)
    entry = np.where(rng.uniform(size=n) < 0.3, rng.integers(0, max_tenure, size=n), 0)
    entry = np.minimum(entry, tenure - 1)
    churned = rng.uniform(size=n) < 0.5
    segment = rng.integers(0, n_segments, size=n)
    return segment, entry, tenure, churned


@pytest.mark.parametrize("family_name", sorted(RETENTION_FAMILIES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_risk_set_loglik_equals_sum_of_customer_logliks(family_name, seed):
    rng = np.random.default_rng(seed)
    family = RETENTION_FAMILIES[family_name]
    segment, entry, tenure, churned = random_table(rng)
    psi = rng.normal(size=(3, len(family.coords))) * 0.5
    psi[:, 0] += 2.5 if family_name == "weibull" else -2.5
    table = risk_set_table(segment, entry, tenure, churned, 3)
    cells = risk_set_loglik(family, psi[table["segment"].to_numpy()], table["period"].to_numpy(),
                            table["at_risk"].to_numpy(), table["churned"].to_numpy())
    customers = customer_loglik(family, psi[segment], entry, tenure, churned)
    np.testing.assert_allclose(cells.sum(), customers.sum(), rtol=1e-10, atol=1e-8)


def test_customer_loglik_is_log_of_probability():
    eta, k = 8.0, 1.3
    psi = weibull_psi(eta, k)
    S = lambda t: np.exp(-((t / eta) ** k))  # noqa: E731
    churned = customer_loglik(WEIBULL, psi, np.array([2]), np.array([5]), np.array([True]))
    censored = customer_loglik(WEIBULL, psi, np.array([2]), np.array([5]), np.array([False]))
    np.testing.assert_allclose(np.exp(churned), (S(4) - S(5)) / S(2), rtol=1e-12)
    np.testing.assert_allclose(np.exp(censored), S(5) / S(2), rtol=1e-12)


def test_pytensor_kernel_matches_numpy_and_has_finite_gradients():
    psi_value = np.array([[np.log(4.0), np.log(0.1)], [np.log(500.0), np.log(5.0)]])
    period = np.array([1, 2, 3, 50, 10_000, 1, 7])
    seg = np.array([0, 0, 0, 1, 1, 1, 0])
    at_risk = np.array([10, 9, 8, 7, 3, 5, 2])
    churned = np.array([1, 1, 0, 2, 1, 0, 2])
    psi = pt.matrix("psi")
    loglik = risk_set_loglik(WEIBULL, psi[seg], period, at_risk, churned, PT).sum()
    f = pytensor.function([psi], [loglik, pytensor.grad(loglik, psi)])
    value, grad = f(psi_value)
    expected = risk_set_loglik(WEIBULL, psi_value[seg], period, at_risk, churned, NP).sum()
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    assert np.all(np.isfinite(grad))


def test_build_retention_model_has_segment_parameters():
    rng = np.random.default_rng(5)
    segment, entry, tenure, churned = random_table(rng, n=200, n_segments=2)
    table = risk_set_table(segment, entry, tenure, churned, 2)
    priors = WEIBULL.default_priors(tenure)
    model = build_retention_model(WEIBULL, table, ["x", "y"], priors)
    assert model.named_vars_to_dims["eta"] == ("segment",)
    assert model.named_vars_to_dims["retention_psi"] == ("segment", "retention_coord")
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    draws = pm.draw(model["k"], draws=3, random_seed=1)
    assert draws.shape == (3, 2)


def test_single_segment_model_builds():
    table = pd.DataFrame({"segment": [0, 0], "period": [1, 2], "at_risk": [5, 3],
                          "churned": [2, 1]})
    priors = GEOMETRIC.default_priors(np.array([2]))
    model = build_retention_model(GEOMETRIC, table, ["all"], priors)
    assert np.isfinite(model.compile_logp()(model.initial_point()))
