"""The base's cash flows per future period: expected under each draw, and realised.

For posterior draw ``g`` and future period ``j = 1..H``, the active customers of segment
``s`` (not churned; tenure ``tau_i``) give::

    active_s(j; g)  = sum_i S_s(tau_i + j; g) / S_s(tau_i; g)
    revenue_s(j; g) = sum_i spend_i(g) S_s(tau_i + j; g) / S_s(tau_i; g)
    margin_s(j; g)  = margin * revenue_s(j; g) - cost_per_period * active_s(j; g)

with ``spend_i(g)`` the same draw of the customer's mean spend that values it
(:mod:`bayesclv.valuation.customers`), so that ``sum_j margin_s(j; g) / (1+d)^j`` is
the segment's total residual value under draw ``g``, term for term (DESIGN §4.3). These
are *expected* cash flows: their spread is what is uncertain about the parameters and
about each customer's spending rate.

The *realised* cash flows also simulate who churns when and what each customer spends in
each period (:class:`bayesclv.valuation.decisions.RealisedValuation`); their spread is
the predictive interval of what the base will actually bring in.

Customers sharing a segment (or covariate profile) and a tenure share their survival
ratios: those are evaluated once per such group, from the family's hazard increments,
in windows of at most :data:`WINDOW` tenures, so memory stays bounded whatever the
number of customers or the spread of their tenures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesclv.valuation.customers import CustomerValuation
from bayesclv.valuation.decisions import RealisedValuation
from bayesclv.valuation.kernels import period_totals, spend_by_pair

__all__ = ["CASH_FLOWS", "WINDOW", "TenureGroups", "expected_cash_flows", "expected_flows",
           "realised_cash_flows", "with_totals"]

#: The quantities forecast per segment and period.
CASH_FLOWS = ("active", "revenue", "margin")
#: Most tenures whose survival ratios are evaluated together.
WINDOW = 512


def expected_cash_flows(valuation: CustomerValuation, family: Any, psi: np.ndarray,
                        periods: int, n_segments: int) -> dict[str, np.ndarray]:
    """Expected active customers, revenue and margin per sample, segment and period.

    Parameters
    ----------
    valuation : CustomerValuation
        The customers valued (segments or profiles, tenures, spend draws).
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, profiles, coord)
        Retention parameters per posterior sample and profile (the columns
        ``valuation.segment`` indexes).
    periods : int
        Future periods ``1..periods``.
    n_segments : int

    Returns
    -------
    dict of numpy.ndarray, each (samples, segments, periods)
        ``active``, ``revenue`` and ``margin``.
    """
    groups = TenureGroups.of(valuation.segment, valuation.tenure, valuation.active)
    spend = np.zeros((groups.n_groups, valuation.n_samples))
    if groups.n_groups:
        rows = groups.rows
        _, params = valuation._kernel_arrays
        spend_by_pair(groups.starts, _ints(np.asarray(valuation.segment)[rows]),
                      np.ascontiguousarray(valuation.inputs[rows], dtype=np.float64),
                      np.ascontiguousarray(valuation.keys[rows]),
                      _ints(valuation.occurrence[rows]), params,
                      valuation.spend_family.draw_kernel, spend)
    active, revenue = expected_flows(family, psi, groups, periods, n_segments,
                                     valuation.profile_segment, spend)
    margin = float(valuation.margin) * revenue - float(valuation.cost_per_period) * active
    return {"active": active, "revenue": revenue, "margin": margin}


@dataclass(frozen=True)
class TenureGroups:
    """Active customers grouped by profile (segment, or segment and covariates) and tenure.

    Attributes
    ----------
    rows : numpy.ndarray of int
        The active customers' positions, sorted by group (input order within a group).
    starts : numpy.ndarray of int64, shape (groups + 1,)
        Group ``k`` is ``rows[starts[k]:starts[k + 1]]``.
    profile, tenure : numpy.ndarray of int64, shape (groups,)
        Sorted by profile, then tenure.
    """

    rows: np.ndarray
    starts: np.ndarray
    profile: np.ndarray
    tenure: np.ndarray

    @classmethod
    def of(cls, profile: np.ndarray, tenure: np.ndarray, active: np.ndarray) -> TenureGroups:
        """The groups of the customers with ``active`` set."""
        rows = np.flatnonzero(active)
        if len(rows) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, np.zeros(1, dtype=np.int64), empty, empty)
        tau = np.asarray(tenure, dtype=np.int64)[rows]
        code = np.asarray(profile, dtype=np.int64)[rows]
        span = int(tau.max()) + 1
        keys, group = np.unique(code * span + tau, return_inverse=True)
        order = np.argsort(group, kind="stable")
        starts = np.r_[0, np.cumsum(np.bincount(group, minlength=len(keys)))]
        return cls(rows[order], starts.astype(np.int64), keys // span, keys % span)

    @property
    def n_groups(self) -> int:  # noqa: D102
        return len(self.profile)

    @property
    def counts(self) -> np.ndarray:
        """Customers per group, as floats."""
        return np.diff(self.starts).astype(np.float64)


def expected_flows(family: Any, psi: np.ndarray, groups: TenureGroups, periods: int,
                   n_segments: int, profile_segment: np.ndarray | None = None,
                   spend: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected active customers and revenue (samples, segments, periods) of ``groups``.

    ``spend`` (groups, samples) is each group's total spend per active period under each
    sample; without it the revenue is zero. ``profile_segment`` maps profile codes to
    segments (``None``: profiles are segments).
    """
    n_samples = psi.shape[0]
    active = np.zeros((n_samples, n_segments, periods))
    revenue = np.zeros_like(active)
    if spend is None:
        spend = np.zeros((groups.n_groups, n_samples))
    counts = groups.counts
    for p in np.unique(groups.profile):
        members = np.flatnonzero(groups.profile == p)
        s = int(p if profile_segment is None else profile_segment[p])
        for window in _tenure_windows(groups.tenure[members]):
            chosen = members[window]
            group_active, group_revenue = _group_flows(
                family, psi[:, p, :], groups.tenure[chosen], counts[chosen], spend[chosen],
                periods)
            active[:, s, :] += group_active
            revenue[:, s, :] += group_revenue
    return active, revenue


def _tenure_windows(tenure: np.ndarray) -> list[np.ndarray]:
    """Positions of ``tenure`` (sorted) in runs spanning fewer than :data:`WINDOW` values."""
    windows, first = [], 0
    for i in range(1, len(tenure) + 1):
        if i == len(tenure) or tenure[i] - tenure[first] >= WINDOW:
            windows.append(np.arange(first, i))
            first = i
    return windows


def _group_flows(family: Any, psi: np.ndarray, tenure: np.ndarray, counts: np.ndarray,
                 spend: np.ndarray, periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected active customers and revenue (samples, periods) of groups of one profile."""
    first = int(tenure.min())
    absolute = first + np.arange(1, int(tenure.max()) - first + periods + 1, dtype=np.float64)
    increments = np.exp(family.log_hazard_increment(absolute, psi[:, None, :]))
    totals = np.zeros((psi.shape[0], len(absolute) + 1))
    np.cumsum(increments, axis=-1, out=totals[:, 1:])
    active = np.zeros((psi.shape[0], periods))
    revenue = np.zeros((psi.shape[0], periods))
    period_totals(totals, _ints(tenure - first), np.ascontiguousarray(counts),
                  np.ascontiguousarray(spend), active, revenue)
    return active, revenue


def realised_cash_flows(realised: RealisedValuation, segment_of: np.ndarray,
                        n_segments: int) -> dict[str, np.ndarray]:
    """Simulated active customers, revenue and margin per sample, path, segment and period.

    Parameters
    ----------
    realised : RealisedValuation
        With ``horizon`` set to the number of periods forecast.
    segment_of : numpy.ndarray of int, shape (profiles,)
        The segment of each code of ``realised.segment``.
    n_segments : int

    Returns
    -------
    dict of numpy.ndarray, each (samples, paths, segments, periods)
        ``active``, ``revenue`` and ``margin``: totals within each simulation.
    """
    periods = int(realised.horizon)
    shape = (realised.n_samples, realised.n_paths, n_segments, periods)
    out = {name: np.zeros(shape) for name in ("active", "revenue")}
    customer_segment = np.asarray(segment_of)[realised.segment]
    size = realised.chunk_size()
    for start in range(0, realised.n_customers, size):
        stop = min(start + size, realised.n_customers)
        chunk_segment = customer_segment[start:stop]
        members = {s: chunk_segment == s for s in np.unique(chunk_segment)}
        for j, alive, spend in realised.iter_periods(start, stop):
            paid = np.where(alive, spend, 0.0)
            for s, mask in members.items():
                out["active"][:, :, s, j - 1] += alive[..., mask].sum(axis=-1)
                out["revenue"][:, :, s, j - 1] += paid[..., mask].sum(axis=-1)
    out["margin"] = (realised.margin * out["revenue"]
                     - realised.cost_per_period * out["active"])
    return out


def with_totals(flows: Mapping[str, np.ndarray], axis: int) -> dict[str, np.ndarray]:
    """``flows`` with the sum over segments (``axis``) appended as one more segment."""
    return {name: np.concatenate([value, value.sum(axis=axis, keepdims=True)], axis=axis)
            for name, value in flows.items()}


def _ints(values: np.ndarray) -> np.ndarray:
    return np.require(values, dtype=np.int64, requirements=("C", "W"))
