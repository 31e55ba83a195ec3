"""Survival sums over the future: the retention half of every value (DESIGN §4.3).

For draw ``g``, an active customer of segment ``s`` with tenure ``tau`` has the discounted
expected residual lifetime ``A_s(tau; g) = sum_{j=1}^{H} S_s(tau + j; g) / S_s(tau; g) /
(1 + d)^j``. It depends on the customer only through ``(segment, tenure)``, so it is
computed once per unique pair, from the family's hazard increments
(:mod:`bayesclv.models.retention`), block by block of future periods.
"""

from __future__ import annotations

import warnings
from typing import Any

import numba
import numpy as np
from numba import types

from bayesclv.valuation.kernels import _F1, _F2, _I1, _compiled_on_first_call

__all__ = ["MAX_PERIODS", "customer_survival_sums", "residual_survival_sums", "window_sums"]

_PERIOD_BLOCK = 120
#: The most future periods summed when no horizon is set.
MAX_PERIODS = 10_000
_RELATIVE_TOL = 1e-6


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
    limit = MAX_PERIODS if horizon is None else int(horizon)
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
            f"With horizon=None the future was summed over {MAX_PERIODS} periods and "
            "survival had not yet become negligible; set a horizon or a discount rate.",
            RuntimeWarning, stacklevel=3,
        )
    return out


def customer_survival_sums(
    family: Any, psi: np.ndarray, profile: np.ndarray, tenure: np.ndarray,
    horizon: int | None, discount_rate: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`residual_survival_sums` of each distinct (profile, tenure), and each customer's.

    Parameters
    ----------
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, profiles, coord)
        Retention parameters per posterior sample and profile (a segment, or a segment
        and covariate values).
    profile : numpy.ndarray of int, shape (customers,)
        Each customer's column of ``psi``.
    tenure : numpy.ndarray of int, shape (customers,)
    horizon : int or None
    discount_rate : float

    Returns
    -------
    sums : dict of numpy.ndarray, each (samples, pairs)
    pair : numpy.ndarray of int, shape (customers,)
        Each customer's column of the sums.
    """
    span = int(np.max(tenure)) + 1
    keys = np.asarray(profile, dtype=np.int64) * span + np.asarray(tenure, dtype=np.int64)
    unique_keys, pair = np.unique(keys, return_inverse=True)
    sums = residual_survival_sums(family, psi, unique_keys % span, horizon, discount_rate,
                                  pair_profile=unique_keys // span)
    return sums, pair


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
        increments = family.hazard_increment(periods, psi[:, None, :])
        if done == 0:
            array, rows = out["retention_next"]
            array[:, rows] = np.exp(-increments[:, offsets])
        totals = np.zeros((n_samples, len(periods) + 1))
        np.cumsum(increments, axis=-1, out=totals[:, 1:])
        window_sums(totals, offsets, len(steps), done, log_discount, log_surv, discounted,
                    lifetime, np.empty(totals.size), np.empty(totals.size))
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


# Largest exponent whose exp is finite and whose negative's exp is a normal double: the
# block's sums use exp(a) and exp(-a) for a up to the block's discounted cumulative hazard.
_EXPONENT_LIMIT = 700.0


@_compiled_on_first_call(types.void(_F2, _I1, types.int64, types.int64, types.float64, _F2, _F2,
                                    _F2, _F1, _F1), cache=True, parallel=True)
def window_sums(totals, offsets, n_steps, done, log_discount, log_surv, discounted, lifetime,
                scratch_discounted, scratch_lifetime):  # pragma: no cover - compiled
    """Add steps ``done + 1 .. done + n_steps`` of the future to each pair's sums, in place.

    ``totals[g, k]`` is the cumulative hazard over the block's first ``k`` absolute periods
    under sample ``g``; pair ``p`` starts ``offsets[p]`` periods in, so its log survival
    after step ``j`` is ``log_surv[g, p] - (totals[g, offsets[p] + j] - totals[g,
    offsets[p]])``. Adds ``sum_j S_j d^(done + j)`` to ``discounted`` and ``sum_j S_j`` to
    ``lifetime``, and moves ``log_surv`` to the end of the block. ``scratch_*`` hold
    ``totals.shape[0] * totals.shape[1]`` doubles each, one row per sample.

    Pairs of one profile share the block's periods, so the sums come from suffix sums over
    the periods, not a loop over each pair's window: with ``a_k = T_k - k log d``,
    ``sum_{j=1..n} exp(-(T_{o+j} - T_o)) d^j = exp(a_o) (R_o - R_{o+n})``, ``R_m =
    sum_{k>m} exp(-a_k)`` accumulated from the smallest terms, so one exponential per
    sample and period instead of one per sample, pair and period. The terms decrease
    with ``k``, so each of the window's is at least each of the tail's beyond it: the
    difference loses at most a factor ``1 + tail / window`` of the rounding (the tail is
    at most the span of the tenures; the window a whole block but in the last one of a
    horizon). A sample whose block would take
    ``exp(a_k)`` beyond the double range (hazards in the hundreds) is summed pair by pair.
    """
    n_periods = totals.shape[1]
    for g in numba.prange(totals.shape[0]):
        row = totals[g]
        last = row[n_periods - 1] - (n_periods - 1) * log_discount
        if not last <= _EXPONENT_LIMIT:  # also NaN: pair by pair, as the definition
            for p in range(len(offsets)):
                base = row[offsets[p]]
                start = log_surv[g, p]
                value = start
                disc = 0.0
                life = 0.0
                for j in range(1, n_steps + 1):
                    value = start - (row[offsets[p] + j] - base)
                    survival = np.exp(value)
                    disc += survival * np.exp((done + j) * log_discount)
                    life += survival
                discounted[g, p] += disc
                lifetime[g, p] += life
                log_surv[g, p] = value
            continue
        tail_disc = scratch_discounted[g * n_periods:(g + 1) * n_periods]
        tail_life = scratch_lifetime[g * n_periods:(g + 1) * n_periods]
        tail_disc[n_periods - 1] = 0.0
        tail_life[n_periods - 1] = 0.0
        for k in range(n_periods - 1, 0, -1):
            tail_disc[k - 1] = tail_disc[k] + np.exp(-(row[k] - k * log_discount))
            tail_life[k - 1] = tail_life[k] + np.exp(-row[k])
        for p in range(len(offsets)):
            o = offsets[p]
            start = log_surv[g, p]
            discounted[g, p] += (np.exp(start + row[o] + (done - o) * log_discount)
                                 * (tail_disc[o] - tail_disc[o + n_steps]))
            lifetime[g, p] += np.exp(start + row[o]) * (tail_life[o] - tail_life[o + n_steps])
            log_surv[g, p] = start - (row[o + n_steps] - row[o])
