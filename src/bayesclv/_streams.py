"""Counter-based random streams for compiled loops: one independent stream per key.

A stream is a 64-bit state advanced by a golden-ratio increment and hashed by
SplitMix64's finaliser, so a customer's draws depend only on its key, not on the order,
thread or chunk in which it is valued. Gamma variates use Marsaglia and Tsang (2000), "A
simple method for generating gamma variables", ACM TOMS 26(3), with the ``U^(1/a)`` boost
for shapes below 1; normals use Marsaglia and Tsang's (2000) ziggurat, "The ziggurat method
for generating random variables", J. Stat. Software 5(8), with 256 layers and 52-bit
magnitudes (the layout of NumPy's generator): one 64-bit word per normal 99 % of the time.

The functions are ``numba`` kernels for the model families' customer-draw functions
(:mod:`bayesclv.models.spend`) and the valuation loops (:mod:`bayesclv.valuation.kernels`).
"""

from __future__ import annotations

import math

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
def _next_word(state):
    """The stream's next 64 random bits and the advanced state."""
    state = state + _GOLDEN
    return _mix(state), state


@numba.njit(cache=True, inline="always")
def _uniform(state):
    """A uniform in the open interval (0, 1) and the advanced state."""
    bits, state = _next_word(state)
    return (np.float64(bits >> np.uint64(11)) + 0.5) * _INV_2_53, state


def _ziggurat_tables(edge: float, layers: int = 256) -> tuple[np.ndarray, ...]:
    """The ziggurat's tables for ``exp(-x^2 / 2)``: Marsaglia and Tsang's ``zigset``.

    ``edge`` is the right end of the base layer, chosen so that ``layers`` layers of equal
    area (the base layer's includes the tail beyond ``edge``) stack up to the mode; that
    area is computed here to full precision. Returns the magnitude bounds under
    which a point lies wholly inside its layer (``bounds``, against 52-bit magnitudes),
    the layers' widths per unit of magnitude (``widths``) and the density at each layer's
    top edge (``heights``).
    """
    scale = 2.0**52
    area = edge * np.exp(-0.5 * edge * edge) + np.sqrt(np.pi / 2) * math.erfc(edge / np.sqrt(2))
    bounds = np.zeros(layers, dtype=np.uint64)
    widths, heights = np.empty(layers), np.empty(layers)
    x = previous = edge
    base = area / np.exp(-0.5 * x * x)  # the base layer's width, tail included
    bounds[0] = np.uint64(x / base * scale)
    widths[0], widths[-1] = base / scale, x / scale
    heights[0], heights[-1] = 1.0, np.exp(-0.5 * x * x)
    for i in range(layers - 2, 0, -1):
        x = np.sqrt(-2.0 * np.log(area / x + np.exp(-0.5 * x * x)))
        bounds[i + 1] = np.uint64(x / previous * scale)
        previous = x
        heights[i], widths[i] = np.exp(-0.5 * x * x), x / scale
    return bounds, widths, heights


_ZIGGURAT_EDGE = 3.6541528853610088
_BOUNDS, _WIDTHS, _HEIGHTS = _ziggurat_tables(_ZIGGURAT_EDGE)
_LAYER = np.uint64(0xFF)
_MAGNITUDE = np.uint64(0x000FFFFFFFFFFFFF)
_ONE = np.uint64(1)
_EIGHT = np.uint64(8)
_NINE = np.uint64(9)


@numba.njit(cache=True, inline="always")
def _normal(state):
    """A standard normal (the ziggurat) and the advanced state."""
    while True:
        bits, state = _next_word(state)
        layer = np.intp(bits & _LAYER)
        # Branch-free sign, and the magnitude (< 2^52) converted as a signed integer:
        # a branch on a random bit, or an unsigned conversion, doubles the cost.
        sign = 1.0 - 2.0 * np.float64((bits >> _EIGHT) & _ONE)
        magnitude = (bits >> _NINE) & _MAGNITUDE
        x = np.float64(np.int64(magnitude)) * _WIDTHS[layer] * sign
        if magnitude < _BOUNDS[layer]:
            return x, state  # wholly inside the layer: no other test
        if layer == 0:
            # The tail beyond the edge: Marsaglia's exponential rejection.
            while True:
                u1, state = _uniform(state)
                u2, state = _uniform(state)
                tail = -np.log(u1) / _ZIGGURAT_EDGE
                if -2.0 * np.log(u2) > tail * tail:
                    return sign * (_ZIGGURAT_EDGE + tail), state
        u, state = _uniform(state)
        if (_HEIGHTS[layer - 1] - _HEIGHTS[layer]) * u + _HEIGHTS[layer] < np.exp(-0.5 * x * x):
            return x, state


@numba.njit(cache=True)
def fill_gamma(shapes, state, out):
    """``out[g] ~ Gamma(shapes[g], 1)`` independently; returns the advanced state."""
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
            n, state = _normal(state)
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
    for g in range(len(out)):
        out[g], state = _normal(state)
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
