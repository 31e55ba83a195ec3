"""The lognormal spend family: likelihood, customer posterior, data, recovery, comparison."""

import warnings

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

import bayesclv
from bayesclv import DataValidationError
from bayesclv._math import PT
from bayesclv.data import CustomerData, summarize, validate_customers
from bayesclv.datasets import simulate_customers
from bayesclv.models.spend import SPEND_FAMILIES, LognormalSpend

FAMILY = LognormalSpend()
MU, SIGMA, TAU = 3.0, 0.5, 0.4


def psi_of(mu, sigma, tau):
    return np.array([mu, np.log(sigma), np.log(tau)])


def _data(x, ybar, sd=None):
    out = {"n_periods_active": np.asarray(x, float), "mean_log_spend": np.asarray(ybar, float)}
    if sd is not None:
        out["sd_log_spend"] = np.asarray(sd, float)
    return out


def test_registered_and_declares_its_protocol():
    assert SPEND_FAMILIES["lognormal"].name == "lognormal"
    assert FAMILY.inputs == ("n_periods_active", "mean_log_spend")
    assert FAMILY.coords.index(FAMILY.covariate_coord) == 0


@pytest.mark.parametrize("periods", [[40.0], [12.0, 30.0, 18.5], [5.0, 9.0, 7.0, 60.0]])
def test_customer_loglik_is_the_density_of_every_period(periods):
    """Against the brute-force integral over the customer's level u."""
    log_spend = np.log(periods)
    x, ybar, sd = len(periods), log_spend.mean(), log_spend.std()

    def integrand(u):
        return (np.prod(stats.norm(MU + u, SIGMA).pdf(log_spend)) / np.prod(periods)
                * stats.norm(0, TAU).pdf(u))

    numeric, _ = integrate.quad(integrand, -5, 5, limit=200, epsabs=0, epsrel=1e-12)
    closed = FAMILY.customer_loglik(psi_of(MU, SIGMA, TAU), _data([x], [ybar], [sd]))[0]
    np.testing.assert_allclose(closed, np.log(numeric), rtol=1e-8)
    # Without the spread, the density of the mean log spend alone.
    mean_only = FAMILY.customer_loglik(psi_of(MU, SIGMA, TAU), _data([x], [ybar]))[0]
    expected = stats.norm(MU, np.sqrt(TAU ** 2 + SIGMA ** 2 / x)).logpdf(ybar)
    np.testing.assert_allclose(mean_only, expected, rtol=1e-12)


@pytest.mark.parametrize("with_sd", [True, False])
def test_aggregated_loglik_equals_sum_of_customer_logliks(rng, with_sd):
    n, n_segments = 600, 3
    segment = rng.integers(0, n_segments, n)
    x = rng.integers(1, 12, n)
    ybar = rng.normal(3.0, 0.6, n)
    sd = np.where(x > 1, rng.uniform(0.05, 0.8, n), 0.0)
    data = CustomerData(pd.Index(np.arange(n)), pd.RangeIndex(n), np.zeros(n, str),
                        None, None, None, x, np.exp(ybar + 0.1), ybar,
                        sd if with_sd else None)
    psi = np.stack([psi_of(3.0, 0.5, 0.4), psi_of(2.0, 0.9, 0.2), psi_of(4.0, 0.2, 1.1)])
    stats_ = FAMILY.statistics(segment, data, n_segments)
    customers = FAMILY.customer_loglik(psi[segment], data)
    per_customer = customers.sum()
    np.testing.assert_allclose(FAMILY.aggregated_loglik(psi, stats_), per_customer, rtol=1e-11)
    np.testing.assert_allclose(FAMILY.code_loglik(psi, stats_),
                               np.bincount(segment, customers, minlength=n_segments),
                               rtol=1e-11)
    psi_var = pt.matrix("psi")
    f = pytensor.function([psi_var], FAMILY.aggregated_loglik(psi_var, stats_, PT))
    np.testing.assert_allclose(f(psi), per_customer, rtol=1e-11)


def test_expected_spend_is_the_posterior_mean_and_kernels_agree(rng):
    params = FAMILY.natural(psi_of(MU, SIGMA, TAU))
    x, ybar = 4.0, 3.6
    expected = FAMILY.expected_customer_spend(params, np.array([[x, ybar]]))[0]
    # Brute force over u: prior x likelihood of ybar, mean of exp(mu + u + sigma^2/2).
    u = np.linspace(-4, 4, 400_001)
    weight = stats.norm(0, TAU).pdf(u) * stats.norm(MU + u, SIGMA / np.sqrt(x)).pdf(ybar)
    brute = np.sum(weight * np.exp(MU + u + SIGMA ** 2 / 2)) / np.sum(weight)
    np.testing.assert_allclose(expected, brute, rtol=1e-6)
    # The compiled functions the valuation loops call, against the numpy ones.
    n_samples = 100_000
    param_rows = np.ascontiguousarray(np.tile([[MU], [SIGMA], [TAU]], (1, n_samples)))
    inputs = np.array([x, ybar])
    means = np.empty(n_samples)
    FAMILY.mean_kernel(param_rows, inputs, means)
    np.testing.assert_allclose(means, expected, rtol=1e-13)
    draws = np.empty(n_samples)
    FAMILY.draw_kernel(param_rows, inputs, np.uint64(17), draws)
    assert abs(draws.mean() - expected) < 4 * draws.std() / np.sqrt(n_samples)
    numpy_draws = FAMILY.sample_customer_spend({k: np.full(n_samples, v)
                                                for k, v in params.items()},
                                               np.array([[x, ybar]]), rng)
    assert abs(numpy_draws.mean() - expected) < 4 * numpy_draws.std() / np.sqrt(n_samples)


def test_more_periods_pull_the_customer_away_from_the_segment():
    params = FAMILY.natural(psi_of(MU, SIGMA, TAU))
    segment_mean = FAMILY.segment_mean_spend(params)
    one, many = FAMILY.expected_customer_spend(params, np.array([[1.0, 5.0], [60.0, 5.0]]))
    assert segment_mean < one < many < np.exp(5.0 + SIGMA ** 2 / 2) * 1.01


def test_summarize_writes_log_spend_columns():
    log = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b"],
        "date": ["2024-01-05", "2024-01-20", "2024-02-02", "2024-04-10", "2024-05-10"],
        "amount": [10.0, 5.0, 30.0, 8.0, 7.0],
    })
    table = summarize(log, observation_end="2024-06-30", inactivity=3, log_spend=True)
    periods = np.log([15.0, 30.0, 8.0])
    np.testing.assert_allclose(table["mean_log_spend"], [periods.mean(), np.log(7.0)])
    np.testing.assert_allclose(table["sd_log_spend"], [periods.std(), 0.0], atol=1e-15)
    plain = summarize(log, observation_end="2024-06-30", inactivity=3)
    assert "mean_log_spend" not in plain.columns
    with pytest.raises(ValueError, match="log_spend"):
        summarize(log, observation_end="2024-06-30", inactivity=3, log_spend="yes")


def test_log_spend_columns_are_validated():
    table = pd.DataFrame({"customer_id": ["a", "b", "c"], "tenure": [3, 3, 3],
                          "churned": [False] * 3, "n_periods_active": [1, 2, 3],
                          "mean_spend": [10.0, 10.0, 10.0],
                          "mean_log_spend": [np.log(10.0), 2.0, 2.1],
                          "sd_log_spend": [0.0, 0.3, 0.2]})
    data = validate_customers(table)
    assert data.mean_log_spend is not None and data.sd_log_spend is not None
    bad = table.assign(mean_log_spend=[np.log(10.0), 2.0, 3.0])  # above log(10)
    with pytest.raises(DataValidationError, match=r"'mean_log_spend'.*1 row.*'c'"):
        validate_customers(bad)
    with pytest.raises(DataValidationError, match=r"'sd_log_spend'.*one active period.*'a'"):
        validate_customers(table.assign(sd_log_spend=[0.1, 0.3, 0.2]))
    with pytest.raises(DataValidationError, match=r"'sd_log_spend'.*negative"):
        validate_customers(table.assign(sd_log_spend=[0.0, -0.3, 0.2]))
    with pytest.raises(DataValidationError, match="without 'mean_log_spend'"):
        validate_customers(table.drop(columns="mean_log_spend"))
    with pytest.raises(DataValidationError, match=r"'lognormal' spend family needs a "
                                                  r"'mean_log_spend' column"):
        bayesclv.SpendModel("lognormal", method="map").fit(
            table.drop(columns=["mean_log_spend", "sd_log_spend"]))


def test_map_fit_and_predict_through_the_estimators():
    customers, truth = simulate_customers(
        800, {"a": {"share": 0.5, "eta": 20.0, "k": 0.9, "mu": 3.0, "sigma": 0.5, "tau": 0.4},
              "b": {"share": 0.5, "eta": 30.0, "k": 1.1, "mu": 4.0, "sigma": 0.3, "tau": 0.6}},
        random_seed=2)
    assert {"mean_log_spend", "sd_log_spend"} <= set(customers.columns)
    model = bayesclv.CLVModel(spend="lognormal", method="map", random_seed=0).fit(customers)
    mu = model.spend_model_.posterior_["mu"].to_numpy().ravel()
    np.testing.assert_allclose(mu, [3.0, 4.0], atol=0.1)
    predictions = model.predict(customers)
    assert predictions["clv_mean"].notna().all() and len(predictions) == len(customers)
    error = np.log(predictions["expected_spend"] / truth.customers["true_mean_spend"])
    assert abs(np.median(error)) < 0.05
    with pytest.raises(DataValidationError, match="mean_log_spend"):
        model.predict(customers.drop(columns=["mean_log_spend", "sd_log_spend"]))


# ---- slow: recovery, coverage and model comparison on simulated data --------------------

LOGNORMAL_SEGMENTS = {
    "a": {"share": 0.3, "eta": 20.0, "k": 0.8, "mu": 3.0, "sigma": 0.5, "tau": 0.4},
    "b": {"share": 0.3, "eta": 14.0, "k": 1.0, "mu": 3.8, "sigma": 0.3, "tau": 0.6},
    "c": {"share": 0.4, "eta": 30.0, "k": 1.2, "mu": 2.5, "sigma": 0.7, "tau": 0.3},
}
GAMMA_SEGMENTS = {
    "a": {"share": 0.3, "eta": 20.0, "k": 0.8, "p": 4.0, "q": 4.0, "gamma": 40.0},
    "b": {"share": 0.3, "eta": 14.0, "k": 1.0, "p": 6.0, "q": 3.0, "gamma": 20.0},
    "c": {"share": 0.4, "eta": 30.0, "k": 1.2, "p": 2.5, "q": 5.0, "gamma": 80.0},
}


def _fit_spend(family, customers, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        return bayesclv.SpendModel(family, draws=500, tune=500, chains=2,
                                   random_seed=seed).fit(customers)


def covered(low, high, truth, level, n):
    """Whether the share of ``truth`` inside [low, high] is within 3 binomial sds of level."""
    share = np.mean((low <= truth) & (truth <= high))
    return abs(share - level) <= 3 * np.sqrt(level * (1 - level) / n), share


@pytest.fixture(scope="module")
def lognormal_fit():
    customers, truth = simulate_customers(4000, LOGNORMAL_SEGMENTS, random_seed=11)
    return customers, truth, _fit_spend("lognormal", customers)


@pytest.mark.slow
def test_lognormal_recovers_segment_parameters(lognormal_fit):
    _, _, model = lognormal_fit
    posterior = model.posterior_
    for name in ("mu", "sigma", "tau"):
        draws = posterior[name].stack(sample=("chain", "draw")).to_numpy()
        true = np.array([LOGNORMAL_SEGMENTS[s][name] for s in model.segments_])
        low, high = np.quantile(draws, [0.005, 0.995], axis=1)
        assert np.all((low <= true) & (true <= high)), (name, low, high, true)
        rel_error = np.abs(draws.mean(axis=1) / true - 1)
        assert rel_error.max() < 0.15, (name, rel_error)


@pytest.mark.slow
def test_lognormal_customer_intervals_are_calibrated_and_the_check_catches_narrow_ones(
        lognormal_fit):
    customers, truth, model = lognormal_fit
    predictions = model.predict(customers, hdi_prob=0.9)
    true_spend = truth.customers["true_mean_spend"].to_numpy()
    low = predictions["expected_spend_hdi_low"].to_numpy()
    high = predictions["expected_spend_hdi_high"].to_numpy()
    ok, share = covered(low, high, true_spend, 0.9, len(customers))
    assert ok, share
    # Negative control: intervals half as wide around the same centre miss.
    centre, half = (low + high) / 2, (high - low) / 4
    narrow_ok, narrow_share = covered(centre - half, centre + half, true_spend, 0.9,
                                      len(customers))
    assert not narrow_ok, narrow_share


@pytest.mark.slow
@pytest.mark.parametrize("truth_family,segments", [("lognormal", LOGNORMAL_SEGMENTS),
                                                   ("gamma_gamma", GAMMA_SEGMENTS)])
def test_compare_chooses_the_family_that_generated_the_data(truth_family, segments):
    customers, _ = simulate_customers(2000, segments, log_spend=True, random_seed=5)
    fits = {family: _fit_spend(family, customers, seed=1)
            for family in ("gamma_gamma", "lognormal")}
    table = bayesclv.compare(fits, customers)
    assert table.index[0] == truth_family
    worse = table.iloc[1]
    assert worse["elpd_diff"] < -4 * worse["dse"], table


def test_spend_models_remember_which_density_they_were_fitted_on(tmp_path):
    customers, _ = simulate_customers(
        600, {"a": {"share": 1.0, "eta": 20.0, "k": 0.9, "p": 4.0, "q": 3.0, "gamma": 30.0}},
        log_spend=True, random_seed=4)
    mean_only = customers.drop(columns=["mean_log_spend", "sd_log_spend"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted_on_means = bayesclv.SpendModel(draws=50, tune=50, chains=2,
                                              random_seed=0).fit(mean_only)
    assert fitted_on_means.observed() == "mean revenue per active period"
    # Scored on a table whose columns give another density: refused, not mis-scored.
    with pytest.raises(DataValidationError, match="fitted on the density of mean revenue"):
        fitted_on_means.pointwise_loglik(customers)
    loaded = bayesclv.load(fitted_on_means.save(tmp_path / "spend.nc"))
    assert loaded.observed() == "mean revenue per active period"
    per_period = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    assert per_period.observed() == "each active period's revenue"
    assert bayesclv.load(per_period.save(tmp_path / "p.nc")).observed() == per_period.observed()


def test_simulator_refuses_lognormal_without_periods_and_values_lognormal_truth():
    from bayesclv.datasets import simulate_realised_value

    segments = {"a": {"share": 1.0, "eta": 20.0, "k": 0.9, "mu": 3.0, "sigma": 0.4,
                      "tau": 0.3}}
    with pytest.raises(ValueError, match="log_spend=False"):
        simulate_customers(100, segments, log_spend=False, random_seed=0)
    customers, truth = simulate_customers(2000, segments, random_seed=0)
    value = simulate_realised_value(customers, truth, discount_rate=0.0, horizon=1,
                                    random_seed=1)
    stays = (truth.customers["lifetime"] > customers["tenure"] + 1) & ~customers["churned"]
    # One period: the realised spend of those who stay averages their true mean spend.
    ratio = value[stays.to_numpy()] / truth.customers["true_mean_spend"][stays].to_numpy()
    assert abs(ratio.mean() - 1.0) < 0.05


def test_one_active_period_needs_mean_log_equal_to_log_mean():
    table = pd.DataFrame({"customer_id": ["a", "b"], "tenure": [3, 3], "churned": [False] * 2,
                          "n_periods_active": [1, 2], "mean_spend": [10.0, 10.0],
                          "mean_log_spend": [np.log(10.0) - 0.2, 2.0]})
    with pytest.raises(DataValidationError, match=r"'mean_log_spend'.*one active period.*'a'"):
        validate_customers(table)
