"""Dask DataFrames in, Dask DataFrames out: the partition-wise forms of the pandas paths.

Dask is optional (``pip install 'bayesclv[dask]'``); nothing here imports it unless a Dask
DataFrame was passed in, so :func:`is_dask_frame` costs nothing on the pandas path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import validate_customers
from bayesclv.data.statistics import (
    combine_statistics,
    median_spend,
    partition_ranges,
    partition_statistics,
)
from bayesclv.data.transactions import parse_dates
from bayesclv.exceptions import DataValidationError

__all__ = ["is_dask_frame", "partials", "predict_partitions", "reduce_partitions",
           "summarize_partitions"]


def is_dask_frame(obj: object) -> bool:
    """Whether ``obj`` is a ``dask.dataframe.DataFrame`` (without importing Dask)."""
    module = sys.modules.get("dask.dataframe")
    return module is not None and isinstance(obj, module.DataFrame)


def _broadcast(obj: object) -> Any:
    """``obj`` as one node of the task graph, sent once to each worker that needs it."""
    import dask

    return dask.delayed(obj, pure=True, traverse=False)


def summarize_partitions(transactions: Any, summarize: Callable[..., pd.DataFrame],
                         kwargs: dict[str, Any]) -> Any:
    """:func:`bayesclv.data.summarize` on a Dask DataFrame of transactions.

    The log is shuffled so that each customer's transactions share a partition, the
    observation end (when not given) is the latest date over all partitions, and each
    partition is summarised by the pandas code with that same end: the rows are those of
    the pandas path, partitioned by customer (sorted by id within each partition).
    """
    customer_col, date_col = kwargs["customer_col"], kwargs["date_col"]
    for column in (customer_col, date_col):
        if column not in transactions.columns:
            raise ValueError(f"Column {column!r} missing from the transactions.")
    if kwargs["observation_end"] is None:
        latest = transactions[date_col].map_partitions(
            _latest_date, kwargs["date_format"], meta=pd.Series([], dtype="datetime64[ns]")
        ).compute()
        if latest.isna().all():
            raise ValueError("The transactions are empty: there is nothing to summarise.")
        kwargs = {**kwargs, "observation_end": latest.max()}
    # The column types of the result, from the first rows of the log.
    meta = summarize(transactions.head(1000, npartitions=-1), **kwargs).iloc[:0]
    by_customer = transactions.shuffle(on=customer_col)
    return by_customer.map_partitions(_summarize_partition, summarize, kwargs, meta,
                                      meta=meta)


def _latest_date(dates: pd.Series, date_format: str | None) -> pd.Series:
    if dates.empty:
        return pd.Series([pd.NaT], dtype="datetime64[ns]")
    parsed = parse_dates(dates, str(dates.name), dates.index, date_format, allow_missing=False)
    return pd.Series([parsed.max()], dtype="datetime64[ns]")


def _summarize_partition(part: pd.DataFrame, summarize: Callable[..., pd.DataFrame],
                         kwargs: dict[str, Any], meta: pd.DataFrame) -> pd.DataFrame:
    # A partition the shuffle left empty has no customer: the pandas code would reject it.
    return meta if part.empty else summarize(part, **kwargs)


def predict_partitions(model: Any, customers: Any, meta: pd.DataFrame,
                       columns: Any = None) -> Any:
    """``model.predict`` on every partition of ``customers``; the model is sent once.

    Each customer's summary depends only on its own inputs and the posterior (draws are
    keyed by the seed and the customer's inputs, not its position), so the partition-wise
    result equals the pandas one row for row, up to floating-point rounding in sums that
    are vectorised over the partition. Ids repeated across partitions are refused, as the
    pandas path refuses them (one pass over the id column, before any valuation).
    """
    if columns is not None:
        _check_unique_ids(customers, columns)
    return customers.map_partitions(_predict_partition, _broadcast(model), meta, meta=meta)


def _predict_partition(part: pd.DataFrame, model: Any, meta: pd.DataFrame) -> pd.DataFrame:
    return meta if part.empty else model.predict(part)


def partials(frame: Any, func: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """``func`` of every partition of a Dask ``frame``, the results concatenated.

    For reductions whose partial results add up (counts): only those small tables leave
    the workers.
    """
    return frame.map_partitions(func, meta=func(frame._meta)).compute()


#: Bins of the histogram of log spend through which the exact median is found.
_MEDIAN_BINS = 4096


def reduce_partitions(customers: Any, columns: Any, need: dict[str, bool]) -> Any:
    """:func:`bayesclv.data.training_statistics` of a Dask customer table.

    Three passes over the partitions: their segments and data ranges (so that every
    partition codes segments alike and tabulates the spend transform on one grid), their
    additive statistics with a histogram of log spend, and the distinct spend values (with
    their counts) in the one or two histogram bins holding the median.
    """
    import dask

    _check_unique_ids(customers, columns)
    parts = customers.to_delayed()
    ranges = dask.compute(*[dask.delayed(_partition_ranges)(part, columns, need)
                            for part in parts])
    kept = [i for i, r in enumerate(ranges) if r is not None]
    if not kept:
        raise DataValidationError("The customer table is empty: there is nothing to model.")
    parts, ranges = [parts[i] for i in kept], [ranges[i] for i in kept]
    labels = sorted(set().union(*(r["segments"] for r in ranges)))
    spend_range = None
    if need["require_spend"]:
        spending = [r for r in ranges if r["w_min"] is not None]
        if not spending:
            median_spend(np.empty(0))  # raises: no customer has spend
        spend_range = {key: pick(r[key] for r in spending) for key, pick in (
            ("w_min", min), ("w_max", max), ("z_min", min), ("z_max", max))}
    statistics = dask.compute(*[dask.delayed(_partition_statistics)(
        part, columns, need, labels, spend_range) for part in parts])
    median = None
    if spend_range is not None:
        median = _exact_median(parts, statistics, spend_range, columns)
    return combine_statistics(ranges, statistics, labels, median)


def _check_unique_ids(customers: Any, columns: Any) -> None:
    if columns.customer in customers.columns:
        ids = customers[columns.customer]
    elif customers.index.name == columns.customer:
        ids = customers.index.to_series()
    else:
        return  # the partitions' validation names the missing column
    counts = ids.value_counts(split_out=max(1, customers.npartitions))
    repeated = counts[counts > 1].compute()
    if len(repeated):
        listed = ", ".join(repr(i) for i in sorted(repeated.index.tolist(), key=str)[:5])
        raise DataValidationError(
            f"Column {columns.customer!r}: duplicate customer ids across the table "
            f"({len(repeated)} ids, e.g. {listed}). The table must have one row per "
            "customer; aggregate duplicates first."
        )


def _partition_ranges(part: pd.DataFrame, columns: Any, need: dict[str, bool]) -> Any:
    if part.empty:
        return None
    return partition_ranges(validate_customers(part, columns, **need))


def _spend_bins(mean_spend: Any, spend_range: dict[str, float]) -> Any:
    low, high = np.log(spend_range["z_min"]), np.log(spend_range["z_max"])
    scale = _MEDIAN_BINS / (high - low) if high > low else 0.0
    bins = ((np.log(mean_spend) - low) * scale).astype(np.int64)
    return np.clip(bins, 0, _MEDIAN_BINS - 1)


def _partition_statistics(part: pd.DataFrame, columns: Any, need: dict[str, bool],
                          labels: list[str], spend_range: Any) -> dict[str, Any]:
    data = validate_customers(part, columns, **need)
    if spend_range is None:
        return partition_statistics(data, labels, None, None)
    out = partition_statistics(data, labels, spend_range["w_min"], spend_range["w_max"])
    spent = data.mean_spend[data.spend_observed]
    out["spend_histogram"] = np.bincount(_spend_bins(spent, spend_range),
                                         minlength=_MEDIAN_BINS)
    return out


def _spend_in_bins(part: pd.DataFrame, columns: Any, spend_range: dict[str, float],
                   first: int, last: int) -> Any:
    values = part[columns.mean_spend].to_numpy(dtype=np.float64, na_value=np.nan)
    # Missing exactly for the customers with no active period (validated): no spend.
    values = values[~np.isnan(values)]
    bins = _spend_bins(values, spend_range)
    # Distinct values and counts: a price many customers share travels once.
    return np.unique(values[(bins >= first) & (bins <= last)], return_counts=True)


def _exact_median(parts: list[Any], statistics: Any, spend_range: dict[str, float],
                  columns: Any) -> float:
    """The median of every partition's spend, as ``numpy.median`` of the whole column."""
    import dask
    cumulative = np.cumsum(np.sum([s["spend_histogram"] for s in statistics], axis=0))
    n = int(cumulative[-1])
    ranks = [(n - 1) // 2, n // 2]
    first, last = (int(np.searchsorted(cumulative, r, side="right")) for r in ranks)
    before = int(cumulative[first - 1]) if first > 0 else 0
    found = dask.compute(*[dask.delayed(_spend_in_bins)(part, columns, spend_range, first,
                                                        last) for part in parts])
    middle = pd.Series(np.concatenate([c for _, c in found]),
                       index=np.concatenate([v for v, _ in found])).groupby(level=0).sum()
    # Rank r (0-based, within the bins) falls on the first value whose running count > r.
    running = np.cumsum(middle.to_numpy())
    values = middle.index.to_numpy(dtype=np.float64)
    chosen = [values[np.searchsorted(running, r - before, side="right")] for r in ranks]
    return float(np.mean(chosen))
