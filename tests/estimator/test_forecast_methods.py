"""CLVModel.forecast: the base's cash flows per future period."""

from __future__ import annotations

import numpy as np
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


def test_a_point_estimate_forecast_agrees_with_its_segment_report(map_model, small_customers):
    customers, _ = small_customers
    draws = map_model.forecast(customers, periods=int(map_model.horizon), return_draws=True,
                               predictive_draws=50)
    discounted = (draws["margin"] / (1.0 + map_model.discount_rate) ** draws["period"]).sum(
        "period").mean(("chain", "draw"))
    report = map_model.segment_report(customers)
    np.testing.assert_allclose(discounted.sel(segment=report.index.tolist()).to_numpy(),
                               report["total_mean"].to_numpy(), rtol=1e-10)


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
