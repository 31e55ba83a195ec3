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
in windows of fewer than :data:`WINDOW` tenures, so memory stays bounded whatever the
number of customers or the spread of their tenures.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats

from bayesclv.valuation.customers import TARGET_ELEMENTS, CustomerValuation
from bayesclv.valuation.decisions import RealisedValuation
from bayesclv.valuation.kernels import period_totals, spend_by_pair

__all__ = [
    "ALL_SEGMENTS", "CASH_FLOWS", "PREDICTIVE_DRAWS", "WINDOW", "Cohorts", "TenureGroups",
    "cohort_flows", "realised_cohort_flows",
    "expected_cash_flows", "expected_flows", "forecast_dataset", "forecast_table", "group_spend",
    "labels_with_total", "realised_active", "realised_cash_flows", "simulation_plan",
    "stable_keys", "window_hazards", "with_totals",
]

#: The label of the whole base in forecasts.
ALL_SEGMENTS = "all"
#: The quantities forecast per segment and period.
CASH_FLOWS = ("active", "revenue", "margin")
#: Simulations of the realised flows behind the predictive intervals, by default.
PREDICTIVE_DRAWS = 1000
#: Most tenures whose survival ratios are evaluated together.
WINDOW = 512
_ACTIVE_STREAM = 4
_COHORT_STREAM = 5
_REVENUE_STREAM = 6


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
    spend = group_spend(valuation, groups)
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

    def windows(self) -> Iterator[tuple[int, np.ndarray]]:
        """Each profile with positions of its groups, in runs of fewer than WINDOW tenures.

        A profile's groups are contiguous (sorted by profile), and sorted by tenure.
        """
        bounds = np.r_[0, np.flatnonzero(np.diff(self.profile)) + 1, self.n_groups]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            tenure = self.tenure[a:b]
            first = 0
            for i in range(1, len(tenure) + 1):
                if i == len(tenure) or tenure[i] - tenure[first] >= WINDOW:
                    yield int(self.profile[a]), np.arange(a + first, a + i)
                    first = i


def window_hazards(family: Any, psi: np.ndarray, tenure: np.ndarray, periods: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative hazards over the periods groups of one profile reach, and their offsets.

    ``psi`` is the profile's (samples, coord); ``tenure`` the groups' (sorted). Returns
    ``totals`` (samples, span + 1), ``totals[g, k]`` the cumulative hazard over the
    window's first ``k`` absolute periods (after the smallest tenure), and each group's
    offset into it: a group's survival ratio to future period ``j`` is
    ``exp(totals[g, offset] - totals[g, offset + j])``. Differences of cumulative
    hazards, never of survival probabilities.
    """
    first = int(tenure.min())
    absolute = first + np.arange(1, int(tenure.max()) - first + periods + 1, dtype=np.float64)
    totals = np.zeros((psi.shape[0], len(absolute) + 1))
    np.cumsum(family.hazard_increment(absolute, psi[:, None, :]), axis=-1,
              out=totals[:, 1:])
    return totals, _ints(tenure - first)


def group_spend(valuation: CustomerValuation, groups: TenureGroups) -> np.ndarray:
    """Each group's total spend per active period (groups, samples).

    The sum of its customers' spend draws: the draws that value them (same streams).
    """
    spend = np.zeros((groups.n_groups, valuation.n_samples))
    if groups.n_groups:
        rows = groups.rows
        _, params = valuation._kernel_arrays
        spend_by_pair(groups.starts, _ints(np.asarray(valuation.segment)[rows]),
                      np.ascontiguousarray(valuation.inputs[rows], dtype=np.float64),
                      np.ascontiguousarray(valuation.keys[rows]),
                      _ints(valuation.occurrence[rows]), params,
                      valuation.spend_family.draw_kernel, spend)
    return spend


def expected_flows(family: Any, psi: np.ndarray, groups: TenureGroups, periods: int,
                   n_segments: int, profile_segment: np.ndarray | None = None,
                   spend: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected active customers and revenue (samples, segments, periods) of ``groups``.

    ``spend`` (groups, samples) is each group's total spend per active period under each
    sample; without it the revenue is zero. ``profile_segment`` maps profile codes to
    segments (``None``: profiles are segments).
    """
    n_samples = psi.shape[0]
    # Segment first, so that each segment's (samples, periods) block is contiguous for
    # the compiled loop, which adds into it.
    active = np.zeros((n_segments, n_samples, periods))
    revenue = np.zeros_like(active)
    if spend is None:
        spend = np.zeros((groups.n_groups, n_samples))
    counts = groups.counts
    for p, chosen in groups.windows():
        s = int(p if profile_segment is None else profile_segment[p])
        totals, offsets = window_hazards(family, psi[:, p, :], groups.tenure[chosen], periods)
        period_totals(totals, offsets, np.ascontiguousarray(counts[chosen]),
                      np.ascontiguousarray(spend[chosen]), active[s], revenue[s])
    return active.transpose(1, 0, 2).copy(), revenue.transpose(1, 0, 2).copy()


def realised_cash_flows(realised: RealisedValuation, segment_of: np.ndarray,
                        n_segments: int) -> dict[str, np.ndarray]:
    """Simulated active customers, revenue and margin per sample, path, segment and period.

    Who stays when, and each customer's spending level, are simulated customer by
    customer as in :class:`~bayesclv.valuation.decisions.RealisedValuation`. Given those,
    a segment's revenue in a period is the sum of independent period spends of the
    customers it still has; it is drawn from the gamma distribution with that sum's mean
    and variance (exact for gamma-gamma spend when the customers share a level, and close
    for many customers, whose sum is nearly normal), so the cost is one draw per
    segment and period rather than one per customer.

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
    active, mean, variance = (np.zeros(shape) for _ in range(3))
    customer_segment = np.asarray(segment_of)[realised.segment]
    size = realised.chunk_size()
    for start in range(0, realised.n_customers, size):
        stop = min(start + size, realised.n_customers)
        one_hot = np.zeros((stop - start, n_segments))
        one_hot[np.arange(stop - start), customer_segment[start:stop]] = 1.0
        spend_mean, spend_variance, alive_periods = realised.spend_moments(start, stop)
        for j, alive in alive_periods:
            staying = alive.astype(np.float64)
            active[..., j - 1] += staying @ one_hot
            mean[..., j - 1] += (staying * spend_mean) @ one_hot
            variance[..., j - 1] += (staying * spend_variance) @ one_hot
    rng = np.random.default_rng(np.random.SeedSequence(realised.seed,
                                                       spawn_key=(_REVENUE_STREAM,)))
    revenue = np.zeros(shape)
    spending = mean > 0
    # Gamma(shape = mean^2 / variance, scale = variance / mean).
    revenue[spending] = rng.standard_gamma(mean[spending] ** 2 / variance[spending]) * (
        variance[spending] / mean[spending])
    margin = realised.margin * revenue - realised.cost_per_period * active
    return {"active": active, "revenue": revenue, "margin": margin}


def realised_active(family: Any, psi: np.ndarray, groups: TenureGroups, periods: int,
                    n_paths: int, seed: int, n_segments: int,
                    profile_segment: np.ndarray | None = None,
                    profile_keys: np.ndarray | None = None) -> np.ndarray:
    """Simulated active customers per sample, path, segment and future period.

    Under sample ``g`` the ``n`` customers of a group (one profile, one tenure ``tau``)
    churn independently, each in future period ``j`` with probability
    ``[S(tau + j - 1) - S(tau + j)] / S(tau)``, so how many churn in each period is one
    multinomial draw (:class:`bayesclv.valuation.decisions.RealisedValuation` explains
    why the segment's survival is each customer's). Each group has its own random
    stream, keyed by the seed, its profile's key (``profile_keys``, e.g. from
    :func:`stable_keys` of the profiles' names; the profile code by default) and its
    tenure.

    Returns
    -------
    numpy.ndarray, shape (samples, paths, segments, periods)
    """
    n_samples = psi.shape[0]
    out = np.zeros((n_samples, n_paths, n_segments, periods))
    counts = np.diff(groups.starts)
    for k in range(groups.n_groups):
        p, tau = int(groups.profile[k]), int(groups.tenure[k])
        s = p if profile_segment is None else int(profile_segment[p])
        absolute = tau + np.arange(1, periods + 1, dtype=np.float64)
        log_ratio = -np.cumsum(family.hazard_increment(absolute, psi[:, p, None, :]),
                               axis=-1)
        ratio = np.exp(np.concatenate([np.zeros((n_samples, 1)), log_ratio], axis=-1))
        # Churn in period 1..periods, or later: the last cell.
        pvals = np.concatenate([-np.diff(ratio, axis=-1), ratio[:, -1:]], axis=-1)
        pvals = np.clip(pvals, 0.0, None)
        pvals /= pvals.sum(axis=-1, keepdims=True)
        key = p if profile_keys is None else int(profile_keys[p])
        rng = np.random.default_rng(np.random.SeedSequence(
            seed, spawn_key=(_ACTIVE_STREAM, key, tau)))
        churned = rng.multinomial(int(counts[k]), np.broadcast_to(
            pvals[:, None, :], (n_samples, n_paths, periods + 1)))
        out[:, :, s, :] += counts[k] - np.cumsum(churned[..., :periods], axis=-1)
    return out


@dataclass(frozen=True)
class Cohorts:
    """Customers not yet acquired: how many join each segment in each future period.

    Attributes
    ----------
    segment : numpy.ndarray of int
        Segment code of each cohort.
    period : numpy.ndarray of int
        The future period (1 = the next) in which the cohort is acquired.
    size : numpy.ndarray of int
        Customers acquired.
    key : numpy.ndarray of int
        Each cohort's random-stream key (stable: from its segment's name and its
        period, not from positions in a table).
    """

    segment: np.ndarray
    period: np.ndarray
    size: np.ndarray
    key: np.ndarray


def cohort_flows(family: Any, psi: np.ndarray, spend_family: Any,
                 spend_params: Mapping[str, np.ndarray], cohorts: Cohorts, periods: int,
                 n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected active customers and revenue (samples, segments, periods) of new cohorts.

    Valued like prospects (DESIGN §4.3): a customer acquired in period ``a`` pays for it
    and is a customer in period ``a + t`` with probability ``S_s(t)``, spending the
    segment's mean ``E spend_s`` per period.
    """
    n_samples = psi.shape[0]
    active = np.zeros((n_samples, n_segments, periods))
    revenue = np.zeros_like(active)
    t = np.arange(periods, dtype=np.float64)
    mean_spend = spend_family.segment_mean_spend(spend_params)  # (samples, segments)
    for s, a, n in zip(cohorts.segment, cohorts.period, cohorts.size, strict=True):
        survival = family.survival(t[: periods - a + 1], psi[:, s, None, :])
        active[:, s, a - 1:] += n * survival
        revenue[:, s, a - 1:] += n * mean_spend[:, s, None] * survival
    return active, revenue


def realised_cohort_flows(family: Any, psi: np.ndarray, spend_family: Any,
                          spend_params: Mapping[str, np.ndarray], cohorts: Cohorts,
                          periods: int, n_paths: int, seed: int, n_segments: int
                          ) -> dict[str, np.ndarray]:
    """Simulated active customers and revenue (samples, paths, segments, periods) of cohorts.

    Each acquired customer gets a spending level from its segment's population (no spend
    observed: ``spend_family.sample_customer_latent`` with no active period), a churn
    period from ``S_s`` (inverse CDF) and a revenue draw for every period it stays. Cost
    grows as samples x paths x acquired customers x periods; memory does not (customers
    are simulated in chunks). Each chunk of a cohort has its own random stream, keyed by
    the seed, the cohort's ``key`` and the chunk.
    """
    n_samples = psi.shape[0]
    shape = (n_samples, n_paths, n_segments, periods)
    out = {"active": np.zeros(shape), "revenue": np.zeros(shape)}
    t = np.arange(1, periods + 1, dtype=np.float64)
    size = max(1, TARGET_ELEMENTS // (n_samples * n_paths))
    n_inputs = len(spend_family.inputs)
    for s, a, n, key in zip(cohorts.segment, cohorts.period, cohorts.size, cohorts.key,
                            strict=True):
        params = {name: value[:, s, None, None] for name, value in spend_params.items()}
        log_survival = family.log_survival(t[: periods - a], psi[:, s, None, :])
        for chunk, first in enumerate(range(0, int(n), size)):
            rng = np.random.default_rng(np.random.SeedSequence(
                seed, spawn_key=(_COHORT_STREAM, int(key), chunk)))
            draws = (n_samples, n_paths, min(size, int(n) - first))
            latent = spend_family.sample_customer_latent(
                params, np.zeros((draws[2], n_inputs)), rng, draws)
            log_u = np.log(rng.random(draws))
            for j in range(a, periods + 1):
                # In its acquisition period every customer pays; later while S(j - a) > u.
                alive = (np.ones(draws, dtype=bool) if j == a
                         else log_u < log_survival[:, None, None, j - a - 1])
                spend = spend_family.sample_period_spend(params, latent, rng, draws)
                out["active"][:, :, s, j - 1] += alive.sum(axis=-1)
                out["revenue"][:, :, s, j - 1] += np.where(alive, spend, 0.0).sum(axis=-1)
    return out


def stable_keys(names: list[str]) -> np.ndarray:
    """A 32-bit key per name (CRC-32 of its UTF-8 bytes): the same in any process and order."""
    return np.array([zlib.crc32(str(name).encode("utf-8")) for name in names], dtype=np.int64)


def with_totals(flows: Mapping[str, np.ndarray], axis: int) -> dict[str, np.ndarray]:
    """``flows`` with the sum over segments (``axis``) appended as one more segment."""
    return {name: np.concatenate([value, value.sum(axis=axis, keepdims=True)], axis=axis)
            for name, value in flows.items()}


def labels_with_total(segments: list[str]) -> list[str]:
    """The segments and, after them, the whole base (:data:`ALL_SEGMENTS`).

    A table without a segment column has the one segment ``"all"``, which is the whole
    base: it is listed once.

    Raises
    ------
    ValueError
        If one of several segments is named like the whole base.
    """
    if list(segments) == [ALL_SEGMENTS]:
        return [ALL_SEGMENTS]
    if ALL_SEGMENTS in segments:
        raise ValueError(
            f"A segment is named {ALL_SEGMENTS!r}, the label of the whole base in forecasts "
            "and scenarios: rename it (e.g. customers['segment'].replace('all', "
            "'all customers'))."
        )
    return [*segments, ALL_SEGMENTS]


def _ints(values: np.ndarray) -> np.ndarray:
    return np.require(values, dtype=np.int64, requirements=("C", "W"))


def forecast_table(draws: Any, hdi_prob: float, names: tuple[str, ...] = CASH_FLOWS
                   ) -> pd.DataFrame:
    """One row per segment and period: each flow's mean, HDI and predictive HDI.

    ``draws`` is an :class:`xarray.Dataset` with each name (chain, draw, segment, period)
    and ``realised_<name>`` (simulation, segment, period).
    """
    segments = draws["segment"].to_numpy()
    periods = draws["period"].to_numpy()
    out = pd.DataFrame({"segment": np.repeat(segments, len(periods)),
                        "period": np.tile(periods, len(segments))})
    for name in names:
        expected = draws[name].stack(sample=("chain", "draw")).transpose(
            "segment", "period", "sample").to_numpy()
        realised = draws[f"realised_{name}"].transpose("segment", "period",
                                                       "simulation").to_numpy()
        interval = array_stats.hdi(expected, hdi_prob, axis=-1)
        predictive = array_stats.hdi(realised, hdi_prob, axis=-1)
        out[f"{name}_mean"] = expected.mean(axis=-1).ravel()
        out[f"{name}_hdi_low"] = interval[..., 0].ravel()
        out[f"{name}_hdi_high"] = interval[..., 1].ravel()
        out[f"{name}_pi_low"] = predictive[..., 0].ravel()
        out[f"{name}_pi_high"] = predictive[..., 1].ravel()
    out.attrs.update(period=draws.attrs.get("period"), hdi_prob=hdi_prob)
    return out


def simulation_plan(n_samples: int, predictive_draws: int) -> tuple[np.ndarray, int]:
    """Which posterior samples the realised flows simulate from, and how many paths each.

    Posterior samples evenly thinned to ``predictive_draws``; with fewer samples (a
    point estimate), every sample with enough paths to make ``predictive_draws``.
    """
    if n_samples >= predictive_draws:
        chosen = np.unique(np.linspace(0, n_samples - 1, predictive_draws).round().astype(int))
        return chosen, 1
    return np.arange(n_samples), -(-predictive_draws // n_samples)


def forecast_dataset(expected: Mapping[str, np.ndarray], realised: Mapping[str, np.ndarray],
                     segments: list[str], chains: np.ndarray, attrs: dict[str, Any]) -> Any:
    """The draws as an :class:`xarray.Dataset`, the whole base appended (:func:`labels_with_total`).

    ``expected[name]`` is (samples, segments, periods), samples ordered chain by chain;
    ``realised[name]`` (samples, paths, segments, periods).
    """
    import xarray as xr

    labels = labels_with_total(segments)
    if len(labels) > len(segments):
        expected = with_totals(expected, axis=1)
        realised = with_totals(realised, axis=2)
    first = next(iter(expected.values()))
    n_samples, n_labels, periods = first.shape
    n_draws = n_samples // len(chains)
    coords = {"chain": chains, "draw": np.arange(n_draws), "segment": labels,
              "period": np.arange(1, periods + 1),
              "simulation": np.arange(np.prod(next(iter(realised.values())).shape[:2]))}
    variables: dict[str, Any] = {}
    for name, value in expected.items():
        variables[name] = (("chain", "draw", "segment", "period"),
                           value.reshape(len(chains), n_draws, n_labels, periods))
    for name, value in realised.items():
        variables[f"realised_{name}"] = (("simulation", "segment", "period"),
                                         value.reshape(-1, n_labels, periods))
    return xr.Dataset(variables, coords=coords, attrs=attrs)
