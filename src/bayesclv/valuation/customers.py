"""The value of each customer, streamed: draws, summaries and segment totals.

For draw ``g``, an active customer ``i`` of segment ``s`` with tenure ``tau``::

    RLV_i(g) = sum_{j=1}^{H} [margin * spend_i(g) - cost] * S_s(tau + j; g) / S_s(tau; g)
               / (1 + d)^j
             = [margin * spend_i(g) - cost] * A_s(tau; g)

with ``A_s(tau; g)`` from :func:`bayesclv.valuation.survival.residual_survival_sums` and
``spend_i(g)`` drawn from the customer's conditional posterior by the spend family
(:mod:`bayesclv.models.spend`). Customers are processed in chunks whose size bounds
memory at about ``chunk_elements`` floats per array, whatever the number of customers.
Each customer's spend draws come from its own random stream, keyed by the seed and the
customer's inputs (:mod:`bayesclv._streams`), so neither the chunk size nor the
customer's position in the table changes them; customers with identical inputs are
summarised once and the result scattered back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from bayesclv._streams import customer_keys
from bayesclv.valuation.kernels import (
    draw_values,
    mean_expected_spend,
    net_value,
    summarize_spend,
    summarize_values,
)

__all__ = [
    "BLOCK",
    "TARGET_ELEMENTS",
    "POINT_SPEND_DRAWS",
    "CustomerValuation",
    "lazy_draws",
    "SpendSummary",
    "ValueSummary",
    "spend_summary",
]

#: Customers per block of the compiled loops; chunks are multiples of it.
BLOCK = 1024
#: About how many floats one array of a chunk holds.
TARGET_ELEMENTS = 1 << 21
#: Draws of each customer's spend under a single posterior point (a MAP fit): enough for
#: an interval of what is uncertain about the customer, without parameter uncertainty.
POINT_SPEND_DRAWS = 200


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
        blocks = max(1, TARGET_ELEMENTS // (self.n_samples * BLOCK))
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

    def repeated(self, n_samples: int) -> CustomerValuation:
        """The valuation with its single posterior sample repeated ``n_samples`` times.

        For a point estimate (MAP): each repetition draws the customers' spend afresh, so
        summaries describe what is uncertain about the customer given the point.
        """
        if self.n_samples != 1:
            raise ValueError(f"repeated() needs one posterior sample; there are "
                             f"{self.n_samples}.")
        return replace(
            self, sums={k: np.repeat(v, n_samples, axis=0) for k, v in self.sums.items()},
            spend_params={k: np.repeat(v, n_samples, axis=0)
                          for k, v in self.spend_params.items()})

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
    if len(next(iter(params.values()))) == 1:  # a point estimate: draws of the customer
        params = {k: np.repeat(v, POINT_SPEND_DRAWS, axis=0) for k, v in params.items()}
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


def lazy_draws(valuation: CustomerValuation, size: int, shape: tuple[int, int, int]) -> Any:
    """A Dask array (chain, draw, customer) of the draws, ``size`` customers per block.

    Each block values its customers when computed, with their own random streams, so the
    draws equal those of :meth:`CustomerValuation.iter_values` whatever ``size``.
    """
    try:
        import dask
        import dask.array as da
    except ImportError as error:
        raise ImportError("predict_posterior(chunks=..., to=...) needs Dask: "
                          "pip install 'bayesclv[dask]'.") from error

    def block(start: int, stop: int) -> np.ndarray:
        part = valuation.subset(slice(start, stop))
        values = np.empty((part.n_samples, stop - start))
        for sl, chunk in part.iter_values():
            values[:, sl] = chunk
        return values.reshape(shape[0], shape[1], stop - start)

    _ = valuation.occurrence  # computed once here, not in every block
    blocks = [
        da.from_delayed(dask.delayed(block)(start, min(start + size, shape[2])),
                        shape=(shape[0], shape[1], min(start + size, shape[2]) - start),
                        dtype=np.float64)
        for start in range(0, shape[2], size)
    ]
    return da.concatenate(blocks, axis=2)
