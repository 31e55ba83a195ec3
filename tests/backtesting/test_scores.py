"""Coverage with binomial intervals, ranking and lift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesclv.backtesting.scores import (
    clopper_pearson,
    coverage_table,
    lift_table,
    ranking_scores,
)


def test_clopper_pearson_is_scipys_exact_interval():
    for k, n in [(0, 10), (3, 10), (10, 10), (451, 1000)]:
        low, high = clopper_pearson(k, n)
        exact = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        np.testing.assert_allclose([low, high], [exact.low, exact.high], rtol=1e-10)
    assert np.isnan(clopper_pearson(0, 0)[0])


def test_coverage_counts_customers_active_at_the_cutoff_per_segment_and_flags_misses():
    n = 400
    rng = np.random.default_rng(0)
    realised = rng.normal(size=n)
    table = pd.DataFrame({
        "segment": np.repeat(["good", "bad"], n // 2),
        "active_at_cutoff": np.r_[np.ones(n - 10, bool), np.zeros(10, bool)],
        "realised_value": realised,
    })
    z = stats.norm.ppf(0.95)
    # honest 90% intervals for "good", intervals a quarter as wide for "bad"
    width = np.where(table["segment"] == "good", z, z / 4)
    table["value_pi90_low"], table["value_pi90_high"] = -width, width
    coverage = coverage_table(table, [0.9], ["good", "bad"]).set_index("segment")
    assert coverage.loc["good", "n_customers"] == 200
    assert coverage.loc["bad", "n_customers"] == 190  # 10 churned at the cutoff: not scored
    assert coverage.loc["all", "n_customers"] == 390
    assert coverage.loc["good", "verdict"] == "ok"
    assert coverage.loc["bad", "verdict"] == "under"  # the negative control is caught
    assert coverage.loc["bad", "observed_high"] < 0.9
    bad = coverage.loc["bad"]
    assert bad["covered"] + bad["below"] + bad["above"] == bad["n_customers"]
    assert bad["below"] > 40 and bad["above"] > 40  # too narrow on both sides
    good = coverage.loc["good"]
    assert good["observed_low"] <= good["observed"] <= good["observed_high"]
    # a segment without customers active at the cutoff is not judged
    empty = coverage_table(table, [0.9], ["good", "bad", "none"]).set_index("segment")
    assert empty.loc["none", "verdict"] == "n/a" and np.isnan(empty.loc["none", "observed"])


def test_ranking_and_lift():
    realised = np.arange(1.0, 101.0)
    perfect = ranking_scores(realised * 2, realised)
    assert perfect["spearman"] == pytest.approx(1.0)
    np.testing.assert_allclose(perfect["top_decile_capture"],
                               realised[-10:].sum() / realised.sum())
    reversed_ = ranking_scores(-realised, realised)
    assert reversed_["spearman"] == pytest.approx(-1.0)
    np.testing.assert_allclose(reversed_["top_decile_capture"],
                               realised[:10].sum() / realised.sum())
    assert np.isnan(ranking_scores(np.ones(5), np.arange(5.0))["spearman"])
    lift = lift_table(realised, realised)
    assert len(lift) == 10 and lift["value_share"].iloc[-1] == 1.0
    assert (np.diff(lift["value_share"]) > 0).all() and lift["lift"].iloc[0] > 1
