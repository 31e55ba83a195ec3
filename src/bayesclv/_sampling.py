"""Compiled inner loops of the valuation: keyed random streams and per-customer draws.

Each customer's spend draws come from its own counter-based stream (SplitMix64), keyed by
the seed, the customer's inputs (segment, tenure, active periods, mean spend) and its
occurrence among customers with identical inputs. A customer's draws therefore depend on
nothing but the seed and what is known about it: not on its position in the table, the
chunk size, the number of threads, or the other customers valued with it. Customers with
identical inputs are summarised once (their summaries are equal by construction), while
each keeps its own independent draws for totals and for :meth:`predict_posterior`.

Gamma variates use Marsaglia and Tsang (2000), "A simple method for generating gamma
variables", ACM TOMS 26(3), with the ``U^(1/a)`` boost for shapes below 1; normals use
Marsaglia's polar method.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["customer_keys", "draw_values", "mean_expected_spend", "summarize_values"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi
_INV_2_53 = 1.0 / 9007199254740992.0


@numba.njit(cache=True, inline="always")
def _mix(value):
    value = (value ^ (value >> np.uint64(30))) * _MIX1
    value = (value ^ (value >> np.uint64(27))) * _MIX2
    return value ^ (value >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _uniform(state):
    """A uniform in the open interval (0, 1) and the advanced state."""
    state = state + _GOLDEN
    return (np.float64(_mix(state) >> np.uint64(11)) + 0.5) * _INV_2_53, state


@numba.njit(cache=True, inline="always")
def _normal_pair(state):
    """Two independent standard normals (Marsaglia's polar method) and the state."""
    while True:
        u1, state = _uniform(state)
        u2, state = _uniform(state)
        v1, v2 = 2.0 * u1 - 1.0, 2.0 * u2 - 1.0
        radius = v1 * v1 + v2 * v2
        if 0.0 < radius < 1.0:
            factor = np.sqrt(-2.0 * np.log(radius) / radius)
            return v1 * factor, v2 * factor, state


@numba.njit(cache=True)
def _fill_gamma(shapes, state, out):
    """``out[g] ~ Gamma(shapes[g], 1)`` independently; returns the advanced state."""
    spare, has_spare = 0.0, False
    for g in range(len(out)):
        shape = shapes[g]
        boost = 1.0
        if shape < 1.0:
            u, state = _uniform(state)
            boost = u ** (1.0 / shape)
            shape += 1.0
        d = shape - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * d)
        while True:
            if has_spare:
                n, has_spare = spare, False
            else:
                n, spare, state = _normal_pair(state)
                has_spare = True
            v = 1.0 + c * n
            if v <= 0.0:
                continue
            v = v * v * v
            u, state = _uniform(state)
            n2 = n * n
            if u < 1.0 - 0.0331 * n2 * n2 or np.log(u) < 0.5 * n2 + d * (1.0 - v + np.log(v)):
                out[g] = d * v * boost
                break
    return state


@numba.njit(cache=True)
def _occurrence_key(base, occurrence):
    return _mix(base ^ _mix(np.uint64(occurrence) + _GOLDEN))


@numba.njit(cache=True)
def _keys(seed, segment_hash, tenure, x_bits, z_bits):
    out = np.empty(len(tenure), dtype=np.uint64)
    start = _mix(np.uint64(seed) + _GOLDEN)
    for i in range(len(tenure)):
        key = _mix(start ^ segment_hash[i])
        key = _mix(key ^ np.uint64(tenure[i]))
        key = _mix(key ^ x_bits[i])
        out[i] = _mix(key ^ z_bits[i])
    return out


def customer_keys(seed: int, segment_names: np.ndarray, tenure: np.ndarray, x: np.ndarray,
                  z: np.ndarray) -> np.ndarray:
    """One 64-bit stream key per customer from the seed and the customer's inputs.

    Parameters
    ----------
    seed : int
    segment_names : numpy.ndarray of str, shape (customers,)
    tenure : numpy.ndarray of int, shape (customers,)
    x, z : numpy.ndarray of float, shape (customers,)
        Active periods and mean spend.

    Returns
    -------
    numpy.ndarray of uint64
    """
    names, inverse = np.unique(np.asarray(segment_names, dtype=str), return_inverse=True)
    digests = np.array([_name_digest(name) for name in names], dtype=np.uint64)
    return _keys(np.uint64(seed % 2**64), digests[inverse],
                 np.asarray(tenure, dtype=np.int64),
                 np.ascontiguousarray(x, dtype=np.float64).view(np.uint64),
                 np.ascontiguousarray(z, dtype=np.float64).view(np.uint64))


def _name_digest(name: str) -> int:
    """FNV-1a of the UTF-8 bytes: stable across processes and platforms."""
    value = 0xCBF29CE484222325
    for byte in name.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value


@numba.njit(cache=True, inline="always")
def _expected_spend(p, q, gamma, x, z):
    """``E[p / nu] = p (gamma + x z) / (p x + q - 1)``, as in ``GammaGammaSpend``."""
    return p * (gamma + x * z) / (p * x + q - 1.0)


@numba.njit(cache=True)
def _fill_row(key, discounted, p, q, gamma, x, z, margin, cost, out):
    """Draws of one customer's residual value, one per posterior sample, into ``out``.

    ``nu ~ Gamma(p x + q, rate = gamma + x z)`` and the customer's spend is ``p / nu``.
    """
    for g in range(len(out)):
        out[g] = p[g] * x + q[g]
    _fill_gamma(out, key, out)
    rate_data = x * z
    for g in range(len(out)):
        out[g] = (margin * p[g] * (gamma[g] + rate_data) / out[g] - cost) * discounted[g]


@numba.njit(cache=True)
def _hdi(values, prob):
    """The narrowest interval holding ``floor(prob * n)`` + 1 sorted draws (ArviZ's rule).

    Only the two tails that can bound the interval are sorted.
    """
    n = len(values)
    inside = min(int(np.floor(prob * n)), n - 1)
    n_intervals = n - inside
    if n_intervals <= inside:
        lower = np.sort(np.partition(values, n_intervals - 1)[:n_intervals])
        upper_part = np.partition(values, inside)
        upper = np.sort(upper_part[inside:])
    else:
        ordered = np.sort(values)
        lower = ordered[:n_intervals]
        upper = ordered[inside:]
    best = 0
    width = upper[0] - lower[0]
    for i in range(1, n_intervals):
        if upper[i] - lower[i] < width:
            width = upper[i] - lower[i]
            best = i
    return lower[best], upper[best]


@numba.njit(cache=True, parallel=True)
def summarize_values(discounted, pair, segment, x, z, keys, counts, p, q, gamma, margin,
                     cost, prob, block_starts, mean, sd, hdi_low, hdi_high, block_totals):
    """Summaries of unique customers and per-block totals of all their copies.

    ``discounted`` is (pairs, samples) and ``p, q, gamma`` are (segments, samples), each
    row contiguous. ``block_starts`` splits the rows into blocks of one segment each;
    ``block_totals[b]`` sums, per sample, the draws of every customer the rows of block
    ``b`` stand for (``counts``), each copy with its own stream.
    """
    n_samples = discounted.shape[1]
    ddof = 1 if n_samples > 1 else 0
    for b in numba.prange(len(block_starts) - 1):
        buffer = np.empty(n_samples)
        total = np.zeros(n_samples)
        for r in range(block_starts[b], block_starts[b + 1]):
            s, k = segment[r], pair[r]
            _fill_row(_occurrence_key(keys[r], 0), discounted[k], p[s], q[s], gamma[s],
                      x[r], z[r], margin, cost, buffer)
            expected = 0.0
            for g in range(n_samples):
                spend = _expected_spend(p[s, g], q[s, g], gamma[s, g], x[r], z[r])
                expected += (margin * spend - cost) * discounted[k, g]
                total[g] += buffer[g]
            mean[r] = expected / n_samples
            draws_mean = buffer.sum() / n_samples
            squares = 0.0
            for g in range(n_samples):
                squares += (buffer[g] - draws_mean) ** 2
            sd[r] = np.sqrt(squares / (n_samples - ddof))
            hdi_low[r], hdi_high[r] = _hdi(buffer, prob)
            for occurrence in range(1, counts[r]):
                _fill_row(_occurrence_key(keys[r], occurrence), discounted[k], p[s], q[s],
                          gamma[s], x[r], z[r], margin, cost, buffer)
                for g in range(n_samples):
                    total[g] += buffer[g]
        block_totals[b] = total


@numba.njit(cache=True, parallel=True)
def draw_values(discounted, pair, segment, x, z, keys, occurrence, active, p, q, gamma,
                margin, cost, out):
    """Draws (customers, samples) of each customer's residual value; churned: 0."""
    for r in numba.prange(len(pair)):
        if active[r]:
            s = segment[r]
            _fill_row(_occurrence_key(keys[r], occurrence[r]), discounted[pair[r]], p[s],
                      q[s], gamma[s], x[r], z[r], margin, cost, out[r])
        else:
            out[r] = 0.0


@numba.njit(cache=True, parallel=True)
def mean_expected_spend(segment, x, z, p, q, gamma, out):
    """Posterior mean over samples of ``E[p / nu_i] = p (gamma + x z) / (p x + q - 1)``."""
    n_samples = p.shape[1]
    for r in numba.prange(len(segment)):
        s = segment[r]
        total = 0.0
        for g in range(n_samples):
            total += _expected_spend(p[s, g], q[s, g], gamma[s, g], x[r], z[r])
        out[r] = total / n_samples
