"""Slow statistical tests: parameter recovery and calibrated intervals on simulated data."""

import warnings

import numpy as np
import pytest

import bayesclv
from bayesclv.datasets import DEFAULT_SEGMENTS, simulate_customers, true_residual_value

pytestmark = pytest.mark.slow

HORIZON, DISCOUNT = 36, 0.01


def fit(customers, retention="weibull", seed=0):
    model = bayesclv.CLVModel(
        retention=retention, horizon=HORIZON, discount_rate=DISCOUNT, hdi_prob=0.9,
        draws=500, tune=500, chains=2, random_seed=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        return model.fit(customers)


def coverage(model, customers, truth):
    predictions = model.predict(customers)
    true_value = true_residual_value(customers, truth, discount_rate=DISCOUNT, horizon=HORIZON)
    active = ~customers["churned"].to_numpy()
    low, high = predictions["clv_hdi_low"], predictions["clv_hdi_high"]
    inside = (low <= true_value) & (true_value <= high)
    return inside.to_numpy()[active].mean()


@pytest.fixture(scope="module")
def simulated():
    return simulate_customers(10_000, DEFAULT_SEGMENTS, observation_periods=36, random_seed=3)


@pytest.fixture(scope="module")
def weibull_model(simulated):
    customers, _ = simulated
    return fit(customers)


def test_segment_parameters_are_recovered(weibull_model, simulated):
    """Twenty segment parameters: each within 3 posterior sds of the truth, and most
    (at least 15, where a calibrated posterior puts 19 on average) within 2."""
    _, truth = simulated
    z = {}
    for name in ("eta", "k", "p", "q", "gamma"):
        draws = weibull_model.idata_["posterior"][name]
        mean, sd = draws.mean(("chain", "draw")), draws.std(("chain", "draw"))
        for segment in draws["segment"].values:
            true = truth.segments.loc[segment, name]
            z[f"{name}[{segment}]"] = (float(mean.sel(segment=segment)) - true) / float(
                sd.sel(segment=segment))
    assert max(abs(v) for v in z.values()) < 3, z
    assert sum(abs(v) < 2 for v in z.values()) >= 15, z


def test_ninety_percent_intervals_cover_the_true_value(weibull_model, simulated):
    customers, truth = simulated
    assert 0.85 <= coverage(weibull_model, customers, truth) <= 0.95


def test_constant_retention_is_miscalibrated_on_duration_dependent_data():
    # Negative control: the coverage check must be able to fail.
    segments = {name: {**params, "k": 0.5} for name, params in DEFAULT_SEGMENTS.items()}
    customers, truth = simulate_customers(6000, segments, observation_periods=36, random_seed=5)
    geometric = fit(customers, retention="geometric")
    assert coverage(geometric, customers, truth) < 0.7
    weibull = fit(customers, retention="weibull")
    assert coverage(weibull, customers, truth) > 0.85


def test_recovered_survival_matches_truth_on_left_truncated_data():
    segments = dict(list(DEFAULT_SEGMENTS.items())[:2])
    customers, truth = simulate_customers(6000, segments, observation_periods=18,
                                          truncation_periods=24, random_seed=8)
    assert (customers["entry"] > 0).mean() > 0.2
    model = bayesclv.RetentionModel(draws=500, tune=500, chains=2, random_seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        model.fit(customers)
    curve = model.retention_curve(periods=36)
    for segment in curve["segment"].values:
        eta, k = truth.segments.loc[segment, ["eta", "k"]]
        t = np.arange(37)
        true_curve = np.exp(-((t / eta) ** k))
        draws = curve.sel(segment=segment)
        low = draws.quantile(0.005, ("chain", "draw")).to_numpy()
        high = draws.quantile(0.995, ("chain", "draw")).to_numpy()
        assert np.all((low <= true_curve + 1e-12) & (true_curve <= high + 1e-12))


# --- beta-discrete-Weibull: recovery under left truncation, and what pooling buys -------

BDW_SEGMENTS = {
    "a": {"share": 0.25, "alpha": 0.8, "beta": 3.0, "c": 0.7, "p": 5, "q": 4, "gamma": 40},
    "b": {"share": 0.25, "alpha": 1.0, "beta": 4.0, "c": 0.8, "p": 5, "q": 4, "gamma": 40},
    "c": {"share": 0.25, "alpha": 0.7, "beta": 2.5, "c": 0.6, "p": 5, "q": 4, "gamma": 40},
    "d": {"share": 0.225, "alpha": 1.2, "beta": 5.0, "c": 0.9, "p": 5, "q": 4, "gamma": 40},
    "small": {"share": 0.025, "alpha": 0.9, "beta": 3.5, "c": 0.75, "p": 5, "q": 4,
              "gamma": 40},
}


@pytest.fixture(scope="module")
def bdw_fits():
    customers, truth = simulate_customers(6000, BDW_SEGMENTS, observation_periods=24,
                                          truncation_periods=6, random_seed=11)
    assert (customers["segment"] == "small").sum() < 200
    assert (customers["entry"] > 0).any()
    fits = {}
    for name, priors in (("pooled", {}), ("unpooled", {"pooled": False})):
        fits[name] = bayesclv.RetentionModel(
            "bdw", draws=500, tune=500, chains=2, target_accept=0.95, random_seed=0,
            priors=priors).fit(customers)
    return customers, truth, fits


def hdi(model, name, segment, prob=0.94):
    from arviz_stats.base import array_stats

    return array_stats.hdi(model.posterior_[name].sel(segment=segment).to_numpy().ravel(), prob)


def test_bdw_recovers_truth_under_left_truncation(bdw_fits):
    from arviz_stats.base import array_stats

    from bayesclv.datasets.simulate import true_log_survival

    _, truth, fits = bdw_fits
    model = fits["pooled"]
    # alpha and beta of a segment are strongly correlated in the posterior, so their
    # intervals miss together; pooling also shrinks the extreme segment. 15 intervals at 94%.
    covered = [
        hdi(model, name, segment)[0] <= truth.segments.loc[segment, name]
        <= hdi(model, name, segment)[1]
        for segment in BDW_SEGMENTS for name in ("alpha", "beta", "c")
    ]
    assert sum(covered) >= 11, covered
    # The survival curve, a function of all three, is what projections use. Pointwise 94%
    # bands are correlated over t, so a segment's curve may leave its band for a stretch:
    # require the bands to hold the true S(t) over most (segment, period) cells and the
    # posterior mean to stay close to it everywhere.
    t = np.arange(31.0)
    inside, errors = [], []
    for segment in BDW_SEGMENTS:
        curve = model.retention_curve(30, segments=[segment]).isel(segment=0)
        draws = curve.stack(sample=("chain", "draw")).to_numpy()
        band = array_stats.hdi(draws, 0.94, axis=-1)
        true_survival = np.exp(true_log_survival(truth.segments, np.array([segment]), t[None]))[0]
        inside.append((band[:, 0] <= true_survival + 1e-12)
                      & (true_survival - 1e-12 <= band[:, 1]))
        errors.append(np.abs(draws.mean(axis=-1) - true_survival).max())
    assert np.mean(inside) >= 0.8, np.mean(inside, axis=1)
    assert max(errors) < 0.06, errors


def test_pooling_narrows_the_small_segment_and_still_covers(bdw_fits):
    _, truth, fits = bdw_fits
    for name in ("alpha", "beta", "c"):
        pooled, unpooled = hdi(fits["pooled"], name, "small"), hdi(fits["unpooled"], name, "small")
        assert pooled[1] - pooled[0] < unpooled[1] - unpooled[0], name
        assert pooled[0] <= truth.segments.loc["small", name] <= pooled[1], name
