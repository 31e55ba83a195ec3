"""Tests for bayesclv.segmentation: RFM scores, K-Means value segments, lifecycle stages."""

from __future__ import annotations

import doctest
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import (
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

import bayesclv.datasets.transactions
import bayesclv.segmentation.kmeans
import bayesclv.segmentation.lifecycle
import bayesclv.segmentation.rfm
from bayesclv.data import summarize, validate_customers
from bayesclv.datasets.transactions import simulate_transactions
from bayesclv.exceptions import DataValidationError
from bayesclv.segmentation import (
    DEFAULT_RFM_GROUPS,
    LIFECYCLE_STAGES,
    KMeansSegmenter,
    RFMSegmenter,
    lifecycle_stage,
    value_segment_names,
)


def raises_validation(*fragments: str):
    pattern = ".*".join(re.escape(fragment) for fragment in fragments)
    return pytest.raises(DataValidationError, match=pattern)


def rfm_table(recency, frequency, monetary) -> pd.DataFrame:
    n = len(recency)
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "recency": recency,
        "frequency": frequency,
        "monetary": monetary,
    })


def midrank_quintiles(values: np.ndarray) -> np.ndarray:
    """Direct definition: ceil(5 * (mean 1-based rank - 1/2) / n), clipped to 1..5."""
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return np.clip(np.ceil(np.round(5 * (ranks - 0.5) / len(values), 12)), 1, 5).astype(int)


@pytest.fixture(scope="module")
def simulated_table() -> pd.DataFrame:
    log, _ = simulate_transactions(600, 24, random_seed=3)
    return summarize(log, end_col="end_date", segment_col="channel")


CLUSTERS = {  # name: (recency range, frequency range, monetary mean), well separated
    "high": ((0, 2), (20, 26), 200.0),
    "mid-high": ((3, 5), (8, 11), 80.0),
    "mid-low": ((9, 13), (2, 4), 30.0),
    "low": ((20, 31), (0, 1), 8.0),
}


def clustered_table(names=tuple(CLUSTERS), n_per=60, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for name in names:
        (r_low, r_high), (f_low, f_high), m = CLUSTERS[name]
        parts.append(pd.DataFrame({
            "recency": rng.integers(r_low, r_high, n_per),
            "frequency": rng.integers(f_low, f_high, n_per),
            "monetary": rng.normal(m, 0.05 * m, n_per),
            "truth": name,
        }))
    table = pd.concat(parts, ignore_index=True)
    return table.sample(frac=1.0, random_state=seed).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Docstring examples
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [bayesclv.segmentation.rfm, bayesclv.segmentation.kmeans, bayesclv.segmentation.lifecycle,
     bayesclv.datasets.transactions],
)
def test_docstring_examples_run(module):
    failures, tries = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
    assert tries > 0


# --------------------------------------------------------------------------------------
# scikit-learn conventions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [RFMSegmenter, KMeansSegmenter])
def test_sklearn_basics(cls):
    name = cls.__name__
    check_parameters_default_constructible(name, cls())
    check_no_attributes_set_in_init(name, cls())
    estimator = cls(segment_col="seg")
    params = estimator.get_params()
    assert params["segment_col"] == "seg"
    copy = clone(estimator)
    assert copy.get_params() == params
    assert copy is not estimator
    estimator.set_params(segment_col=None)
    assert estimator.segment_col is None


@pytest.mark.parametrize("cls", [RFMSegmenter, KMeansSegmenter])
def test_transform_before_fit_raises_not_fitted(cls, simulated_table):
    with pytest.raises(NotFittedError):
        cls().transform(simulated_table)


@pytest.mark.parametrize("cls", [RFMSegmenter, KMeansSegmenter])
def test_fit_leaves_params_and_input_unchanged(cls, simulated_table):
    estimator = cls(random_state=0, n_init=2) if cls is KMeansSegmenter else cls()
    params = estimator.get_params()
    before = simulated_table.copy()

    out = estimator.fit(simulated_table).transform(simulated_table)

    assert estimator.get_params() == params
    pd.testing.assert_frame_equal(simulated_table, before)
    assert out.index.equals(simulated_table.index)
    assert list(out.columns) == list(estimator.get_feature_names_out())
    assert estimator.n_features_in_ == simulated_table.shape[1]
    assert clone(estimator).get_params() == params


@pytest.mark.parametrize("cls", [RFMSegmenter, KMeansSegmenter])
def test_segment_feeds_validate_customers(cls, simulated_table):
    estimator = cls(random_state=0, n_init=2) if cls is KMeansSegmenter else cls()

    out = make_pipeline(estimator).fit_transform(simulated_table)
    data = validate_customers(out)

    assert set(data.segment) <= set(out["segment"].cat.categories)
    assert not set(data.segment) & set(simulated_table["segment"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"recency_col": 3}, "'recency_col' parameter of RFMSegmenter must be a column name"),
        ({"segment_col": 1.0}, "'segment_col'"),
    ],
)
def test_rfm_rejects_bad_params(params, message, simulated_table):
    with pytest.raises(ValueError, match=re.escape(message)):
        RFMSegmenter(**params).fit(simulated_table)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_segments": 1}, "'n_segments' parameter of KMeansSegmenter must be an int >= 2"),
        ({"n_segments": "many"}, "'n_segments'"),
        ({"n_segments": True}, "'n_segments'"),
        ({"max_segments": 1}, "'max_segments'"),
        ({"n_init": 0}, "'n_init'"),
        ({"random_state": -1}, "'random_state'"),
        ({"label_col": None}, "'label_col'"),
    ],
)
def test_kmeans_rejects_bad_params(params, message, simulated_table):
    with pytest.raises(ValueError, match=re.escape(message)):
        KMeansSegmenter(**params).fit(simulated_table)


# --------------------------------------------------------------------------------------
# RFMSegmenter
# --------------------------------------------------------------------------------------


def test_rfm_scores_distinct_values_in_equal_quintiles():
    rng = np.random.default_rng(1)
    table = rfm_table(rng.permutation(100), rng.permutation(100), rng.random(100) * 100)

    out = RFMSegmenter().fit_transform(table)

    for column in ["r_score", "f_score", "m_score"]:
        assert out[column].between(1, 5).all()
        assert out[column].value_counts().to_dict() == {s: 20 for s in range(1, 6)}
    # 5 is best: the most recent, most frequent, highest spend.
    assert out.loc[table["recency"].idxmin(), "r_score"] == 5
    assert out.loc[table["recency"].idxmax(), "r_score"] == 1
    assert out.loc[table["frequency"].idxmax(), "f_score"] == 5
    assert out.loc[table["monetary"].idxmin(), "m_score"] == 1
    expected_cell = (out["r_score"] * 100 + out["f_score"] * 10 + out["m_score"]).astype(str)
    assert (out["rfm_cell"] == expected_cell).all()


def test_rfm_ties_share_a_score():
    # 60 customers with frequency 0 (mid-rank 30.5 of 100: score 2), then 1..40.
    frequency = np.r_[np.zeros(60), np.arange(1, 41)]
    table = rfm_table(np.arange(100), frequency, np.ones(100))

    out = RFMSegmenter().fit_transform(table)

    assert (out.loc[frequency == 0, "f_score"] == 2).all()
    assert (out.loc[frequency > 0, "f_score"] >= 4).all()
    # A constant column: everyone at the middle score.
    assert (out["m_score"] == 3).all()


@pytest.mark.parametrize("seed", range(5))
def test_rfm_scores_follow_midrank_and_are_monotone(seed):
    rng = np.random.default_rng(seed)
    table = rfm_table(rng.integers(0, 12, 400), rng.poisson(1.0, 400),
                      np.round(rng.gamma(2.0, 20.0, 400), 0))

    out = RFMSegmenter().fit_transform(table)

    np.testing.assert_array_equal(out["f_score"], midrank_quintiles(table["frequency"]))
    np.testing.assert_array_equal(out["m_score"], midrank_quintiles(table["monetary"]))
    np.testing.assert_array_equal(out["r_score"], 6 - midrank_quintiles(table["recency"]))
    for value_col, score_col in [("frequency", "f_score"), ("monetary", "m_score")]:
        assert out.groupby(value_col)[score_col].nunique().max() == 1  # ties share
        ordered = out.sort_values(value_col)[score_col].to_numpy()
        assert (np.diff(ordered) >= 0).all()


def test_rfm_transform_scores_new_customers_against_training_edges():
    train = rfm_table(np.arange(100), np.arange(100), np.arange(1.0, 101.0))
    segmenter = RFMSegmenter().fit(train)
    new = rfm_table([-5, 1000, 19, 19.5, 20], [-1, 500, 19, 19.5, 20],
                    [0.0, 1e6, 20.0, 20.5, 21.0])

    out = segmenter.transform(new)

    # 19 is the largest training value in quintile 1 (its edge); 19.5 and 20 fall in 2.
    np.testing.assert_array_equal(out["f_score"], [1, 5, 1, 2, 2])
    np.testing.assert_array_equal(out["m_score"], [1, 5, 1, 2, 2])
    np.testing.assert_array_equal(out["r_score"], [5, 1, 5, 4, 4])
    assert list(segmenter.edges_.loc["frequency"]) == [19.0, 39.0, 59.0, 79.0]


def test_rfm_default_groups():
    segmenter = RFMSegmenter().fit(rfm_table(np.arange(10), np.arange(10), np.arange(10.0)))
    cells = segmenter.cell_groups_

    assert len(cells) == 125
    assert cells.index[0] == "555"
    expected = {"555": "champions", "444": "champions", "553": "loyal", "353": "loyal",
                "511": "new", "521": "new", "311": "potential", "432": "potential",
                "155": "at_risk", "231": "at_risk", "111": "hibernating", "222": "hibernating"}
    assert {cell: cells[cell] for cell in expected} == expected
    assert segmenter.group_names_ == [name for name, _ in DEFAULT_RFM_GROUPS]


def test_rfm_group_and_segment_columns():
    table = rfm_table(np.arange(10), np.arange(10)[::-1], np.arange(10.0)[::-1])
    table["segment"] = "old"

    out = RFMSegmenter().fit_transform(table)
    kept = RFMSegmenter(segment_col=None).fit_transform(table)

    assert out["rfm_group"].tolist()[:2] == ["champions", "champions"]
    assert out["rfm_group"].tolist()[-2:] == ["hibernating", "hibernating"]
    assert list(out["rfm_group"].cat.categories) == [n for n, _ in DEFAULT_RFM_GROUPS]
    assert (out["segment"].astype(str) == out["rfm_group"].astype(str)).all()
    assert (kept["segment"] == "old").all()


def test_rfm_custom_groups():
    groups = [("best", {"r": (5, 5), "f": (5, 5)}), ("rest", {})]

    out = RFMSegmenter(groups=groups).fit_transform(
        rfm_table(np.arange(10), np.arange(10)[::-1], np.ones(10)))

    assert out["rfm_group"].tolist() == ["best", "best"] + ["rest"] * 8
    mapping = dict(groups)
    assert RFMSegmenter(groups=mapping).fit(out).group_names_ == ["best", "rest"]


def test_rfm_groups_must_cover_every_cell():
    groups = [("best", {"r": (5, 5)}), ("worst", {"r": (1, 1)})]

    with pytest.raises(ValueError, match=r"leave 75 of the 125 score cells .*e\.g\. 211.*"
                                         r"catch-all"):
        RFMSegmenter(groups=groups).fit(rfm_table([1, 2], [1, 2], [1.0, 2.0]))


@pytest.mark.parametrize(
    "groups",
    [
        [("a", {"x": (1, 5)})],
        [("a", {"r": (0, 5)})],
        [("a", {"r": (4, 2)})],
        [("a", {"r": (1.0, 5)})],
        [("a",)],
        [],
        3,
    ],
)
def test_rfm_rejects_malformed_groups(groups):
    with pytest.raises(ValueError, match="group|groups"):
        RFMSegmenter(groups=groups).fit(rfm_table([1, 2], [1, 2], [1.0, 2.0]))


def test_rfm_rejects_nan_and_missing_columns():
    table = rfm_table([1.0, np.nan, 3.0, np.nan], [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])

    with raises_validation("Column 'recency'", "missing (NaN) values", "2 row(s)",
                           "customer ids: 'c1', 'c3'"):
        RFMSegmenter().fit(table)
    with raises_validation("['monetary']", "missing from the customer table",
                           "bayesclv.data.summarize"):
        RFMSegmenter().fit(table.drop(columns="monetary"))
    with raises_validation("Column 'frequency'", "numbers expected"):
        RFMSegmenter().fit(table.assign(frequency=list("abcd"), recency=1.0))
    with raises_validation("expects a pandas DataFrame"):
        RFMSegmenter().fit(np.ones((4, 3)))


# --------------------------------------------------------------------------------------
# KMeansSegmenter
# --------------------------------------------------------------------------------------


def test_value_segment_names():
    assert value_segment_names(2) == ["high", "low"]
    assert value_segment_names(3) == ["high", "mid", "low"]
    assert value_segment_names(4) == ["high", "mid-high", "mid-low", "low"]
    assert value_segment_names(6)[0] == "value-1"
    assert value_segment_names(6)[-1] == "value-6"


def test_kmeans_recovers_clusters_named_by_value():
    table = clustered_table()

    segmenter = KMeansSegmenter(n_segments=4, random_state=0, n_init=3).fit(table)
    out = segmenter.transform(table)

    assert (out["kmeans_segment"].astype(str) == table["truth"]).all()
    assert (out["segment"].astype(str) == table["truth"]).all()
    assert list(out["kmeans_segment"].cat.categories) == ["high", "mid-high", "mid-low", "low"]
    centres = segmenter.centres_
    assert list(centres.index) == ["high", "mid-high", "mid-low", "low"]
    assert (np.diff(centres["value"]) < 0).all()
    assert (centres["n_customers"] == 60).all()
    np.testing.assert_allclose(centres.loc["high", "monetary"], 200.0, rtol=0.05)
    assert segmenter.silhouette_scores_ is None
    assert segmenter.n_segments_ == 4


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_labels_stable_across_random_state(seed):
    table = clustered_table(seed=11)
    reference = KMeansSegmenter(random_state=0, n_init=3).fit_transform(table)

    out = KMeansSegmenter(random_state=seed + 100, n_init=3).fit_transform(table)

    pd.testing.assert_series_equal(out["kmeans_segment"], reference["kmeans_segment"])


def test_kmeans_relabels_by_mean_monetary_times_frequency():
    # Cluster A: high spend but few purchases (value 100*1); B: low spend, frequent (20*11).
    table = pd.DataFrame({
        "recency": np.r_[np.full(30, 5), np.full(30, 5)],
        "frequency": np.r_[np.zeros(30), np.full(30, 10)],
        "monetary": np.r_[np.full(30, 100.0), np.full(30, 20.0)],
    })

    out = KMeansSegmenter(n_segments=2, random_state=0, n_init=2).fit_transform(table)

    assert (out["segment"].iloc[:30] == "low").all()
    assert (out["segment"].iloc[30:] == "high").all()


def test_kmeans_auto_chooses_clear_clusters_by_silhouette():
    table = clustered_table(names=("high", "mid-low", "low"), n_per=80)

    segmenter = KMeansSegmenter(n_segments="auto", random_state=0, n_init=2,
                                silhouette_sample_size=150).fit(table)

    assert segmenter.n_segments_ == 3
    assert sorted(segmenter.silhouette_scores_) == list(range(2, 9))
    assert max(segmenter.silhouette_scores_, key=segmenter.silhouette_scores_.get) == 3
    out = segmenter.transform(table)
    assert out.groupby("truth")["segment"].nunique().max() == 1
    assert out.loc[out["truth"] == "high", "segment"].iloc[0] == "high"
    assert segmenter.segment_names_ == ["high", "mid", "low"]


def test_kmeans_none_means_auto():
    table = clustered_table(names=("high", "low"), n_per=40)

    segmenter = KMeansSegmenter(n_segments=None, max_segments=4, random_state=0,
                                n_init=2).fit(table)

    assert segmenter.n_segments_ == 2
    assert sorted(segmenter.silhouette_scores_) == [2, 3, 4]


def test_kmeans_other_k_uses_value_names():
    out = KMeansSegmenter(n_segments=5, random_state=0, n_init=2).fit_transform(
        clustered_table())

    assert list(out["segment"].cat.categories) == [f"value-{i}" for i in range(1, 6)]


def test_kmeans_transform_new_customers_uses_learned_scaler_and_centres():
    table = clustered_table()
    segmenter = KMeansSegmenter(random_state=0, n_init=3).fit(table)
    mean_before = segmenter.scaler_.mean_.copy()
    new = pd.DataFrame({"recency": [1, 25], "frequency": [22, 0], "monetary": [190.0, 9.0]})

    out = segmenter.transform(new)

    assert out["segment"].tolist() == ["high", "low"]
    np.testing.assert_array_equal(segmenter.scaler_.mean_, mean_before)


def test_kmeans_label_and_segment_columns_are_configurable():
    table = clustered_table(names=("high", "low"), n_per=20).assign(segment="channel")

    out = KMeansSegmenter(n_segments=2, label_col="value", segment_col=None,
                          random_state=0, n_init=2).fit_transform(table)

    assert "kmeans_segment" not in out
    assert set(out["value"]) == {"high", "low"}
    assert (out["segment"] == "channel").all()


def test_kmeans_rejects_negative_values_and_too_few_customers():
    table = rfm_table([1, -2, 3, -1], [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])

    with raises_validation("Column 'recency'", "values below 0.0", "2 row(s)", "'c1', 'c3'"):
        KMeansSegmenter(n_segments=2).fit(table)
    same = rfm_table([1, 1, 1], [2, 2, 2], [3.0, 3.0, 3.0])
    with raises_validation("n_segments=2", "only 1 distinct customers"):
        KMeansSegmenter(n_segments=2).fit(same)
    with raises_validation("n_segments='auto' needs at least 3 distinct"):
        KMeansSegmenter(n_segments="auto").fit(rfm_table([1, 2], [1, 1], [1.0, 1.0]))


# --------------------------------------------------------------------------------------
# lifecycle_stage
# --------------------------------------------------------------------------------------


def stage_table(tenure, churned, trend) -> pd.DataFrame:
    return pd.DataFrame({"tenure": tenure, "churned": churned, "spend_trend": trend},
                        index=pd.Index([f"r{i}" for i in range(len(tenure))]))


@pytest.mark.parametrize(
    ("tenure", "churned", "trend", "stage"),
    [
        (1, False, np.nan, "exploration"),  # tenure 1: no trend yet
        (3, False, 5.0, "exploration"),  # tenure <= 3 wins over any trend
        (3, True, 1.0, "decline"),  # churned wins over exploration
        (10, True, 2.0, "decline"),  # churned wins over growth
        (4, False, 1.3, "formation"),  # growing spend
        (24, False, np.inf, "formation"),  # no early spend (refunds='net' edge case)
        (24, False, 1.25, "stability"),  # the thresholds themselves are stable
        (24, False, 0.8, "stability"),
        (24, False, 1.0, "stability"),
        (24, False, 0.79, "decline"),  # falling spend
        (24, False, 0.0, "decline"),
    ],
)
def test_lifecycle_rules(tenure, churned, trend, stage):
    out = lifecycle_stage(stage_table([tenure], [churned], [trend]))

    assert out.iloc[0] == stage


def test_lifecycle_returns_categorical_series_with_input_index():
    table = stage_table([1, 12, 12, 12], [False, False, False, True], [np.nan, 2, 1, 1])

    out = lifecycle_stage(table)

    assert out.name == "lifecycle_stage"
    assert out.index.equals(table.index)
    assert list(out.cat.categories) == list(LIFECYCLE_STAGES)
    assert out.tolist() == ["exploration", "formation", "stability", "decline"]


def test_lifecycle_thresholds_are_parameters():
    table = stage_table([2, 6, 6], [False, False, False], [1.0, 1.1, 0.9])

    out = lifecycle_stage(table, exploration_periods=1, growth_ratio=1.05, decline_ratio=0.95)

    assert out.tolist() == ["stability", "formation", "decline"]


def test_lifecycle_can_ignore_churn():
    table = stage_table([2, 12], [True, True], [np.nan, 1.0]).drop(columns="churned")

    out = lifecycle_stage(table, churned_col=None)

    assert out.tolist() == ["exploration", "stability"]


def test_lifecycle_on_summarized_log():
    log = pd.DataFrame({
        "customer_id": ["new", "grow", "grow", "flat", "flat", "fall", "fall", "gone"],
        "date": ["2024-12-02", "2024-01-05", "2024-12-05", "2024-01-05", "2024-12-05",
                 "2024-01-05", "2024-12-05", "2024-01-05"],
        "amount": [10.0, 10.0, 40.0, 10.0, 10.0, 40.0, 10.0, 10.0],
    })
    table = summarize(log, inactivity=6, observation_end="2024-12-31")

    stages = dict(zip(table["customer_id"], lifecycle_stage(table), strict=True))

    assert stages == {"new": "exploration", "grow": "formation", "flat": "stability",
                      "fall": "decline", "gone": "decline"}


def test_lifecycle_rejects_bad_input():
    table = stage_table([1, 5, 6], [False, False, False], [np.nan, np.nan, 1.0])

    with raises_validation("Column 'spend_trend'", "missing (NaN) spend trend", "1 row(s)",
                           "row index: 'r1'"):
        lifecycle_stage(table)
    with raises_validation("['spend_trend']", "missing", "bayesclv.data.summarize"):
        lifecycle_stage(table.drop(columns="spend_trend"))
    with raises_validation("Column 'tenure'", "missing or infinite tenure", "1 row(s)"):
        lifecycle_stage(table.assign(tenure=[1.0, np.nan, 6.0]))
    with raises_validation("Column 'churned'", "values other than True/False", "1 row(s)"):
        lifecycle_stage(table.assign(churned=[0, 2, 1]))
    with raises_validation("Expected a pandas DataFrame"):
        lifecycle_stage(table.to_numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"exploration_periods": 0},
        {"exploration_periods": 2.5},
        {"exploration_periods": True},
        {"decline_ratio": 1.5, "growth_ratio": 1.2},
        {"decline_ratio": 0.0},
        {"growth_ratio": np.inf},
    ],
)
def test_lifecycle_rejects_bad_thresholds(kwargs):
    with pytest.raises(ValueError, match="exploration_periods|ratio"):
        lifecycle_stage(stage_table([2], [False], [1.0]), **kwargs)


# --------------------------------------------------------------------------------------
# simulate_transactions
# --------------------------------------------------------------------------------------


def test_simulate_transactions_is_reproducible_and_consistent():
    log, truth = simulate_transactions(300, 12, random_seed=4)
    again, _ = simulate_transactions(300, 12, random_seed=4)

    pd.testing.assert_frame_equal(log, again)
    assert list(log.columns) == ["customer_id", "date", "quantity", "amount", "channel",
                                 "end_date"]
    assert log["date"].is_monotonic_increasing
    assert (log["amount"] >= 0.01).all()
    assert (log["quantity"] >= 1).all()
    assert log["date"].min() >= pd.Timestamp("2022-01-01")
    assert log["date"].max() <= pd.Timestamp("2022-12-31")
    assert set(log["channel"]) <= set(truth["channel"])
    ended = log["end_date"].notna()
    assert (log.loc[ended, "date"] <= log.loc[ended, "end_date"]).all()
    assert truth["churned"].to_numpy().sum() == truth["end_date"].notna().sum()


def test_simulate_transactions_options():
    log, truth = simulate_transactions(200, 8, random_seed=2, period="Q", start="2020-01-01",
                                       acquisition_periods=1, active_probability=1.0,
                                       channels={"only": {"share": 1, "eta": 100.0, "k": 1.0,
                                                          "p": 5.0, "q": 5.0,
                                                          "gamma": 40.0}})

    assert (truth["acquisition_period"] == pd.Period("2020Q1", "Q")).all()
    assert (log["channel"] == "only").all()
    table = summarize(log, period="Q", end_col="end_date", observation_end="2021-12-31")
    # Always active while alive: every observed period has spend.
    np.testing.assert_array_equal(table["n_periods_active"], table["tenure"])


@pytest.mark.parametrize(
    "kwargs",
    [{"n_customers": 0}, {"acquisition_periods": 40}, {"active_probability": 1.5},
     {"unit_price": 0.0}],
)
def test_simulate_transactions_rejects_bad_arguments(kwargs):
    options = {"n_customers": 10, "n_periods": 12, **kwargs}
    with pytest.raises(ValueError):
        simulate_transactions(**options)
