"""Property-based tests of the edge: what is accepted gives finite, aligned output; what is
rejected raises DataValidationError naming the column. Models are fitted once (MAP)."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayesclv
from bayesclv.data import summarize, validate_customers
from bayesclv.exceptions import DataValidationError

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
TALLY: Counter = Counter()
NUMERIC = ("tenure", "entry", "n_periods_active", "mean_spend")


@st.composite
def customer_tables(draw, segments=("a", "b", "c", "unseen"), new_customers=False):
    """Valid tables; with ``new_customers``, also customers of tenure 0 and without spend."""
    n = draw(st.integers(1, 25))
    low = 0 if new_customers else 1
    tenure = np.array(draw(st.lists(st.integers(low, 10_000), min_size=n, max_size=n)))
    entry = np.array([draw(st.integers(0, max(t - 1, 0))) for t in tenure])
    active = np.array([draw(st.integers(low, max(t, 1))) for t in tenure])
    spend = np.array(draw(st.lists(st.floats(1e-6, 1e9, allow_nan=False), min_size=n,
                                   max_size=n)))
    churned = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) & (tenure > 0)
    table = pd.DataFrame({
        "customer_id": [f"id{i}" for i in draw(st.permutations(range(n)))],
        "segment": draw(st.lists(st.sampled_from(segments), min_size=n, max_size=n)),
        "tenure": tenure,
        "churned": churned,
        "entry": entry,
        "n_periods_active": active,
        "mean_spend": np.where(active == 0, np.nan, spend),
    })
    index = draw(st.sampled_from(["range", "shuffled", "strings", "repeated"]))
    if index == "shuffled":
        table.index = pd.Index(draw(st.permutations(range(100, 100 + n))))
    elif index == "repeated":  # outputs combine by position: a repeated label is fine
        table.index = pd.Index([7] * n)
    elif index == "strings":
        table.index = pd.Index([f"r{i}" for i in range(n)], name="row")
    return table


def _corrupt(table: pd.DataFrame, kind: str, row: int) -> tuple[pd.DataFrame, str]:
    """One documented violation; returns the table and the column the error must name.

    The row is changed by position (the table's index may repeat labels), then the
    table gets its index back.
    """
    bad, column = _corrupt_row(table.reset_index(drop=True), kind, row)
    if len(bad) == len(table):
        bad.index = table.index
    return bad, column


def _corrupt_row(table: pd.DataFrame, kind: str, row: int) -> tuple[pd.DataFrame, str]:
    bad = table.copy()
    label = bad.index[row]
    if kind in ("inf", "-inf", "nan"):
        column = "mean_spend" if kind != "nan" else "tenure"
        bad[column] = bad[column].astype(np.float64)
        bad.loc[label, column] = float(kind)
        return bad, column
    if kind == "mixed":
        bad["tenure"] = bad["tenure"].astype(object)
        bad.loc[label, "tenure"] = str(bad.loc[label, "tenure"])
        if len(bad) == 1:  # a single value cannot be mixed: make it unparseable instead
            bad.loc[label, "tenure"] = "many"
        return bad, "tenure"
    if kind == "mixed_segment":
        bad["segment"] = bad["segment"].astype(object)
        bad.loc[label, "segment"] = 1
        if len(bad) == 1:
            bad["segment"] = [None]
        return bad, "segment"
    if kind.startswith("drop_"):
        column = kind[5:]
        return bad.drop(columns=column), column
    if kind == "tenure_negative":
        bad.loc[label, "tenure"] = -1
        return bad, "tenure"
    if kind == "entry_too_late":
        bad.loc[label, "entry"] = bad.loc[label, "tenure"]
        return bad, "entry"
    if kind == "active_too_many":
        bad.loc[label, "n_periods_active"] = bad.loc[label, "tenure"] + 1
        return bad, "n_periods_active"
    if kind == "spend_zero":
        bad.loc[label, "mean_spend"] = 0.0
        return bad, "mean_spend"
    if kind == "duplicate_id":
        bad["customer_id"] = bad["customer_id"].iloc[0]
        if len(bad) == 1:
            bad = pd.concat([bad, bad])
        return bad, "customer_id"
    if kind == "churn_flag":
        bad["churned"] = bad["churned"].astype(object)
        bad.loc[label, "churned"] = "yes"
        return bad, "churned"
    if kind == "fractional":
        bad["n_periods_active"] = bad["n_periods_active"].astype(np.float64)
        bad.loc[label, "n_periods_active"] = 0.5
        return bad, "n_periods_active"
    if kind == "timedelta_tenure":  # read as nanoseconds, it once became a huge tenure
        bad["tenure"] = pd.to_timedelta(bad["tenure"], unit="D")
        return bad, "tenure"
    if kind == "datetime_spend":
        bad["mean_spend"] = pd.Timestamp("2024-01-01")
        return bad, "mean_spend"
    if kind == "complex_spend":
        bad["mean_spend"] = bad["mean_spend"].astype(complex)
        return bad, "mean_spend"
    if kind == "huge_tenure":
        bad["tenure"] = bad["tenure"].astype(np.int64)
        bad.loc[label, "tenure"] = 10**9
        return bad, "tenure"
    if kind == "huge_spend":
        bad.loc[label, "mean_spend"] = 1e300
        return bad, "mean_spend"
    if kind == "duplicate_column":
        return pd.concat([bad, bad[["mean_spend"]]], axis=1), "mean_spend"
    raise AssertionError(kind)


CORRUPTIONS = ["inf", "-inf", "nan", "mixed", "mixed_segment", "drop_tenure", "drop_churned",
               "drop_mean_spend", "drop_n_periods_active", "drop_segment", "drop_customer_id",
               "tenure_negative", "entry_too_late", "active_too_many", "spend_zero",
               "duplicate_id", "churn_flag", "fractional", "timedelta_tenure",
               "datetime_spend", "complex_spend", "huge_tenure", "huge_spend",
               "duplicate_column"]


def _assert_aligned_and_finite(out: pd.DataFrame, table: pd.DataFrame) -> None:
    assert len(out) == len(table)
    pd.testing.assert_index_equal(out.index, table.index)
    assert list(out["customer_id"]) == list(table["customer_id"])
    numbers = out.select_dtypes("number").to_numpy(dtype=np.float64)
    assert np.isfinite(numbers).all()


# ---------------------------------------------------------------------------------------
# predict on generated tables (one MAP fit for the module: the session's map_model)
# ---------------------------------------------------------------------------------------


@SETTINGS
@given(table=customer_tables(new_customers=True))
def test_predict_accepts_valid_tables_with_finite_aligned_output(map_model, table):
    out = map_model.predict(table)
    _assert_aligned_and_finite(out, table)
    assert (out.loc[table["churned"].to_numpy(), "clv_mean"] == 0).all()
    retention = map_model.retention_model_.predict(table)
    _assert_aligned_and_finite(retention, table)
    spend = map_model.spend_model_.predict(table)
    _assert_aligned_and_finite(spend, table)
    TALLY["predict accepted"] += 1


@pytest.mark.parametrize("kind", CORRUPTIONS)
@settings(SETTINGS, max_examples=8)
@given(table=customer_tables(), data=st.data())
def test_predict_rejects_invalid_tables_naming_the_column(map_model, kind, table, data):
    row = data.draw(st.integers(0, len(table) - 1))
    bad, column = _corrupt(table, kind, row)
    with pytest.raises(DataValidationError, match=repr(column)) as info:
        map_model.predict(bad)
    assert isinstance(info.value, ValueError)
    TALLY["predict rejected"] += 1
    if TALLY[f"example error: {kind}"] == 0:
        TALLY[f"example error: {kind}"] = 1
        print(f"\n{kind}: {info.value}")


@pytest.mark.parametrize("kind", CORRUPTIONS)
@settings(SETTINGS, max_examples=8)
@given(table=customer_tables(), data=st.data())
def test_validate_customers_rejects_naming_the_column(kind, table, data):
    if kind == "drop_segment":  # without a fitted model a missing segment means one segment
        kind = "drop_churned"
    row = data.draw(st.integers(0, len(table) - 1))
    bad, column = _corrupt(table, kind, row)
    with pytest.raises(DataValidationError, match=repr(column)):
        validate_customers(bad)
    TALLY["validate rejected"] += 1


@SETTINGS
@given(table=customer_tables())
def test_validate_customers_keeps_order_and_index(table):
    data = validate_customers(table)
    pd.testing.assert_index_equal(data.index, table.index)
    assert list(data.customer_ids) == list(table["customer_id"])
    np.testing.assert_array_equal(data.tenure, table["tenure"].to_numpy())
    assert np.isfinite(data.mean_spend).all()
    TALLY["validate accepted"] += 1


# ---------------------------------------------------------------------------------------
# summarize on generated transaction logs
# ---------------------------------------------------------------------------------------


@st.composite
def transaction_logs(draw):
    n = draw(st.integers(1, 30))
    return pd.DataFrame({
        "customer_id": draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n,
                                     max_size=n)),
        "date": [pd.Timestamp("2024-01-01") + pd.Timedelta(days=d)
                 for d in draw(st.lists(st.integers(0, 365), min_size=n, max_size=n))],
        "amount": draw(st.lists(st.floats(1e-6, 1e9, allow_nan=False), min_size=n,
                                max_size=n)),
    })


@SETTINGS
@given(log=transaction_logs(), period=st.sampled_from(["D", "W", "M", "Q"]),
       inactivity=st.integers(1, 6))
def test_summarize_gives_one_valid_row_per_customer(log, period, inactivity):
    table = summarize(log, period=period, observation_end="2024-12-31", inactivity=inactivity)
    assert list(table["customer_id"]) == sorted(set(log["customer_id"]))
    validate_customers(table)
    finite = table.drop(columns=["customer_id", "spend_trend"]).to_numpy(dtype=np.float64)
    assert np.isfinite(finite).all()
    np.testing.assert_allclose(
        (table["mean_spend"] * table["n_periods_active"]).sum(), log["amount"].sum(),
        rtol=1e-9)
    TALLY["summarize accepted"] += 1


@SETTINGS
@given(log=transaction_logs(), kind=st.sampled_from(["inf", "nan", "mixed", "negative",
                                                     "drop", "future"]), data=st.data())
def test_summarize_rejects_bad_logs_naming_the_column(log, kind, data):
    row = log.index[data.draw(st.integers(0, len(log) - 1))]
    column = "amount"
    if kind in ("inf", "nan"):
        log.loc[row, "amount"] = float(kind)
    elif kind == "mixed":
        log["amount"] = log["amount"].astype(object)
        log.loc[row, "amount"] = "12.5" if len(log) > 1 else "$12.5"
    elif kind == "negative":
        log.loc[row, "amount"] = -1.0
    elif kind == "drop":
        log = log.drop(columns="amount")
    else:
        column = "date"
        log.loc[row, "date"] = pd.Timestamp("2025-06-01")
    with pytest.raises(DataValidationError, match=repr(column)):
        summarize(log, period="M", observation_end="2024-12-31", inactivity=3)
    TALLY["summarize rejected"] += 1


# ---------------------------------------------------------------------------------------
# Extremes that must fit and predict (MAP fits)
# ---------------------------------------------------------------------------------------


def _table(n: int, *, segments, churned, tenure=None, spend=None, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 37, n) if tenure is None else np.asarray(tenure)
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "segment": segments,
        "tenure": tenure,
        "churned": churned,
        "entry": np.zeros(n, dtype=np.int64),
        "n_periods_active": np.maximum(1, tenure // 2),
        "mean_spend": rng.gamma(4.0, 10.0, n) if spend is None else spend,
    })


def _fit_and_check(table: pd.DataFrame, **kwargs) -> bayesclv.CLVModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the one-segment note
        model = bayesclv.CLVModel(method="map", random_seed=0, **kwargs).fit(table)
    out = model.predict(table)
    _assert_aligned_and_finite(out, table)
    assert (out.loc[table["churned"].to_numpy(), "clv_mean"] == 0).all()
    report = model.segment_report(table)
    assert report["n_customers"].sum() == len(table)
    return model


def test_extremes_single_customer_segment_long_tenure_and_spend_range():
    n = 300
    segments = ["big"] * (n - 1) + ["solo"]
    tenure = np.r_[np.random.default_rng(1).integers(1, 37, n - 3), 10_000, 10_000, 5]
    spend = np.r_[np.random.default_rng(2).gamma(4.0, 10.0, n - 3), 1e9, 1e-6, 1e-6]
    churned = np.r_[np.random.default_rng(3).random(n - 1) < 0.3, False]
    model = _fit_and_check(_table(n, segments=segments, churned=churned, tenure=tenure,
                                  spend=spend))
    assert model.segments_ == ["big", "solo"]


def test_extremes_one_segment_all_churned_and_none_churned():
    n = 200
    all_churned = _table(n, segments="only", churned=np.ones(n, dtype=bool))
    model = _fit_and_check(all_churned.drop(columns="segment"), horizon=24)
    assert model.segments_ == ["all"]
    _fit_and_check(_table(n, segments=["x", "y"] * (n // 2), churned=np.zeros(n, dtype=bool)),
                   horizon=24)


def test_extremes_two_hundred_segments():
    n_segments, per_segment = 200, 4
    n = n_segments * per_segment
    rng = np.random.default_rng(5)
    table = _table(n, segments=np.repeat([f"s{i:03d}" for i in range(n_segments)],
                                         per_segment),
                   churned=rng.random(n) < 0.3)
    model = _fit_and_check(table, horizon=24)
    assert len(model.segments_) == n_segments


def test_zz_print_tally():
    print("\n" + "\n".join(f"{key}: {value}" for key, value in sorted(TALLY.items())))
