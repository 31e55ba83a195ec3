"""Dask DataFrames in, Dask DataFrames out: the partition-wise forms of the pandas paths.

Dask is optional (``pip install 'bayesclv[dask]'``); nothing here imports it unless a Dask
DataFrame was passed in, so :func:`is_dask_frame` costs nothing on the pandas path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["is_dask_frame", "partials", "predict_partitions", "summarize_partitions"]


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
    from bayesclv.data import parse_dates

    if dates.empty:
        return pd.Series([pd.NaT], dtype="datetime64[ns]")
    parsed = parse_dates(dates, str(dates.name), dates.index, date_format, allow_missing=False)
    return pd.Series([parsed.max()], dtype="datetime64[ns]")


def _summarize_partition(part: pd.DataFrame, summarize: Callable[..., pd.DataFrame],
                         kwargs: dict[str, Any], meta: pd.DataFrame) -> pd.DataFrame:
    # A partition the shuffle left empty has no customer: the pandas code would reject it.
    return meta if part.empty else summarize(part, **kwargs)


def predict_partitions(model: Any, customers: Any, meta: pd.DataFrame) -> Any:
    """``model.predict`` on every partition of ``customers``; the model is sent once.

    Each customer's summary depends only on its own inputs and the posterior (draws are
    keyed by the seed and the customer's inputs, not its position), so the partition-wise
    result equals the pandas one row for row, up to floating-point rounding in sums that
    are vectorised over the partition.
    """
    return customers.map_partitions(_predict_partition, _broadcast(model), meta, meta=meta)


def _predict_partition(part: pd.DataFrame, model: Any, meta: pd.DataFrame) -> pd.DataFrame:
    return meta if part.empty else model.predict(part)


def partials(frame: Any, func: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """``func`` of every partition of a Dask ``frame``, the results concatenated.

    For reductions whose partial results add up (counts): only those small tables leave
    the workers.
    """
    return frame.map_partitions(func, meta=func(frame._meta)).compute()
