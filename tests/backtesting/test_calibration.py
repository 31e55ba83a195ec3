"""Backtests on logs simulated with known truth: honest intervals, and a misfit caught.

The positive case: the library's default model (Weibull retention, gamma-gamma spend,
NUTS) on logs drawn from exactly that process; the customers' predictive intervals must
hold their nominal share of realised values over repeated simulations, and the
segment-period intervals must hold the actual counts. The negative control: constant
(geometric) retention on strongly duration-dependent lifetimes (Weibull shape 0.45-0.5),
the Berger-Nasr assumption the literature criticises; its backtest must be flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv.datasets import simulate_transactions

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::bayesclv.ConvergenceWarning")]

CUTOFF, HORIZON = "2023-12-31", 6
#: Strong duration dependence: hazards fall steeply with tenure.
DURATION_DEPENDENT = {
    "a": {"share": 0.5, "eta": 12.0, "k": 0.45, "p": 6.0, "q": 4.0, "gamma": 60.0},
    "b": {"share": 0.5, "eta": 20.0, "k": 0.5, "p": 4.0, "q": 3.0, "gamma": 25.0},
}


def _backtest(seed: int, retention: str = "weibull", channels=None):
    log, _ = simulate_transactions(2500, n_periods=30, random_seed=seed,
                                   active_probability=1.0, channels=channels)
    return bayesclv.backtest(log, CUTOFF, HORIZON, end_col="end_date", segment_col="channel",
                             model=bayesclv.CLVModel(retention=retention, random_seed=seed))


def test_predictive_intervals_hold_their_nominal_share_over_repeated_simulations():
    results = [_backtest(100 + rep) for rep in range(3)]
    coverage = pd.concat([r.coverage[r.coverage["segment"] == "all"] for r in results])
    pooled = coverage.groupby("nominal")[["n_customers", "covered", "below", "above"]].sum()
    observed = pooled["covered"] / pooled["n_customers"]
    assert pooled["n_customers"].min() > 3000
    np.testing.assert_allclose(observed.to_numpy(), observed.index.to_numpy(), atol=0.04)
    # misses split about evenly between the two tails
    for level, row in pooled.iterrows():
        share = (1 - level) / 2
        assert abs(row["below"] / row["n_customers"] - share) < 0.04
        assert abs(row["above"] / row["n_customers"] - share) < 0.04
    for result in results:
        summary = result.summary()
        # the base's counts and revenue inside their 90% intervals in most segment-periods
        for name in ("active", "revenue"):
            assert summary.loc[f"segment-periods with actual {name} in the interval",
                               "bayesclv"] >= 0.6
        assert abs(summary.loc["holdout revenue, predicted / actual", "bayesclv"] - 1) < 0.06
        assert summary.loc["Spearman rank correlation", "bayesclv"] > 0.6
        # the naive baseline's intervals (churn only, rates and spend known) are too narrow
        assert (result.baseline.pooled_coverage()["observed_high"]
                < result.pooled_coverage()["nominal"]).all()


def test_constant_retention_on_duration_dependent_lifetimes_is_flagged():
    right = _backtest(200, "weibull", DURATION_DEPENDENT).summary()
    wrong = _backtest(200, "geometric", DURATION_DEPENDENT).summary()
    row = "segment-periods with actual active in the interval"
    # the misfit's intervals for the active counts miss: the whole binomial interval is
    # below the nominal level (on other seeds the right model's holds 0.58-1.0 of them)
    assert wrong.loc[row, "bayesclv_high"] < wrong.loc[row, "nominal"]
    assert wrong.loc[row, "bayesclv"] <= 0.1
    assert right.loc[row, "bayesclv"] >= 0.5
    ratio = "active at the horizon, predicted / actual"
    assert wrong.loc[ratio, "bayesclv"] < 0.85  # it loses the loyal customers too fast
    assert abs(right.loc[ratio, "bayesclv"] - 1) < 0.05
