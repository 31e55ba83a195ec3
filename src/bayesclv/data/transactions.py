"""Summarising a transaction log (pandas) into the customer table of DESIGN §3."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesclv.data.columns import _fail, _reject_mixed_types
from bayesclv.exceptions import DataValidationError

__all__ = ["PERIOD_UNITS", "parse_dates", "period_alias", "period_ordinals", "summarize_frame"]

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


def period_alias(period: str) -> tuple[str, str]:
    """``(pandas alias, unit name)`` of a period given as an alias or a unit name."""
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


def period_ordinals(days: np.ndarray, alias: str) -> np.ndarray:
    """Pandas period ordinals of ``datetime64[D]`` values (NaT gives ``_NAT``).

    Ordinals of consecutive periods differ by 1, and equal those of
    :class:`pandas.Period` (``pd.Period(day, alias).ordinal``).
    """
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


def summarize_frame(
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
    """:func:`bayesclv.data.summarize` of a pandas transaction log."""
    # ---- parameters -------------------------------------------------------------------
    alias, unit = period_alias(period)
    if refunds not in ("error", "net"):
        raise ValueError(f"refunds must be 'error' or 'net'; got {refunds!r}.")
    if not isinstance(log_spend, (bool, np.bool_)):
        raise ValueError(f"log_spend must be True or False; got {log_spend!r}.")
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
    per = period_ordinals(days, alias)
    end_period = int(period_ordinals(np.array([end_day], dtype="datetime64[D]"), alias)[0])
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
        churn_period[churned] = period_ordinals(customer_end[churned].astype("datetime64[D]"),
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
    if log_spend:
        # Mean and sd (ddof=0) of the log of each active period's total.
        log_total = np.log(active_total)
        mean_log = np.bincount(active_customer, weights=log_total,
                               minlength=n_customers) / n_active
        deviation = log_total - mean_log[active_customer]
        table["mean_log_spend"] = mean_log
        table["sd_log_spend"] = np.sqrt(np.bincount(
            active_customer, weights=deviation * deviation, minlength=n_customers) / n_active)
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
