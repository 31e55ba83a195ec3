"""The edge of the library: customer tables in, clean arrays and sufficient statistics out.

* :mod:`bayesclv.data.columns`: the column contract and :func:`validate_customers`;
* :mod:`bayesclv.data.statistics`: risk sets, survival groups and spend statistics;
* :mod:`bayesclv.data.transactions`: a transaction log summarised into a customer table;
* :mod:`bayesclv.data._dask`: the same on the partitions of a Dask DataFrame.

The functions here take a pandas or a Dask table and send each to its path. Errors name
the column, the first offending customer ids and how many rows are affected.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd

from bayesclv.data._dask import (
    is_dask_frame,
    partials,
    reduce_partitions,
    summarize_partitions,
)
from bayesclv.data.columns import (
    MAX_SPEND,
    MAX_TENURE,
    SINGLE_SEGMENT,
    CustomerColumns,
    CustomerData,
    validate_customers,
)
from bayesclv.data.statistics import (
    TrainingStatistics,
    add_risk_sets,
    combine_statistics,
    frame_statistics,
    life_table,
    log_spend_statistics,
    partition_ranges,
    partition_statistics,
    risk_set_of_part,
    risk_set_table,
    segment_codes,
    spend_statistics,
    survival_groups,
)
from bayesclv.data.transactions import (
    PERIOD_UNITS,
    parse_dates,
    period_alias,
    period_ordinals,
    summarize_frame,
)

__all__ = [
    "MAX_SPEND",
    "MAX_TENURE",
    "PERIOD_UNITS",
    "SINGLE_SEGMENT",
    "CustomerColumns",
    "CustomerData",
    "is_dask_frame",
    "TrainingStatistics",
    "add_risk_sets",
    "combine_statistics",
    "life_table",
    "parse_dates",
    "partition_ranges",
    "partition_statistics",
    "period_alias",
    "period_ordinals",
    "risk_set_from_table",
    "risk_set_table",
    "segment_codes",
    "log_spend_statistics",
    "spend_statistics",
    "summarize",
    "survival_groups",
    "training_statistics",
    "validate_customers",
]


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
    kernel = functools.partial(risk_set_of_part, columns=columns, labels=labels)
    if is_dask_frame(customers):
        return add_risk_sets([partials(customers, kernel)])
    return add_risk_sets([kernel(customers)])


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
        return reduce_partitions(customers, columns, need)
    return frame_statistics(customers, columns, need)


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
    log_spend: bool = False,
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
    log_spend : bool, default=False
        Also write ``mean_log_spend`` and ``sd_log_spend``: the mean and standard
        deviation (``ddof=0``) over active periods of the natural log of the period's
        total. The ``"lognormal"`` spend family needs them, and with them spend families
        can be compared on every period's revenue (:func:`bayesclv.compare`).

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
        - ``mean_log_spend``, ``sd_log_spend`` (only with ``log_spend=True``);
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
    options = {
        "customer_col": customer_col, "date_col": date_col, "amount_col": amount_col,
        "period": period, "observation_end": observation_end, "end_col": end_col,
        "inactivity": inactivity, "segment_col": segment_col, "refunds": refunds,
        "date_format": date_format, "log_spend": log_spend}
    if is_dask_frame(transactions):
        return summarize_partitions(transactions, summarize_frame, options)
    return summarize_frame(transactions, **options)
