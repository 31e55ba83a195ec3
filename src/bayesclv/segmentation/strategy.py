"""A marketing strategy per customer segment, from the segment's value and share of value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SEGMENT_STRATEGIES", "default_segment_strategy", "segment_strategies"]

#: The strategies of :func:`default_segment_strategy`, with what each means.
SEGMENT_STRATEGIES: dict[str, str] = {
    "retain": "customers worth more than average and a large share of total value: "
              "protect them (service, loyalty programmes, churn prevention)",
    "develop": "customers worth more than average but a small share of total value: "
               "grow the segment (acquire look-alikes, deepen relationships)",
    "upgrade": "customers worth less than average that still carry a large share of "
               "total value: raise value per customer (up-selling, cross-selling)",
    "maintain": "customers worth less than average and a small share of total value: "
                "serve at low cost",
}

_REQUIRED = ("n_customers", "clv_per_customer_mean", "total_mean", "share_mean")


def default_segment_strategy(report: pd.DataFrame) -> pd.Series:
    """The default strategy of each segment, from its value per customer and value share.

    A segment's customers are *high value* when its posterior mean CLV per customer is
    at least the overall CLV per customer (total value over all customers), and the
    segment has a *large share* when its posterior mean share of total value is at
    least the fair share ``1 / n_segments``:

    ===========  ============  =============
    value        large share   small share
    ===========  ============  =============
    high         ``retain``    ``develop``
    low          ``upgrade``   ``maintain``
    ===========  ============  =============

    See :data:`SEGMENT_STRATEGIES` for what each strategy means.

    Parameters
    ----------
    report : pandas.DataFrame
        A segment report (:meth:`bayesclv.CLVModel.segment_report`), indexed by
        segment, with ``n_customers``, ``clv_per_customer_mean``, ``total_mean`` and
        ``share_mean``.

    Returns
    -------
    pandas.Series of str
        The strategy per segment, with the report's index, named ``strategy``.

    Raises
    ------
    ValueError
        If a column is missing from ``report``.

    Examples
    --------
    >>> import pandas as pd
    >>> report = pd.DataFrame({
    ...     "n_customers": [5, 20, 30, 140],
    ...     "clv_per_customer_mean": [100.0, 60.0, 10.0, 7.0],
    ...     "total_mean": [500.0, 1200.0, 300.0, 980.0],
    ... }, index=pd.Index(["a", "b", "c", "d"], name="segment"))
    >>> report["share_mean"] = report["total_mean"] / report["total_mean"].sum()
    >>> default_segment_strategy(report).tolist()
    ['develop', 'retain', 'maintain', 'upgrade']
    """
    missing = [c for c in _REQUIRED if c not in report.columns]
    if missing:
        raise ValueError(f"The segment report lacks column(s) {missing} needed by the "
                         "default strategy rule.")
    n_total = float(report["n_customers"].sum())
    overall = float(report["total_mean"].sum()) / n_total if n_total > 0 else np.nan
    high_value = report["clv_per_customer_mean"].to_numpy(dtype=np.float64) >= overall
    large_share = report["share_mean"].to_numpy(dtype=np.float64) >= 1.0 / max(len(report), 1)
    strategy = np.where(high_value, np.where(large_share, "retain", "develop"),
                        np.where(large_share, "upgrade", "maintain"))
    return pd.Series(strategy.astype(object), index=report.index, name="strategy")


def segment_strategies(
    report: pd.DataFrame,
    strategy: Mapping[Any, str] | Callable[[pd.Series], str] | None = None,
) -> pd.Series:
    """A strategy per segment of a segment report: the default rule, a mapping or a function.

    Parameters
    ----------
    report : pandas.DataFrame
        A segment report, indexed by segment.
    strategy : mapping, callable or None, default=None
        ``None`` applies :func:`default_segment_strategy`; a mapping gives the strategy
        of each segment (``{"high": "retain", ...}``; it must name every segment of the
        report); a callable is called on each row of the report (a
        :class:`pandas.Series` whose ``name`` is the segment) and returns its strategy.

    Returns
    -------
    pandas.Series
        The strategy per segment, with the report's index, named ``strategy``.

    Raises
    ------
    ValueError
        If a mapping leaves segments of the report without a strategy.
    TypeError
        If ``strategy`` is neither None, a mapping nor a callable.

    Examples
    --------
    >>> import pandas as pd
    >>> report = pd.DataFrame({"clv_per_customer_mean": [80.0, 5.0]},
    ...                       index=pd.Index(["high", "low"], name="segment"))
    >>> segment_strategies(report, {"high": "retain", "low": "maintain"}).tolist()
    ['retain', 'maintain']
    >>> segment_strategies(
    ...     report, lambda row: "retain" if row["clv_per_customer_mean"] > 50 else "upgrade"
    ... ).tolist()
    ['retain', 'upgrade']
    """
    if strategy is None:
        return default_segment_strategy(report)
    if isinstance(strategy, Mapping):
        missing = [s for s in report.index if s not in strategy]
        if missing:
            raise ValueError(
                f"The strategy mapping has no entry for segment(s) {missing}; it covers "
                f"{list(strategy)}. Give every segment a strategy, or pass a callable."
            )
        values = [strategy[s] for s in report.index]
    elif callable(strategy):
        values = [strategy(row) for _, row in report.iterrows()]
    else:
        raise TypeError("strategy must be None, a mapping segment -> strategy or a callable "
                        f"on a report row; got {type(strategy).__name__}.")
    return pd.Series(values, index=report.index, name="strategy", dtype=object)
