import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

from bayesclv._math import PT
from bayesclv.data import spend_statistics
from bayesclv.models.spend import GammaGammaSpend, build_spend_model

FAMILY = GammaGammaSpend()


def _data(x, z, mean_log=None):
    out = {"n_periods_active": np.asarray(x, dtype=float), "mean_spend": np.asarray(z, dtype=float)}
    if mean_log is not None:
        out["mean_log_spend"] = np.asarray(mean_log, dtype=float)
    return out


def psi_of(p, q, gamma):
    """The pooled coordinates: log mean spend ``p gamma / (q - 1)``, log p, log(q - 1)."""
    return np.array([np.log(p * gamma / (q - 1)), np.log(p), np.log(q - 1)])


def test_coordinates_give_back_the_natural_parameters():
    params = FAMILY.natural(psi_of(2.5, 4.0, 60.0))
    np.testing.assert_allclose([params["p"], params["q"], params["gamma"]], [2.5, 4.0, 60.0],
                               rtol=1e-14)
    np.testing.assert_allclose(FAMILY.segment_mean_spend(params), 2.5 * 60.0 / 3.0, rtol=1e-14)


@pytest.mark.parametrize("x,z", [(1, 20.0), (3, 55.5), (12, 8.0)])
def test_customer_loglik_integrates_out_the_rate(x, z):
    p, q, gamma = 3.0, 4.0, 60.0

    def integrand(nu):
        likelihood = stats.gamma(p * x, scale=1 / (x * nu)).pdf(z)
        return likelihood * stats.gamma(q, scale=1 / gamma).pdf(nu)

    numeric, _ = integrate.quad(integrand, 0, np.inf, limit=200)
    closed = FAMILY.customer_loglik(psi_of(p, q, gamma), _data([x], [z]))[0]
    np.testing.assert_allclose(closed, np.log(numeric), rtol=1e-7)


# Fewer customers than segments x Laplace nodes are summed customer by customer; more go
# through each segment's tabulated transform. Both give the sum of the customer terms.
@pytest.mark.parametrize(("n", "stored"), [(300, "customer_w"), (3000, "laplace_x")])
def test_aggregated_loglik_equals_sum_of_customer_logliks(rng, n, stored):
    n_segments = 3
    segment = rng.integers(0, n_segments, size=n)
    x = rng.integers(1, 15, size=n)
    z = rng.gamma(2.0, 30.0, size=n)
    psi = np.stack([psi_of(2.0, 3.0, 40.0), psi_of(5.0, 1.5, 10.0), psi_of(0.7, 8.0, 200.0)])
    stats_ = spend_statistics(segment, x, z, n_segments)
    assert stored in stats_
    aggregated = FAMILY.aggregated_loglik(psi, stats_)
    customers = FAMILY.customer_loglik(psi[segment], _data(x, z))
    per_customer = customers.sum()
    np.testing.assert_allclose(aggregated, per_customer, rtol=1e-11)
    np.testing.assert_allclose(FAMILY.code_loglik(psi, stats_),
                               np.bincount(segment, customers, minlength=n_segments),
                               rtol=1e-11)

    psi_var = pt.matrix("psi")
    f = pytensor.function([psi_var], FAMILY.aggregated_loglik(psi_var, stats_, PT))
    np.testing.assert_allclose(f(psi), per_customer, rtol=1e-11)


def test_expected_spend_is_conditional_posterior_mean(rng):
    params = FAMILY.natural(psi_of(4.0, 3.0, 30.0))
    x, z = np.array([5.0]), np.array([12.0])
    expected = FAMILY.expected_customer_spend(params, np.c_[x, z])[0]
    # Brute force: posterior of nu is prior x likelihood on a grid.
    nu = np.linspace(1e-4, 3.0, 200_001)
    prior = stats.gamma(3.0, scale=1 / 30.0).pdf(nu)
    weight = prior * stats.gamma(4.0 * 5, scale=1 / (5 * nu)).pdf(12.0)
    brute = np.sum(weight * 4.0 / nu) / np.sum(weight)
    np.testing.assert_allclose(expected, brute, rtol=1e-4)
    draws = FAMILY.sample_customer_spend(
        {k: np.full(200_000, v) for k, v in params.items()}, np.c_[x, z], rng
    )
    assert abs(draws.mean() - expected) < 4 * draws.std() / np.sqrt(draws.size)


def test_expected_spend_shrinks_towards_segment_mean():
    params = FAMILY.natural(psi_of(4.0, 3.0, 30.0))
    segment_mean = FAMILY.segment_mean_spend(params)
    one_period = FAMILY.expected_customer_spend(params, np.array([[1.0, 200.0]]))[0]
    many_periods = FAMILY.expected_customer_spend(params, np.array([[50.0, 200.0]]))[0]
    assert segment_mean < one_period < many_periods < 200.0


@pytest.mark.usefixtures("python_implementations")
def test_build_spend_model_logp_is_finite(rng):
    segment = rng.integers(0, 2, size=100)
    x = rng.integers(1, 6, size=100)
    z = rng.gamma(2.0, 10.0, size=100)
    stats_ = spend_statistics(segment, x, z, 2)
    model = build_spend_model(FAMILY, stats_, ["s0", "s1"], FAMILY.default_priors(z))
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(model.initial_point()))
    assert model.named_vars_to_dims["gamma"] == ("segment",)


@pytest.mark.parametrize("periods", [[20.0], [12.0, 30.0, 18.5], [5.0, 9.0, 7.0, 60.0]])
def test_customer_loglik_with_log_spend_is_the_density_of_every_period(periods):
    p, q, gamma = 3.0, 4.0, 60.0
    spends = np.asarray(periods)

    def integrand(nu):
        return np.prod(stats.gamma(p, scale=1 / nu).pdf(spends)) * stats.gamma(
            q, scale=1 / gamma).pdf(nu)

    numeric, _ = integrate.quad(integrand, 0, np.inf, limit=200, epsabs=0, epsrel=1e-12)
    data = _data([len(spends)], [spends.mean()], [np.log(spends).mean()])
    closed = FAMILY.customer_loglik(psi_of(p, q, gamma), data)[0]
    np.testing.assert_allclose(closed, np.log(numeric), rtol=1e-8)


def test_aggregated_loglik_with_log_spend_equals_sum_of_customer_logliks(rng):
    from bayesclv.data import CustomerData

    n, n_segments = 400, 3
    segment = rng.integers(0, n_segments, size=n)
    x = rng.integers(1, 15, size=n)
    z = rng.gamma(2.0, 30.0, size=n)
    mean_log = np.log(z) - rng.uniform(0, 0.3, size=n) * (x > 1)
    data = CustomerData(pd.Index(np.arange(n)), pd.RangeIndex(n), np.zeros(n, str), None,
                        None, None, x, z, mean_log, None)
    psi = np.stack([psi_of(2.0, 3.0, 40.0), psi_of(5.0, 1.5, 10.0), psi_of(0.7, 8.0, 200.0)])
    stats_ = FAMILY.statistics(segment, data, n_segments)
    per_customer = FAMILY.customer_loglik(psi[segment], data).sum()
    np.testing.assert_allclose(FAMILY.aggregated_loglik(psi, stats_), per_customer, rtol=1e-11)
    assert FAMILY.observed(data) == "each active period's revenue"
