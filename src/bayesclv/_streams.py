"""Counter-based random streams for compiled loops: one independent stream per key.

A stream is a 64-bit state advanced by a golden-ratio increment and hashed by
SplitMix64's finaliser, so a customer's draws depend only on its key, not on the order,
thread or chunk in which it is valued. Gamma variates use Marsaglia and Tsang (2000), "A
simple method for generating gamma variables", ACM TOMS 26(3), with the ``U^(1/a)`` boost
for shapes below 1; normals use Marsaglia's polar method.

The functions are ``numba`` kernels for the model families' customer-draw functions
(:mod:`bayesclv.models.spend`) and the valuation loops (:mod:`bayesclv.valuation.kernels`).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["customer_keys", "fill_gamma", "fill_normal", "occurrence_key"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
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
def fill_gamma(shapes, state, out):
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
def fill_normal(state, out):
    """``out[g] ~ Normal(0, 1)`` independently; returns the advanced state."""
    n_out = len(out)
    for g in range(0, n_out, 2):
        first, second, state = _normal_pair(state)
        out[g] = first
        if g + 1 < n_out:
            out[g + 1] = second
    return state


@numba.njit(cache=True)
def occurrence_key(base, occurrence):
    """The key of the ``occurrence``-th customer sharing the inputs behind ``base``."""
    return _mix(base ^ _mix(np.uint64(occurrence) + _GOLDEN))


@numba.njit(cache=True)
def _keys(seed, segment_hash, tenure, input_bits):
    out = np.empty(len(tenure), dtype=np.uint64)
    start = _mix(np.uint64(seed) + _GOLDEN)
    for i in range(len(tenure)):
        key = _mix(start ^ segment_hash[i])
        key = _mix(key ^ np.uint64(tenure[i]))
        for j in range(input_bits.shape[1]):
            key = _mix(key ^ input_bits[i, j])
        out[i] = key
    return out


def customer_keys(seed: int, segment_names: np.ndarray, tenure: np.ndarray,
                  inputs: np.ndarray) -> np.ndarray:
    """One 64-bit stream key per customer from the seed and the customer's inputs.

    Parameters
    ----------
    seed : int
    segment_names : numpy.ndarray of str, shape (customers,)
    tenure : numpy.ndarray of int, shape (customers,)
    inputs : numpy.ndarray of float, shape (customers, inputs)
        What the spend family conditions a customer's spend on (e.g. active periods and
        mean spend), bit for bit.

    Returns
    -------
    numpy.ndarray of uint64
    """
    names, inverse = np.unique(np.asarray(segment_names, dtype=str), return_inverse=True)
    digests = np.array([_name_digest(name) for name in names], dtype=np.uint64)
    bits = np.ascontiguousarray(np.asarray(inputs, dtype=np.float64)).view(np.uint64)
    return _keys(np.uint64(seed % 2**64), digests[inverse],
                 np.asarray(tenure, dtype=np.int64), bits.reshape(len(tenure), -1))


def _name_digest(name: str) -> int:
    """FNV-1a of the UTF-8 bytes: stable across processes and platforms."""
    value = 0xCBF29CE484222325
    for byte in name.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value
