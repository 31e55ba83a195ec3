"""BergerNasr: constant retention by counting, historical spend, geometric intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesclv.backtesting import BergerNasr


def _table() -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.DataFrame({
        "tenure": [4, 2, 6, 3, 0, 5],
        "churned": [True, False, False, True, False, False],
        "entry": [0, 0, 2, 0, 0, 0],
        "n_periods_active": [4, 2, 3, 1, 0, 5],
        "mean_spend": [10.0, 20.0, 30.0, 40.0, np.nan, 6.0],
    })
    return table, np.array(["s", "s", "t", "t", "t", "u"])


def test_rates_are_churns_over_periods_at_risk_and_spend_is_historical():
    table, segment = _table()
    model = BergerNasr.fit(table, segment)
    assert model.segments == ["s", "t", "u"]
    np.testing.assert_allclose(model.exposure, [6, 4 + 3 + 0, 5])
    np.testing.assert_allclose(model.churns, [1, 1, 0])
    np.testing.assert_allclose(model.retention, [1 - 1 / 6, 1 - 1 / 7, 1.0])
    # segment spend per active period: (3*30 + 1*40) / 4 for t
    np.testing.assert_allclose(model.spend, [(40 + 40) / 6, 130 / 4, 6.0])
    code = model.codes(segment)
    # the customer without spend gets its segment's
    np.testing.assert_allclose(model.customer_spend(table, code),
                               [10, 20, 30, 40, 130 / 4, 6])
    with pytest.raises(ValueError, match="unseen"):
        model.codes(np.array(["v"]))


def test_expected_values_are_berger_nasr_and_intervals_match_simulated_lifetimes():
    model = BergerNasr(segments=["a", "b"], retention=np.array([0.8, 0.95]),
                       spend=np.array([10.0, 20.0]), churns=np.zeros(2),
                       exposure=np.ones(2))
    spend = np.array([10.0, 50.0, 20.0])
    code = np.array([0, 0, 1])
    active = np.array([True, True, True])
    horizon, d, margin, cost = 12, 0.01, 0.3, 1.0
    levels = [0.5, 0.8, 0.9]
    mean, bounds = model.customer_values(spend, code, active, horizon, margin=margin,
                                         cost_per_period=cost, discount_rate=d,
                                         levels=levels)
    j = np.arange(1, horizon + 1)
    r = model.retention[code]
    closed = (margin * spend - cost) * ((r[:, None] / (1 + d)) ** j).sum(axis=1)
    np.testing.assert_allclose(mean, closed, rtol=1e-12)
    # Monte Carlo: periods stayed ~ geometric, capped at the horizon
    rng = np.random.default_rng(1)
    stays = np.minimum(rng.geometric(1 - r, size=(400_000, 3)) - 1, horizon)
    annuity = np.r_[0, np.cumsum((1 + d) ** -j)]
    values = (margin * spend - cost) * annuity[stays]
    np.testing.assert_allclose(values.mean(axis=0), closed, rtol=0.01)
    for k, level in enumerate(levels):
        low, high = bounds[2 * k], bounds[2 * k + 1]
        inside = ((values >= low - 1e-9) & (values <= high + 1e-9)).mean(axis=0)
        assert (inside >= level - 0.005).all()  # a discrete distribution covers at least
        below = (values < low - 1e-9).mean(axis=0)
        assert (below <= (1 - level) / 2 + 0.005).all()
    # a negative net value swaps the bounds; churned customers are 0
    mean, bounds = model.customer_values(np.array([1.0, 1.0]), np.array([0, 0]),
                                         np.array([True, False]), horizon, margin=0.3,
                                         cost_per_period=5.0, discount_rate=d,
                                         levels=[0.9])
    assert mean[0] < 0 and bounds[0, 0] < bounds[1, 0] <= 0
    assert mean[1] == 0 and (bounds[:, 1] == 0).all()


def test_simulated_flows_average_to_the_expected_flows():
    model = BergerNasr(segments=["a", "b"], retention=np.array([0.7, 0.9]),
                       spend=np.array([10.0, 20.0]), churns=np.zeros(2),
                       exposure=np.ones(2))
    code = np.repeat([0, 1], 500)
    spend = np.linspace(1, 30, 1000)
    active = np.ones(1000, dtype=bool)
    active[::10] = False
    flows = model.simulate_flows(spend, code, active, 6, 2000, seed=4)
    expected_active = np.array([[(active & (code == s)).sum() * model.retention[s] ** j
                                 for j in range(1, 7)] for s in range(2)])
    np.testing.assert_allclose(flows["active"], expected_active, rtol=1e-12)
    np.testing.assert_allclose(flows["realised_active"].mean(axis=0), flows["active"],
                               rtol=0.01)
    np.testing.assert_allclose(flows["realised_revenue"].mean(axis=0), flows["revenue"],
                               rtol=0.01)
    again = model.simulate_flows(spend, code, active, 6, 2000, seed=4)
    np.testing.assert_array_equal(again["realised_revenue"], flows["realised_revenue"])
