"""CLVModel.forecast: the base's cash flows per future period."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv.exceptions import NotFittedError

FLOWS = ("active", "revenue", "margin")


def test_discounted_margins_add_up_to_the_segment_totals_draw_by_draw(nuts_model,
                                                                      small_customers):
    customers, _ = small_customers
    draws = nuts_model.forecast(customers, periods=int(nuts_model.horizon), return_draws=True,
                                predictive_draws=50)
    discount = (1.0 + nuts_model.discount_rate) ** draws["period"]
    discounted = (draws["margin"] / discount).sum("period")
    totals = nuts_model.predict_segment_posterior(customers)
    for segment in totals["segment"].to_numpy():
        np.testing.assert_allclose(discounted.sel(segment=segment).to_numpy(),
                                   totals.sel(segment=segment).to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(discounted.sel(segment="all").to_numpy(),
                               totals.sum("segment").to_numpy(), rtol=1e-10)


def test_a_point_estimate_forecast_agrees_with_its_segment_report(map_model, small_customers,
                                                                  assert_forecast_adds_up):
    customers, _ = small_customers
    assert_forecast_adds_up(map_model, customers, predictive_draws=50)


def test_the_table_has_a_row_per_segment_and_period_with_every_summary(map_model,
                                                                       small_customers):
    customers, _ = small_customers
    table = map_model.forecast(customers, periods=6, predictive_draws=100)

    segments = list(dict.fromkeys(customers["segment"].astype(str))) + ["all"]
    assert table["segment"].tolist() == [s for s in segments for _ in range(6)]
    assert table["period"].tolist() == list(range(1, 7)) * len(segments)
    for name in FLOWS:
        for suffix in ("mean", "hdi_low", "hdi_high", "pi_low", "pi_high"):
            assert np.isfinite(table[f"{name}_{suffix}"]).all()
        assert (table[f"{name}_hdi_low"] <= table[f"{name}_mean"] + 1e-9).all()
        assert (table[f"{name}_mean"] <= table[f"{name}_hdi_high"] + 1e-9).all()
        by_segment = table[table["segment"] != "all"].groupby("period")[f"{name}_mean"].sum()
        total = table[table["segment"] == "all"].set_index("period")[f"{name}_mean"]
        np.testing.assert_allclose(by_segment.to_numpy(), total.to_numpy(), rtol=1e-12)
    active = table[table["segment"] == "all"]["active_mean"].to_numpy()
    assert (np.diff(active) < 0).all()
    assert active[0] <= (~customers["churned"]).sum()
    assert table.attrs["period"] == map_model.period_


def test_realised_intervals_are_wider_than_the_expected_ones(nuts_model, small_customers):
    customers, _ = small_customers
    table = nuts_model.forecast(customers, periods=6, predictive_draws=200)
    for name in FLOWS:
        expected = table[f"{name}_hdi_high"] - table[f"{name}_hdi_low"]
        realised = table[f"{name}_pi_high"] - table[f"{name}_pi_low"]
        assert (realised.to_numpy() >= 0.9 * expected.to_numpy()).all(), name


def test_the_same_seed_gives_the_same_forecast(map_model, small_customers):
    customers, _ = small_customers
    first = map_model.forecast(customers, periods=3, predictive_draws=40)
    assert first.equals(map_model.forecast(customers, periods=3, predictive_draws=40))
    # Each customer's spend draws follow the customer, not its row.
    shuffled = map_model.forecast(customers.sample(frac=1.0, random_state=1), periods=3,
                                  predictive_draws=40)
    expected = [c for c in first if c.endswith(("_mean", "_hdi_low", "_hdi_high"))]
    ordered = shuffled.set_index(["segment", "period"]).loc[
        list(zip(first["segment"], first["period"], strict=True)), expected]
    np.testing.assert_allclose(ordered.to_numpy(), first[expected].to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("periods", [0, -2, 2.5, True])
def test_forecast_refuses_a_bad_number_of_periods(map_model, small_customers, periods):
    customers, _ = small_customers
    with pytest.raises(ValueError, match="periods must be an integer >= 1"):
        map_model.forecast(customers, periods=periods)


def test_forecast_needs_a_fitted_model(small_customers):
    customers, _ = small_customers
    with pytest.raises(NotFittedError):
        bayesclv.CLVModel().forecast(customers, periods=3)


# --------------------------------------------------------------------------------------
# scenario: retention programmes
# --------------------------------------------------------------------------------------


def test_scenario_baseline_is_the_segment_report_and_untouched_segments_do_not_move(
        nuts_model, small_customers):
    customers, _ = small_customers
    table = nuts_model.scenario(customers, churn_reduction={"b": 0.3}, cost=500.0)
    report = nuts_model.segment_report(customers)
    np.testing.assert_allclose(table.loc[report.index, "baseline_mean"],
                               report["total_mean"], rtol=1e-10)
    assert (table.loc[["a", "c"], "delta_mean"] == 0).all()
    assert table.loc["b", "delta_hdi_low"] > 0
    assert table.loc["all", "delta_mean"] == pytest.approx(table.loc["b", "delta_mean"])
    assert table.loc["b", "cost"] == table.loc["all", "cost"] == 500.0
    assert 0.0 <= table.loc["b", "prob_exceeds_cost"] <= 1.0
    draws = nuts_model.scenario(customers, churn_reduction={"b": 0.3}, return_draws=True)
    assert draws.dims == ("chain", "draw", "segment")
    assert float(draws.sel(segment="b").mean()) == pytest.approx(table.loc["b", "delta_mean"])


def test_the_probability_of_paying_off_falls_as_the_cost_rises(map_model, small_customers):
    customers, _ = small_customers
    gain = map_model.scenario(customers, churn_reduction={"a": 0.2}).loc["a", "delta_mean"]
    cheap = map_model.scenario(customers, churn_reduction={"a": 0.2}, cost=0.5 * gain)
    dear = map_model.scenario(customers, churn_reduction={"a": 0.2}, cost=2.0 * gain)
    assert cheap.loc["a", "prob_exceeds_cost"] > 0.9
    assert dear.loc["a", "prob_exceeds_cost"] < 0.1


def test_costs_per_segment_and_a_single_cost_for_several_segments(map_model, small_customers):
    customers, _ = small_customers
    both = map_model.scenario(customers, churn_reduction=0.1, cost={"a": 10.0, "b": 20.0})
    assert both.loc["all", "cost"] == 30.0
    assert both.loc["c", "cost"] == 0.0
    shared = map_model.scenario(customers, churn_reduction=0.1, cost=30.0)
    assert np.isnan(shared.loc["a", "cost"]) and np.isnan(shared.loc["a", "prob_exceeds_cost"])
    assert shared.loc["all", "cost"] == 30.0


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"churn_reduction": 1.5}, ValueError, "between 0 and 1"),
    ({"churn_reduction": {"zz": 0.1}}, ValueError, "not in the table"),
    ({"spend_change": -1.0}, ValueError, "above -1"),
    ({"churn_reduction": "much"}, TypeError, "number or a mapping"),
    ({"from_period": 0}, ValueError, "from_period must be an integer >= 1"),
])
def test_scenario_refuses_bad_programmes(map_model, small_customers, kwargs, error, message):
    customers, _ = small_customers
    with pytest.raises(error, match=message):
        map_model.scenario(customers, **kwargs)


def test_no_programme_changes_nothing(map_model, small_customers):
    customers, _ = small_customers
    table = map_model.scenario(customers)
    assert (table["delta_mean"] == 0).all()
    assert (table["prob_exceeds_cost"] == 0).all()


# --------------------------------------------------------------------------------------
# forecast(new_customers=...): cohorts not yet acquired
# --------------------------------------------------------------------------------------


def test_a_new_cohort_is_worth_its_size_times_the_prospect_value(map_model, small_customers):
    import pandas as pd

    customers, _ = small_customers
    horizon = int(map_model.horizon)
    new = pd.DataFrame({"segment": ["b"], "period": [1], "n_customers": [40]})
    with_cohort = map_model.forecast(customers, periods=horizon, new_customers=new,
                                     predictive_draws=100, return_draws=True)
    without = map_model.forecast(customers, periods=horizon, predictive_draws=100,
                                 return_draws=True)
    discount = (1.0 + map_model.discount_rate) ** with_cohort["period"]
    added = ((with_cohort["margin"] - without["margin"]) / discount).sum("period")
    prospect = map_model.expected_new_customer_value("b").mean()
    # Acquired in period 1: each term is discounted once more than from acquisition.
    np.testing.assert_allclose(float(added.sel(segment="b").mean()),
                               40 * float(prospect) / (1.0 + map_model.discount_rate),
                               rtol=1e-10)
    # Simulated cohorts agree with their expectation on average.
    realised = (with_cohort["realised_active"] - without["realised_active"]).sel(segment="b")
    expected = (with_cohort["active"] - without["active"]).sel(segment="b").mean(
        ("chain", "draw"))
    error = realised.std("simulation") / np.sqrt(realised.sizes["simulation"])
    assert (np.abs(realised.mean("simulation") - expected) <= 4 * error + 1e-9).all()
    assert float(realised.isel(period=0).min()) == 40  # all pay in their first period


def test_cohorts_of_segments_absent_from_the_table_get_rows(map_model, small_customers):
    import pandas as pd

    customers, _ = small_customers
    only_a = customers[customers["segment"] == "a"]
    new = pd.DataFrame({"segment": ["c", "c"], "period": [2, 3], "n_customers": [10, 5]})
    table = map_model.forecast(only_a, periods=4, new_customers=new, predictive_draws=50)
    assert list(dict.fromkeys(table["segment"])) == ["a", "c", "all"]
    c_rows = table[table["segment"] == "c"]
    assert c_rows["active_mean"].iloc[0] == 0
    assert c_rows["active_mean"].iloc[1] == pytest.approx(10)


@pytest.mark.parametrize(("new", "message"), [
    ({"segment": ["a"], "period": [0], "n_customers": [3]}, "'period'.*1..4"),
    ({"segment": ["a"], "period": [5], "n_customers": [3]}, "'period'.*1..4"),
    ({"segment": ["a"], "period": [1], "n_customers": [2.5]}, "'n_customers'"),
    ({"segment": ["a"], "n_customers": [2]}, r"\['period'\] missing"),
    ({"segment": [None], "period": [1], "n_customers": [2]}, "missing labels"),
])
def test_bad_acquisition_tables_are_refused(map_model, small_customers, new, message):
    import pandas as pd

    from bayesclv.exceptions import DataValidationError

    customers, _ = small_customers
    with pytest.raises(DataValidationError, match=message):
        map_model.forecast(customers, periods=4, new_customers=pd.DataFrame(new))


def test_lognormal_spend_forecasts_and_programmes(assert_forecast_adds_up):
    from bayesclv.datasets import simulate_customers

    customers, _ = simulate_customers(800, log_spend=True, random_seed=4)
    model = bayesclv.CLVModel(spend="lognormal", method="map", horizon=12,
                              random_seed=0).fit(customers)
    draws, _ = assert_forecast_adds_up(model, customers, predictive_draws=200)
    realised = draws["realised_revenue"].sel(segment="all").mean("simulation")
    expected = draws["revenue"].sel(segment="all").mean(("chain", "draw"))
    np.testing.assert_allclose(realised, expected, rtol=0.05)
    table = model.scenario(customers, spend_change=0.1)
    assert (table["delta_mean"] > 0).all()


def _future_active(customers, truth, periods):
    """Active customers per segment (and in all) in each future period, from the truth."""
    lifetime = truth.customers.loc[customers.index, "lifetime"].to_numpy()
    tenure = customers["tenure"].to_numpy()
    alive = ~customers["churned"].to_numpy()
    counts = {}
    for j in range(1, periods + 1):
        staying = alive & (lifetime > tenure + j)
        per_segment = pd.Series(staying).groupby(customers["segment"].to_numpy()).sum()
        for segment, value in per_segment.items():
            counts[(segment, j)] = value
        counts[("all", j)] = staying.sum()
    return pd.Series(counts)


@pytest.mark.slow
def test_predictive_intervals_cover_the_future_of_repeated_tables():
    from bayesclv.datasets import simulate_customers

    segments = {
        "early": {"share": 0.5, "eta": 10.0, "k": 0.5, "p": 4.0, "q": 4.0, "gamma": 40.0},
        "late": {"share": 0.5, "eta": 25.0, "k": 0.6, "p": 4.0, "q": 4.0, "gamma": 40.0},
    }
    periods, found = 6, {"weibull": [], "geometric": []}
    for replicate in range(10):
        customers, truth = simulate_customers(1500, segments, observation_periods=30,
                                              random_seed=500 + replicate)
        actual = _future_active(customers, truth, periods)
        for family in found:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
                model = bayesclv.RetentionModel(family, draws=300, tune=300, chains=2,
                                                random_seed=replicate).fit(customers)
            table = model.forecast_active(customers, periods=periods, predictive_draws=600)
            table = table.set_index(["segment", "period"]).loc[actual.index]
            found[family].extend((table["active_pi_low"] <= actual)
                                 & (actual <= table["active_pi_high"]))
    coverage = {family: float(np.mean(values)) for family, values in found.items()}
    print(coverage)
    # 180 correlated (table, segment, period) cells at a nominal 90%.
    assert 0.8 <= coverage["weibull"] <= 0.98, coverage
    # Negative control: constant retention on duration-dependent churn.
    assert coverage["geometric"] < 0.6, coverage


# --------------------------------------------------------------------------------------
# Labels, repeated rows and the order of the table
# --------------------------------------------------------------------------------------


def test_repeated_acquisition_rows_are_one_cohort(map_model, small_customers):
    customers, _ = small_customers
    one = pd.DataFrame({"segment": ["b"], "period": [2], "n_customers": [60]})
    split = pd.DataFrame({"segment": ["b", "b"], "period": ["2", 2.0], "n_customers": [20, 40]})
    first = map_model.forecast(customers, periods=4, new_customers=one, predictive_draws=50)
    second = map_model.forecast(customers, periods=4, new_customers=split,
                                predictive_draws=50)
    pd.testing.assert_frame_equal(first, second)


def test_a_table_without_segments_has_one_row_per_period(small_customers):
    customers, _ = small_customers
    plain = customers.drop(columns="segment")
    model = bayesclv.CLVModel(method="map", horizon=6, random_seed=0).fit(plain)
    table = model.forecast(plain, periods=6, predictive_draws=50)
    assert table["segment"].tolist() == ["all"] * 6
    programme = model.scenario(plain, churn_reduction=0.1, cost=10.0)
    assert programme.index.tolist() == ["all"]
    assert programme.loc["all", "cost"] == 10.0


def test_a_segment_named_like_the_whole_base_is_refused(map_model, small_customers):
    customers, _ = small_customers
    renamed = customers.assign(segment=customers["segment"].replace({"a": "all"}))
    model = bayesclv.CLVModel(method="map", horizon=6, random_seed=0).fit(renamed)
    with pytest.raises(ValueError, match="named 'all'"):
        model.forecast(renamed, periods=3, predictive_draws=20)
    with pytest.raises(ValueError, match="named 'all'"):
        model.scenario(renamed, churn_reduction=0.1)


def test_programme_keys_are_read_as_the_table_labels(small_customers):
    customers, _ = small_customers
    numbered = customers.assign(segment=customers["segment"].map({"a": 1, "b": 2, "c": 3}))
    model = bayesclv.CLVModel(method="map", horizon=6, random_seed=0).fit(numbered)
    by_int = model.scenario(numbered, churn_reduction={2: 0.2})
    by_float = model.scenario(numbered, churn_reduction={2.0: 0.2})
    pd.testing.assert_frame_equal(by_int, by_float)
    assert by_int.loc["2", "delta_mean"] > 0


def test_simulated_active_counts_follow_the_customers_not_the_rows(map_model,
                                                                   small_customers):
    customers, _ = small_customers
    retention = map_model.retention_model_
    first = retention.forecast_active(customers, periods=4, predictive_draws=80)
    shuffled = retention.forecast_active(customers.sample(frac=1.0, random_state=3),
                                         periods=4, predictive_draws=80)
    ordered = shuffled.set_index(["segment", "period"]).loc[
        list(zip(first["segment"], first["period"], strict=True))].reset_index()
    pd.testing.assert_frame_equal(ordered[first.columns], first, check_exact=False,
                                  rtol=1e-12)
