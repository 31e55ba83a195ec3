"""RetentionModel: families end to end, the retention quantities and checks against data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

import bayesclv
from bayesclv import Prior
from bayesclv.datasets import simulate_customers


def single_segment(params, n=20_000, truncation=0, seed=5):
    spec = {"only": {"share": 1.0, "p": 5.0, "q": 4.0, "gamma": 40.0, **params}}
    customers, _ = simulate_customers(n, spec, observation_periods=12,
                                      truncation_periods=truncation, random_seed=seed)
    return customers.drop(columns="segment")


def beta_mixture_mle(customers, with_c):
    """Maximum likelihood written independently of the library (linear-space survival)."""
    rows = customers.groupby(["entry", "tenure", "churned"]).size().reset_index(name="n")
    e, t = rows["entry"].to_numpy(float), rows["tenure"].to_numpy(float)
    churned, n = rows["churned"].to_numpy(bool), rows["n"].to_numpy(float)

    def negloglik(log_params):
        alpha, beta = np.exp(log_params[:2])
        c = np.exp(log_params[2]) if with_c else 1.0
        survival = lambda x: np.exp(special.betaln(alpha, beta + x**c)  # noqa: E731
                                    - special.betaln(alpha, beta))
        term = np.where(churned, np.log(survival(t - 1) - survival(t)), np.log(survival(t)))
        return -np.sum(n * (term - np.log(survival(e))))

    start = np.zeros(3 if with_c else 2)
    result = optimize.minimize(negloglik, start, method="Nelder-Mead",
                               options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 40_000})
    result = optimize.minimize(negloglik, result.x, method="BFGS", options={"gtol": 1e-8})
    return np.exp(result.x)


def flat_priors(coords):
    # Independent segments with very wide priors: the MAP is the maximum likelihood.
    return {
        "pooled": False,
        "mu": {coord: Prior("Normal", mu=0.0, sigma=100.0) for coord in coords},
    }


@pytest.mark.parametrize(
    "family,params,truncation",
    [("sbg", {"alpha": 0.7, "beta": 2.5}, 0),
     ("bdw", {"alpha": 0.9, "beta": 3.0, "c": 0.6}, 4)],
)
def test_map_agrees_with_independent_maximum_likelihood(family, params, truncation):
    customers = single_segment(params, truncation=truncation)
    if truncation:
        assert (customers["entry"] > 0).any()
    coords = bayesclv.models.retention.RETENTION_FAMILIES[family].coords
    model = bayesclv.RetentionModel(family, method="map", random_seed=0,
                                    priors=flat_priors(coords)).fit(customers)
    names = model.family_.param_names
    estimate = np.array([model.posterior_[name].item() for name in names])
    mle = beta_mixture_mle(customers, with_c=family == "bdw")
    # Three significant digits.
    np.testing.assert_allclose(estimate, mle, rtol=5e-4)


@pytest.fixture(scope="module")
def bdw_customers():
    segments = {
        "a": {"share": 0.5, "alpha": 0.8, "beta": 3.0, "c": 0.6, "p": 5, "q": 4, "gamma": 40},
        "b": {"share": 0.5, "alpha": 1.5, "beta": 8.0, "c": 1.2, "p": 4, "q": 3, "gamma": 25},
    }
    return simulate_customers(3000, segments, observation_periods=18, truncation_periods=6,
                              random_seed=21)


@pytest.fixture(scope="module")
def bdw_map(bdw_customers):
    customers, _ = bdw_customers
    return bayesclv.RetentionModel("bdw", method="map", random_seed=4).fit(customers)


def test_retention_rate_is_ratio_of_survival(bdw_map):
    rate = bdw_map.expected_retention_rate(periods=10)
    curve = bdw_map.retention_curve(periods=10)
    assert rate.dims == ("chain", "draw", "segment", "period")
    survival = curve.to_numpy()
    ratio = survival[..., 1:] / survival[..., :-1]
    np.testing.assert_allclose(rate.to_numpy(), ratio, rtol=1e-10)
    assert rate.attrs["period"] == bdw_map.period_


def test_project_survivors_expected_counts_and_intervals(bdw_map):
    table = bdw_map.project_survivors(500, periods=5, segment="a", observed=7)
    assert list(table.index.get_level_values("period")) == [8, 9, 10, 11, 12]
    curve = bdw_map.retention_curve(periods=12, segments=["a"]).isel(chain=0, draw=0, segment=0)
    expected = 500 * curve.to_numpy()[8:13] / curve.to_numpy()[7]
    np.testing.assert_allclose(table["expected_mean"], expected, rtol=1e-10)
    assert (np.diff(table["expected_mean"]) < 0).all()
    # Predictive intervals add who-churns noise around the expectation.
    assert (table["predicted_hdi_low"] <= table["expected_mean"]).all()
    assert (table["predicted_hdi_high"] >= table["expected_mean"]).all()
    assert (table["predicted_hdi_high"] - table["predicted_hdi_low"] > 0).all()
    both = bdw_map.project_survivors(100, periods=2)
    assert set(both.index.get_level_values("segment")) == {"a", "b"}


@pytest.mark.parametrize("bad", [{"cohort_size": 0}, {"periods": 1.5}, {"observed": -1}])
def test_project_survivors_rejects_bad_arguments(bdw_map, bad):
    kwargs = {"cohort_size": 10, "periods": 3} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        bdw_map.project_survivors(**kwargs)


def test_project_survivors_predictive_interval_covers_binomial_truth():
    customers = single_segment({"alpha": 1.0, "beta": 4.0}, n=4000, seed=2)
    model = bayesclv.RetentionModel("sbg", method="map", random_seed=1).fit(customers)
    table = model.project_survivors(1000, periods=3, hdi_prob=0.9)
    survival = np.exp(special.betaln(1.0, 4.0 + np.arange(1, 4)) - special.betaln(1.0, 4.0))
    # The true expected count sits within the predictive interval.
    assert ((table["predicted_hdi_low"] <= 1000 * survival)
            & (1000 * survival <= table["predicted_hdi_high"])).all()


def test_expected_residual_lifetime_matches_direct_sum(bdw_map, bdw_customers):
    customers, _ = bdw_customers
    out = bdw_map.expected_residual_lifetime(customers, discount_rate=0.02, horizon=24)
    assert len(out) == len(customers) and out.index.equals(customers.index)
    active = ~customers["churned"].to_numpy()
    row = int(np.flatnonzero(active)[0])
    tau, segment = int(customers["tenure"].iloc[row]), customers["segment"].iloc[row]
    curve = bdw_map.retention_curve(periods=tau + 24, segments=[segment]).to_numpy()[0, 0, 0]
    j = np.arange(1, 25)
    expected = np.sum(curve[tau + j] / curve[tau] / 1.02**j)
    np.testing.assert_allclose(out["residual_lifetime_mean"].iloc[row], expected, rtol=1e-9)
    assert (out.loc[~active, "residual_lifetime_mean"] == 0).all()


def test_residual_lifetime_rises_with_tenure_under_negative_duration_dependence():
    customers = single_segment({"alpha": 0.8, "beta": 3.0, "c": 0.5}, n=3000, seed=9)
    model = bayesclv.RetentionModel("bdw", method="map", random_seed=0).fit(customers)
    probe = pd.DataFrame({"customer_id": ["new", "loyal"], "tenure": [1, 12],
                          "churned": [False, False]})
    out = model.expected_residual_lifetime(probe, discount_rate=0.01, horizon=60)
    assert out["residual_lifetime_mean"].iloc[1] > out["residual_lifetime_mean"].iloc[0]


def test_life_table_by_hand():
    customers = pd.DataFrame({
        "customer_id": list("abcde"), "tenure": [1, 2, 3, 3, 2], "entry": [0, 0, 1, 0, 1],
        "churned": [True, False, True, False, True],
    })
    model = bayesclv.RetentionModel("geometric", method="map", random_seed=0).fit(customers)
    table = model.life_table().loc["all"]
    # Period 1: a, b, d at risk (c, e entered at 1), a churns. Period 2: b, c, d, e; e churns.
    # Period 3: c, d; c churns.
    assert table["at_risk"].tolist() == [3, 4, 2]
    assert table["churned"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(table["survival"], [2 / 3, 2 / 3 * 3 / 4, 2 / 3 * 3 / 4 / 2])


def test_churn_check_on_well_specified_model(bdw_map):
    check = bdw_map.posterior_predictive_churn()
    assert {"at_risk", "churned", "predicted_mean", "inside", "p_value"} <= set(check.columns)
    assert check["at_risk"].sum() == bdw_map.risk_set_["at_risk"].sum()
    assert check["inside"].mean() > 0.8
    assert check["p_value"].between(0, 1).all()


def test_churn_check_flags_constant_retention_on_duration_dependent_data():
    customers = single_segment({"eta": 6.0, "k": 0.4}, n=20_000, seed=3)
    wrong = bayesclv.RetentionModel("geometric", method="map", random_seed=0).fit(customers)
    right = bayesclv.RetentionModel("weibull", method="map", random_seed=0).fit(customers)
    assert (wrong.posterior_predictive_churn()["inside"].mean()
            < right.posterior_predictive_churn()["inside"].mean() - 0.3)


def test_pointwise_loglik_rejects_unseen_segments(bdw_map, bdw_customers):
    customers, _ = bdw_customers
    other = customers.head(5).assign(segment="new")
    with pytest.raises(bayesclv.DataValidationError, match="segment"):
        bdw_map.pointwise_loglik(other)


def test_pointwise_loglik_counts_every_customer(bdw_map, bdw_customers):
    customers, _ = bdw_customers
    loglik, counts = bdw_map.pointwise_loglik(customers)
    assert counts.sum() == len(customers)
    assert loglik.sizes["row"] == len(counts) < len(customers)


@pytest.mark.parametrize("family", ["sbg", "bdw"])
def test_clv_model_with_beta_mixture_retention(family, bdw_customers):
    customers, _ = bdw_customers
    model = bayesclv.CLVModel(retention=family, method="map", horizon=24, margin=0.3,
                              random_seed=2).fit(customers)
    out = model.predict(customers)
    assert len(out) == len(customers) and out.index.equals(customers.index)
    assert np.isfinite(out["clv_mean"]).all()
    assert (out.loc[customers["churned"], "clv_mean"] == 0).all()
    report = model.segment_report(customers)
    assert report["n_customers"].sum() == len(customers)


def test_forecast_active_agrees_with_the_clv_forecast(map_model, small_customers):
    customers, _ = small_customers
    alone = map_model.retention_model_.forecast_active(customers, periods=5,
                                                       predictive_draws=200)
    within = map_model.forecast(customers, periods=5, predictive_draws=200)
    np.testing.assert_allclose(alone["active_mean"].to_numpy(),
                               within["active_mean"].to_numpy(), rtol=1e-12)
    assert alone["segment"].tolist() == within["segment"].tolist()
    # Two simulations of the same counts: intervals of about the same width.
    width = (alone["active_pi_high"] - alone["active_pi_low"]).to_numpy()
    other = (within["active_pi_high"] - within["active_pi_low"]).to_numpy()
    assert np.all(np.abs(width - other) <= 0.35 * np.maximum(other, 4.0))


def test_forecast_active_draws_and_bad_periods(map_model, small_customers):
    customers, _ = small_customers
    draws = map_model.retention_model_.forecast_active(customers, periods=3,
                                                       predictive_draws=30,
                                                       return_draws=True)
    assert set(draws.data_vars) == {"active", "realised_active"}
    assert draws["realised_active"].sizes["simulation"] == 30
    assert (draws["realised_active"] <= (~customers["churned"]).sum()).all()
    with pytest.raises(ValueError, match="periods must be an integer >= 1"):
        map_model.retention_model_.forecast_active(customers, periods=0)
