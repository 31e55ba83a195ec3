"""Tests for bayesclv.data: validating customer tables and the sufficient statistics."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

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


def test_validate_rejects_tenure_below_one():
    customers = make_customers(tenure=[3, 0, 2, -1], entry=None, n_periods_active=[1, 1, 1, 1])

    with raises_validation("Column 'tenure'", "tenure below 1", "2 row(s)", "'c2', 'c4'"):
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


def test_validate_rejects_n_periods_active_below_one():
    with raises_validation("Column 'n_periods_active'", "values below 1", "2 row(s)",
                           "'c2', 'c3'"):
        validate_customers(make_customers(n_periods_active=[2, 0, -3, 3]))


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
            "tenure": [0] * 7 + [3, 4],
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
    n_customers, n_segments = 250, 3
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

    # Per-customer arrays, in input order.
    np.testing.assert_array_equal(stats["segment"], segment_code)
    np.testing.assert_array_equal(stats["x"], x.astype(np.float64))
    np.testing.assert_allclose(stats["x_times_z"], x * z)


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
