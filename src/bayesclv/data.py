"""The edge of the library: validating customer tables and computing sufficient statistics.

Every public entry point that receives user data calls :func:`validate_customers` first,
so the rest of the library works on clean, normalised numpy arrays. Errors name the
column, the first offending customer ids and how many rows are affected.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesclv._dask import is_dask_frame
from bayesclv._math import (
    LaplaceGrid,
    add_compensated,
    exponential_sums_compensated,
    grouped_sums,
    rounded,
)
from bayesclv.exceptions import DataValidationError

__all__ = [
    "CustomerColumns",
    "CustomerData",
    "life_table",
    "risk_set_from_table",
    "risk_set_table",
    "survival_groups",
    "spend_statistics",
    "summarize",
    "TrainingStatistics",
    "training_statistics",
    "validate_customers",
]

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
    """

    customer_ids: pd.Index
    index: pd.Index
    segment: np.ndarray
    tenure: np.ndarray
    churned: np.ndarray
    entry: np.ndarray
    n_periods_active: np.ndarray | None
    mean_spend: np.ndarray | None

    @property
    def n_customers(self) -> int:
        """Number of customers (rows)."""
        return len(self.customer_ids)


SINGLE_SEGMENT = "all"


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


def _numeric(df: pd.DataFrame, column: str, ids: pd.Index) -> np.ndarray:
    series = df[column]
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
    if np.isnan(values).any():
        _fail(column, ids, np.isnan(values), "missing (NaN) values",
              "Fill or remove these customers explicitly; nothing is dropped silently.")
    if not np.isfinite(values).all():
        _fail(column, ids, ~np.isfinite(values), "infinite values",
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
        ``tenure < 1``, ``entry < 0`` or ``entry >= tenure``, non-boolean churn flags,
        ``n_periods_active < 1`` or greater than ``tenure``, non-positive spend, or
        duplicate customer ids. The message names the column, the first offending
        customer ids and the number of rows.
    """
    if not isinstance(customers, pd.DataFrame):
        raise DataValidationError(
            f"Expected a pandas DataFrame of customers, got {type(customers).__name__}."
        )
    columns = columns or CustomerColumns()
    if len(customers) == 0:
        raise DataValidationError("The customer table is empty: there is nothing to model.")

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
        segment = seg_series.astype(str).to_numpy(dtype=object)
    else:
        segment = np.full(n, SINGLE_SEGMENT, dtype=object)

    tenure = churned = entry = None
    if require_retention:
        _require_columns(customers, [columns.tenure, columns.churned], "retention model")
        tenure = _integer(customers, columns.tenure, ids)
        if (tenure < 1).any():
            _fail(columns.tenure, ids, tenure < 1, "tenure below 1",
                  "Tenure counts completed periods and must be at least 1.")
        churned = _boolean(customers, columns.churned, ids)
        if columns.entry is not None and columns.entry in customers.columns:
            entry = _integer(customers, columns.entry, ids)
            if (entry < 0).any():
                _fail(columns.entry, ids, entry < 0, "negative entry",
                      "Entry is the number of periods completed before observation began.")
            if (entry >= tenure).any():
                _fail(columns.entry, ids, entry >= tenure, "entry >= tenure",
                      "A customer must be observed for at least one period after entry.")
        else:
            entry = np.zeros(n, dtype=np.int64)

    n_active = mean_spend = None
    if require_spend:
        _require_columns(customers, [columns.n_periods_active, columns.mean_spend],
                         "spend model")
        n_active = _integer(customers, columns.n_periods_active, ids)
        if (n_active < 1).any():
            _fail(columns.n_periods_active, ids, n_active < 1, "values below 1",
                  "Only customers with at least one period of spend can inform the spend model.")
        if tenure is not None and (n_active > tenure).any():
            _fail(columns.n_periods_active, ids, n_active > tenure,
                  "more active periods than tenure", "Check the summarising step.")
        mean_spend = _numeric(customers, columns.mean_spend, ids)
        if (mean_spend <= 0).any():
            _fail(columns.mean_spend, ids, mean_spend <= 0, "non-positive spend",
                  "Mean spend per active period must be > 0 (refunds netted out beforehand).")

    return CustomerData(
        customer_ids=ids,
        index=customers.index.copy(),
        segment=segment,
        tenure=tenure,
        churned=churned,
        entry=entry,
        n_periods_active=n_active,
        mean_spend=mean_spend,
    )


def segment_codes(segment: np.ndarray, segments: Sequence[Hashable]) -> np.ndarray:
    """Map segment labels to positions in ``segments``; unknown labels get -1."""
    lookup = {label: i for i, label in enumerate(segments)}
    return np.fromiter((lookup.get(s, -1) for s in segment), dtype=np.int64, count=len(segment))


def risk_set_table(
    segment_code: np.ndarray,
    entry: np.ndarray,
    tenure: np.ndarray,
    churned: np.ndarray,
    n_segments: int,
) -> pd.DataFrame:
    """Sufficient statistics of the retention likelihood: customers at risk and churning.

    A customer with entry ``e`` and tenure ``T`` is at risk in periods ``e+1, ..., T``
    (left truncation: periods before ``e`` were not observed); a churned customer churns
    in period ``T``.

    Parameters
    ----------
    segment_code : numpy.ndarray of int
        Segment position (0..n_segments-1) per customer.
    entry, tenure : numpy.ndarray of int
    churned : numpy.ndarray of bool
    n_segments : int

    Returns
    -------
    pandas.DataFrame
        Columns ``segment`` (code), ``period`` (t >= 1), ``at_risk`` (n_{s,t}) and
        ``churned`` (d_{s,t}); only cells with ``at_risk > 0``. Its size is at most
        segments x periods, whatever the number of customers.
    """
    n_periods = int(tenure.max())
    width = n_periods + 2
    flat_start = segment_code * width + entry + 1
    flat_stop = segment_code * width + tenure + 1
    size = n_segments * width
    delta = np.bincount(flat_start, minlength=size) - np.bincount(flat_stop, minlength=size)
    at_risk = np.cumsum(delta.reshape(n_segments, width), axis=1)
    churn_flat = segment_code[churned] * width + tenure[churned]
    churn_counts = np.bincount(churn_flat, minlength=size).reshape(n_segments, width)
    seg_idx, period = np.nonzero(at_risk[:, 1 : n_periods + 1] > 0)
    period = period + 1
    return pd.DataFrame(
        {
            "segment": seg_idx.astype(np.int64),
            "period": period.astype(np.int64),
            "at_risk": at_risk[seg_idx, period].astype(np.int64),
            "churned": churn_counts[seg_idx, period].astype(np.int64),
        }
    )


def risk_set_from_table(
    customers: pd.DataFrame, segments: Sequence[Hashable],
    columns: CustomerColumns | None = None,
) -> pd.DataFrame:
    """:func:`risk_set_table` of a pandas or Dask customer table.

    At-risk and churn counts of disjoint sets of customers add up, so a Dask table is
    reduced partition by partition on the workers and the partial tables are summed:
    only segments x periods cells leave them. Every partition is validated as a pandas
    table would be.

    Parameters
    ----------
    customers : pandas.DataFrame or dask.dataframe.DataFrame
        Customer table (DESIGN §3); spend columns are not needed.
    segments : sequence
        The segments, in the order of the codes in the result; a customer of another
        segment is an error.
    columns : CustomerColumns, optional

    Returns
    -------
    pandas.DataFrame
        As :func:`risk_set_table`.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.data import risk_set_from_table
    >>> customers = bayesclv.datasets.load_example()
    >>> table = risk_set_from_table(customers, sorted(customers["segment"].unique()))
    >>> int(table.loc[table["period"] == 1, "at_risk"].sum()) == len(customers)
    True
    """
    columns = columns or CustomerColumns()
    labels = [str(s) for s in segments]

    def partial(part: pd.DataFrame) -> pd.DataFrame:
        if part.empty:
            return pd.DataFrame({c: pd.Series([], dtype=np.int64)
                                 for c in ("segment", "period", "at_risk", "churned")})
        data = validate_customers(part, columns, require_spend=False)
        unknown = sorted(set(data.segment) - set(labels))
        if unknown:
            raise DataValidationError(
                f"Column {columns.segment!r}: {len(unknown)} segment(s) not among the "
                f"segments given: {unknown[:5]}."
            )
        return risk_set_table(segment_codes(data.segment, labels), data.entry, data.tenure,
                              data.churned, len(labels))

    if is_dask_frame(customers):
        from bayesclv._dask import partials

        return add_risk_sets([partials(customers, partial)])
    return add_risk_sets([partial(customers)])


def add_risk_sets(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The :func:`risk_set_table` of disjoint sets of customers together: counts add."""
    summed = pd.concat(tables).groupby(["segment", "period"], as_index=False, sort=True)[
        ["at_risk", "churned"]].sum()
    return summed.astype(np.int64).reset_index(drop=True)


def life_table(risk_set: pd.DataFrame, segments: Sequence[Hashable]) -> pd.DataFrame:
    """The life-table (Kaplan–Meier) estimate of retention from :func:`risk_set_table`.

    ``S_hat(t) = prod_{u <= t} (1 - d_u / n_u)`` per segment, with ``n_u`` customers at risk
    in period ``u`` and ``d_u`` of them churning.

    Returns
    -------
    pandas.DataFrame
        Indexed by (segment label, period): ``at_risk``, ``churned``, ``retention_rate``
        (``1 - d/n``) and ``survival``.
    """
    table = risk_set.assign(
        segment=np.asarray(segments, dtype=object)[risk_set["segment"].to_numpy()],
        retention_rate=1.0 - risk_set["churned"] / risk_set["at_risk"],
    )
    table["survival"] = table.groupby("segment", sort=False)["retention_rate"].cumprod()
    return table.set_index(["segment", "period"])


def survival_groups(
    segment_code: np.ndarray,
    entry: np.ndarray,
    tenure: np.ndarray,
    churned: np.ndarray,
) -> pd.DataFrame:
    """Unique ``(segment, entry, tenure, churned)`` rows with their counts.

    Customers sharing a row have the same likelihood term, so a likelihood (or a pointwise
    log-likelihood for model comparison) evaluated once per row and weighted by ``count``
    equals the per-customer sum. The number of rows is bounded by the distinct entry and
    tenure values, not by the number of customers.

    Parameters
    ----------
    segment_code : numpy.ndarray of int
        Segment position per customer.
    entry, tenure : numpy.ndarray of int
    churned : numpy.ndarray of bool

    Returns
    -------
    pandas.DataFrame
        Columns ``segment`` (code), ``entry``, ``tenure``, ``churned`` (bool) and
        ``count``, sorted by those columns.
    """
    keys = np.stack([
        np.asarray(segment_code, dtype=np.int64), np.asarray(entry, dtype=np.int64),
        np.asarray(tenure, dtype=np.int64), np.asarray(churned, dtype=np.int64),
    ])
    rows, counts = np.unique(keys, axis=1, return_counts=True)
    return pd.DataFrame(
        {
            "segment": rows[0],
            "entry": rows[1],
            "tenure": rows[2],
            "churned": rows[3].astype(bool),
            "count": counts.astype(np.int64),
        }
    )


def spend_statistics(
    segment_code: np.ndarray, n_periods_active: np.ndarray, mean_spend: np.ndarray,
    n_segments: int, grid: LaplaceGrid | None = None,
) -> dict[str, np.ndarray]:
    """Aggregates of the gamma-gamma likelihood: nothing is kept per customer.

    The terms that depend on the number of active periods ``x`` alone are evaluated once
    per unique ``(segment, x)``; sums of ``log z``, ``x log z``, ``log(x z)`` and ``x log(x
    z)`` are per segment. The one term that mixes a customer's data with a parameter,
    ``(p x + q) log(gamma + x z)``, is ``(p x + q) [log(x z) + log1p(gamma / (x z))]``;
    the sums of ``log1p(gamma / w)`` over a segment are integrals of the Laplace transform
    of its ``w = x z`` (:func:`bayesclv._math.sum_log1p_ratio`), tabulated here once on a
    fixed grid of nodes: the one covering these customers' ``w`` unless ``grid`` is given
    (a grid covering several tables makes their statistics additive, see
    :func:`training_statistics`).

    Returns
    -------
    dict
        ``x_seg``, ``x_value``, ``x_count``: unique (segment, x) pairs and counts;
        ``n_per_segment``, ``sum_x``, ``sum_log_z``, ``sum_x_log_z``, ``sum_log_w``,
        ``sum_x_log_w`` per segment; ``laplace_nodes`` (node), ``laplace_step`` (scalar)
        and ``laplace_one``, ``laplace_x`` (segment, node): ``sum exp(-t w)`` and ``sum x
        exp(-t w)`` over each segment's customers.
    """
    return finish_spend_sums([spend_sums(segment_code, n_periods_active, mean_spend,
                                         n_segments, grid)])


#: The per-segment sums of :func:`spend_statistics`, in the column order of ``spend_sums``.
_SPEND_SUM_KEYS = ("n_per_segment", "sum_x", "sum_log_z", "sum_x_log_z", "sum_log_w",
                   "sum_x_log_w")


def spend_sums(segment_code: np.ndarray, n_periods_active: np.ndarray,
               mean_spend: np.ndarray, n_segments: int, grid: LaplaceGrid | None = None
               ) -> dict[str, Any]:
    """:func:`spend_statistics` of part of a table, its sums kept as compensated pairs."""
    x = n_periods_active.astype(np.int64)
    x_float = x.astype(np.float64)
    log_z = np.log(mean_spend)
    w = x_float * mean_spend
    log_w = np.log(w)
    pairs, counts = np.unique(np.stack([segment_code, x]), axis=1, return_counts=True)
    grid = LaplaceGrid(w) if grid is None else grid
    laplace_one, laplace_x = exponential_sums_compensated(segment_code, x_float, w,
                                                          n_segments, grid)
    columns = np.column_stack([np.ones_like(x_float), x_float, log_z, x_float * log_z,
                               log_w, x_float * log_w])
    return {
        "x_seg": pairs[0], "x_value": pairs[1].astype(np.float64),
        "x_count": counts.astype(np.float64),
        "sums": grouped_sums(segment_code, columns, n_segments),
        "laplace_nodes": grid.nodes, "laplace_step": np.float64(grid.step),
        "laplace_one": laplace_one, "laplace_x": laplace_x,
    }


def finish_spend_sums(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`spend_statistics` of a table from the :func:`spend_sums` of its parts.

    The parts must share one Laplace grid (:meth:`LaplaceGrid.covering`).
    """
    if len(parts) == 1:
        x_seg, x_value, x_count = parts[0]["x_seg"], parts[0]["x_value"], parts[0]["x_count"]
    else:
        pairs = pd.DataFrame({
            "seg": np.concatenate([p["x_seg"] for p in parts]),
            "x": np.concatenate([p["x_value"] for p in parts]),
            "count": np.concatenate([p["x_count"] for p in parts]),
        }).groupby(["seg", "x"], sort=True)["count"].sum()
        x_seg = pairs.index.get_level_values("seg").to_numpy(dtype=np.int64)
        x_value = pairs.index.get_level_values("x").to_numpy(dtype=np.float64)
        x_count = pairs.to_numpy(dtype=np.float64)
    sums = rounded(add_compensated([p["sums"] for p in parts]))
    return {
        "x_seg": x_seg, "x_value": x_value, "x_count": x_count,
        **{key: np.ascontiguousarray(sums[:, j]) for j, key in enumerate(_SPEND_SUM_KEYS)},
        "laplace_nodes": parts[0]["laplace_nodes"],
        "laplace_step": parts[0]["laplace_step"],
        "laplace_one": rounded(add_compensated([p["laplace_one"] for p in parts])),
        "laplace_x": rounded(add_compensated([p["laplace_x"] for p in parts])),
    }


@dataclass(frozen=True)
class TrainingStatistics:
    """All that fitting needs from a customer table, with no row per customer.

    Attributes
    ----------
    segments : list of str
        The segment labels, sorted; the ``segment`` codes of the tables below index it.
    segment_sizes : numpy.ndarray of int64
        Customers per segment.
    max_tenure : int or None
        The longest tenure (sets the retention priors' scale); ``None`` without retention
        columns.
    median_spend : float or None
        The median of ``mean_spend`` (sets the spend priors' scale); ``None`` without
        spend columns.
    risk_set : pandas.DataFrame or None
        :func:`risk_set_table`.
    groups : pandas.DataFrame or None
        :func:`survival_groups`.
    spend : dict or None
        :func:`spend_statistics`.
    """

    segments: list[str]
    segment_sizes: np.ndarray
    max_tenure: int | None
    median_spend: float | None
    risk_set: pd.DataFrame | None
    groups: pd.DataFrame | None
    spend: dict[str, Any] | None

    @property
    def n_customers(self) -> int:
        """Number of customers in the table."""
        return int(self.segment_sizes.sum())


def training_statistics(
    customers: Any, columns: CustomerColumns | None = None, *, require_spend: bool = True,
    require_retention: bool = True,
) -> TrainingStatistics:
    """The sufficient statistics of a pandas or Dask customer table.

    Every statistic is a sum over customers (counts per risk-set cell and per
    ``(segment, entry, tenure, churned)`` row, per-segment sums and Laplace transforms of
    the spend data), so a Dask table is reduced on its workers, partition by partition,
    and only tables of segments x periods (or x grid nodes) leave them. Each partition is
    validated as a pandas table would be; customer ids are checked for duplicates over the
    whole table. A Dask table is read three times: for segments and ranges, for the
    statistics, and for the few values around the median spend (which is exact).

    Parameters
    ----------
    customers : pandas.DataFrame or dask.dataframe.DataFrame
        Customer table (DESIGN §3).
    columns : CustomerColumns, optional
    require_spend, require_retention : bool, default=True
        Which parts to compute (as in :func:`validate_customers`).

    Returns
    -------
    TrainingStatistics
        The same for a pandas table and any partitioning of it as a Dask table: sums over
        customers are compensated (:mod:`bayesclv._math`), so they come out correctly
        rounded whatever their order, but in vanishingly rare cases.

    Raises
    ------
    DataValidationError
        As :func:`validate_customers`, naming the column, rows and count.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.data import training_statistics
    >>> stats = training_statistics(bayesclv.datasets.load_example())
    >>> stats.n_customers, stats.segments
    (4000, ['organic', 'paid_search', 'partner', 'referral'])
    """
    columns = columns or CustomerColumns()
    need = {"require_spend": require_spend, "require_retention": require_retention}
    if is_dask_frame(customers):
        from bayesclv._dask import reduce_partitions

        return reduce_partitions(customers, columns, need)
    data = validate_customers(customers, columns, **need)
    ranges = partition_ranges(data)
    labels = sorted(ranges["segments"])
    parts = partition_statistics(data, labels, ranges["w_min"], ranges["w_max"])
    median = None if data.mean_spend is None else float(np.median(data.mean_spend))
    return combine_statistics([ranges], [parts], labels, median)


def partition_ranges(data: CustomerData) -> dict[str, Any]:
    """What the statistics of a table's parts must agree on: segments and data ranges."""
    w = (None if data.mean_spend is None
         else data.n_periods_active.astype(np.float64) * data.mean_spend)
    return {
        "segments": set(data.segment),
        "max_tenure": None if data.tenure is None else int(data.tenure.max()),
        "w_min": None if w is None else float(w.min()),
        "w_max": None if w is None else float(w.max()),
        "z_min": None if w is None else float(data.mean_spend.min()),
        "z_max": None if w is None else float(data.mean_spend.max()),
    }


def partition_statistics(data: CustomerData, labels: Sequence[str], w_min: float | None,
                         w_max: float | None) -> dict[str, Any]:
    """The additive statistics of one part of a table, coded by the global ``labels``."""
    codes = segment_codes(data.segment, labels)
    out: dict[str, Any] = {"sizes": np.bincount(codes, minlength=len(labels))}
    if data.tenure is not None:
        out["risk_set"] = risk_set_table(codes, data.entry, data.tenure, data.churned,
                                         len(labels))
        out["groups"] = survival_groups(codes, data.entry, data.tenure, data.churned)
    if data.mean_spend is not None:
        out["spend"] = spend_sums(codes, data.n_periods_active, data.mean_spend, len(labels),
                                  LaplaceGrid.covering(w_min, w_max))
    return out


def combine_statistics(ranges: Sequence[dict[str, Any]], parts: Sequence[dict[str, Any]],
                       labels: list[str], median_spend: float | None) -> TrainingStatistics:
    """Add up the statistics of the parts of a table (in the order given)."""
    tenures = [r["max_tenure"] for r in ranges if r["max_tenure"] is not None]
    risk_set = groups = spend = None
    if "risk_set" in parts[0]:
        risk_set = add_risk_sets([p["risk_set"] for p in parts])
        keys = ["segment", "entry", "tenure", "churned"]
        groups = pd.concat([p["groups"] for p in parts]).groupby(
            keys, as_index=False, sort=True)["count"].sum().reset_index(drop=True)
        groups["count"] = groups["count"].astype(np.int64)
    if "spend" in parts[0]:
        spend = finish_spend_sums([p["spend"] for p in parts])
    return TrainingStatistics(
        segments=list(labels),
        segment_sizes=np.sum([p["sizes"] for p in parts], axis=0).astype(np.int64),
        max_tenure=max(tenures) if tenures else None,
        median_spend=median_spend,
        risk_set=risk_set, groups=groups, spend=spend,
    )


# --------------------------------------------------------------------------------------
# Summarising a transaction log into the customer table
# --------------------------------------------------------------------------------------

#: Period aliases accepted by :func:`summarize`, with the unit name written to
#: ``attrs["period"]``. Weeks are pandas' ``"W"`` periods (Monday to Sunday).
PERIOD_UNITS: dict[str, str] = {
    "D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year",
}
_NAT = np.iinfo(np.int64).min  # datetime64 NaT viewed as int64
#: A period whose net amount is at most this fraction of its gross amount counts as
#: inactive when ``refunds="net"`` (so that a refund matching its purchase nets to zero
#: despite floating-point rounding).
_NET_TOLERANCE = 1e-9


def _period_alias(period: str) -> tuple[str, str]:
    if isinstance(period, str):
        alias = period.strip()
        if alias.upper() in PERIOD_UNITS:
            return alias.upper(), PERIOD_UNITS[alias.upper()]
        for key, unit in PERIOD_UNITS.items():
            if alias.lower() == unit:
                return key, unit
    raise ValueError(
        f"period must be one of {list(PERIOD_UNITS)} (or {list(PERIOD_UNITS.values())}); "
        f"got {period!r}."
    )


def parse_dates(series: pd.Series, column: str, rows: pd.Index, date_format: str | None,
                 *, allow_missing: bool) -> np.ndarray:
    """Dates as ``datetime64[D]`` (time of day dropped, time zones made naive)."""
    missing = series.isna().to_numpy()
    if not allow_missing and missing.any():
        _fail(column, rows, missing, "missing dates",
              "Every transaction needs a date; fill or remove these rows explicitly.",
              label="row index")
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        if pd.api.types.is_bool_dtype(series.dtype) or (
                pd.api.types.is_numeric_dtype(series.dtype) and date_format is None):
            _fail(column, rows, ~missing, f"numbers where dates are expected "
                  f"(dtype {series.dtype})",
                  "Numbers are ambiguous as dates: pass date_format (e.g. '%Y%m%d') or "
                  "convert the column with pandas.to_datetime first.", label="row index")
        try:
            if pd.api.types.is_numeric_dtype(series.dtype):
                text = series.astype("Int64").astype(str) if pd.api.types.is_float_dtype(
                    series.dtype) else series.astype(str)
                series = text.where(~missing, None)
            parsed = pd.to_datetime(series, format=date_format, errors="coerce")
        except (TypeError, ValueError) as error:
            raise DataValidationError(
                f"Column {column!r}: dates could not be parsed ({error}). Convert the column "
                "with pandas.to_datetime first (e.g. with utc=True for mixed time zones)."
            ) from error
        unparseable = parsed.isna().to_numpy() & ~missing
        if unparseable.any():
            _fail(column, rows, unparseable, "unparseable dates",
                  "Fix these values or pass date_format (a strftime format, or 'mixed').",
                  label="row index")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def _to_periods(days: np.ndarray, alias: str) -> np.ndarray:
    """Period ordinals of ``datetime64[D]`` values (NaT gives ``_NAT``)."""
    codes, uniques = pd.factorize(days.view(np.int64))
    valid = uniques != _NAT
    ordinals = np.full(len(uniques), _NAT, dtype=np.int64)
    ordinals[valid] = pd.DatetimeIndex(uniques[valid].astype("datetime64[D]")).to_period(
        alias).asi8
    return ordinals[codes]


def _positive_amounts(series: pd.Series, column: str, rows: pd.Index, refunds: str
                      ) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        _fail(column, rows, np.ones(len(series), bool), "boolean values where amounts are "
              "expected", "Check that amount_col names the amount column.", label="row index")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            _fail(column, rows, bad, f"non-numeric amounts (dtype {series.dtype})",
                  "Convert the column to numbers (strip currency symbols).", label="row index")
        _reject_mixed_types(series, column, rows, label="row index")
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        _fail(column, rows, np.isnan(values), "missing (NaN) amounts",
              "Fill or remove these rows explicitly; nothing is dropped silently.",
              label="row index")
    if not np.isfinite(values).all():
        _fail(column, rows, ~np.isfinite(values), "infinite amounts",
              "Replace them with finite numbers.", label="row index")
    if refunds == "error" and (values <= 0).any():
        _fail(column, rows, values <= 0, "zero or negative amounts (refunds?)",
              "Net each refund into the purchase it reverses and remove zero-amount rows "
              "beforehand, or pass refunds='net' to net amounts per customer and period.",
              label="row index")
    return values


def _first_per_group(codes: np.ndarray, values: np.ndarray, n_groups: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the smallest and largest of ``values`` (int64), to check constancy."""
    low = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(low, codes, values)
    np.maximum.at(high, codes, values)
    return low, high


def summarize(
    transactions: pd.DataFrame,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    period: str = "M",
    observation_end: str | pd.Timestamp | None = None,
    end_col: str | None = None,
    inactivity: int | None = None,
    segment_col: str | None = None,
    *,
    refunds: str = "error",
    date_format: str | None = None,
) -> pd.DataFrame:
    """Summarise a transaction log into the customer table of DESIGN §3, plus RFM columns.

    Time is cut into calendar periods (``period``) and each customer's periods are
    counted from the period of their first transaction, which is their period 1.

    Parameters
    ----------
    transactions : pandas.DataFrame or dask.dataframe.DataFrame
        One row per transaction. Other columns (quantity, ...) are ignored. A Dask
        DataFrame gives a Dask DataFrame: the log is shuffled by customer, the default
        ``observation_end`` is the latest date of all partitions, and each partition is
        summarised as a pandas log would be (same rows, partitioned by customer; errors
        are raised when the result is computed).
    customer_col, date_col, amount_col : str, default="customer_id", "date", "amount"
        Columns holding the customer id, the transaction date and the amount. Dates may
        be datetimes or strings; the time of day is dropped and time zones are made naive
        (local wall time).
    period : {"D", "W", "M", "Q", "Y"}, default="M"
        Calendar period (pandas period alias; ``"day"`` ... ``"year"`` also accepted).
        ``"W"`` weeks run Monday to Sunday. The unit name (``"month"``, ...) is written to
        ``result.attrs["period"]`` and every count below is in that unit.
    observation_end : date-like, optional
        The last day observed; defaults to the date of the last transaction.
        Transactions after it are an error (they are in the future of the data).
    end_col : str, optional
        **Contractual data**: the column with each customer's end (cancellation) date,
        repeated on every row of that customer; missing (NaT) while the customer is
        active. A customer is ``churned`` when the end date is on or before
        ``observation_end``; an end date after it is not yet a churn.
    inactivity : int, optional
        **Transactional data**: a customer without a transaction in the last
        ``inactivity`` periods (the period of ``observation_end`` included) is labelled
        churned in the period after their last transaction. Exactly one of ``end_col``
        and ``inactivity`` must be given.
    segment_col : str, optional
        Column with each customer's segment (e.g. acquisition channel); it must be
        constant within a customer. Copied to the ``segment`` column.
    refunds : {"error", "net"}, default="error"
        Policy for zero or negative amounts. ``"error"`` rejects them (net refunds into
        the purchase they reverse beforehand). ``"net"`` sums amounts per customer and
        period and treats a period whose net amount is not positive as a period without
        spend (it still counts as observed time); a customer with no positive period is
        an error.
    date_format : str, optional
        A strftime format (or ``"mixed"``) passed to :func:`pandas.to_datetime`. Needed
        for numeric dates such as ``19970101`` (``date_format="%Y%m%d"``).

    Returns
    -------
    pandas.DataFrame
        One row per customer, sorted by customer id (in order of first appearance when
        the ids cannot be sorted), with a RangeIndex and the columns:

        - ``customer_id``; ``segment`` (only with ``segment_col``);
        - ``tenure`` (int >= 1): periods observed as a customer. For a customer still
          active it runs from the first-transaction period to the period containing
          ``observation_end``, **which counts as a whole period even when
          observation_end falls inside it** (pass the last day of the last complete
          period as ``observation_end``, and leave out later transactions, to use
          complete periods only). For a churned customer it runs to the churn period;
        - ``churned`` (bool): True if the customer ended during period ``tenure``;
        - ``entry`` (int): always 0, since a transaction log starts at acquisition (no
          left truncation);
        - ``n_periods_active`` (int >= 1): distinct periods with spend;
        - ``mean_spend`` (float > 0): mean over active periods of the period's total;
        - ``recency`` (int >= 0): periods from the last active period to the period of
          ``observation_end`` (0: bought in the last period). Note: the marketing
          definition, not the ``lifetimes`` one (first to last purchase);
        - ``frequency`` (int >= 0): repeat active periods, ``n_periods_active - 1``
          (periods, not transactions, so that it is in the declared unit);
        - ``monetary`` (float > 0): mean spend per active period (equal to
          ``mean_spend``; kept under its RFM name);
        - ``n_transactions`` (int): rows of the log for the customer;
        - ``spend_trend`` (float >= 0): mean spend per period over the recent half of
          the customer's tenure divided by that over the first half (periods without
          spend count as 0; the first half has ``ceil(tenure/2)`` periods). 1 means
          flat, below 1 falling; NaN when ``tenure == 1``.

        ``attrs`` holds ``period`` (unit name), ``period_alias``, ``observation_end``
        (ISO date), ``churn_rule`` (``"contractual"`` or ``"inactivity"``) and, for the
        latter, ``inactivity``. The table passes :func:`validate_customers`.

    Raises
    ------
    ValueError
        If ``period`` or ``refunds`` is unknown, ``inactivity`` is not an int >= 1,
        ``observation_end`` is not a date, or not exactly one of ``end_col`` and
        ``inactivity`` is given.
    DataValidationError
        For a missing column or an empty log; missing customer ids; missing, numeric or
        unparseable dates; dates after ``observation_end``; NaN, infinite or
        non-numeric amounts; zero or negative amounts (with ``refunds="error"``);
        customers whose every period nets to a non-positive amount (``refunds="net"``);
        missing or changing segments; changing or unparseable end dates; transactions
        after the customer's end date. The message names the column, the first
        offending row labels (customer ids for per-customer problems) and the count.

    Notes
    -----
    The inactivity rule is a *definition*, not an observation: a customer labelled
    churned may come back, and a customer acquired less than ``inactivity`` periods
    before ``observation_end`` can never be labelled churned (there has not been
    enough time to tell). Choose ``inactivity`` from the purchase cycle (e.g. a gap
    longer than 95% of observed gaps between purchases).

    Everything is computed with vectorised numpy/pandas group operations (no loop over
    customers): about a second per million transactions.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesclv.data import summarize
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "date": ["2024-01-05", "2024-01-20", "2024-03-02", "2024-05-10"],
    ...     "amount": [10.0, 5.0, 30.0, 8.0],
    ... })
    >>> table = summarize(log, "customer_id", "date", "amount", period="M",
    ...                   observation_end="2024-06-30", inactivity=3)
    >>> table[["customer_id", "tenure", "churned", "n_periods_active", "mean_spend"]]
      customer_id  tenure  churned  n_periods_active  mean_spend
    0           a       4     True                 2        22.5
    1           b       2    False                 1         8.0
    >>> table[["recency", "frequency", "monetary"]].to_numpy().tolist()
    [[3.0, 1.0, 22.5], [1.0, 0.0, 8.0]]
    >>> table.attrs["period"]
    'month'
    """
    if is_dask_frame(transactions):
        from bayesclv._dask import summarize_partitions

        return summarize_partitions(transactions, summarize, {
            "customer_col": customer_col, "date_col": date_col, "amount_col": amount_col,
            "period": period, "observation_end": observation_end, "end_col": end_col,
            "inactivity": inactivity, "segment_col": segment_col, "refunds": refunds,
            "date_format": date_format})
    # ---- parameters -------------------------------------------------------------------
    alias, unit = _period_alias(period)
    if refunds not in ("error", "net"):
        raise ValueError(f"refunds must be 'error' or 'net'; got {refunds!r}.")
    if (end_col is None) == (inactivity is None):
        raise ValueError(
            "Say how churn is observed, with exactly one of: end_col='<column>' for "
            "contractual data (an end or cancellation date per customer, NaT while active), "
            "or inactivity=k for transactional data (a customer with no transaction in the "
            "last k periods is labelled churned). "
            + ("Both were given." if end_col is not None else "Neither was given.")
        )
    if inactivity is not None and (
            isinstance(inactivity, bool) or not isinstance(inactivity, (int, np.integer))
            or inactivity < 1):
        raise ValueError(f"inactivity must be an int >= 1 (periods); got {inactivity!r}.")

    # ---- the log and its columns ------------------------------------------------------
    if not isinstance(transactions, pd.DataFrame):
        raise DataValidationError(
            f"Expected a pandas DataFrame of transactions, got {type(transactions).__name__}."
        )
    needed = [customer_col, date_col, amount_col] + [c for c in (segment_col, end_col) if c]
    missing_cols = [c for c in needed if c not in transactions.columns]
    if missing_cols:
        raise DataValidationError(
            f"Column(s) {missing_cols} missing from the transaction log; it has columns "
            f"{list(transactions.columns)}. Pass customer_col=, date_col=, amount_col= "
            "(or segment_col=, end_col=) to name yours."
        )
    if len(transactions) == 0:
        raise DataValidationError("The transaction log is empty: there is nothing to summarise.")
    rows = pd.Index(transactions.index)

    id_series = transactions[customer_col]
    missing_id = id_series.isna().to_numpy()
    if missing_id.any():
        _fail(customer_col, rows, missing_id, "missing customer ids",
              "Every transaction needs a customer id.", label="row index")
    days = parse_dates(transactions[date_col], date_col, rows, date_format,
                        allow_missing=False)
    amounts = _positive_amounts(transactions[amount_col], amount_col, rows, refunds)

    if observation_end is None:
        end_day = days.max()
    else:
        try:
            end_stamp = pd.Timestamp(observation_end)
        except (TypeError, ValueError) as error:
            raise ValueError(f"observation_end must be a date; got {observation_end!r}."
                             ) from error
        if pd.isna(end_stamp):
            raise ValueError(f"observation_end must be a date; got {observation_end!r}.")
        if end_stamp.tzinfo is not None:
            end_stamp = end_stamp.tz_localize(None)
        end_day = np.datetime64(end_stamp.normalize().date(), "D")
    future = days > end_day
    if future.any():
        _fail(date_col, rows, future, f"dates after observation_end ({end_day})",
              "Pass a later observation_end, or remove the later transactions explicitly.",
              label="row index")

    # ---- customers ----------------------------------------------------------------------
    try:
        codes, customer_ids = pd.factorize(id_series, sort=True)
    except TypeError:
        codes, customer_ids = pd.factorize(id_series, sort=False)
    codes = codes.astype(np.int64)
    n_customers = len(customer_ids)
    customer_index = pd.Index(customer_ids)

    segment_values = None
    if segment_col is not None:
        seg_series = transactions[segment_col]
        missing_seg = seg_series.isna().to_numpy()
        if missing_seg.any():
            _fail(segment_col, rows, missing_seg, "missing segment labels",
                  "Give these rows a segment (or an explicit 'unknown' label).",
                  label="row index")
        seg_codes, seg_labels = pd.factorize(seg_series)
        low, high = _first_per_group(codes, seg_codes.astype(np.int64), n_customers)
        if (low != high).any():
            _fail(segment_col, customer_index, low != high,
                  "segment changing within a customer",
                  "A customer belongs to one segment: use e.g. the acquisition channel "
                  "(the segment of the first transaction).")
        segment_values = np.asarray(seg_labels, dtype=object)[low]

    customer_end = None
    if end_col is not None:
        end_days = parse_dates(transactions[end_col], end_col, rows, date_format,
                                allow_missing=True).view(np.int64)
        low, high = _first_per_group(codes, end_days, n_customers)
        if (low != high).any():
            _fail(end_col, customer_index, low != high, "end date changing within a customer",
                  "Give every row of a customer the same end date (NaT while active).")
        row_end = end_days
        after_end = (row_end != _NAT) & (days.view(np.int64) > row_end)
        if after_end.any():
            _fail(date_col, rows, after_end,
                  f"transactions after the customer's end date (column {end_col!r})",
                  "Check the end dates, or remove these transactions explicitly.",
                  label="row index")
        customer_end = low

    # ---- customer x period totals -------------------------------------------------------
    per = _to_periods(days, alias)
    end_period = int(_to_periods(np.array([end_day], dtype="datetime64[D]"), alias)[0])
    base = int(per.min())
    span = int(per.max()) - base + 1
    keys, inverse = np.unique(codes * span + (per - base), return_inverse=True)
    totals = np.bincount(inverse, weights=amounts, minlength=len(keys))
    cell_customer = keys // span
    cell_period = keys % span + base
    starts = np.flatnonzero(np.r_[True, cell_customer[1:] != cell_customer[:-1]])
    first_period = cell_period[starts]

    if refunds == "net":
        gross = np.bincount(inverse, weights=np.abs(amounts), minlength=len(keys))
        active = totals > _NET_TOLERANCE * gross
    else:
        active = np.ones(len(keys), dtype=bool)
    active_customer = cell_customer[active]
    active_period = cell_period[active]
    active_total = totals[active]
    n_active = np.bincount(active_customer, minlength=n_customers)
    if (n_active == 0).any():
        _fail(amount_col, customer_index, n_active == 0,
              "no period with a positive net amount",
              "Every purchase of these customers is refunded: remove them explicitly.")
    lasts = np.flatnonzero(np.r_[active_customer[1:] != active_customer[:-1], True])
    last_period = active_period[lasts]
    spend_sum = np.bincount(active_customer, weights=active_total, minlength=n_customers)

    # ---- churn and tenure ---------------------------------------------------------------
    observed_tenure = end_period - first_period + 1
    if customer_end is not None:
        churned = (customer_end != _NAT) & (customer_end <= end_day.astype(np.int64))
        churn_period = np.full(n_customers, end_period, dtype=np.int64)
        churn_period[churned] = _to_periods(customer_end[churned].astype("datetime64[D]"),
                                            alias)
        tenure = np.where(churned, churn_period - first_period + 1, observed_tenure)
    else:
        churned = (end_period - last_period) >= int(inactivity)
        tenure = np.where(churned, last_period - first_period + 2, observed_tenure)
    tenure = tenure.astype(np.int64)

    # ---- spend trend: recent half of the tenure against the first half -------------------
    offset = active_period - first_period[active_customer]
    recent = 2 * offset >= tenure[active_customer]
    recent_sum = np.bincount(active_customer, weights=active_total * recent,
                             minlength=n_customers)
    early_sum = spend_sum - recent_sum
    n_recent = tenure // 2
    n_early = tenure - n_recent
    with np.errstate(divide="ignore", invalid="ignore"):
        trend = (recent_sum / np.maximum(n_recent, 1)) / (early_sum / n_early)
    trend = np.where(tenure >= 2, trend, np.nan)

    # ---- the table ----------------------------------------------------------------------
    mean_spend = spend_sum / n_active
    table = pd.DataFrame({"customer_id": customer_index.to_numpy()})
    if segment_values is not None:
        table["segment"] = segment_values
    table["tenure"] = tenure
    table["churned"] = churned.astype(bool)
    table["entry"] = np.zeros(n_customers, dtype=np.int64)
    table["n_periods_active"] = n_active.astype(np.int64)
    table["mean_spend"] = mean_spend
    table["recency"] = (end_period - last_period).astype(np.int64)
    table["frequency"] = (n_active - 1).astype(np.int64)
    table["monetary"] = mean_spend
    table["n_transactions"] = np.bincount(codes, minlength=n_customers).astype(np.int64)
    table["spend_trend"] = trend
    table.attrs.update({
        "period": unit,
        "period_alias": alias,
        "observation_end": str(end_day),
        "churn_rule": "contractual" if end_col is not None else "inactivity",
    })
    if inactivity is not None:
        table.attrs["inactivity"] = int(inactivity)
    return table
