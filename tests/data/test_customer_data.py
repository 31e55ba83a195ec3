"""Tests for bayesclv.data: validating customer tables and the sufficient statistics."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bayesclv._math import LaplaceGrid
from bayesclv.data import (
    CustomerColumns,
    CustomerData,
    risk_set_table,
    segment_codes,
    spend_statistics,
    validate_customers,
)
from bayesclv.exceptions import DataValidationError

# --------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------


def make_customers(**overrides) -> pd.DataFrame:
    """A small valid customer table; keyword arguments replace (or, if None, drop) columns."""
    columns = {
        "customer_id": ["c1", "c2", "c3", "c4"],
        "segment": ["a", "b", "a", "b"],
        "tenure": [3, 5, 2, 4],
        "churned": [True, False, True, False],
        "entry": [0, 1, 0, 2],
        "n_periods_active": [2, 5, 1, 3],
        "mean_spend": [10.0, 20.0, 5.5, 7.25],
    }
    for name, values in overrides.items():
        if values is None:
            columns.pop(name)
        else:
            columns[name] = values
    return pd.DataFrame(columns)


def raises_validation(*fragments: str):
    """pytest.raises for DataValidationError whose message contains every fragment, in order."""
    pattern = ".*".join(re.escape(fragment) for fragment in fragments)
    return pytest.raises(DataValidationError, match=pattern)


def brute_force_risk_sets(segment_code, entry, tenure, churned) -> pd.DataFrame:
    """Loop over customers: at risk in periods entry+1..tenure, churning in period tenure."""
    at_risk: dict[tuple[int, int], int] = {}
    churn: dict[tuple[int, int], int] = {}
    for s, e, t, c in zip(segment_code, entry, tenure, churned, strict=True):
        for period in range(int(e) + 1, int(t) + 1):
            at_risk[(int(s), period)] = at_risk.get((int(s), period), 0) + 1
        if c:
            churn[(int(s), int(t))] = churn.get((int(s), int(t)), 0) + 1
    rows = [
        {"segment": s, "period": p, "at_risk": n, "churned": churn.get((s, p), 0)}
        for (s, p), n in sorted(at_risk.items())
    ]
    return pd.DataFrame(rows, columns=["segment", "period", "at_risk", "churned"]).astype(
        np.int64
    )


def random_customer_arrays(seed: int, n_customers: int = 200, n_segments: int = 3):
    rng = np.random.default_rng(seed)
    segment_code = rng.integers(0, n_segments, size=n_customers)
    tenure = rng.integers(1, 15, size=n_customers)
    entry = np.where(rng.random(n_customers) < 0.4, rng.integers(0, tenure), 0)
    churned = rng.random(n_customers) < 0.5
    return segment_code, entry.astype(np.int64), tenure.astype(np.int64), churned


def test_exception_is_a_value_error():
    assert issubclass(DataValidationError, ValueError)


# --------------------------------------------------------------------------------------
# validate_customers: happy path
# --------------------------------------------------------------------------------------


def test_validate_returns_arrays_in_input_order():
    customers = make_customers()
    customers.index = pd.Index([10, 11, 12, 13], name="row")

    data = validate_customers(customers)

    assert isinstance(data, CustomerData)
    assert data.n_customers == 4
    assert list(data.customer_ids) == ["c1", "c2", "c3", "c4"]
    assert data.customer_ids.name == "customer_id"
    assert data.index.equals(customers.index)
    assert list(data.segment) == ["a", "b", "a", "b"]
    np.testing.assert_array_equal(data.tenure, [3, 5, 2, 4])
    np.testing.assert_array_equal(data.entry, [0, 1, 0, 2])
    np.testing.assert_array_equal(data.churned, [True, False, True, False])
    np.testing.assert_array_equal(data.n_periods_active, [2, 5, 1, 3])
    np.testing.assert_array_equal(data.mean_spend, [10.0, 20.0, 5.5, 7.25])
    assert data.tenure.dtype == np.int64
    assert data.entry.dtype == np.int64
    assert data.n_periods_active.dtype == np.int64
    assert data.churned.dtype == bool
    assert data.mean_spend.dtype == np.float64


def test_validate_keeps_shuffled_row_order():
    customers = make_customers().iloc[[2, 0, 3, 1]]

    data = validate_customers(customers)

    assert list(data.customer_ids) == ["c3", "c1", "c4", "c2"]
    np.testing.assert_array_equal(data.tenure, [2, 3, 4, 5])
    assert list(data.index) == [2, 0, 3, 1]


def test_validate_reads_customer_id_from_named_index():
    customers = make_customers().set_index("customer_id")

    data = validate_customers(customers)

    assert list(data.customer_ids) == ["c1", "c2", "c3", "c4"]
    assert data.index.equals(customers.index)


def test_validate_uses_custom_column_names():
    customers = make_customers().rename(columns={"customer_id": "id", "tenure": "periods"})
    columns = CustomerColumns(customer="id", tenure="periods")

    data = validate_customers(customers, columns)

    assert list(data.customer_ids) == ["c1", "c2", "c3", "c4"]
    np.testing.assert_array_equal(data.tenure, [3, 5, 2, 4])


def test_validate_without_segment_column_puts_everyone_in_all():
    data = validate_customers(make_customers(segment=None))

    assert list(data.segment) == ["all"] * 4


def test_validate_with_segment_disabled_ignores_segment_column():
    data = validate_customers(make_customers(), CustomerColumns(segment=None))

    assert list(data.segment) == ["all"] * 4


def test_validate_converts_segment_labels_to_str():
    data = validate_customers(make_customers(segment=[1, 2, 1, 2]))

    assert list(data.segment) == ["1", "2", "1", "2"]


def test_validate_without_entry_column_gives_zero_entry():
    data = validate_customers(make_customers(entry=None))

    np.testing.assert_array_equal(data.entry, [0, 0, 0, 0])
    assert data.entry.dtype == np.int64


@pytest.mark.parametrize(
    "churned",
    [
        [True, False, True, False],
        [1, 0, 1, 0],
        [1.0, 0.0, 1.0, 0.0],
        np.array([True, False, True, False], dtype=object),
        pd.array([True, False, True, False], dtype="boolean"),
    ],
    ids=["bool", "int", "float", "object-bool", "nullable-boolean"],
)
def test_validate_accepts_churn_flag_encodings(churned):
    data = validate_customers(make_customers(churned=churned))

    assert data.churned.dtype == bool
    np.testing.assert_array_equal(data.churned, [True, False, True, False])


def test_validate_accepts_whole_floats_and_numeric_strings_as_periods():
    data = validate_customers(make_customers(tenure=[3.0, 5.0, 2.0, 4.0],
                                             n_periods_active=["2", "5", "1", "3"]))

    np.testing.assert_array_equal(data.tenure, [3, 5, 2, 4])
    np.testing.assert_array_equal(data.n_periods_active, [2, 5, 1, 3])
    assert data.tenure.dtype == np.int64


def test_validate_without_spend_skips_spend_columns():
    customers = make_customers(n_periods_active=None, mean_spend=None)

    data = validate_customers(customers, require_spend=False)

    assert data.n_periods_active is None
    assert data.mean_spend is None
    np.testing.assert_array_equal(data.tenure, [3, 5, 2, 4])


def test_validate_without_spend_ignores_invalid_spend_values():
    customers = make_customers(mean_spend=[-1.0, np.nan, 0.0, 1.0])

    data = validate_customers(customers, require_spend=False)

    assert data.mean_spend is None


def test_validate_without_retention_skips_retention_columns():
    customers = make_customers(tenure=None, churned=None, entry=None)

    data = validate_customers(customers, require_retention=False)

    assert data.tenure is None
    assert data.churned is None
    assert data.entry is None
    np.testing.assert_array_equal(data.n_periods_active, [2, 5, 1, 3])
    np.testing.assert_array_equal(data.mean_spend, [10.0, 20.0, 5.5, 7.25])


def test_validate_without_retention_does_not_compare_activity_with_tenure():
    # n_periods_active > tenure is only an error when the retention columns are validated.
    customers = make_customers(tenure=[1, 1, 1, 1])

    data = validate_customers(customers, require_retention=False)

    np.testing.assert_array_equal(data.n_periods_active, [2, 5, 1, 3])


# --------------------------------------------------------------------------------------
# validate_customers: every rule raises DataValidationError with a precise message
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "not_a_frame",
    [None, [1, 2, 3], {"tenure": [1]}, np.ones((2, 2))],
    ids=["None", "list", "dict", "ndarray"],
)
def test_validate_rejects_non_dataframe(not_a_frame):
    with raises_validation("Expected a pandas DataFrame", type(not_a_frame).__name__):
        validate_customers(not_a_frame)


def test_validate_rejects_empty_table():
    with raises_validation("empty"):
        validate_customers(make_customers().iloc[:0])


@pytest.mark.parametrize("column", ["tenure", "churned", "n_periods_active", "mean_spend"])
def test_validate_rejects_missing_required_column(column):
    with raises_validation("Column(s)", repr(column), "missing"):
        validate_customers(make_customers(**{column: None}))


def test_validate_lists_all_missing_columns():
    with raises_validation("['tenure', 'churned']", "missing", "retention model"):
        validate_customers(make_customers(tenure=None, churned=None))


def test_validate_rejects_missing_customer_id():
    customers = make_customers(customer_id=None)

    with raises_validation("'customer_id'", "is missing"):
        validate_customers(customers)


def test_validate_rejects_index_with_another_name_as_customer_id():
    customers = make_customers().set_index("customer_id").rename_axis("id")

    with raises_validation("'customer_id'", "is missing"):
        validate_customers(customers)


def test_validate_rejects_nan_customer_id_listing_row_labels():
    customers = make_customers(customer_id=["c1", None, "c3", np.nan])
    customers.index = pd.Index(["r1", "r2", "r3", "r4"])

    with raises_validation("Column 'customer_id'", "missing customer ids", "2 row(s)",
                           "'r2', 'r4'"):
        validate_customers(customers)


def test_validate_rejects_nan_in_customer_id_index():
    customers = make_customers(customer_id=["c1", None, "c3", "c4"]).set_index("customer_id")

    with raises_validation("Column 'customer_id'", "missing customer ids", "1 row(s)"):
        validate_customers(customers)


def test_validate_rejects_duplicate_ids_listing_both_rows():
    customers = make_customers(customer_id=["c1", "c2", "c1", "c4"])

    with raises_validation("Column 'customer_id'", "duplicate customer ids", "2 row(s)",
                           "'c1', 'c1'"):
        validate_customers(customers)


def test_validate_rejects_duplicate_ids_in_index():
    customers = make_customers(customer_id=[7, 8, 9, 8]).set_index("customer_id")

    with raises_validation("Column 'customer_id'", "duplicate customer ids", "2 row(s)",
                           "8, 8"):
        validate_customers(customers)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("tenure", [3.0, np.nan, 2.0, 4.0]),
        ("tenure", pd.array([3, None, 2, 4], dtype="Int64")),
        ("entry", [0.0, np.nan, 0.0, 2.0]),
        ("n_periods_active", [2.0, np.nan, 1.0, 3.0]),
        ("mean_spend", [10.0, np.nan, 5.5, 7.25]),
    ],
    ids=["tenure", "tenure-nullable-int", "entry", "n_periods_active", "mean_spend"],
)
def test_validate_rejects_nan_in_numeric_column(column, values):
    with raises_validation(f"Column {column!r}", "missing (NaN) values", "1 row(s)", "'c2'"):
        validate_customers(make_customers(**{column: values}))


def test_validate_rejects_nan_segment():
    customers = make_customers(segment=["a", None, "a", np.nan])

    with raises_validation("Column 'segment'", "missing segment labels", "2 row(s)",
                           "'c2', 'c4'"):
        validate_customers(customers)


@pytest.mark.parametrize(
    "churned",
    [
        [True, None, True, False],
        [1.0, np.nan, 1.0, 0.0],
        pd.array([True, None, True, False], dtype="boolean"),
    ],
    ids=["object-None", "float-nan", "nullable-boolean-NA"],
)
def test_validate_rejects_nan_churn_flag(churned):
    with raises_validation("Column 'churned'", "missing (NaN) churn flags", "1 row(s)", "'c2'"):
        validate_customers(make_customers(churned=churned))


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("tenure", [3.0, np.inf, 2.0, 4.0]),
        ("tenure", [3.0, -np.inf, 2.0, 4.0]),
        ("entry", [0.0, np.inf, 0.0, 2.0]),
        ("n_periods_active", [2.0, np.inf, 1.0, 3.0]),
        ("mean_spend", [10.0, np.inf, 5.5, 7.25]),
    ],
    ids=["tenure", "tenure-negative", "entry", "n_periods_active", "mean_spend"],
)
def test_validate_rejects_infinite_values(column, values):
    with raises_validation(f"Column {column!r}", "infinite values", "1 row(s)", "'c2'"):
        validate_customers(make_customers(**{column: values}))


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("tenure", ["3", "five", "2", "4"]),
        ("entry", [0, "x", 0, 2]),
        ("n_periods_active", ["2", "many", "1", "3"]),
        ("mean_spend", ["10.0", "$20", "5.5", "7.25"]),
    ],
)
def test_validate_rejects_non_numeric_strings(column, values):
    with raises_validation(f"Column {column!r}", "non-numeric values", "1 row(s)", "'c2'"):
        validate_customers(make_customers(**{column: values}))


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("tenure", [3.0, 4.5, 2.0, 4.0]),
        ("entry", [0.0, 0.5, 0.0, 2.0]),
        ("n_periods_active", [2.0, 1.5, 1.0, 3.0]),
    ],
)
def test_validate_rejects_fractional_periods(column, values):
    with raises_validation(f"Column {column!r}", "fractional values", "1 row(s)", "'c2'"):
        validate_customers(make_customers(**{column: values}))


def test_validate_rejects_negative_tenure():
    customers = make_customers(tenure=[3, -2, 2, -1], entry=None, n_periods_active=[1, 1, 1, 1])

    with raises_validation("Column 'tenure'", "negative tenure", "2 row(s)", "'c2', 'c4'"):
        validate_customers(customers)


def test_validate_accepts_customers_acquired_this_period_with_no_spend_yet():
    customers = make_customers(tenure=[3, 0, 2, 0], churned=[True, False, True, False],
                               entry=[0, 0, 0, 0], n_periods_active=[2, 0, 1, 1],
                               mean_spend=[10.0, np.nan, 5.5, 8.0])

    data = validate_customers(customers)

    np.testing.assert_array_equal(data.tenure, [3, 0, 2, 0])
    np.testing.assert_array_equal(data.spend_observed, [True, False, True, True])
    # No active period: every spend statistic (x z) is 0.
    np.testing.assert_array_equal(data.mean_spend, [10.0, 0.0, 5.5, 8.0])


def test_validate_rejects_churn_at_tenure_zero():
    customers = make_customers(tenure=[3, 0, 2, 4], entry=[0, 0, 0, 2],
                               n_periods_active=[2, 0, 1, 3],
                               mean_spend=[10.0, np.nan, 5.5, 7.25],
                               churned=[True, True, True, False])

    with raises_validation("Column 'churned'", "churned with tenure 0", "1 row(s)", "'c2'"):
        validate_customers(customers)


def test_validate_rejects_entry_at_tenure_zero():
    customers = make_customers(tenure=[3, 0, 2, 4], entry=[0, 1, 0, 2],
                               n_periods_active=[2, 0, 1, 3],
                               mean_spend=[10.0, np.nan, 5.5, 7.25])

    with raises_validation("Column 'entry'", "entry >= tenure", "1 row(s)", "'c2'"):
        validate_customers(customers)


def test_validate_rejects_mean_spend_given_without_active_period():
    customers = make_customers(n_periods_active=[2, 0, 0, 3],
                               mean_spend=[10.0, 20.0, np.nan, 7.25])

    with raises_validation("Column 'mean_spend'", "a value with n_periods_active = 0",
                           "1 row(s)", "'c2'"):
        validate_customers(customers)


def test_validate_rejects_missing_mean_spend_with_active_periods():
    customers = make_customers(n_periods_active=[2, 0, 1, 3],
                               mean_spend=[10.0, np.nan, np.nan, 7.25])

    with raises_validation("Column 'mean_spend'", "missing (NaN) values", "1 row(s)", "'c3'"):
        validate_customers(customers)


def test_validate_log_spend_columns_are_missing_exactly_without_active_period():
    customers = make_customers(n_periods_active=[2, 0, 1, 3],
                               mean_spend=[10.0, np.nan, 5.5, 7.25],
                               mean_log_spend=[2.0, np.nan, np.log(5.5), 1.9],
                               sd_log_spend=[0.1, np.nan, 0.0, 0.2])
    data = validate_customers(customers)
    np.testing.assert_array_equal(data.mean_log_spend[1], 0.0)

    customers["sd_log_spend"] = [0.1, 0.3, 0.0, 0.2]
    with raises_validation("Column 'sd_log_spend'", "a value with n_periods_active = 0",
                           "'c2'"):
        validate_customers(customers)


def test_validate_rejects_negative_entry():
    with raises_validation("Column 'entry'", "negative entry", "1 row(s)", "'c2'"):
        validate_customers(make_customers(entry=[0, -1, 0, 2]))


def test_validate_rejects_entry_not_below_tenure():
    # c2: entry == tenure; c3: entry > tenure.
    with raises_validation("Column 'entry'", "entry >= tenure", "2 row(s)", "'c2', 'c3'"):
        validate_customers(make_customers(entry=[0, 5, 3, 2]))


@pytest.mark.parametrize(
    "churned",
    [
        [True, "yes", True, False],
        [1, 2, 1, 0],
        [1.0, 0.5, 1.0, 0.0],
        [1, -1, 1, 0],
        ["True", "False", "True", "False"],
    ],
    ids=["yes", "two", "half", "minus-one", "strings"],
)
def test_validate_rejects_invalid_churn_flags(churned):
    with raises_validation("Column 'churned'", "values other than True/False", "row(s)",
                           "'c2'"):
        validate_customers(make_customers(churned=churned))


def test_validate_counts_every_invalid_churn_flag():
    with raises_validation("Column 'churned'", "2 row(s)", "'c2', 'c4'"):
        validate_customers(make_customers(churned=[True, "yes", False, 2]))


def test_validate_rejects_negative_n_periods_active():
    with raises_validation("Column 'n_periods_active'", "negative values", "2 row(s)",
                           "'c2', 'c3'"):
        validate_customers(make_customers(n_periods_active=[2, -1, -3, 3]))


def test_validate_rejects_n_periods_active_above_tenure():
    with raises_validation("Column 'n_periods_active'", "more active periods than tenure",
                           "1 row(s)", "'c3'"):
        validate_customers(make_customers(n_periods_active=[2, 5, 3, 3]))


@pytest.mark.parametrize(
    ("mean_spend", "count", "listed"),
    [
        ([10.0, 0.0, 5.5, 7.25], 1, "'c2'"),
        ([10.0, 20.0, -5.5, 7.25], 1, "'c3'"),
        ([0.0, -1.0, 5.5, 7.25], 2, "'c1', 'c2'"),
    ],
    ids=["zero", "negative", "both"],
)
def test_validate_rejects_non_positive_spend(mean_spend, count, listed):
    with raises_validation("Column 'mean_spend'", "non-positive spend", f"{count} row(s)",
                           listed):
        validate_customers(make_customers(mean_spend=mean_spend))


def test_validate_message_lists_five_ids_then_ellipsis_and_full_count():
    n = 9
    customers = pd.DataFrame(
        {
            "customer_id": [f"id{i}" for i in range(n)],
            "tenure": [-1] * 7 + [3, 4],
            "churned": [False] * n,
            "n_periods_active": [1] * n,
            "mean_spend": [1.0] * n,
        }
    )

    with pytest.raises(DataValidationError) as excinfo:
        validate_customers(customers)

    message = str(excinfo.value)
    assert "Column 'tenure'" in message
    assert "7 row(s) (customer ids: 'id0', 'id1', 'id2', 'id3', 'id4', ...)" in message
    assert "'id5'" not in message


def test_validate_message_has_no_ellipsis_for_exactly_five_rows():
    n = 6
    customers = pd.DataFrame(
        {
            "customer_id": list(range(n)),
            "tenure": [2] * n,
            "churned": [False] * n,
            "n_periods_active": [1] * n,
            "mean_spend": [-1.0] * 5 + [1.0],
        }
    )

    with pytest.raises(DataValidationError) as excinfo:
        validate_customers(customers)

    assert "5 row(s) (customer ids: 0, 1, 2, 3, 4)." in str(excinfo.value)


# --------------------------------------------------------------------------------------
# segment_codes
# --------------------------------------------------------------------------------------


def test_segment_codes_maps_known_labels_to_positions():
    codes = segment_codes(np.array(["b", "a", "c", "a"], dtype=object), ["a", "b", "c"])

    np.testing.assert_array_equal(codes, [1, 0, 2, 0])
    assert codes.dtype == np.int64


def test_segment_codes_maps_unknown_labels_to_minus_one():
    codes = segment_codes(np.array(["a", "z", "b", "all"], dtype=object), ["a", "b"])

    np.testing.assert_array_equal(codes, [0, -1, 1, -1])


def test_segment_codes_of_empty_array():
    codes = segment_codes(np.array([], dtype=object), ["a"])

    assert codes.shape == (0,)
    assert codes.dtype == np.int64


# --------------------------------------------------------------------------------------
# risk_set_table
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_segments", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_risk_set_table_matches_brute_force(seed, n_segments):
    segment_code, entry, tenure, churned = random_customer_arrays(seed, n_segments=n_segments)
    assert (entry > 0).any() and churned.any() and (~churned).any()

    table = risk_set_table(segment_code, entry, tenure, churned, n_segments)
    expected = brute_force_risk_sets(segment_code, entry, tenure, churned)

    pd.testing.assert_frame_equal(
        table.sort_values(["segment", "period"]).reset_index(drop=True), expected
    )


def test_risk_set_table_columns_dtypes_and_invariants():
    segment_code, entry, tenure, churned = random_customer_arrays(11, n_customers=300)

    table = risk_set_table(segment_code, entry, tenure, churned, 3)

    assert list(table.columns) == ["segment", "period", "at_risk", "churned"]
    assert all(dtype == np.int64 for dtype in table.dtypes)
    assert (table["at_risk"] > 0).all()
    assert (table["churned"] >= 0).all()
    assert (table["churned"] <= table["at_risk"]).all()
    assert (table["period"] >= 1).all()
    assert table["period"].max() == tenure.max()
    assert not table.duplicated(["segment", "period"]).any()
    assert table["churned"].sum() == churned.sum()
    # Every customer contributes tenure - entry periods at risk.
    assert table["at_risk"].sum() == (tenure - entry).sum()


def test_risk_set_table_small_example_by_hand():
    # Segment 0: (entry 0, tenure 2, churned), (entry 1, tenure 3, censored).
    # Segment 1: (entry 2, tenure 4, churned) -> at risk only in periods 3 and 4.
    table = risk_set_table(
        segment_code=np.array([0, 0, 1]),
        entry=np.array([0, 1, 2]),
        tenure=np.array([2, 3, 4]),
        churned=np.array([True, False, True]),
        n_segments=2,
    )

    expected = pd.DataFrame(
        {
            "segment": [0, 0, 0, 1, 1],
            "period": [1, 2, 3, 3, 4],
            "at_risk": [1, 2, 1, 1, 1],
            "churned": [0, 1, 0, 0, 1],
        },
        dtype=np.int64,
    )
    pd.testing.assert_frame_equal(table, expected)


def test_risk_set_table_skips_empty_segment_and_all_censored():
    table = risk_set_table(
        segment_code=np.array([0, 2]),
        entry=np.array([0, 0]),
        tenure=np.array([2, 1]),
        churned=np.array([False, False]),
        n_segments=3,
    )

    assert set(table["segment"]) == {0, 2}
    assert (table["churned"] == 0).all()
    assert len(table) == 3


# --------------------------------------------------------------------------------------
# spend_statistics
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spend_statistics_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    # More customers than segments x Laplace nodes: the tabulated transforms.
    n_customers, n_segments = 2500, 3
    segment_code = rng.integers(0, n_segments, size=n_customers)
    x = rng.integers(1, 8, size=n_customers)
    z = rng.gamma(2.0, 15.0, size=n_customers)

    stats = spend_statistics(segment_code, x, z, n_segments)

    # Unique (segment, x) pairs with counts summing to the segment sizes.
    pairs = list(zip(stats["x_seg"], stats["x_value"], strict=True))
    assert len(set(pairs)) == len(pairs)
    for s in range(n_segments):
        in_segment = segment_code == s
        assert stats["x_count"][stats["x_seg"] == s].sum() == in_segment.sum()
        assert stats["n_per_segment"][s] == in_segment.sum()
        for value, count in zip(stats["x_value"][stats["x_seg"] == s],
                                stats["x_count"][stats["x_seg"] == s], strict=True):
            assert count == np.sum(in_segment & (x == value))
        np.testing.assert_allclose(stats["sum_log_z"][s], np.log(z[in_segment]).sum())
        np.testing.assert_allclose(stats["sum_x_log_z"][s],
                                   (x[in_segment] * np.log(z[in_segment])).sum())
    assert stats["x_count"].sum() == n_customers

    # Nothing per customer: the Laplace transforms of w = x z per segment and node.
    assert all(np.ndim(value) < 1 or len(value) != n_customers for value in stats.values())
    nodes = stats["laplace_nodes"]
    w = x * z
    for s in range(n_segments):
        in_segment = segment_code == s
        decay = np.exp(-np.outer(nodes, w[in_segment]))
        np.testing.assert_allclose(stats["laplace_one"][s], decay.sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(stats["laplace_x"][s], decay @ x[in_segment], rtol=1e-12)
        np.testing.assert_allclose(stats["sum_log_w"][s], np.log(w[in_segment]).sum())
    # The grid reaches below and beyond the data's scale.
    assert nodes[0] * w.max() <= 1.000001e-10 and nodes[-1] * w.min() >= 50.0


def test_spend_statistics_of_many_small_groups_keep_the_customers_with_spend():
    rng = np.random.default_rng(4)
    n_customers, n_groups = 600, 50  # covariate profiles: a dozen customers each
    group = rng.integers(0, n_groups, size=n_customers)
    x = rng.integers(0, 8, size=n_customers)
    z = np.where(x > 0, rng.gamma(2.0, 15.0, size=n_customers), 0.0)

    stats = spend_statistics(group, x, z, n_groups)

    # Summing log1p(gamma / w) over 600 customers costs less than over 50 x ~200 nodes.
    assert "laplace_x" not in stats
    spent = x > 0
    np.testing.assert_array_equal(stats["customer_segment"], group[spent])
    np.testing.assert_array_equal(stats["customer_x"], x[spent])
    np.testing.assert_array_equal(stats["customer_w"], x[spent] * z[spent])
    assert stats["n_per_segment"].sum() == spent.sum()
    # A grid given (tables reduced apart) always tabulates, so that parts add up.
    gridded = spend_statistics(group, x, z, n_groups, grid=LaplaceGrid(x[spent] * z[spent]))
    assert "laplace_x" in gridded and "customer_w" not in gridded
    for key in ("x_seg", "x_value", "x_count", "n_per_segment", "sum_x", "sum_log_w"):
        np.testing.assert_array_equal(gridded[key], stats[key])


def test_spend_statistics_gives_zero_for_empty_segment():
    stats = spend_statistics(np.array([0, 0, 2]), np.array([1, 2, 1]),
                             np.array([1.0, np.e, 1.0]), n_segments=3)

    np.testing.assert_array_equal(stats["n_per_segment"], [2.0, 0.0, 1.0])
    np.testing.assert_allclose(stats["sum_log_z"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(stats["sum_x_log_z"], [2.0, 0.0, 0.0])
    assert 1 not in set(stats["x_seg"])


def test_boolean_column_where_numbers_are_expected_is_rejected():
    with raises_validation("'tenure'", "boolean values", "4 row(s)"):
        validate_customers(make_customers(tenure=[True, True, True, True]))


def test_missing_customer_id_lists_row_index_labels():
    customers = make_customers(customer_id=["c1", None, "c3", "c4"])
    with raises_validation("'customer_id'", "missing customer ids", "1 row(s) (row index: 1)"):
        validate_customers(customers)


# --------------------------------------------------------------------------------------
# summarize: transaction log -> customer table
# --------------------------------------------------------------------------------------

from bayesclv.data import summarize  # noqa: E402
from bayesclv.datasets.transactions import simulate_transactions  # noqa: E402


def hand_log() -> pd.DataFrame:
    """Four customers with explicit dates (monthly periods; observation ends 2024-06-30).

    c1: Jan (10 + 20), Feb (30), May (40)        c2: Feb (15), Mar (5)
    c3: Jun (50)                                  c4: May 31 (7), Jun 1 (8)
    """
    log = pd.DataFrame(
        {
            "cust": ["c1", "c2", "c1", "c3", "c1", "c2", "c4", "c1", "c4"],
            "when": ["2024-01-25", "2024-02-01", "2024-01-03", "2024-06-10", "2024-02-14",
                     "2024-03-31", "2024-05-31", "2024-05-20", "2024-06-01"],
            "value": [20.0, 15.0, 10.0, 50.0, 30.0, 5.0, 7.0, 40.0, 8.0],
            "channel": ["web", "web", "web", "store", "web", "web", "store", "web", "store"],
            "ended": [None, "2024-04-15", None, "2024-07-31", None, "2024-04-15",
                      "2024-06-01", None, "2024-06-01"],
        },
        index=pd.Index([f"t{i}" for i in range(9)]),
    )
    return log


def summarize_hand(**kwargs) -> pd.DataFrame:
    options = {"customer_col": "cust", "date_col": "when", "amount_col": "value",
               "observation_end": "2024-06-30"}
    options.update(kwargs)
    return summarize(hand_log(), **options).set_index("customer_id")


def test_summarize_inactivity_rule_on_hand_computed_log():
    table = summarize_hand(inactivity=2, segment_col="channel")

    assert list(table.index) == ["c1", "c2", "c3", "c4"]
    assert list(table["segment"]) == ["web", "web", "store", "store"]
    # c1: Jan..Jun observed, last purchase May (recency 1 < 2): active, tenure 6.
    # c2: last purchase Mar, recency 3 >= 2: churned in Apr, tenure Feb..Apr = 3.
    # c3: acquired in Jun: tenure 1.  c4: May and Jun: tenure 2.
    np.testing.assert_array_equal(table["tenure"], [6, 3, 1, 2])
    np.testing.assert_array_equal(table["churned"], [False, True, False, False])
    np.testing.assert_array_equal(table["entry"], [0, 0, 0, 0])
    np.testing.assert_array_equal(table["n_periods_active"], [3, 2, 1, 2])
    np.testing.assert_allclose(table["mean_spend"], [100 / 3, 10.0, 50.0, 7.5])
    np.testing.assert_array_equal(table["recency"], [1, 3, 0, 0])
    np.testing.assert_array_equal(table["frequency"], [2, 1, 0, 1])
    np.testing.assert_allclose(table["monetary"], table["mean_spend"])
    np.testing.assert_array_equal(table["n_transactions"], [4, 2, 1, 2])
    # c1: first half Jan-Mar 60/3, recent half Apr-Jun 40/3; c2: Feb-Mar 20/2 vs Apr 0;
    # c4: May 7 vs Jun 8.
    np.testing.assert_allclose(table["spend_trend"], [40 / 60, 0.0, np.nan, 8 / 7])
    assert table.attrs == {"period": "month", "period_alias": "M",
                           "observation_end": "2024-06-30", "churn_rule": "inactivity",
                           "inactivity": 2}


def test_summarize_contractual_rule_on_hand_computed_log():
    table = summarize_hand(end_col="ended")

    # c2 ended 2024-04-15 (period Apr): tenure Feb..Apr = 3, churned.
    # c3 ends 2024-07-31, after observation_end: still active.
    # c4 ended on 2024-06-01, the day of its last transaction: churned in Jun, tenure 2.
    np.testing.assert_array_equal(table["tenure"], [6, 3, 1, 2])
    np.testing.assert_array_equal(table["churned"], [False, True, False, True])
    np.testing.assert_array_equal(table["recency"], [1, 3, 0, 0])
    assert table.attrs["churn_rule"] == "contractual"
    assert "inactivity" not in table.attrs


def test_summarize_inactivity_cannot_label_recent_customers_churned():
    # With inactivity=4, c2 (recency 3) is no longer churned: the rule needs 4 silent periods.
    table = summarize_hand(inactivity=4)

    np.testing.assert_array_equal(table["churned"], [False, False, False, False])
    np.testing.assert_array_equal(table["tenure"], [6, 5, 1, 2])


def test_summarize_quarterly_periods():
    table = summarize_hand(inactivity=1, period="Q")

    # Q1 2024 and Q2 2024 only; c2 bought in Q1 only: recency 1 >= 1, churned in Q2.
    np.testing.assert_array_equal(table["tenure"], [2, 2, 1, 1])
    np.testing.assert_array_equal(table["churned"], [False, True, False, False])
    np.testing.assert_array_equal(table["n_periods_active"], [2, 1, 1, 1])
    np.testing.assert_allclose(table["mean_spend"], [50.0, 20.0, 50.0, 15.0])
    assert table.attrs["period"] == "quarter"


@pytest.mark.parametrize(("period", "unit"), [("D", "day"), ("W", "week"), ("month", "month"),
                                              ("y", "year")])
def test_summarize_records_period_unit(period, unit):
    table = summarize_hand(inactivity=1, period=period)

    assert table.attrs["period"] == unit
    validate_customers(table)


def test_summarize_daily_tenure_counts_days():
    table = summarize_hand(inactivity=400, period="D")

    # c4: 2024-05-31 .. 2024-06-30 inclusive = 31 days; c3: 2024-06-10 .. 06-30 = 21.
    assert table.loc["c4", "tenure"] == 31
    assert table.loc["c3", "tenure"] == 21
    assert table.loc["c4", "recency"] == 29


def test_summarize_observation_end_defaults_to_last_transaction():
    table = summarize(hand_log(), "cust", "when", "value", inactivity=2)

    assert table.attrs["observation_end"] == "2024-06-10"
    # Same periods as with 2024-06-30: the period of observation_end counts as observed.
    np.testing.assert_array_equal(table["tenure"], [6, 3, 1, 2])


def test_summarize_output_passes_validate_customers():
    table = summarize(hand_log(), "cust", "when", "value", inactivity=2, segment_col="channel")

    data = validate_customers(table)

    assert data.n_customers == 4
    assert list(data.segment) == ["web", "web", "store", "store"]


def test_summarize_does_not_modify_the_log():
    log = hand_log()
    before = log.copy()

    summarize(log, "cust", "when", "value", inactivity=2, end_col=None)

    pd.testing.assert_frame_equal(log, before)


def test_summarize_recovers_simulated_tenure_and_churn():
    log, truth = simulate_transactions(1500, 24, random_seed=5)

    table = summarize(log, end_col="end_date", segment_col="channel",
                      observation_end=log["date"].max())
    validate_customers(table)
    truth = truth.loc[table["customer_id"]]

    np.testing.assert_array_equal(table["tenure"], truth["tenure"])
    np.testing.assert_array_equal(table["churned"], truth["churned"])
    np.testing.assert_array_equal(table["segment"], truth["channel"])
    assert table["n_transactions"].sum() == len(log)


def brute_force_summary(log: pd.DataFrame, end: pd.Timestamp, k: int) -> pd.DataFrame:
    """Loop over customers (monthly periods, inactivity rule)."""
    end_p = end.to_period("M")
    rows = []
    for cid, group in log.groupby("customer_id"):
        months = group["date"].dt.to_period("M")
        totals = group.groupby(months)["amount"].sum()
        first, last = months.min(), months.max()
        recency = (end_p - last).n
        churned = recency >= k
        tenure = (last - first).n + 2 if churned else (end_p - first).n + 1
        spend = [totals.get(first + i, 0.0) for i in range(tenure)]
        early = spend[: (tenure + 1) // 2]
        late = spend[(tenure + 1) // 2:]
        trend = np.mean(late) / np.mean(early) if late else np.nan
        rows.append({"customer_id": cid, "tenure": tenure, "churned": churned,
                     "n_periods_active": len(totals), "mean_spend": totals.mean(),
                     "recency": recency, "spend_trend": trend})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_summarize_matches_a_per_customer_loop(seed):
    log, _ = simulate_transactions(150, 18, random_seed=seed, active_probability=0.4)
    end = pd.Timestamp("2023-06-30")

    table = summarize(log, inactivity=3, observation_end=end)
    expected = brute_force_summary(log, end, 3)

    assert list(table["customer_id"]) == list(expected["customer_id"])
    for column in ["tenure", "churned", "n_periods_active", "recency"]:
        np.testing.assert_array_equal(table[column], expected[column], err_msg=column)
    np.testing.assert_allclose(table["mean_spend"], expected["mean_spend"])
    np.testing.assert_allclose(table["spend_trend"], expected["spend_trend"])


def test_summarize_accepts_numeric_dates_with_a_format():
    log = pd.DataFrame({"customer_id": [1, 1, 2], "date": [19970101, 19970215, 19970301],
                        "amount": [10.0, 20.0, 5.0]})

    table = summarize(log, inactivity=2, date_format="%Y%m%d")

    np.testing.assert_array_equal(table["tenure"], [3, 1])
    assert table.attrs["observation_end"] == "1997-03-01"


def test_summarize_drops_time_zone_and_time_of_day():
    dates = pd.to_datetime(["2024-01-31 23:30", "2024-02-01 08:00"]).tz_localize("Europe/Paris")
    log = pd.DataFrame({"customer_id": ["a", "a"], "date": dates, "amount": [1.0, 2.0]})

    table = summarize(log, inactivity=1, observation_end="2024-02-01")

    assert table.loc[0, "tenure"] == 2
    assert table.loc[0, "n_periods_active"] == 2


def test_summarize_sorts_integer_ids_and_keeps_unsortable_ids_in_order():
    log = pd.DataFrame({"customer_id": [10, 2, 10], "date": ["2024-01-01"] * 3,
                        "amount": [1.0, 2.0, 3.0]})
    assert list(summarize(log, inactivity=1)["customer_id"]) == [2, 10]

    mixed = log.assign(customer_id=np.array([10, "b", 10], dtype=object))
    assert list(summarize(mixed, inactivity=1)["customer_id"]) == [10, "b"]


def test_summarize_refunds_net_per_period():
    log = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b"],
        "date": ["2024-01-02", "2024-01-20", "2024-02-03", "2024-02-10", "2024-02-01"],
        "amount": [30.0, -10.0, 25.0, -25.0, 9.0],
    })

    table = summarize(log, inactivity=3, refunds="net", observation_end="2024-02-29")

    # a: January nets to 20; February nets to 0 and is not an active period.
    assert table.loc[0, "n_periods_active"] == 1
    assert table.loc[0, "mean_spend"] == pytest.approx(20.0)
    assert table.loc[0, "recency"] == 1
    assert table.loc[0, "tenure"] == 2
    assert table.loc[0, "n_transactions"] == 4
    validate_customers(table)


def test_summarize_net_refunds_rejects_customers_without_positive_period():
    log = pd.DataFrame({"customer_id": ["a", "a", "b"],
                        "date": ["2024-01-02", "2024-01-05", "2024-01-09"],
                        "amount": [30.0, -30.0, 9.0]})

    with raises_validation("Column 'amount'", "no period with a positive net amount",
                           "1 row(s)", "'a'"):
        summarize(log, inactivity=1, refunds="net")


# ---- summarize: parameters -----------------------------------------------------------


def test_summarize_requires_a_churn_rule():
    with pytest.raises(ValueError, match="exactly one of: end_col=.*Neither was given"):
        summarize(hand_log(), "cust", "when", "value")


def test_summarize_rejects_both_churn_rules():
    with pytest.raises(ValueError, match="Both were given"):
        summarize(hand_log(), "cust", "when", "value", end_col="ended", inactivity=2)


@pytest.mark.parametrize("inactivity", [0, -1, 1.5, True, "3"])
def test_summarize_rejects_bad_inactivity(inactivity):
    with pytest.raises(ValueError, match="inactivity must be an int >= 1"):
        summarize(hand_log(), "cust", "when", "value", inactivity=inactivity)


@pytest.mark.parametrize("period", ["X", "ME", 3, "2M"])
def test_summarize_rejects_unknown_period(period):
    with pytest.raises(ValueError, match="period must be one of"):
        summarize(hand_log(), "cust", "when", "value", period=period, inactivity=1)


def test_summarize_rejects_unknown_refund_policy():
    with pytest.raises(ValueError, match="refunds must be 'error' or 'net'"):
        summarize(hand_log(), "cust", "when", "value", inactivity=1, refunds="drop")


def test_summarize_rejects_bad_observation_end():
    with pytest.raises(ValueError, match="observation_end must be a date"):
        summarize(hand_log(), "cust", "when", "value", inactivity=1, observation_end="soon")


# ---- summarize: every data problem names column, rows and count ---------------------


def test_summarize_rejects_non_dataframe():
    with raises_validation("Expected a pandas DataFrame of transactions", "list"):
        summarize([1, 2], inactivity=1)


def test_summarize_rejects_missing_columns():
    with raises_validation("['when', 'ended']", "missing from the transaction log"):
        summarize(hand_log().drop(columns=["when", "ended"]), "cust", "when", "value",
                  end_col="ended")


def test_summarize_rejects_empty_log():
    with raises_validation("transaction log is empty"):
        summarize(hand_log().iloc[:0], "cust", "when", "value", inactivity=1)


def test_summarize_rejects_missing_customer_ids():
    log = hand_log()
    log.loc[["t1", "t5"], "cust"] = None

    with raises_validation("Column 'cust'", "missing customer ids", "2 row(s)",
                           "row index: 't1', 't5'"):
        summarize(log, "cust", "when", "value", inactivity=1)


def test_summarize_rejects_unparseable_dates():
    log = hand_log()
    log.loc[["t2", "t4"], "when"] = ["2024-13-45", "yesterday"]

    with raises_validation("Column 'when'", "unparseable dates", "2 row(s)", "'t2', 't4'"):
        summarize(log, "cust", "when", "value", inactivity=1)


def test_summarize_rejects_missing_dates():
    log = hand_log()
    log.loc["t3", "when"] = None

    with raises_validation("Column 'when'", "missing dates", "1 row(s)", "'t3'"):
        summarize(log, "cust", "when", "value", inactivity=1)


def test_summarize_rejects_numeric_dates_without_format():
    log = pd.DataFrame({"customer_id": [1, 2], "date": [19970101, 19970102],
                        "amount": [1.0, 2.0]})

    with raises_validation("Column 'date'", "numbers where dates are expected", "2 row(s)",
                           "date_format"):
        summarize(log, inactivity=1)


def test_summarize_rejects_future_dates():
    # t6 (2024-05-31) is on observation_end: allowed.
    with raises_validation("Column 'when'", "dates after observation_end (2024-05-31)",
                           "2 row(s)", "'t3', 't8'"):
        summarize(hand_log(), "cust", "when", "value", inactivity=1,
                  observation_end="2024-05-31")


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ([20.0, np.nan, 10.0, 50.0, 30.0, np.nan, 7.0, 40.0, 8.0], "missing (NaN) amounts"),
        ([20.0, np.inf, 10.0, 50.0, 30.0, -np.inf, 7.0, 40.0, 8.0], "infinite amounts"),
        (["20", "$15", "10", "50", "30", "n/a", "7", "40", "8"], "non-numeric amounts"),
        ([20.0, 0.0, 10.0, 50.0, 30.0, -5.0, 7.0, 40.0, 8.0], "zero or negative amounts"),
    ],
    ids=["nan", "inf", "non-numeric", "refunds"],
)
def test_summarize_rejects_bad_amounts(values, problem):
    log = hand_log().assign(value=values)

    with raises_validation("Column 'value'", problem, "2 row(s)", "'t1', 't5'"):
        summarize(log, "cust", "when", "value", inactivity=1)


def test_summarize_refund_error_suggests_netting():
    log = hand_log().assign(value=[20.0, -15.0, 10.0, 50.0, 30.0, 5.0, 7.0, 40.0, 8.0])

    with raises_validation("refunds='net'"):
        summarize(log, "cust", "when", "value", inactivity=1)


def test_summarize_rejects_transactions_after_end_date():
    log = hand_log()
    log.loc[["t1", "t5"], "ended"] = "2024-03-01"  # c2 bought on 2024-03-31

    with raises_validation("Column 'when'", "after the customer's end date", "'ended'",
                           "1 row(s)", "'t5'"):
        summarize(log, "cust", "when", "value", end_col="ended")


def test_summarize_rejects_end_date_changing_within_customer():
    log = hand_log()
    log.loc["t5", "ended"] = "2024-05-01"
    log.loc["t0", "ended"] = "2024-12-01"

    with raises_validation("Column 'ended'", "end date changing within a customer",
                           "2 row(s)", "customer ids: 'c1', 'c2'"):
        summarize(log, "cust", "when", "value", end_col="ended")


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_summarize_rejects_unparseable_end_dates():
    log = hand_log()
    log.loc["t0", "ended"] = "never"

    with raises_validation("Column 'ended'", "unparseable dates", "1 row(s)", "'t0'"):
        summarize(log, "cust", "when", "value", end_col="ended")


def test_summarize_rejects_segment_changing_within_customer():
    log = hand_log()
    log.loc["t8", "channel"] = "web"

    with raises_validation("Column 'channel'", "segment changing within a customer",
                           "1 row(s)", "customer ids: 'c4'"):
        summarize(log, "cust", "when", "value", inactivity=1, segment_col="channel")


def test_summarize_rejects_missing_segment():
    log = hand_log()
    log.loc["t3", "channel"] = None

    with raises_validation("Column 'channel'", "missing segment labels", "1 row(s)", "'t3'"):
        summarize(log, "cust", "when", "value", inactivity=1, segment_col="channel")


def test_summarize_docstring_example_runs():
    import doctest

    import bayesclv.data

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(bayesclv.data.summarize, "summarize",
                            globs=vars(bayesclv.data).copy()):
        runner.run(test)
    assert runner.failures == 0
    assert runner.tries > 0


# --------------------------------------------------------------------------------------
# Inputs that once got through: dtypes, labels, sizes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("column,values,message", [
    ("tenure", pd.to_timedelta([3, 5, 2, 4], unit="D"), "durations"),
    ("mean_spend", pd.to_datetime(["2024-01-01"] * 4), "dates"),
    ("mean_spend", np.array([10 + 1j, 20, 5.5, 7.25]), "complex"),
    ("n_periods_active", pd.Series([pd.Timedelta(days=2), 5, 1, 3], dtype=object),
     "dates, durations or complex"),
])
def test_dates_durations_and_complex_numbers_are_refused(column, values, message):
    with pytest.raises(DataValidationError, match=rf"Column '{column}'.*{message}"):
        validate_customers(make_customers(**{column: values}))


def test_duplicate_column_labels_are_refused():
    table = make_customers()
    doubled = pd.concat([table, table[["mean_spend"]]], axis=1)
    with pytest.raises(DataValidationError, match=r"duplicate column labels \['mean_spend'\]"):
        validate_customers(doubled)


def test_sizes_that_would_exhaust_memory_or_overflow_are_refused():
    with pytest.raises(DataValidationError, match=r"'tenure': more than 10,000 periods.*'c2'"):
        validate_customers(make_customers(tenure=[3, 10**9, 2, 4]))
    with pytest.raises(DataValidationError, match=r"'mean_spend': values above 1e\+200.*'c1'"):
        validate_customers(make_customers(mean_spend=[1e308, 20.0, 5.5, 7.25]))
    assert validate_customers(make_customers(tenure=[3, 10_000, 2, 4])).tenure.max() == 10_000


def test_segment_labels_are_written_the_same_whatever_the_number_type():
    from bayesclv.data.columns import segment_labels

    labels = segment_labels(pd.Series([1, 2.0, np.int8(3), 2.5, "x"], dtype=object))
    assert labels.tolist() == ["1", "2", "3", "2.5", "x"]
    floats = validate_customers(make_customers(segment=[1.0, 2.0, 1.0, 2.0]))
    ints = validate_customers(make_customers(segment=[1, 2, 1, 2]))
    assert floats.segment.tolist() == ints.segment.tolist() == ["1", "2", "1", "2"]


# --------------------------------------------------------------------------------------
# Customers acquired in the current period, and customers with no spend yet
# --------------------------------------------------------------------------------------


def with_new_customers(customers: pd.DataFrame, spend: list[float]) -> pd.DataFrame:
    """``customers`` and, interleaved, customers of tenure 0 (``NaN``: no spend yet)."""
    n = len(spend)
    new = pd.DataFrame({
        "customer_id": [f"new{i}" for i in range(n)],
        "segment": customers["segment"].to_numpy()[:n],
        "tenure": 0, "churned": False, "entry": 0,
        "n_periods_active": [0 if np.isnan(v) else 1 for v in spend],
        "mean_spend": spend,
    })
    for column in ("mean_log_spend", "sd_log_spend"):
        if column in customers:
            new[column] = [np.nan if np.isnan(v) else (np.log(v) if column == "mean_log_spend"
                                                       else 0.0) for v in spend]
    both = pd.concat([customers.iloc[: len(customers) // 2], new,
                      customers.iloc[len(customers) // 2:]], ignore_index=True)
    both.attrs = dict(customers.attrs)
    return both


def test_new_customers_without_spend_leave_every_statistic_unchanged():
    from bayesclv.data import training_statistics
    from bayesclv.datasets import simulate_customers

    customers, _ = simulate_customers(400, log_spend=True, random_seed=3)
    before = training_statistics(customers)
    after = training_statistics(with_new_customers(customers, [np.nan] * 7))

    pd.testing.assert_frame_equal(after.risk_set, before.risk_set)
    pd.testing.assert_frame_equal(after.groups, before.groups)
    assert after.median_spend == before.median_spend
    for key, value in before.spend.items():
        np.testing.assert_array_equal(after.spend[key], value, err_msg=key)
    for key, value in before.log_spend.items():
        np.testing.assert_array_equal(after.log_spend[key], value, err_msg=key)
    assert after.n_customers == before.n_customers + 7


def test_a_new_customer_with_spend_counts_in_the_spend_statistics_only():
    from bayesclv.data import training_statistics
    from bayesclv.datasets import simulate_customers

    customers, _ = simulate_customers(400, random_seed=3)
    before = training_statistics(customers)
    after = training_statistics(with_new_customers(customers, [np.nan, 40.0]))

    pd.testing.assert_frame_equal(after.risk_set, before.risk_set)
    pd.testing.assert_frame_equal(after.groups, before.groups)
    assert after.spend["x_count"].sum() == before.spend["x_count"].sum() + 1


def test_spend_statistics_of_a_table_without_spenders_are_refused():
    from bayesclv.data import training_statistics

    customers = make_customers(tenure=[3, 0, 2, 4], churned=[True, False, True, False],
                               entry=[0, 0, 0, 2], n_periods_active=[0, 0, 0, 0],
                               mean_spend=[np.nan] * 4)
    with pytest.raises(DataValidationError, match="No customer has an active period"):
        training_statistics(customers)
    assert training_statistics(customers, require_spend=False).risk_set is not None
