"""The posterior CLV engine: pure functions over posterior draws (DESIGN §4.3).

For draw ``g``, an active customer ``i`` of segment ``s`` with tenure ``tau``::

    RLV_i(g) = sum_{j=1}^{H} [margin * spend_i(g) - cost] * S_s(tau + j; g) / S_s(tau; g)
               / (1 + d)^j
             = [margin * spend_i(g) - cost] * A_s(tau; g)

``A_s(tau; g)``, the discounted expected residual lifetime, depends on the customer only
through ``(segment, tenure)``: it is computed once per unique pair. ``spend_i(g)`` is drawn
from the customer's conditional posterior. Customers are processed in chunks whose size
bounds memory at about ``chunk_elements`` floats per array, whatever the number of
customers. Each customer's spend draws come from its own random stream, keyed by the seed
and the customer's inputs (:mod:`bayesclv._sampling`), so neither the chunk size nor the
customer's position in the table changes them; customers with identical inputs are
summarised once and the result scattered back.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numba
import numpy as np

from bayesclv._sampling import (
    customer_keys,
    draw_values,
    mean_expected_spend,
    net_value,
    summarize_spend,
    summarize_values,
)

__all__ = [
    "BLOCK",
    "CustomerValuation",
    "SpendSummary",
    "ValueSummary",
    "residual_survival_sums",
    "spend_summary",
]

BLOCK = 1024
_PERIOD_BLOCK = 120
_MAX_PERIODS = 10_000
_RELATIVE_TOL = 1e-6
_TARGET_ELEMENTS = 1 << 21


def residual_survival_sums(
    family: Any, psi: np.ndarray, tenure: np.ndarray, horizon: int | None,
    discount_rate: float, pair_profile: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-draw sums over the future of one ``(segment, tenure)`` pair each.

    Parameters
    ----------
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, pairs, coord) or (samples, profiles, coord)
        Retention parameters of each pair's segment, per posterior sample; with
        ``pair_profile``, of each distinct profile (segment) instead.
    tenure : numpy.ndarray of int, shape (pairs,)
    horizon : int or None
        Number of future periods; ``None`` sums until the remaining discounted value is
        below a relative 1e-6 of the total (at most 10,000 periods).
    discount_rate : float
        Per period.
    pair_profile : numpy.ndarray of int, shape (pairs,), optional
        Each pair's column of ``psi``. Pairs of one profile share their hazards: each
        period's hazard increment is evaluated once per profile and sample, not once per
        pair, so valuing many tenures of a segment costs little more than one.

    Returns
    -------
    dict of numpy.ndarray, each (samples, pairs)
        ``discounted``: ``sum_j S(tau+j)/S(tau) / (1+d)^j``; ``lifetime``: the same sum
        undiscounted (expected further periods active within the horizon);
        ``retention_next``: ``S(tau+1)/S(tau)``.
    """
    tenure = np.asarray(tenure, dtype=np.int64)
    if pair_profile is None:
        pair_profile = np.arange(len(tenure))
    n_samples, n_pairs = psi.shape[0], len(tenure)
    out = {key: np.empty((n_samples, n_pairs)) for key in ("discounted", "lifetime",
                                                            "retention_next")}
    limit = _MAX_PERIODS if horizon is None else int(horizon)
    block = min(limit, _PERIOD_BLOCK)
    log_discount = -np.log1p(discount_rate)
    truncated = False
    pair_profile = np.asarray(pair_profile, dtype=np.int64)
    for profile in np.unique(pair_profile):
        rows = np.flatnonzero(pair_profile == profile)
        truncated |= _profile_sums(family, psi[:, profile, :], tenure[rows], limit, block,
                                   horizon is None, discount_rate, log_discount,
                                   {key: (value, rows) for key, value in out.items()})
    if truncated:
        warnings.warn(
            f"With horizon=None the future was summed over {_MAX_PERIODS} periods and "
            "survival had not yet become negligible; set a horizon or a discount rate.",
            RuntimeWarning, stacklevel=3,
        )
    return out


def _profile_sums(family: Any, psi: np.ndarray, tau: np.ndarray, limit: int, block: int,
                  until_negligible: bool, discount_rate: float, log_discount: float,
                  out: dict[str, tuple[np.ndarray, np.ndarray]]) -> bool:
    """:func:`residual_survival_sums` of pairs sharing ``psi`` (samples, coord).

    Block by block of future periods, the hazard increments of every absolute period the
    pairs reach are evaluated once and summed cumulatively; each pair's survival over its
    own window comes from differences of those sums (:func:`window_sums`). Returns
    whether ``limit`` periods were summed without survival becoming negligible.
    """
    n_samples = psi.shape[0]
    first = int(tau.min())
    offsets = np.ascontiguousarray(tau - first, dtype=np.int64)
    log_surv = np.zeros((n_samples, len(tau)))
    discounted = np.zeros_like(log_surv)
    lifetime = np.zeros_like(log_surv)
    done = 0
    truncated = until_negligible
    while done < limit:
        steps = np.arange(done + 1, min(done + block, limit) + 1, dtype=np.float64)
        # Absolute periods first + done + 1 .. max tau + last step, one evaluation each.
        periods = first + done + np.arange(1, len(steps) + int(offsets.max()) + 1,
                                           dtype=np.float64)
        increments = np.exp(family.log_hazard_increment(periods, psi[:, None, :]))
        if done == 0:
            array, rows = out["retention_next"]
            array[:, rows] = np.exp(-increments[:, offsets])
        totals = np.zeros((n_samples, len(periods) + 1))
        np.cumsum(increments, axis=-1, out=totals[:, 1:])
        window_sums(totals, offsets, np.exp(steps * log_discount), log_surv, discounted,
                    lifetime)
        done = int(steps[-1])
        if until_negligible:
            if discount_rate <= 0:
                remaining_bound = np.exp(log_surv) * (limit - done)
            else:
                remaining_bound = np.exp(log_surv + done * log_discount) / discount_rate
            if np.all(remaining_bound <= _RELATIVE_TOL * np.maximum(discounted, 1e-300)):
                truncated = False
                break
    for key, value in (("discounted", discounted), ("lifetime", lifetime)):
        array, rows = out[key]
        array[:, rows] = value
    return truncated


@numba.njit(cache=True, parallel=True)
def window_sums(totals, offsets, discount, log_surv, discounted, lifetime):  # pragma: no cover
    """Add one block of future periods to each pair's sums, in place.

    ``totals[g, k]`` is the cumulative hazard over the block's first ``k`` absolute periods
    under sample ``g``; pair ``p`` starts ``offsets[p]`` periods in, so its log survival
    after step ``j`` is ``log_surv[g, p] - (totals[g, offsets[p] + j] - totals[g,
    offsets[p]])``. Adds ``sum_j S_j discount[j - 1]`` to ``discounted`` and ``sum_j S_j``
    to ``lifetime``, and moves ``log_surv`` to the end of the block. One fused loop per
    sample: no (samples, pairs, periods) temporaries.
    """
    n_steps = len(discount)
    for g in numba.prange(totals.shape[0]):
        for p in range(len(offsets)):
            base = totals[g, offsets[p]]
            start = log_surv[g, p]
            value = start
            disc = 0.0
            life = 0.0
            for j in range(1, n_steps + 1):
                value = start - (totals[g, offsets[p] + j] - base)
                survival = np.exp(value)
                disc += survival * discount[j - 1]
                life += survival
            discounted[g, p] += disc
            lifetime[g, p] += life
            log_surv[g, p] = value


@dataclass
class ValueSummary:
    """Per-customer summaries and per-segment totals, accumulated chunk by chunk."""

    mean: np.ndarray
    sd: np.ndarray
    hdi_low: np.ndarray
    hdi_high: np.ndarray
    segment_totals: np.ndarray  # (samples, segments)


@dataclass
class CustomerValuation:
    """Everything needed to value a set of customers under a posterior.

    Attributes
    ----------
    sums : dict of numpy.ndarray
        Output of :func:`residual_survival_sums` over the unique (segment, tenure) pairs.
    pair : numpy.ndarray of int, shape (customers,)
        Each customer's pair.
    segment : numpy.ndarray of int, shape (customers,)
        Each customer's position in the list of segments valued.
    active : numpy.ndarray of bool
        Customers not yet churned (churned ones have residual value 0).
    spend_family : bayesclv.models.spend.SpendFamily
    spend_params : dict of numpy.ndarray, each (samples, segments)
        The family's natural parameters per posterior sample and segment.
    inputs : numpy.ndarray, shape (customers, inputs)
        Each customer's row of ``spend_family.customer_inputs``.
    margin, cost_per_period : float
    seed : int
    segment_names : sequence of str, optional
        Name of each segment code; with ``tenure``, keys each customer's random stream by
        what is known about it (codes and pair indices are used when not given).
    tenure : numpy.ndarray of int, optional
    profile_segment : numpy.ndarray of int, optional
        With customer covariates, ``segment`` holds profile codes, the
        parameter arrays are per profile, and this maps each profile to its segment (for
        segment totals). ``None``: profiles are segments.
    """

    sums: Mapping[str, np.ndarray]
    pair: np.ndarray
    segment: np.ndarray
    active: np.ndarray
    spend_family: Any
    spend_params: Mapping[str, np.ndarray]
    inputs: np.ndarray
    margin: float
    cost_per_period: float
    seed: int
    segment_names: Sequence[str] | None = None
    tenure: np.ndarray | None = None
    profile_segment: np.ndarray | None = None

    @property
    def customer_segment(self) -> np.ndarray:
        """Each customer's segment code (``segment`` may hold profile codes)."""
        if self.profile_segment is None:
            return self.segment
        return self.profile_segment[self.segment]

    @property
    def n_customers(self) -> int:  # noqa: D102
        return len(self.pair)

    @property
    def n_samples(self) -> int:  # noqa: D102
        return self.sums["discounted"].shape[0]

    def chunk_size(self) -> int:
        """Customers per chunk: a multiple of :data:`BLOCK` bounded by memory."""
        blocks = max(1, _TARGET_ELEMENTS // (self.n_samples * BLOCK))
        return blocks * BLOCK

    @cached_property
    def keys(self) -> np.ndarray:
        """Each customer's random-stream key (seed and inputs; uint64)."""
        names = (np.asarray(self.segment_names, dtype=str)[self.segment]
                 if self.segment_names is not None else self.segment.astype(str))
        tenure = self.pair if self.tenure is None else self.tenure
        return customer_keys(self.seed, names, tenure, self.inputs)

    @cached_property
    def occurrence(self) -> np.ndarray:
        """How many customers with the same inputs come before each one in the table."""
        order = np.argsort(self.keys, kind="stable")
        sorted_keys = self.keys[order]
        starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        first = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
        out = np.empty(len(order), dtype=np.int64)
        out[order] = np.arange(len(order)) - first
        return out

    def subset(self, customers: slice) -> CustomerValuation:
        """The valuation of some of the customers, each with its random stream unchanged."""
        part = replace(
            self, pair=self.pair[customers], segment=self.segment[customers],
            active=self.active[customers], inputs=self.inputs[customers],
            tenure=None if self.tenure is None else self.tenure[customers],
        )
        # A customer's occurrence among identical customers is a property of the table.
        part.__dict__["keys"] = self.keys[customers]
        part.__dict__["occurrence"] = self.occurrence[customers]
        part.__dict__["_kernel_arrays"] = self._kernel_arrays
        return part

    @cached_property
    def _kernel_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The survival sums (pairs, samples) and the family's parameter array."""
        discounted = np.ascontiguousarray(np.asarray(self.sums["discounted"],
                                                     dtype=np.float64).T)
        return discounted, self.spend_family.parameter_array(self.spend_params)

    def iter_values(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(customers slice, values (samples, chunk))`` in customer order."""
        discounted, params = self._kernel_arrays
        size = self.chunk_size()
        for start in range(0, self.n_customers, size):
            sl = slice(start, min(start + size, self.n_customers))
            out = np.empty((sl.stop - start, self.n_samples))
            draw_values(discounted, _ints(self.pair[sl]), _ints(self.segment[sl]),
                        _floats(self.inputs[sl]), self.keys[sl], _ints(self.occurrence[sl]),
                        _flags(self.active[sl]), params, self.spend_family.draw_kernel,
                        float(self.margin), float(self.cost_per_period), out)
            yield sl, out.T

    def summarize(self, hdi_prob: float, n_segments: int) -> ValueSummary:
        """Per-customer summaries and per-segment totals, valuing each distinct input once.

        The mean is Rao-Blackwellised: the customer's spend is integrated out analytically
        within each posterior sample (``E[p / nu_i]``), so it carries no Monte Carlo noise.
        The sd and HDI come from the customer's draws (those :meth:`iter_values` gives the
        first customer with these inputs). Segment totals add every customer's own draws,
        so they equal the sums of :meth:`iter_values` over the segment. Memory grows as
        distinct customers plus blocks x samples, never as customers x samples.
        """
        n = self.n_customers
        mean, sd, low, high = (np.zeros(n) for _ in range(4))
        totals = np.zeros((self.n_samples, n_segments))
        active = np.flatnonzero(self.active)
        if len(active) == 0:
            return ValueSummary(mean, sd, low, high, totals)
        unique_keys, first, inverse, counts = np.unique(
            self.keys[active], return_index=True, return_inverse=True, return_counts=True)
        rows = active[first]
        # One segment per block, so each block's total belongs to one segment.
        order = np.lexsort((unique_keys, self.segment[rows]))
        rows, counts = rows[order], counts[order]
        segment = self.segment[rows]
        starts = np.unique(np.r_[np.flatnonzero(np.diff(segment)) + 1,
                                 np.arange(0, len(rows), BLOCK)])
        block_starts = np.r_[starts, len(rows)].astype(np.int64)
        stats = [np.empty(len(rows)) for _ in range(4)]
        block_totals = np.empty((len(block_starts) - 1, self.n_samples))
        discounted, params = self._kernel_arrays
        family = self.spend_family
        summarize_values(discounted, _ints(self.pair[rows]), _ints(segment),
                         _floats(self.inputs[rows]), self.keys[rows], _ints(counts), params,
                         family.draw_kernel, family.mean_kernel, float(self.margin),
                         float(self.cost_per_period), float(hdi_prob), block_starts, *stats,
                         block_totals)
        position = np.empty(len(rows), dtype=np.int64)
        position[order] = np.arange(len(rows))
        for target, values in zip((mean, sd, low, high), stats, strict=True):
            target[active] = values[position[inverse]]
        block_segment = segment[block_starts[:-1]]
        if self.profile_segment is not None:
            block_segment = self.profile_segment[block_segment]
        for s in np.unique(block_segment):
            totals[:, s] = block_totals[block_segment == s].sum(axis=0)
        return ValueSummary(mean, sd, low, high, totals)

    def expected_values(self, sl: slice) -> np.ndarray:
        """Values (samples, chunk) with each customer's spend at its conditional mean.

        The expectation of :meth:`iter_values` over the customer's own spend.
        """
        seg = self.segment[sl]
        spend = self.spend_family.expected_customer_spend(
            {k: v[:, seg] for k, v in self.spend_params.items()}, self.inputs[sl])
        values = net_value(spend, self.margin, self.cost_per_period) * self.sums[
            "discounted"][:, self.pair[sl]]
        values[:, ~self.active[sl]] = 0.0
        return values

    def expected_spend(self) -> np.ndarray:
        """Posterior mean of each customer's mean per-period spend."""
        _, params = self._kernel_arrays
        out = np.empty(self.n_customers)
        mean_expected_spend(_ints(self.segment), _floats(self.inputs), params,
                            self.spend_family.mean_kernel, out)
        return out

    def pair_means(self, key: str) -> np.ndarray:
        """Posterior mean of a per-pair sum for each customer (0 for churned customers)."""
        per_pair = self.sums[key].mean(axis=0)
        return np.where(self.active, per_pair[self.pair], 0.0)


@dataclass
class SpendSummary:
    """Posterior summaries of each customer's mean per-period spend."""

    mean: np.ndarray
    sd: np.ndarray
    hdi_low: np.ndarray
    hdi_high: np.ndarray


def spend_summary(family: Any, params: Mapping[str, np.ndarray], segment: np.ndarray,
                  inputs: np.ndarray, keys: np.ndarray, hdi_prob: float) -> SpendSummary:
    """Posterior mean, sd and HDI of each customer's mean per-period spend.

    The mean integrates the customer's spend out within each sample
    (``family.mean_kernel``); the sd and HDI come from one draw of the customer's spend
    per sample (``family.draw_kernel``), from the stream keyed by ``keys``.

    Parameters
    ----------
    family : bayesclv.models.spend.SpendFamily
    params : dict of numpy.ndarray, each (samples, segments)
    segment : numpy.ndarray of int, shape (customers,)
    inputs : numpy.ndarray, shape (customers, inputs)
    keys : numpy.ndarray of uint64, shape (customers,)
        From :func:`bayesclv._streams.customer_keys`.
    hdi_prob : float
    """
    n = len(segment)
    out = [np.empty(n) for _ in range(4)]
    summarize_spend(_ints(segment), _floats(inputs), np.ascontiguousarray(keys,
                    dtype=np.uint64), family.parameter_array(params), family.draw_kernel,
                    family.mean_kernel, float(hdi_prob), *out)
    return SpendSummary(*out)


def _ints(values: np.ndarray) -> np.ndarray:
    """A writeable C-contiguous int64 copy when needed (the compiled loops' signature)."""
    return np.require(values, dtype=np.int64, requirements=("C", "W"))


def _floats(values: np.ndarray) -> np.ndarray:
    return np.require(values, dtype=np.float64, requirements=("C", "W"))


def _flags(values: np.ndarray) -> np.ndarray:
    return np.require(values, dtype=np.bool_, requirements=("C", "W"))
