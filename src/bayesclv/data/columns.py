"""The customer-table contract: column names, validation, and the clean arrays it gives.

Every public entry point that receives user data calls :func:`validate_customers` first,
so the rest of the library works on clean, normalised numpy arrays. Errors name the
column, the first offending customer ids and how many rows are affected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bayesclv.exceptions import DataValidationError

__all__ = ["MAX_SPEND", "MAX_TENURE", "SINGLE_SEGMENT", "CustomerColumns", "CustomerData",
           "segment_labels", "validate_customers"]

#: The most periods a tenure may count: memory and time of the risk sets and of the
#: survival sums grow with it (10,000 months are 833 years; use coarser periods beyond).
MAX_TENURE = 10_000
#: The largest mean spend accepted: values, not their products with periods and margins,
#: must stay far from the float64 limit (1.8e308).
MAX_SPEND = 1e200

_MAX_LISTED = 5


@dataclass(frozen=True)
class CustomerColumns:
    """Names of the customer-table columns (DESIGN §3), configurable per estimator."""

    customer: str = "customer_id"
    segment: str | None = "segment"
    tenure: str = "tenure"
    churned: str = "churned"
    entry: str | None = "entry"
    n_periods_active: str = "n_periods_active"
    mean_spend: str = "mean_spend"
    mean_log_spend: str = "mean_log_spend"
    sd_log_spend: str = "sd_log_spend"

    def to_dict(self) -> dict[str, str | None]:
        """Return the names as a plain dict (JSON-serialisable)."""
        return asdict(self)


@dataclass(frozen=True)
class CustomerData:
    """A validated customer table as arrays, in input order.

    Attributes
    ----------
    customer_ids : pandas.Index
        The customer ids, in input order.
    index : pandas.Index
        The index of the input DataFrame (outputs reuse it).
    segment : numpy.ndarray of str
        Segment label per customer (``"all"`` when the table has no segment column).
    tenure, entry : numpy.ndarray of int64
        Completed periods observed, and periods already completed when observation began.
    churned : numpy.ndarray of bool
    n_periods_active : numpy.ndarray of int64 or None
    mean_spend : numpy.ndarray of float64 or None
        ``0.0`` for a customer with no active period (missing in the input).
    mean_log_spend, sd_log_spend : numpy.ndarray of float64 or None
        Mean and standard deviation (``ddof=0``) over active periods of the log of the
        period's revenue, when the table has them (the lognormal spend family needs the
        first; both let spend families be compared on every period's revenue); ``0.0``
        with no active period.
    """

    customer_ids: pd.Index
    index: pd.Index
    segment: np.ndarray
    tenure: np.ndarray
    churned: np.ndarray
    entry: np.ndarray
    n_periods_active: np.ndarray | None
    mean_spend: np.ndarray | None
    mean_log_spend: np.ndarray | None = None
    sd_log_spend: np.ndarray | None = None

    @property
    def n_customers(self) -> int:
        """Number of customers (rows)."""
        return len(self.customer_ids)

    @property
    def spend_observed(self) -> np.ndarray:
        """Which customers have an active period, and so a spend the models learn from."""
        return self.n_periods_active > 0


SINGLE_SEGMENT = "all"


def segment_labels(values: pd.Series) -> np.ndarray:
    """Segment labels as strings, a number written the same whatever its type.

    ``1``, ``1.0`` and ``numpy.int8(1)`` all give ``"1"`` (so labels read as integers at
    fit and as floats at predict name the same segment); other values give ``str(v)``.

    Returns
    -------
    numpy.ndarray of object (str)
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    labels = np.array([_label(v) for v in uniques], dtype=object)
    return labels[codes] if len(labels) else np.array([], dtype=object)


def _label(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and np.isfinite(value) \
            and float(value).is_integer():
        return str(int(value))
    return str(value)


def _describe_rows(ids: pd.Index, mask: np.ndarray, label: str) -> str:
    bad = ids[np.asarray(mask)]
    listed = ", ".join(repr(x) for x in bad[:_MAX_LISTED])
    more = ", ..." if len(bad) > _MAX_LISTED else ""
    return f"{len(bad)} row(s) ({label}: {listed}{more})"


def _fail(column: str, ids: pd.Index, mask: np.ndarray, problem: str, fix: str,
          label: str = "customer ids") -> None:
    raise DataValidationError(
        f"Column {column!r}: {problem} in {_describe_rows(ids, mask, label)}. {fix}"
    )


def _require_columns(df: pd.DataFrame, names: Sequence[str], purpose: str) -> None:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"Column(s) {missing} missing from the customer table ({purpose}); "
            f"it has columns {list(df.columns)}. Pass the column names to the estimator "
            "(e.g. tenure_col=...) if yours are named differently."
        )


def _value_kind(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _reject_mixed_types(series: pd.Series, column: str, ids: pd.Index,
                        label: str = "customer ids") -> None:
    """An object column must hold one kind of value: mixed kinds are ambiguous."""
    if series.dtype != object:
        return
    present = series.notna().to_numpy()
    kinds = np.array([_value_kind(v) if ok else "" for v, ok in zip(series, present,
                                                                       strict=True)])
    found = sorted(set(kinds[present]))
    if len(found) > 1:
        first = kinds[present][0]
        _fail(column, ids, present & (kinds != first),
              f"values of another type than the first row's ({first}; the column mixes "
              f"{', '.join(found)})",
              "Give the column one type (e.g. .astype(str) or pandas.to_numeric) so that "
              "equal-looking values such as 1 and '1' cannot be confused.", label=label)


def _numeric(df: pd.DataFrame, column: str, ids: pd.Index,
             missing_ok: np.ndarray | None = None) -> np.ndarray:
    """The column as float64, refusing NaN except in the rows ``missing_ok`` marks."""
    series = df[column]
    if series.dtype.kind in "mMc" or isinstance(series.dtype, pd.DatetimeTZDtype):
        kind = {"m": "durations (timedelta)", "M": "dates", "c": "complex numbers"}.get(
            series.dtype.kind, "dates")
        raise DataValidationError(
            f"Column {column!r}: {kind} (dtype {series.dtype}) where real numbers are "
            f"expected, in {_describe_rows(ids, np.ones(len(series), bool), 'customer ids')}. "
            "Convert it first: periods as whole numbers in the declared unit, amounts as "
            "real numbers."
        )
    if series.dtype == object:
        odd = series.map(lambda v: isinstance(v, (pd.Timestamp, pd.Timedelta, np.datetime64,
                                                  np.timedelta64, complex, np.complexfloating))
                         ).to_numpy(dtype=bool)
        if odd.any():
            _fail(column, ids, odd, "dates, durations or complex numbers",
                  "Convert the column to real numbers (periods in the declared unit).")
    if pd.api.types.is_bool_dtype(series):
        raise DataValidationError(
            f"Column {column!r}: boolean values where numbers are expected in "
            f"{_describe_rows(ids, np.ones(len(series), bool), 'customer ids')}. "
            "Check that the column names map to the right columns."
        )
    if not pd.api.types.is_numeric_dtype(series):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            _fail(column, ids, bad, f"non-numeric values (dtype {series.dtype})",
                  "Convert the column to numbers.")
        _reject_mixed_types(series, column, ids)
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    if missing_ok is not None:
        missing &= ~missing_ok
    if missing.any():
        _fail(column, ids, missing, "missing (NaN) values",
              "Fill or remove these customers explicitly; nothing is dropped silently.")
    if np.isinf(values).any():
        _fail(column, ids, np.isinf(values), "infinite values",
              "Replace them with finite numbers.")
    return values


def _integer(df: pd.DataFrame, column: str, ids: pd.Index) -> np.ndarray:
    values = _numeric(df, column, ids)
    huge = np.abs(values) >= 2.0**53
    if huge.any():
        _fail(column, ids, huge, "values too large to be period counts (>= 2**53)",
              "Check the column and the period unit.")
    fractional = values != np.round(values)
    if fractional.any():
        _fail(column, ids, fractional, "fractional values where whole periods are expected",
              "Periods are counted in whole units; round or re-summarise the data.")
    return values.astype(np.int64)


def _boolean(df: pd.DataFrame, column: str, ids: pd.Index) -> np.ndarray:
    series = df[column]
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return series.to_numpy(dtype=bool)
    if series.isna().any():
        _fail(column, ids, series.isna().to_numpy(), "missing (NaN) churn flags",
              "Every customer needs churned=True or False.")
    valid = series.map(lambda v: isinstance(v, (bool, np.bool_, int, np.integer, float,
                                                np.floating)) and v in (0, 1))
    valid = valid.to_numpy(dtype=bool)
    if not valid.all():
        _fail(column, ids, ~valid, "values other than True/False (or 1/0)",
              "Encode churn as a boolean column.")
    _reject_mixed_types(series, column, ids)
    return series.to_numpy().astype(np.float64).astype(bool)


def validate_customers(
    customers: pd.DataFrame,
    columns: CustomerColumns | None = None,
    *,
    require_spend: bool = True,
    require_retention: bool = True,
) -> CustomerData:
    """Check a customer table against the contract of DESIGN §3 and return arrays.

    Parameters
    ----------
    customers : pandas.DataFrame
        One row per customer. The customer id is read from ``columns.customer`` or, if no
        such column exists, from an index of that name.
    columns : CustomerColumns, optional
        Column names; defaults to :class:`CustomerColumns()`.
    require_spend : bool, default=True
        Whether ``n_periods_active`` and ``mean_spend`` must be present and valid.
    require_retention : bool, default=True
        Whether ``tenure`` and ``churned`` must be present and valid.

    Returns
    -------
    CustomerData
        The validated table as numpy arrays, in input order.

    Raises
    ------
    DataValidationError
        For a missing column, NaN or infinite values, non-numeric or fractional periods,
        ``tenure < 0``, ``entry < 0`` or ``entry >= tenure``, non-boolean churn flags,
        ``n_periods_active < 0`` or greater than ``tenure``, non-positive spend, or
        duplicate customer ids. The message names the column, the first offending
        customer ids and the number of rows.

    Notes
    -----
    A customer acquired in the current period has ``tenure == 0`` (with ``entry == 0``,
    not churned): it has made no renewal decision yet, adds nothing to the retention
    likelihood, and is valued like any other customer at tau = 0. A customer with no
    spend yet (or whose spend is unknown) has ``n_periods_active == 0`` and
    ``mean_spend`` missing (NaN, as are ``mean_log_spend`` and ``sd_log_spend``): it
    adds nothing to the spend likelihood and is valued with its segment's spend
    distribution. In the returned arrays its spend columns are ``0.0``: with no active
    period every sufficient statistic (``x z``, ``x ybar``) is zero.
    """
    if not isinstance(customers, pd.DataFrame):
        raise DataValidationError(
            f"Expected a pandas DataFrame of customers, got {type(customers).__name__}."
        )
    columns = columns or CustomerColumns()
    if len(customers) == 0:
        raise DataValidationError("The customer table is empty: there is nothing to model.")

    repeated = customers.columns[customers.columns.duplicated()]
    if len(repeated):
        raise DataValidationError(
            f"The customer table has duplicate column labels {sorted(set(map(str, repeated)))}"
            "; every column must be named once (rename or drop the copies)."
        )
    if columns.customer in customers.columns:
        id_series = customers[columns.customer]
    elif customers.index.name == columns.customer:
        id_series = customers.index.to_series()
    else:
        raise DataValidationError(
            f"Column {columns.customer!r} (the customer id) is missing: it is neither a "
            f"column nor the index name; columns are {list(customers.columns)}. Pass "
            "customer_col=... to name yours."
        )
    ids = pd.Index(id_series.to_numpy(), name=columns.customer)
    if id_series.isna().any():
        position_labels = pd.Index(customers.index)
        _fail(columns.customer, position_labels, id_series.isna().to_numpy(),
              "missing customer ids", "Every customer needs an id.", label="row index")
    duplicated = ids.duplicated(keep=False)
    if duplicated.any():
        _fail(columns.customer, ids, duplicated, "duplicate customer ids",
              "The table must have one row per customer; aggregate duplicates first.")

    n = len(customers)
    if columns.segment is not None and columns.segment in customers.columns:
        seg_series = customers[columns.segment]
        if seg_series.isna().any():
            _fail(columns.segment, ids, seg_series.isna().to_numpy(), "missing segment labels",
                  "Give these customers a segment (or an explicit 'unknown' label).")
        _reject_mixed_types(seg_series, columns.segment, ids)
        segment = segment_labels(seg_series)
    else:
        segment = np.full(n, SINGLE_SEGMENT, dtype=object)

    tenure = churned = entry = None
    if require_retention:
        _require_columns(customers, [columns.tenure, columns.churned], "retention model")
        tenure = _integer(customers, columns.tenure, ids)
        if (tenure < 0).any():
            _fail(columns.tenure, ids, tenure < 0, "negative tenure",
                  "Tenure counts completed periods (0 for a customer acquired in the "
                  "current period).")
        if (tenure > MAX_TENURE).any():
            _fail(columns.tenure, ids, tenure > MAX_TENURE,
                  f"more than {MAX_TENURE:,} periods",
                  "Summarise in a coarser period (weeks or months instead of days): the "
                  f"models and the valuation handle at most {MAX_TENURE:,} periods.")
        churned = _boolean(customers, columns.churned, ids)
        new = tenure == 0
        if (churned & new).any():
            _fail(columns.churned, ids, churned & new, "churned with tenure 0",
                  "A customer churns at the end of a period it was a customer in, so a "
                  "churned customer has tenure >= 1.")
        if columns.entry is not None and columns.entry in customers.columns:
            entry = _integer(customers, columns.entry, ids)
            if (entry < 0).any():
                _fail(columns.entry, ids, entry < 0, "negative entry",
                      "Entry is the number of periods completed before observation began.")
            late = (entry >= tenure) & ~(new & (entry == 0))
            if late.any():
                _fail(columns.entry, ids, late, "entry >= tenure",
                      "A customer must be observed for at least one period after entry "
                      "(a customer acquired in the current period has entry = tenure = 0).")
        else:
            entry = np.zeros(n, dtype=np.int64)

    n_active = mean_spend = mean_log_spend = sd_log_spend = None
    if require_spend:
        _require_columns(customers, [columns.n_periods_active, columns.mean_spend],
                         "spend model")
        n_active = _integer(customers, columns.n_periods_active, ids)
        if (n_active < 0).any():
            _fail(columns.n_periods_active, ids, n_active < 0, "negative values",
                  "It counts the periods with spend (0 for a customer with none yet).")
        # A customer acquired this period may already have paid: its one active period
        # is the current one, which its tenure of 0 does not count yet.
        if tenure is not None and (n_active > np.maximum(tenure, 1)).any():
            _fail(columns.n_periods_active, ids, n_active > np.maximum(tenure, 1),
                  "more active periods than tenure", "Check the summarising step.")
        no_spend = n_active == 0
        mean_spend = _numeric(customers, columns.mean_spend, ids, missing_ok=no_spend)
        given = no_spend & ~np.isnan(mean_spend)
        if given.any():
            _fail(columns.mean_spend, ids, given, "a value with n_periods_active = 0",
                  "A customer with no active period has no mean spend: leave it missing "
                  "(NaN), and it is valued with its segment's spend distribution.")
        mean_spend = np.where(no_spend, 0.0, mean_spend)
        if (~no_spend & (mean_spend <= 0)).any():
            _fail(columns.mean_spend, ids, ~no_spend & (mean_spend <= 0), "non-positive spend",
                  "Mean spend per active period must be > 0 (refunds netted out beforehand).")
        if (mean_spend > MAX_SPEND).any():
            _fail(columns.mean_spend, ids, mean_spend > MAX_SPEND,
                  f"values above {MAX_SPEND:.0e}",
                  "Totals and values computed from them would overflow; check the unit.")
        mean_log_spend, sd_log_spend = _log_spend(customers, columns, ids, n_active,
                                                  mean_spend)

    return CustomerData(
        customer_ids=ids,
        index=customers.index.copy(),
        segment=segment,
        tenure=tenure,
        churned=churned,
        entry=entry,
        n_periods_active=n_active,
        mean_spend=mean_spend,
        mean_log_spend=mean_log_spend,
        sd_log_spend=sd_log_spend,
    )


def _log_spend(customers: pd.DataFrame, columns: CustomerColumns, ids: pd.Index,
               n_active: np.ndarray, mean_spend: np.ndarray
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The optional log-spend columns, checked against the arithmetic mean spend.

    The mean of the logs is the log of the geometric mean, which never exceeds the
    arithmetic mean; a column in another base or unit breaks that and is refused.
    """
    mean_log = sd_log = None
    no_spend = n_active == 0
    if columns.mean_log_spend in customers.columns:
        mean_log = _spend_free(customers, columns.mean_log_spend, ids, no_spend)
        tolerance = 1e-9 * np.maximum(1.0, np.abs(mean_log))
        log_mean = np.log(np.where(no_spend, 1.0, mean_spend))
        above = ~no_spend & (mean_log > log_mean + tolerance)
        if above.any():
            _fail(columns.mean_log_spend, ids, above,
                  f"values above log({columns.mean_spend})",
                  "The mean of the natural log of each active period's revenue cannot "
                  "exceed the log of their mean; check the base of the log and the unit.")
        single = (n_active == 1) & (np.abs(mean_log - log_mean) > tolerance)
        if single.any():
            _fail(columns.mean_log_spend, ids, single,
                  f"values other than log({columns.mean_spend}) with one active period",
                  "With one active period the mean of the log is the log of the mean.")
    if columns.sd_log_spend in customers.columns:
        if mean_log is None:
            raise DataValidationError(
                f"Column {columns.sd_log_spend!r} is given without "
                f"{columns.mean_log_spend!r}; give both (bayesclv.data.summarize(..., "
                "log_spend=True) writes them) or neither."
            )
        sd_log = _spend_free(customers, columns.sd_log_spend, ids, no_spend)
        if (sd_log < 0).any():
            _fail(columns.sd_log_spend, ids, sd_log < 0, "negative standard deviations",
                  "It is the standard deviation of log revenue over active periods.")
        single = (n_active == 1) & (sd_log > 0)
        if single.any():
            _fail(columns.sd_log_spend, ids, single,
                  "a positive spread with one active period",
                  "It is computed with ddof=0, so one active period gives 0.")
    return mean_log, sd_log


def _spend_free(customers: pd.DataFrame, column: str, ids: pd.Index,
                no_spend: np.ndarray) -> np.ndarray:
    """A per-active-period column: missing exactly where there is no active period, then 0."""
    values = _numeric(customers, column, ids, missing_ok=no_spend)
    given = no_spend & ~np.isnan(values)
    if given.any():
        _fail(column, ids, given, "a value with n_periods_active = 0",
              "A customer with no active period has none: leave it missing (NaN).")
    return np.where(no_spend, 0.0, values)
