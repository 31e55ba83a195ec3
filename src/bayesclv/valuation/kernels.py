"""Compiled inner loops of the valuation: per-customer value draws and their summaries.

The loops know no spend family: each takes the family's parameter array (segment,
parameter, sample), the customers' input rows and the family's compiled draw and mean
functions (signatures :data:`bayesclv.models.spend.SPEND_DRAWS` and
:data:`~bayesclv.models.spend.SPEND_MEANS`). Each is compiled once, with those
signatures, at its first call (not at import: a process uses only some of them), and
cached on disk like every other kernel.

Each customer's spend draws come from its own counter-based stream
(:mod:`bayesclv._streams`), keyed by the seed, the customer's inputs (segment, tenure and
the family's inputs) and its occurrence among customers with identical inputs. A
customer's draws therefore depend on nothing but the seed and what is known about it: not
on its position in the table, the chunk size, the number of threads, or the other
customers valued with it. Customers with identical inputs are summarised once (their
summaries are equal by construction), while each keeps its own independent draws for
totals and for :meth:`predict_posterior`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
from numba import types

from bayesclv._streams import customer_keys, occurrence_key
from bayesclv.models.spend import SPEND_DRAWS, SPEND_MEANS

__all__ = ["compile_kernels", "customer_keys", "draw_values", "mean_expected_spend",
           "net_value", "period_totals", "programme_sums", "spend_by_pair", "summarize_spend",
           "summarize_values"]

_DRAWS = types.FunctionType(SPEND_DRAWS)
_MEANS = types.FunctionType(SPEND_MEANS)
_F1, _F2, _F3 = types.float64[::1], types.float64[:, ::1], types.float64[:, :, ::1]
_I1, _U1, _B1 = types.int64[::1], types.uint64[::1], types.boolean[::1]


#: Each kernel compiled at its first call, by name: what compiles it now.
_COMPILE_ON_FIRST_CALL: dict[str, Callable[[], None]] = {}


def compile_kernels(names: Sequence[str] | None = None) -> None:
    """Compile valuation kernels now (loaded from numba's cache when there).

    Another process can so fill numba's cache with them while this one does something
    else (:mod:`bayesclv.estimator._background`).

    Parameters
    ----------
    names : sequence of str, optional
        The kernels to compile, in this order (function names); all of them by default.
    """
    for name in _COMPILE_ON_FIRST_CALL if names is None else names:
        _COMPILE_ON_FIRST_CALL[name]()


def _compiled_on_first_call(signature: Any, **options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(signature, **options)``, compiled at the kernel's first call.

    With an empty cache each kernel takes seconds to compile, and a process uses only some
    of them: compiling at import would make every ``import bayesclv`` pay for all. The
    kernel is then fixed to ``signature``, as an eagerly compiled one would be.
    """
    def decorate(function: Callable) -> Callable:
        dispatcher = numba.njit(**options)(function)
        lock = threading.Lock()

        def compile_now() -> None:
            if not dispatcher.signatures:
                with lock:
                    if not dispatcher.signatures:
                        dispatcher.compile(signature)  # from numba's cache when there
                        dispatcher.disable_compile()

        @functools.wraps(function)
        def kernel(*args: Any) -> Any:
            compile_now()
            return dispatcher(*args)

        if function.__name__ in _COMPILE_ON_FIRST_CALL:
            raise ValueError(f"a kernel named {function.__name__!r} is registered already")
        _COMPILE_ON_FIRST_CALL[function.__name__] = compile_now
        return kernel

    return decorate


def net_value(spend, margin, cost):
    """The value of one active period before discounting: ``margin * spend - cost``.

    The one definition of a period's value: numpy code calls it, the compiled loops call
    its compiled twin.
    """
    return margin * spend - cost


_net_value = numba.njit(cache=True, inline="always")(net_value)


@numba.njit(cache=True)
def _fill_row(draw, params, inputs, key, discounted, margin, cost, out):
    """Draws of one customer's residual value, one per posterior sample, into ``out``."""
    draw(params, inputs, key, out)
    for g in range(len(out)):
        out[g] = _net_value(out[g], margin, cost) * discounted[g]


@numba.njit(cache=True)
def _sort_smallest(values, k):
    """Reorder ``values`` in place so that ``values[:k]`` are its ``k`` smallest, ascending.

    A quicksort (median-of-three pivots, insertion sort for parts of at most 17 elements)
    that skips every part lying wholly past position ``k``: ``O(n + k log k)``. A few
    plain loops, where ``np.partition`` and ``np.sort`` each take seconds to compile.
    ``values`` must hold no NaN.
    """
    # Parts still to sort, the larger of each split pushed: at most log2(n) of them.
    stack = np.empty((64, 2), dtype=np.int64)
    top = 0
    lo, hi = 0, len(values) - 1
    while True:
        while hi - lo > 16 and lo < k:
            mid = (lo + hi) // 2
            if values[mid] < values[lo]:
                values[mid], values[lo] = values[lo], values[mid]
            if values[hi] < values[lo]:
                values[hi], values[lo] = values[lo], values[hi]
            if values[hi] < values[mid]:
                values[hi], values[mid] = values[mid], values[hi]
            # values[lo] <= pivot <= values[hi]: the scans below stop inside the part.
            values[mid], values[hi - 1] = values[hi - 1], values[mid]
            pivot = values[hi - 1]
            i, j = lo, hi - 1
            while True:
                i += 1
                while values[i] < pivot:
                    i += 1
                j -= 1
                while values[j] > pivot:
                    j -= 1
                if i >= j:
                    break
                values[i], values[j] = values[j], values[i]
            values[i], values[hi - 1] = values[hi - 1], values[i]
            # The pivot is in place at i: lo..i-1 hold no larger value, i+1..hi no smaller.
            if i + 1 >= k:
                hi = i - 1
            elif i - lo < hi - i:
                stack[top, 0], stack[top, 1] = i + 1, hi
                top += 1
                hi = i - 1
            else:
                stack[top, 0], stack[top, 1] = lo, i - 1
                top += 1
                lo = i + 1
        if lo < k:
            for p in range(lo + 1, hi + 1):
                value = values[p]
                q = p - 1
                while q >= lo and values[q] > value:
                    values[q + 1] = values[q]
                    q -= 1
                values[q + 1] = value
        if top == 0:
            return
        top -= 1
        lo, hi = stack[top, 0], stack[top, 1]


@numba.njit(cache=True)
def _hdi(values, prob):
    """The narrowest interval holding ``floor(prob * n)`` + 1 sorted draws (ArviZ's rule).

    Interval ``i`` runs from the ``i``-th smallest draw to the ``(i + inside)``-th, so only
    the ``n - inside`` smallest and the ``n - inside`` largest draws are sorted. Draws
    with a NaN among them have no interval: both bounds are NaN.
    """
    n = len(values)
    for value in values:
        if np.isnan(value):
            return np.nan, np.nan
    inside = min(int(np.floor(prob * n)), n - 1)
    n_intervals = n - inside
    lower = values.copy()
    _sort_smallest(lower, n_intervals)
    # The largest draws, ascending: the smallest of the negated draws, read backwards.
    upper = -values
    _sort_smallest(upper, n_intervals)
    best = 0
    width = -upper[n_intervals - 1] - lower[0]
    for i in range(1, n_intervals):
        if -upper[n_intervals - 1 - i] - lower[i] < width:
            width = -upper[n_intervals - 1 - i] - lower[i]
            best = i
    return lower[best], -upper[n_intervals - 1 - best]


@numba.njit(cache=True, inline="always")
def _describe(buffer, prob, r, sd, hdi_low, hdi_high):
    """Standard deviation and HDI of one row's draws, into row ``r`` of the outputs."""
    n_samples = len(buffer)
    ddof = 1 if n_samples > 1 else 0
    draws_mean = buffer.sum() / n_samples
    squares = 0.0
    for g in range(n_samples):
        squares += (buffer[g] - draws_mean) ** 2
    sd[r] = np.sqrt(squares / (n_samples - ddof))
    hdi_low[r], hdi_high[r] = _hdi(buffer, prob)


@numba.njit(cache=True)
def _summarize_block(start, stop, discounted, pair, segment, inputs, keys, counts, params,
                     draw, mean, margin, cost, prob, mean_out, sd, hdi_low, hdi_high, total):
    """:func:`summarize_values` for rows ``start:stop``, their copies' draws added to ``total``.

    A function of its own, not the body of the parallel loop: numba's parallel passes
    take seconds to compile a loop body this size, and a call costs nothing beside it.
    """
    n_samples = discounted.shape[1]
    buffer = np.empty(n_samples)
    spend = np.empty(n_samples)
    for r in range(start, stop):
        s, k = segment[r], pair[r]
        _fill_row(draw, params[s], inputs[r], occurrence_key(keys[r], 0), discounted[k],
                  margin, cost, buffer)
        mean(params[s], inputs[r], spend)
        expected = 0.0
        for g in range(n_samples):
            expected += _net_value(spend[g], margin, cost) * discounted[k, g]
            total[g] += buffer[g]
        mean_out[r] = expected / n_samples
        _describe(buffer, prob, r, sd, hdi_low, hdi_high)
        for occurrence in range(1, counts[r]):
            _fill_row(draw, params[s], inputs[r], occurrence_key(keys[r], occurrence),
                      discounted[k], margin, cost, buffer)
            for g in range(n_samples):
                total[g] += buffer[g]


@_compiled_on_first_call(
    types.void(_F2, _I1, _I1, _F2, _U1, _I1, _F3, _DRAWS, _MEANS, types.float64, types.float64,
               types.float64, _I1, _F1, _F1, _F1, _F1, _F2),
    cache=True, parallel=True)
def summarize_values(discounted, pair, segment, inputs, keys, counts, params, draw, mean,
                     margin, cost, prob, block_starts, mean_out, sd, hdi_low, hdi_high,
                     block_totals):  # pragma: no cover - compiled
    """Summaries of unique customers and per-block totals of all their copies.

    ``discounted`` is (pairs, samples), ``params`` (segment, parameter, sample), each row
    contiguous. ``block_starts`` splits the rows into blocks of one segment each;
    ``block_totals[b]`` sums, per sample, the draws of every customer the rows of block
    ``b`` stand for (``counts``), each copy with its own stream.
    """
    for b in numba.prange(len(block_starts) - 1):
        block_totals[b] = 0.0
        _summarize_block(block_starts[b], block_starts[b + 1], discounted, pair, segment,
                         inputs, keys, counts, params, draw, mean, margin, cost, prob,
                         mean_out, sd, hdi_low, hdi_high, block_totals[b])


@_compiled_on_first_call(
    types.void(_F2, _I1, _I1, _F2, _U1, _I1, _B1, _F3, _DRAWS, types.float64, types.float64,
               _F2),
    cache=True, parallel=True)
def draw_values(discounted, pair, segment, inputs, keys, occurrence, active, params, draw,
                margin, cost, out):  # pragma: no cover - compiled
    """Draws (customers, samples) of each customer's residual value; churned: 0."""
    for r in numba.prange(len(pair)):
        if active[r]:
            _fill_row(draw, params[segment[r]], inputs[r],
                      occurrence_key(keys[r], occurrence[r]), discounted[pair[r]], margin,
                      cost, out[r])
        else:
            out[r] = 0.0


@_compiled_on_first_call(
    types.void(_I1, _F2, _U1, _F3, _DRAWS, _MEANS, types.float64, _F1, _F1, _F1, _F1),
    cache=True, parallel=True)
def summarize_spend(segment, inputs, keys, params, draw, mean, prob, mean_out, sd, hdi_low,
                    hdi_high):  # pragma: no cover - compiled
    """Posterior mean, sd and HDI of each customer's mean per-period spend."""
    n_samples = params.shape[2]
    for r in numba.prange(len(segment)):
        buffer = np.empty(n_samples)
        s = segment[r]
        mean(params[s], inputs[r], buffer)
        total = 0.0
        for g in range(n_samples):
            total += buffer[g]
        mean_out[r] = total / n_samples
        draw(params[s], inputs[r], occurrence_key(keys[r], 0), buffer)
        _describe(buffer, prob, r, sd, hdi_low, hdi_high)


@_compiled_on_first_call(types.void(_I1, _F2, _F3, _MEANS, _F1), cache=True, parallel=True)
def mean_expected_spend(segment, inputs, params, mean, out):  # pragma: no cover - compiled
    """Posterior mean over samples of each customer's expected mean per-period spend."""
    n_samples = params.shape[2]
    for r in numba.prange(len(segment)):
        buffer = np.empty(n_samples)
        mean(params[segment[r]], inputs[r], buffer)
        total = 0.0
        for g in range(n_samples):
            total += buffer[g]
        out[r] = total / n_samples


@_compiled_on_first_call(types.void(_I1, _I1, _F2, _U1, _I1, _F3, _DRAWS, _F2), cache=True,
                         parallel=True)
def spend_by_pair(starts, segment, inputs, keys, occurrence, params, draw,
                  out):  # pragma: no cover - compiled
    """Per-sample sums of the spend draws of the customers of each group.

    The rows are sorted by group; group ``k`` is rows ``starts[k]:starts[k + 1]``. Each
    customer's draws are those :func:`draw_values` values it with (same stream), added in
    row order, so the sums do not depend on the number of threads.
    """
    n_samples = out.shape[1]
    for k in numba.prange(len(starts) - 1):
        buffer = np.empty(n_samples)
        total = np.zeros(n_samples)
        for r in range(starts[k], starts[k + 1]):
            draw(params[segment[r]], inputs[r], occurrence_key(keys[r], occurrence[r]), buffer)
            for g in range(n_samples):
                total[g] += buffer[g]
        out[k] = total


@_compiled_on_first_call(types.void(_F2, _I1, _F1, _F2, _F2, _F2), cache=True, parallel=True)
def period_totals(totals, offsets, counts, spend, active_out,
                  revenue_out):  # pragma: no cover - compiled
    """Add each group's expected active customers and revenue, per future period, in place.

    ``totals[g, k]`` is the cumulative hazard over the first ``k`` absolute periods of a
    window; group ``p`` (``counts[p]`` customers of one tenure, spending ``spend[p, g]``
    in all) starts ``offsets[p]`` periods in, so its survival to future period ``j`` is
    ``exp(-(totals[g, offsets[p] + j] - totals[g, offsets[p]]))``.
    """
    n_periods = active_out.shape[1]
    for g in numba.prange(totals.shape[0]):
        for p in range(len(offsets)):
            base = totals[g, offsets[p]]
            for j in range(1, n_periods + 1):
                ratio = np.exp(base - totals[g, offsets[p] + j])
                active_out[g, j - 1] += counts[p] * ratio
                revenue_out[g, j - 1] += spend[p, g] * ratio


@_compiled_on_first_call(
    types.void(_F2, _I1, types.float64, types.int64, types.float64, _F1, _F2, _F2, _F2, _F2),
    cache=True, parallel=True)
def programme_sums(totals, offsets, reduction, first_step, spend_factor, discount, base,
                   survival, spending, last_survival):  # pragma: no cover - compiled
    """Discounted survival sums of groups with and without a retention programme.

    Group ``p`` (one tenure) starts ``offsets[p]`` periods into the window whose
    cumulative hazards are ``totals[g, :]``. From future step ``first_step`` on, the
    programme multiplies each period's churn probability ``1 - exp(-dH)`` by
    ``1 - reduction`` and the spend by ``spend_factor``. Writes, per sample and group,
    ``base = sum_j S_j d_j``, ``survival = sum_j S'_j d_j``, ``spending = sum_j f_j S'_j d_j``
    over ``j = 1..len(discount)`` (``d_j = discount[j - 1]``) and the larger of the two
    last survival ratios (to bound what a longer horizon would add).
    """
    keep = 1.0 - reduction
    for g in numba.prange(totals.shape[0]):
        for p in range(len(offsets)):
            o = offsets[p]
            log_base = 0.0
            log_programme = 0.0
            a = 0.0
            b = 0.0
            c = 0.0
            for j in range(1, len(discount) + 1):
                increment = totals[g, o + j] - totals[g, o + j - 1]
                log_base -= increment
                factor = 1.0
                if j >= first_step:
                    # Churn probability 1 - exp(-dH) scaled by (1 - reduction), in log space.
                    increment = -np.log1p(keep * np.expm1(-increment))
                    factor = spend_factor
                log_programme -= increment
                weight = discount[j - 1]
                a += np.exp(log_base) * weight
                survived = np.exp(log_programme) * weight
                b += survived
                c += factor * survived
            base[g, p] = a
            survival[g, p] = b
            spending[g, p] = c
            last_survival[g, p] = np.exp(max(log_base, log_programme))
