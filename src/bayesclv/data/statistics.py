"""Sufficient statistics of a validated customer table: risk sets, survival groups, spend.

Every statistic is a sum over customers, so the statistics of disjoint parts of a table
(Dask partitions) combine exactly: :func:`partition_ranges` and
:func:`partition_statistics` per part, :func:`combine_statistics` over them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesclv._math import (
    LaplaceGrid,
    add_compensated,
    exponential_sums_compensated,
    grouped_sums,
    rounded,
)
from bayesclv.data.columns import CustomerColumns, CustomerData, validate_customers
from bayesclv.exceptions import DataValidationError

__all__ = ["TrainingStatistics", "add_risk_sets", "combine_statistics", "frame_statistics",
           "life_table", "log_spend_statistics", "partition_ranges", "partition_statistics",
           "risk_set_of_part", "risk_set_table", "segment_codes", "spend_statistics",
           "survival_groups"]


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


def risk_set_of_part(part: pd.DataFrame, columns: CustomerColumns,
                     labels: Sequence[str]) -> pd.DataFrame:
    """:func:`risk_set_table` of one pandas table (or Dask partition), validated first.

    A customer of a segment not in ``labels`` is an error; an empty part gives an empty
    table with the columns of :func:`risk_set_table`.
    """
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
        ``count``, sorted by those columns. Customers acquired in the current period
        (``tenure == 0``) have survived no renewal decision: their likelihood term is 1,
        and they have no row.
    """
    observed = np.asarray(tenure) > 0
    keys = np.stack([
        np.asarray(segment_code, dtype=np.int64)[observed],
        np.asarray(entry, dtype=np.int64)[observed],
        np.asarray(tenure, dtype=np.int64)[observed],
        np.asarray(churned, dtype=np.int64)[observed],
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
    mean_log_spend: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Aggregates of the gamma-gamma likelihood, at a cost that does not grow with customers.

    The terms that depend on the number of active periods ``x`` alone are evaluated once
    per unique ``(segment, x)``; sums of ``log z``, ``x log z``, ``log(x z)`` and ``x log(x
    z)`` are per segment. The one term that mixes a customer's data with a parameter,
    ``(p x + q) log(gamma + x z)``, is ``(p x + q) [log(x z) + log1p(gamma / (x z))]``;
    the sums of ``log1p(gamma / w)`` over a segment are integrals of the Laplace transform
    of its ``w = x z`` (:func:`bayesclv._math.sum_log1p_ratio`), tabulated here once on a
    fixed grid of nodes: the one covering these customers' ``w`` unless ``grid`` is given
    (a grid covering several tables makes their statistics additive, see
    :func:`training_statistics`).

    A table with fewer customers than segments times nodes (many small groups: the
    profiles of customer covariates) keeps instead each customer's ``x`` and ``w`` and
    its segment, ``log1p(gamma / w)`` being then cheaper to sum customer by customer
    than over every segment's nodes; either way an evaluation costs at most segments x
    nodes, whatever the number of customers. A given ``grid`` (several tables reduced
    apart) always gives the tabulated transforms.

    With ``mean_log_spend`` (the mean log revenue of each customer's active periods),
    also ``sum_x_mean_log``, the sum over a segment of ``x * mean_log_spend``: the sum of
    the log of every active period's revenue, which the gamma-gamma density of every
    period's revenue needs.

    Returns
    -------
    dict
        ``x_seg``, ``x_value``, ``x_count``: unique (segment, x) pairs and counts;
        ``n_per_segment``, ``sum_x``, ``sum_log_z``, ``sum_x_log_z``, ``sum_log_w``,
        ``sum_x_log_w`` (and ``sum_x_mean_log``) per segment; then either
        ``laplace_nodes`` (node), ``laplace_step`` (scalar) and ``laplace_one``,
        ``laplace_x`` (segment, node): ``sum exp(-t w)`` and ``sum x exp(-t w)`` over
        each segment's customers; or ``customer_segment``, ``customer_x`` and
        ``customer_w``, one per customer with spend.
    """
    per_customer = False
    if grid is None:
        spent = np.asarray(n_periods_active) > 0
        w = (np.asarray(n_periods_active, dtype=np.float64)[spent]
             * np.asarray(mean_spend, dtype=np.float64)[spent])
        grid = LaplaceGrid(w)
        per_customer = w.size < n_segments * grid.nodes.size
    return finish_spend_sums([spend_sums(segment_code, n_periods_active, mean_spend,
                                         n_segments, grid, mean_log_spend,
                                         per_customer=per_customer)])


#: The per-segment sums of :func:`spend_statistics`, in the column order of ``spend_sums``.
_SPEND_SUM_KEYS = ("n_per_segment", "sum_x", "sum_log_z", "sum_x_log_z", "sum_log_w",
                   "sum_x_log_w")


def spend_sums(segment_code: np.ndarray, n_periods_active: np.ndarray,
               mean_spend: np.ndarray, n_segments: int, grid: LaplaceGrid | None = None,
               mean_log_spend: np.ndarray | None = None, per_customer: bool = False
               ) -> dict[str, Any]:
    """:func:`spend_statistics` of part of a table, its sums kept as compensated pairs.

    Customers with no active period (``n_periods_active == 0``) have no spend to model
    and are left out. ``per_customer`` keeps each customer's ``x``, ``w`` and segment
    instead of the Laplace transforms (a whole table only: they do not add up).
    """
    spent = np.asarray(n_periods_active) > 0
    segment_code, n_periods_active, mean_spend = (
        np.asarray(segment_code)[spent], np.asarray(n_periods_active)[spent],
        np.asarray(mean_spend)[spent])
    if mean_log_spend is not None:
        mean_log_spend = np.asarray(mean_log_spend)[spent]
    x = n_periods_active.astype(np.int64)
    x_float = x.astype(np.float64)
    log_z = np.log(mean_spend)
    w = x_float * mean_spend
    log_w = np.log(w)
    pairs, counts = np.unique(np.stack([segment_code, x]), axis=1, return_counts=True)
    if per_customer:
        transforms = {"customer_segment": np.asarray(segment_code, dtype=np.int64),
                      "customer_x": x_float, "customer_w": w}
    else:
        grid = LaplaceGrid(w) if grid is None else grid
        laplace_one, laplace_x = exponential_sums_compensated(segment_code, x_float, w,
                                                              n_segments, grid)
        transforms = {"laplace_nodes": grid.nodes, "laplace_step": np.float64(grid.step),
                      "laplace_one": laplace_one, "laplace_x": laplace_x}
    columns = [np.ones_like(x_float), x_float, log_z, x_float * log_z, log_w, x_float * log_w]
    if mean_log_spend is not None:
        columns.append(x_float * mean_log_spend)
    columns = np.column_stack(columns)
    return {
        "x_seg": pairs[0], "x_value": pairs[1].astype(np.float64),
        "x_count": counts.astype(np.float64),
        "sums": grouped_sums(segment_code, columns, n_segments),
        **transforms,
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
    if "customer_w" in parts[0]:
        if len(parts) > 1:
            raise ValueError("per-customer spend statistics of parts do not add up")
        transforms = {key: parts[0][key]
                      for key in ("customer_segment", "customer_x", "customer_w")}
    else:
        transforms = {
            "laplace_nodes": parts[0]["laplace_nodes"],
            "laplace_step": parts[0]["laplace_step"],
            "laplace_one": rounded(add_compensated([p["laplace_one"] for p in parts])),
            "laplace_x": rounded(add_compensated([p["laplace_x"] for p in parts])),
        }
    keys = _SPEND_SUM_KEYS + (("sum_x_mean_log",) if sums.shape[1] > len(_SPEND_SUM_KEYS)
                              else ())
    return {
        "x_seg": x_seg, "x_value": x_value, "x_count": x_count,
        **{key: np.ascontiguousarray(sums[:, j]) for j, key in enumerate(keys)},
        **transforms,
    }


def log_spend_statistics(segment_code: np.ndarray, n_periods_active: np.ndarray,
                         mean_log_spend: np.ndarray, sd_log_spend: np.ndarray | None,
                         n_segments: int) -> dict[str, Any]:
    """Aggregates of the lognormal spend likelihood: nothing is kept per customer.

    Per unique ``(segment, x)`` (``x`` active periods): the count, mean and sum of squared
    deviations from it of ``mean_log_spend``; per segment, with ``sd_log_spend``, the sums
    of ``x - 1``, of the within-customer sums of squares ``x sd^2`` and of the constant
    ``-(log x) / 2 - x mean_log_spend`` (zeros without it). See
    :mod:`bayesclv.models.spend.lognormal` for the likelihood.

    Returns
    -------
    dict
        ``x_seg``, ``x_value``, ``x_count``, ``x_mean``, ``x_within`` per unique pair;
        ``sum_x_minus_1``, ``sum_squares``, ``constant`` per segment.
    """
    return finish_log_spend_sums([log_spend_sums(segment_code, n_periods_active,
                                                 mean_log_spend, sd_log_spend, n_segments)])


def log_spend_sums(segment_code: np.ndarray, n_periods_active: np.ndarray,
                   mean_log_spend: np.ndarray, sd_log_spend: np.ndarray | None,
                   n_segments: int) -> dict[str, Any]:
    """:func:`log_spend_statistics` of part of a table, its sums kept as compensated pairs.

    Customers with no active period are left out, as in :func:`spend_sums`.
    """
    spent = np.asarray(n_periods_active) > 0
    segment_code = np.asarray(segment_code)[spent]
    n_periods_active = np.asarray(n_periods_active)[spent]
    mean_log_spend = np.asarray(mean_log_spend)[spent]
    if sd_log_spend is not None:
        sd_log_spend = np.asarray(sd_log_spend)[spent]
    x = np.asarray(n_periods_active, dtype=np.int64)
    ybar = np.asarray(mean_log_spend, dtype=np.float64)
    frame = pd.DataFrame({"seg": segment_code, "x": x, "y": ybar})
    groups = frame.groupby(["seg", "x"], sort=True)["y"]
    deviation = ybar - groups.transform("mean").to_numpy()
    within = pd.Series(deviation * deviation).groupby([frame["seg"], frame["x"]],
                                                      sort=True).sum()
    x_float = x.astype(np.float64)
    if sd_log_spend is None:
        columns = np.zeros((len(x), 3))
    else:
        sd = np.asarray(sd_log_spend, dtype=np.float64)
        columns = np.column_stack([x_float - 1.0, x_float * sd * sd,
                                   -(0.5 * np.log(x_float) + x_float * ybar)])
    return {
        "groups": pd.DataFrame({"count": groups.size().astype(np.float64),
                                "mean": groups.mean(), "within": within}),
        "sums": grouped_sums(segment_code, columns, n_segments),
    }


def finish_log_spend_sums(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`log_spend_statistics` of a table from the :func:`log_spend_sums` of its parts.

    Groups met in several parts are pooled exactly (Chan et al.): the count adds up, the
    mean is the count-weighted mean, and the sums of squares add up with each part's
    ``count * (mean - pooled mean)^2``.
    """
    if len(parts) == 1:
        groups = parts[0]["groups"]
    else:
        stacked = pd.concat([p["groups"] for p in parts])
        stacked["weighted"] = stacked["count"] * stacked["mean"]
        by = stacked.groupby(level=["seg", "x"], sort=True)
        count = by["count"].sum()
        mean = by["weighted"].sum() / count
        spread = stacked["count"] * (stacked["mean"] - mean.reindex(stacked.index)) ** 2
        groups = pd.DataFrame({"count": count, "mean": mean,
                               "within": by["within"].sum()
                               + spread.groupby(level=["seg", "x"], sort=True).sum()})
    sums = rounded(add_compensated([p["sums"] for p in parts]))
    return {
        "x_seg": groups.index.get_level_values("seg").to_numpy(dtype=np.int64),
        "x_value": groups.index.get_level_values("x").to_numpy(dtype=np.float64),
        "x_count": groups["count"].to_numpy(dtype=np.float64),
        "x_mean": groups["mean"].to_numpy(dtype=np.float64),
        "x_within": groups["within"].to_numpy(dtype=np.float64),
        "sum_x_minus_1": np.ascontiguousarray(sums[:, 0]),
        "sum_squares": np.ascontiguousarray(sums[:, 1]),
        "constant": np.ascontiguousarray(sums[:, 2]),
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
        :func:`spend_statistics` (with ``sum_x_mean_log`` when the table has
        ``mean_log_spend``).
    log_spend : dict or None
        :func:`log_spend_statistics`, when the table has ``mean_log_spend``.
    log_spend_columns : tuple of str
        Which of ``mean_log_spend`` and ``sd_log_spend`` the table has.
    """

    segments: list[str]
    segment_sizes: np.ndarray
    max_tenure: int | None
    median_spend: float | None
    risk_set: pd.DataFrame | None
    groups: pd.DataFrame | None
    spend: dict[str, Any] | None
    log_spend: dict[str, Any] | None = None
    log_spend_columns: tuple[str, ...] = ()

    @property
    def n_customers(self) -> int:
        """Number of customers in the table."""
        return int(self.segment_sizes.sum())


def frame_statistics(customers: pd.DataFrame, columns: CustomerColumns,
                     need: dict[str, bool]) -> TrainingStatistics:
    """:func:`bayesclv.data.training_statistics` of a pandas table (one part, exact median)."""
    data = validate_customers(customers, columns, **need)
    ranges = partition_ranges(data)
    labels = sorted(ranges["segments"])
    median = None
    if data.mean_spend is not None:
        median = median_spend(data.mean_spend[data.spend_observed])
    parts = partition_statistics(data, labels, ranges["w_min"], ranges["w_max"])
    return combine_statistics([ranges], [parts], labels, median)


def median_spend(mean_spend: np.ndarray) -> float:
    """The median of the spenders' ``mean_spend`` (the spend priors' scale).

    Raises
    ------
    DataValidationError
        If no customer has an active period: there is no spend to model.
    """
    if len(mean_spend) == 0:
        raise DataValidationError(
            "No customer has an active period (n_periods_active >= 1): there is no spend "
            "to fit the spend model on."
        )
    return float(np.median(mean_spend))


def require_renewals(tenure: np.ndarray) -> None:
    """Refuse a table in which no customer has completed a period (nothing to fit on).

    Raises
    ------
    DataValidationError
        If every tenure is 0: no renewal decision has been observed.
    """
    if int(np.max(tenure)) == 0:
        raise DataValidationError(
            "Every customer has tenure 0 (acquired in the current period): no renewal "
            "decision has been observed, so there is nothing to fit retention on."
        )


def partition_ranges(data: CustomerData) -> dict[str, Any]:
    """What the statistics of a table's parts must agree on: segments and data ranges.

    The spend ranges are over the customers with an active period; ``None`` in a part
    with none (or without spend columns).
    """
    spent = None if data.mean_spend is None else data.spend_observed
    w = z = None
    if spent is not None and spent.any():
        z = data.mean_spend[spent]
        w = data.n_periods_active[spent].astype(np.float64) * z
    return {
        "segments": set(data.segment),
        "max_tenure": None if data.tenure is None else int(data.tenure.max()),
        "w_min": None if w is None else float(w.min()),
        "w_max": None if w is None else float(w.max()),
        "z_min": None if w is None else float(z.min()),
        "z_max": None if w is None else float(z.max()),
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
                                  LaplaceGrid.covering(w_min, w_max), data.mean_log_spend)
    out["log_spend_columns"] = tuple(
        name for name in ("mean_log_spend", "sd_log_spend") if getattr(data, name) is not None)
    if data.mean_log_spend is not None:
        out["log_spend"] = log_spend_sums(codes, data.n_periods_active, data.mean_log_spend,
                                          data.sd_log_spend, len(labels))
    return out


def combine_statistics(ranges: Sequence[dict[str, Any]], parts: Sequence[dict[str, Any]],
                       labels: list[str], median_spend: float | None) -> TrainingStatistics:
    """Add up the statistics of the parts of a table (in the order given)."""
    tenures = [r["max_tenure"] for r in ranges if r["max_tenure"] is not None]
    risk_set = groups = spend = log_spend = None
    if "risk_set" in parts[0]:
        risk_set = add_risk_sets([p["risk_set"] for p in parts])
        keys = ["segment", "entry", "tenure", "churned"]
        groups = pd.concat([p["groups"] for p in parts]).groupby(
            keys, as_index=False, sort=True)["count"].sum().reset_index(drop=True)
        groups["count"] = groups["count"].astype(np.int64)
    if "spend" in parts[0]:
        spend = finish_spend_sums([p["spend"] for p in parts])
    if "log_spend" in parts[0]:
        log_spend = finish_log_spend_sums([p["log_spend"] for p in parts])
    return TrainingStatistics(
        segments=list(labels),
        segment_sizes=np.sum([p["sizes"] for p in parts], axis=0).astype(np.int64),
        max_tenure=max(tenures) if tenures else None,
        median_spend=median_spend,
        risk_set=risk_set, groups=groups, spend=spend, log_spend=log_spend,
        log_spend_columns=parts[0]["log_spend_columns"],
    )

