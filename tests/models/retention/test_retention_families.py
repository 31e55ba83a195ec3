import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, special, stats

from bayesclv._math import NP, PT
from bayesclv.data import risk_set_table, survival_groups
from bayesclv.models.retention import (
    RETENTION_FAMILIES,
    BetaDiscreteWeibullRetention,
    GeometricRetention,
    ShiftedBetaGeometricRetention,
    WeibullRetention,
    build_retention_model,
    code_loglik,
    customer_loglik,
    grouped_loglik,
    risk_set_loglik,
)

WEIBULL = WeibullRetention()
GEOMETRIC = GeometricRetention()
SBG = ShiftedBetaGeometricRetention()
BDW = BetaDiscreteWeibullRetention()


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
    psi = weibull_psi(eta, k)
    assert np.isclose(np.exp(WEIBULL.log_hazard_increment(np.array([t]), psi))[0],
                      exact, rtol=1e-12)
    assert np.isclose(WEIBULL.hazard_increment(np.array([t]), psi)[0], exact, rtol=1e-12)


@pytest.mark.parametrize("family_name", sorted(RETENTION_FAMILIES))
def test_hazard_increment_is_exp_of_log_increment(family_name):
    family = RETENTION_FAMILIES[family_name]
    rng = np.random.default_rng(2)
    t = np.arange(1, 400, dtype=float)
    psi = rng.normal(size=(3, 1, len(family.coords))) * 0.5
    psi[..., 0] += 2.0 if family_name == "weibull" else 0.0
    np.testing.assert_allclose(family.hazard_increment(t, psi),
                               np.exp(family.log_hazard_increment(t, psi)), rtol=1e-13)


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


@pytest.mark.usefixtures("python_implementations")
def test_pytensor_kernel_matches_numpy_and_has_finite_gradients():
    psi_value = np.array([[np.log(4.0), np.log(0.1)], [np.log(500.0), np.log(5.0)]])
    period = np.array([1, 2, 3, 50, 10_000, 1, 7])
    seg = np.array([0, 0, 0, 1, 1, 1, 0])
    at_risk = np.array([10, 9, 8, 7, 3, 5, 2])
    churned = np.array([1, 1, 0, 2, 1, 0, 2])
    psi = pt.matrix("psi")
    loglik = risk_set_loglik(WEIBULL, psi[seg], period, at_risk, churned, PT).sum()
    f = pytensor.function([psi], [loglik, pytensor.grad(loglik, psi)], mode="FAST_COMPILE")
    value, grad = f(psi_value)
    expected = risk_set_loglik(WEIBULL, psi_value[seg], period, at_risk, churned, NP).sum()
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    assert np.all(np.isfinite(grad))


@pytest.mark.usefixtures("python_implementations")
def test_build_retention_model_has_segment_parameters():
    rng = np.random.default_rng(5)
    segment, entry, tenure, churned = random_table(rng, n=200, n_segments=2)
    table = risk_set_table(segment, entry, tenure, churned, 2)
    priors = WEIBULL.default_priors(tenure)
    model = build_retention_model(WEIBULL, table, ["x", "y"], priors)
    assert model.named_vars_to_dims["eta"] == ("segment",)
    assert model.named_vars_to_dims["retention_psi"] == ("segment", "retention_coord")
    point = model.initial_point()
    # The model's structure is under test, not a backend: PyTensor's Python
    # implementations evaluate it without compiling anything.
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(point))
    # psi is sampled through a flat offset (its density is a potential), so the prior
    # is drawn from the population: mu and chol forward, then psi = mu + chol z.
    mu, chol = pm.draw([model["retention_mu"], model["retention_chol"]], draws=3,
                       random_seed=1, mode="FAST_COMPILE")
    assert mu.shape == (3, 2) and chol.shape == (3, 2, 2)
    with pytest.raises(NotImplementedError, match="flat"):
        pm.draw(model["k"], draws=3, random_seed=1, mode="FAST_COMPILE")


@pytest.mark.usefixtures("python_implementations")
def test_single_segment_model_builds():
    table = pd.DataFrame({"segment": [0, 0], "period": [1, 2], "at_risk": [5, 3],
                          "churned": [2, 1]})
    priors = GEOMETRIC.default_priors(np.array([2]))
    model = build_retention_model(GEOMETRIC, table, ["all"], priors)
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(model.initial_point()))


# --- shifted-beta-geometric and beta-discrete-Weibull ---------------------------------


def beta_psi(alpha, beta, c=None):
    values = [alpha, beta] if c is None else [alpha, beta, c]
    return np.log(np.array(values, dtype=float))


@pytest.mark.parametrize("alpha,beta", [(0.7, 1.2), (0.668, 3.806), (5.0, 40.0), (0.05, 0.3)])
def test_sbg_survival_is_product_of_retention_rates(alpha, beta):
    # Fader & Hardie (2007): r(t) = (beta + t - 1) / (alpha + beta + t - 1).
    t = np.arange(1, 40, dtype=float)
    rates = (beta + t - 1) / (alpha + beta + t - 1)
    psi = beta_psi(alpha, beta)
    np.testing.assert_allclose(SBG.retention_rate(t, psi), rates, rtol=1e-12)
    np.testing.assert_allclose(SBG.survival(t, psi), np.cumprod(rates), rtol=1e-10)


def test_sbg_churn_probability_matches_closed_form():
    # P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta).
    alpha, beta = 0.704, 1.182
    t = np.arange(1, 13)
    loglik = customer_loglik(SBG, beta_psi(alpha, beta), np.zeros(12), t, np.ones(12, bool))
    expected = special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta)
    np.testing.assert_allclose(loglik, expected, rtol=1e-12)


@pytest.mark.parametrize("alpha,beta,c", [(0.7, 3.0, 0.6), (2.0, 5.0, 1.4), (0.3, 0.8, 1.0)])
def test_bdw_survival_integrates_theta_out(alpha, beta, c):
    # S(t) = E[(1 - theta)^(t^c)] with theta ~ Beta(alpha, beta), by quadrature.
    psi = beta_psi(alpha, beta, c)
    for t in (1, 2, 5, 17):
        expected, _ = integrate.quad(
            lambda th, t=t: (1 - th) ** (t**c) * stats.beta.pdf(th, alpha, beta), 0, 1,
            epsabs=1e-13, epsrel=1e-11, limit=200)
        np.testing.assert_allclose(BDW.survival(np.array([t]), psi)[0], expected, rtol=1e-8)


def test_bdw_with_c_one_equals_sbg():
    rng = np.random.default_rng(4)
    segment, entry, tenure, churned = random_table(rng, n=500, n_segments=2, max_tenure=60)
    sbg_psi = np.log(np.array([[0.7, 1.2], [3.0, 25.0]]))
    bdw_psi = np.concatenate([sbg_psi, np.zeros((2, 1))], axis=1)
    t = np.arange(0, 200, dtype=float)
    for s in range(2):
        np.testing.assert_allclose(BDW.cumulative_hazard(t, bdw_psi[s]),
                                   SBG.cumulative_hazard(t, sbg_psi[s]), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(BDW.log_hazard_increment(t[1:], bdw_psi[s]),
                                   SBG.log_hazard_increment(t[1:], sbg_psi[s]), rtol=1e-11)
    np.testing.assert_allclose(
        customer_loglik(BDW, bdw_psi[segment], entry, tenure, churned),
        customer_loglik(SBG, sbg_psi[segment], entry, tenure, churned), rtol=1e-11)


def test_bdw_churn_term_is_log_of_survival_difference():
    alpha, beta, c = 0.9, 2.5, 0.7
    S = lambda t: np.exp(special.betaln(alpha, beta + t**c) - special.betaln(alpha, beta))  # noqa: E731
    psi = beta_psi(alpha, beta, c)
    churned = customer_loglik(BDW, psi, np.array([3]), np.array([9]), np.array([True]))
    censored = customer_loglik(BDW, psi, np.array([3]), np.array([9]), np.array([False]))
    np.testing.assert_allclose(np.exp(churned), (S(8) - S(9)) / S(3), rtol=1e-10)
    np.testing.assert_allclose(np.exp(censored), S(9) / S(3), rtol=1e-12)


@pytest.mark.parametrize("family_name", sorted(RETENTION_FAMILIES))
def test_grouped_rows_equal_risk_set_and_per_customer_likelihood(family_name):
    # Left truncation included: the three sufficient-statistic forms must agree.
    rng = np.random.default_rng(12)
    family = RETENTION_FAMILIES[family_name]
    segment, entry, tenure, churned = random_table(rng, n=2000)
    assert (entry > 0).any()
    psi = rng.normal(size=(3, len(family.coords))) * 0.3
    psi[:, 0] += 2.5 if family_name == "weibull" else -1.0
    groups = survival_groups(segment, entry, tenure, churned)
    assert len(groups) < 2000
    grouped = (grouped_loglik(family, psi, groups) * groups["count"]).sum()
    per_customer = customer_loglik(family, psi[segment], entry, tenure, churned).sum()
    table = risk_set_table(segment, entry, tenure, churned, 3)
    risk_set = risk_set_loglik(family, psi[table["segment"].to_numpy()], table["period"].to_numpy(),
                               table["at_risk"].to_numpy(), table["churned"].to_numpy()).sum()
    np.testing.assert_allclose(grouped, per_customer, rtol=1e-10)
    np.testing.assert_allclose(risk_set, per_customer, rtol=1e-10)
    # By segment, each form: what the Laplace fit of each segment reads.
    by_segment = np.bincount(segment, customer_loglik(family, psi[segment], entry, tenure,
                                                      churned), minlength=3)
    np.testing.assert_allclose(code_loglik(family, psi, groups, grouped=True), by_segment,
                               rtol=1e-10)
    np.testing.assert_allclose(code_loglik(family, psi, table, grouped=False), by_segment,
                               rtol=1e-10)


class _CountingFamily:
    """A family that counts the values of ``t`` its hazards are evaluated at."""

    def __init__(self, family):
        self.family, self.evaluations = family, 0

    def __getattr__(self, name):
        return getattr(self.family, name)

    def _count(self, t, psi):
        self.evaluations += np.broadcast_shapes(np.shape(t), np.shape(psi)[:-1])[-1] * (
            np.prod(np.shape(psi)[:-2], dtype=int))

    def cumulative_hazard(self, t, psi, xp=NP):
        self._count(t, psi)
        return self.family.cumulative_hazard(t, psi, xp)

    def log_hazard_increment(self, t, psi, xp=NP):
        self._count(t, psi)
        return self.family.log_hazard_increment(t, psi, xp)

    def hazard_increment(self, t, psi, xp=NP):
        self._count(t, psi)
        return self.family.hazard_increment(t, psi, xp)


@pytest.mark.parametrize("family_name", sorted(RETENTION_FAMILIES))
def test_grouped_rows_by_period_equal_rows_one_at_a_time(family_name):
    # Left-truncated rows share their segment's periods: the family is evaluated once per
    # (segment, period) and each row picks its own values; the numbers must not change.
    rng = np.random.default_rng(5)
    family = RETENTION_FAMILIES[family_name]
    segment, entry, tenure, churned = random_table(rng, n=3000)
    groups = survival_groups(segment, entry, tenure, churned)
    psi = rng.normal(size=(2, 4, 3, len(family.coords))) * 0.3  # (chain, draw, segment, coord)
    psi[..., 0] += 2.5 if family_name == "weibull" else -1.0
    by_row, by_period = _CountingFamily(family), _CountingFamily(family)
    rows = grouped_loglik(by_row, psi, groups, by_period=False)
    periods = grouped_loglik(by_period, psi, groups, by_period=True)
    np.testing.assert_allclose(periods, rows, rtol=1e-14, atol=1e-14)
    assert rows.shape == (2, 4, len(groups))
    grid = 3 * (tenure.max() + 1)
    assert by_period.evaluations == 2 * 8 * grid
    assert by_row.evaluations == 3 * 8 * len(groups) > 2 * by_period.evaluations
    # The default takes the cheaper form; one row per segment is cheaper one at a time.
    assert np.array_equal(grouped_loglik(family, psi, groups), periods)
    few = groups.groupby("segment").head(1)
    counting = _CountingFamily(family)
    grouped_loglik(counting, psi, few)
    assert counting.evaluations == 3 * 8 * len(few)


@pytest.mark.usefixtures("python_implementations")
@pytest.mark.parametrize("family", [SBG, BDW], ids=["sbg", "bdw"])
def test_grouped_pytensor_matches_numpy_with_finite_gradients(family):
    # By period, as the model is built: with tenures to 10,000 every period up to the last
    # enters the gradient. (Rows one at a time: tests/test_numerics.py.) The graph is
    # evaluated by PyTensor's Python implementations: its math is under test, and
    # compiling it would take a minute.
    rng = np.random.default_rng(3)
    segment, entry, tenure, churned = random_table(rng, n=300, n_segments=2, max_tenure=10_000)
    groups = survival_groups(segment, entry, tenure, churned)
    extremes = [[1e-3, 1e3, 0.1], [1e3, 1e-3, 5.0]] if family is BDW else [[1e-3, 1e3], [1e3, 1e-3]]
    psi_value = np.log(np.array(extremes))
    psi = pt.matrix("psi")
    loglik = (grouped_loglik(family, psi, groups, PT, by_period=True)
              * groups["count"].to_numpy()).sum()
    f = pytensor.function([psi], [loglik, pytensor.grad(loglik, psi)], mode="FAST_COMPILE")
    value, grad = f(psi_value)
    expected = (grouped_loglik(family, psi_value, groups) * groups["count"]).sum()
    np.testing.assert_allclose(value, expected, rtol=1e-8)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.usefixtures("python_implementations")
def test_build_retention_model_on_groups():
    rng = np.random.default_rng(8)
    segment, entry, tenure, churned = random_table(rng, n=300, n_segments=2)
    groups = survival_groups(segment, entry, tenure, churned)
    model = build_retention_model(BDW, groups, ["x", "y"], BDW.default_priors(tenure))
    assert {"alpha", "beta", "c"} <= set(model.named_vars)
    point = model.initial_point()
    outputs = model.replace_rvs_by_values([model["retention_psi"], model["retention_loglik"]])
    f = pytensor.function(model.value_vars, outputs, on_unused_input="ignore",
                          mode="FAST_COMPILE")
    psi, potential = f(*(point[v.name] for v in model.value_vars))
    expected = (grouped_loglik(BDW, psi, groups) * groups["count"]).sum()
    np.testing.assert_allclose(potential, expected, rtol=1e-10)


def test_unpooled_segments_are_independent_draws_from_the_prior():
    rng = np.random.default_rng(8)
    segment, entry, tenure, churned = random_table(rng, n=300, n_segments=2)
    groups = survival_groups(segment, entry, tenure, churned)
    priors = SBG.default_priors(tenure) | {"pooled": False}
    model = build_retention_model(SBG, groups, ["x", "y"], priors)
    assert "retention_lkj" not in model.named_vars
    draws = pm.draw(model["retention_psi"], draws=4000, random_seed=2)
    mu = priors["mu"]
    np.testing.assert_allclose(draws.mean(0), [[mu["log_alpha"].params["mu"],
                                                mu["log_beta"].params["mu"]]] * 2, atol=0.1)
    assert abs(np.corrcoef(draws[:, 0, 0], draws[:, 1, 0])[0, 1]) < 0.05
