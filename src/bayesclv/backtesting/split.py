"""A transaction log split at a cutoff: the customer table before it, what happened after.

:func:`split_log` summarises the rows dated on or before the cutoff exactly as
:func:`bayesclv.data.summarize` would on the day of the cutoff (so nothing after it can
reach the fit), and records, for each customer of that table, whether it was still a
customer at the end of each of the ``horizon`` periods after the cutoff and what it paid
in each.

Timing follows the models (DESIGN §4.3): a customer counts as active in holdout period
``j`` when it has not ended by the end of that period, and a payment counts at the end of
a period the customer stays through. With contract end dates, what a customer pays in the
period its contract ends is therefore not part of the forecast; it is kept apart
(:attr:`HoldoutSplit.revenue` against :attr:`HoldoutSplit.active`), never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayesclv.data import parse_dates, period_alias, period_ordinals, summarize
from bayesclv.exceptions import DataValidationError

__all__ = ["HoldoutSplit", "split_log"]


@dataclass
class HoldoutSplit:
    """The training table of one cutoff and the holdout outcomes of its customers.

    Attributes
    ----------
    cutoff : pandas.Timestamp
        Last day of the training data (the last day of a period).
    horizon : int
        Holdout periods.
    unit, alias : str
        Period unit name (``"month"``) and pandas alias (``"M"``).
    training : pandas.DataFrame
        :func:`bayesclv.data.summarize` of the rows dated on or before ``cutoff``, with
        ``observation_end=cutoff``: one row per customer, sorted by id.
    periods : list of str
        The holdout periods' calendar labels (``"2024-07"``, ...).
    active : numpy.ndarray of bool, shape (customers, horizon)
        Still a customer at the end of holdout period ``j`` (column ``j - 1``), by the same
        churn rule as the training table, applied to the whole log.
    revenue : numpy.ndarray, shape (customers, horizon)
        Sum of the customer's amounts dated in holdout period ``j``.
    left_out_customers, left_out_rows : int
        Customers whose first transaction is after the cutoff (not in the fit), and
        their rows.
    rows_after_horizon : int
        Rows dated after the last holdout period (they only inform churn labels).
    churn_rule : str
        ``"contractual"`` or ``"inactivity"``.
    notes : list of str
        What was left out or needs saying, in words (customers acquired after the
        cutoff, rows after the horizon, the inactivity rule's delay).
    """

    cutoff: pd.Timestamp
    horizon: int
    unit: str
    alias: str
    training: pd.DataFrame
    periods: list[str]
    active: np.ndarray
    revenue: np.ndarray
    left_out_customers: int
    left_out_rows: int
    rows_after_horizon: int
    churn_rule: str
    notes: list[str] = field(default_factory=list)

    @property
    def counted_revenue(self) -> np.ndarray:
        """Revenue of the periods each customer stays through: what the models forecast."""
        return np.where(self.active, self.revenue, 0.0)

    @property
    def uncounted_revenue(self) -> np.ndarray:
        """Revenue of periods a customer does not stay through (its contract's last)."""
        return np.where(self.active, 0.0, self.revenue)


def cutoff_day(cutoff: object, alias: str, unit: str) -> pd.Timestamp:
    """The cutoff as a day, refused unless it is the last day of a period."""
    try:
        stamp = pd.Timestamp(cutoff)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cutoff must be a date; got {cutoff!r}.") from error
    if pd.isna(stamp):
        raise ValueError(f"cutoff must be a date; got {cutoff!r}.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    stamp = stamp.normalize()
    containing = pd.Period(stamp, alias)
    last_day = containing.end_time.normalize()
    if stamp != last_day:
        previous = (containing - 1).end_time.normalize()
        raise ValueError(
            f"cutoff {stamp.date()} is not the last day of a {unit}: the {unit} "
            f"containing it would be split between training and holdout. Use "
            f"{previous.date()} or {last_day.date()}."
        )
    return stamp


def split_log(
    transactions: pd.DataFrame,
    cutoff: object,
    horizon: int,
    *,
    period: str = "M",
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    end_col: str | None = None,
    inactivity: int | None = None,
    segment_col: str | None = None,
    refunds: str = "error",
    date_format: str | None = None,
    log_spend: bool = False,
) -> HoldoutSplit:
    """Split a transaction log at ``cutoff`` into a customer table and holdout outcomes.

    Parameters
    ----------
    transactions : pandas.DataFrame
        The whole log (rows before and after the cutoff), as for
        :func:`bayesclv.data.summarize`.
    cutoff : date-like
        Last day of the training data; it must be the last day of a ``period``.
    horizon : int
        Holdout periods after the cutoff; the log must reach into the last of them.
    period, customer_col, date_col, amount_col, end_col, inactivity, segment_col, \
refunds, date_format, log_spend
        As :func:`bayesclv.data.summarize`.

    Returns
    -------
    HoldoutSplit

    Raises
    ------
    ValueError
        If the cutoff is not the last day of a period, ``horizon`` is not a positive
        integer, no row is dated on or before the cutoff, or the log stops before the
        last holdout period.
    DataValidationError
        As :func:`bayesclv.data.summarize`, for the rows before the cutoff and for the
        whole log.
    """
    alias, unit = period_alias(period)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1 ({unit}s); got {horizon!r}.")
    horizon = int(horizon)
    day = cutoff_day(cutoff, alias, unit)
    if not isinstance(transactions, pd.DataFrame):
        raise DataValidationError(
            f"Expected a pandas DataFrame of transactions, got {type(transactions).__name__}."
        )
    for name, column in (("customer_col", customer_col), ("date_col", date_col)):
        if column not in transactions.columns:
            raise DataValidationError(
                f"Column {column!r} ({name}) missing from the transaction log; it has "
                f"columns {list(transactions.columns)}."
            )
    options = {"customer_col": customer_col, "date_col": date_col, "amount_col": amount_col,
               "period": alias, "end_col": end_col, "inactivity": inactivity,
               "segment_col": segment_col, "refunds": refunds, "date_format": date_format,
               "log_spend": log_spend}
    rows = pd.Index(transactions.index)
    days = parse_dates(transactions[date_col], date_col, rows, date_format,
                       allow_missing=False)
    ordinals = period_ordinals(days, alias)
    cutoff_ordinal = pd.Period(day, alias).ordinal
    last_ordinal = cutoff_ordinal + horizon
    before = days <= np.datetime64(day.date(), "D")
    if not before.any():
        raise ValueError(f"No transaction is dated on or before the cutoff {day.date()}: "
                         "there is nothing to fit.")
    if ordinals.max() < last_ordinal:
        last_period = pd.Period(ordinal=last_ordinal, freq=alias)
        raise ValueError(
            f"The log ends on {pd.Timestamp(days.max()).date()}, before the last holdout "
            f"{unit} ({last_period}) of a {horizon}-{unit} horizon after {day.date()}: "
            "shorten the horizon or move the cutoff earlier."
        )

    training = summarize(transactions[before], observation_end=day, **options)
    ids = pd.Index(training["customer_id"])
    code = ids.get_indexer(transactions[customer_col])
    known = code >= 0
    left_out_rows = int((~known).sum())
    left_out_customers = int(pd.unique(transactions.loc[~known, customer_col]).size) \
        if left_out_rows else 0

    # Churn labels from the whole log of the training customers: the later rows show who
    # came back (inactivity) and the end dates say who ended when (contracts).
    log_end = max(pd.Timestamp(days.max()), pd.Period(ordinal=last_ordinal,
                                                      freq=alias).end_time.normalize())
    whole = summarize(transactions[known], observation_end=log_end, **options)
    order = ids.get_indexer(whole["customer_id"])
    first = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, code[known], ordinals[known])
    tenure = np.empty(len(ids), dtype=np.int64)
    churned = np.empty(len(ids), dtype=bool)
    tenure[order] = whole["tenure"].to_numpy()
    churned[order] = whole["churned"].to_numpy()
    end_ordinal = np.where(churned, first + tenure - 1, np.iinfo(np.int64).max)
    holdout = cutoff_ordinal + np.arange(1, horizon + 1)
    active = end_ordinal[:, None] > holdout[None, :]

    amounts = pd.to_numeric(transactions[amount_col], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    in_holdout = known & (ordinals > cutoff_ordinal) & (ordinals <= last_ordinal)
    revenue = np.zeros((len(ids), horizon))
    np.add.at(revenue, (code[in_holdout], ordinals[in_holdout] - cutoff_ordinal - 1),
              amounts[in_holdout])
    rows_after = int((known & (ordinals > last_ordinal)).sum())

    notes = []
    if left_out_customers:
        notes.append(f"{left_out_customers:,} customers ({left_out_rows:,} rows) first "
                     f"bought after the cutoff: they are not in the fit or the scores.")
    if rows_after:
        notes.append(f"{rows_after:,} rows after the last holdout {unit} only inform "
                     "churn labels.")
    if inactivity is not None:
        notes.append(f"Churn is labelled after {int(inactivity)} {unit}s without a "
                     "purchase, so who is still active at the end of the holdout is "
                     "only known as far as the log goes on after it.")
    return HoldoutSplit(
        cutoff=day, horizon=horizon, unit=unit, alias=alias, training=training,
        periods=[str(pd.Period(ordinal=o, freq=alias)) for o in holdout],
        active=active, revenue=revenue, left_out_customers=left_out_customers,
        left_out_rows=left_out_rows, rows_after_horizon=rows_after,
        churn_rule=training.attrs["churn_rule"], notes=notes,
    )
