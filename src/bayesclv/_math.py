"""Elementwise math written once for numpy and PyTensor.

Kernels take a namespace ``xp`` (:data:`NP` or :data:`PT`) so that the numpy form used for
prediction and the PyTensor form used for sampling are the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad
from scipy import special

__all__ = ["NP", "PT", "LaplaceGrid", "exponential_sums", "power_increment",
           "sum_log1p_ratio"]

_LOG_HALF = -0.6931471805599453


def _np_log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate at both ends (Maechler 2012)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x < _LOG_HALF, np.log1p(-np.exp(np.minimum(x, _LOG_HALF))),
                        np.log(-np.expm1(np.minimum(x, 0.0))))


_STIRLING_FROM = 20.0
# Coefficients of the Stirling series of log Gamma(x) - [(x - 1/2) log x - x + log(2 pi)/2].
_STIRLING = (1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0)


def _stirling_correction(x: object, xp: object) -> object:
    inverse = 1.0 / x
    square = inverse * inverse
    total = _STIRLING[-1]
    for coefficient in reversed(_STIRLING[:-1]):
        total = coefficient + square * total
    return total * inverse


def _log_gamma_ratio(y: object, a: object, xp: object) -> object:
    """``log Gamma(y + a) - log Gamma(y)`` for ``y, a > 0``, accurate for large ``y``.

    For ``y >= 20`` the Stirling form ``a log y + (y + a - 1/2) log1p(a / y) - a +
    w(y + a) - w(y)`` (``w`` the Stirling correction, error below 1e-17) avoids
    subtracting two huge log-gamma values; below, the direct difference is exact enough.
    """
    large = y >= _STIRLING_FROM
    safe = xp.where(large, y, _STIRLING_FROM)
    stirling = (a * xp.log(safe) + (safe + a - 0.5) * xp.log1p(a / safe) - a
                + _stirling_correction(safe + a, xp) - _stirling_correction(safe, xp))
    small = xp.where(large, 1.0, y)
    direct = xp.gammaln(small + a) - xp.gammaln(small)
    return xp.where(large, stirling, direct)


# psi(y) - log y + 1/(2y) ~ -sum_k B_2k / (2k y^2k): coefficients of y^-2, y^-4, ..., y^-10.
_DIGAMMA_SERIES = (-1.0 / 12.0, 1.0 / 120.0, -1.0 / 252.0, 1.0 / 240.0, -1.0 / 132.0)
_DIGAMMA_SHIFT = 8


def _digamma_series(square: object) -> object:
    """``sum_k c_k x^k`` at ``x = 1/z^2`` (Horner), the tail of the digamma expansion."""
    total = _DIGAMMA_SERIES[-1]
    for coefficient in reversed(_DIGAMMA_SERIES[:-1]):
        total = coefficient + square * total
    return total * square


def _digamma_difference(y: object, a: object, xp: object) -> object:
    """``psi(y + a) - psi(y)`` for ``y, a > 0``, accurate when ``a << y``; no special functions.

    For ``z >= 8`` the asymptotic series gives ``log1p(a / z) + a / (2 z (z + a)) +
    sum_k c_k [(z + a)^-2k - z^-2k]`` (truncation error below 4e-12 of the result), whose
    leading terms carry no cancellation (the bracketed corrections are below ``z^-2`` of
    the result). Below 8 the recurrence ``psi(y + 1) = psi(y) + 1/y`` shifts ``y`` by 8,
    adding the positive terms ``a / ((y + j)(y + j + a))``, ``j = 0..7``. Only elementary
    operations, so PyTensor differentiates it without polygamma functions.
    """
    small = y < _DIGAMMA_SHIFT
    z = y + xp.where(small, float(_DIGAMMA_SHIFT), 0.0)
    shifted = z + a
    series = _digamma_series(1.0 / (shifted * shifted)) - _digamma_series(1.0 / (z * z))
    asymptotic = xp.log1p(a / z) + a / (2.0 * z * shifted) + series
    return asymptotic + xp.select(small, _digamma_recurrence, _no_recurrence, y, a)


def _no_recurrence(y: object, a: object) -> float:
    return 0.0


def _digamma_recurrence(y: object, a: object) -> object:
    """``sum_{j<8} a / ((y + j)(y + j + a))``, ``psi(y + a) - psi(y)`` less that at ``y + 8``."""
    recurrence = 0.0
    for j in range(_DIGAMMA_SHIFT):
        recurrence = recurrence + a / ((y + j) * (y + j + a))
    return recurrence


# Gauss-Legendre nodes and weights on [0, 1] (4 points: exact for degree-7 polynomials).
_GL_NODES = (0.06943184420297371, 0.33000947820757187, 0.6699905217924281,
             0.9305681557970262)
_GL_WEIGHTS = (0.1739274225687269, 0.3260725774312731, 0.3260725774312731,
               0.1739274225687269)
_QUADRATURE_BELOW = 0.1


def _log_gamma_ratio_increment(y: object, delta: object, a: object, xp: object) -> object:
    """``[log G(y + delta + a) - log G(y + delta)] - [log G(y + a) - log G(y)]``, ``> 0``.

    The difference of two :func:`_log_gamma_ratio` values cancels when ``delta << y``
    (e.g. ``t^c - (t-1)^c`` for large ``t`` and ``c < 1``). There it is evaluated as
    ``integral_y^{y+delta} [psi(u + a) - psi(u)] du`` by Gauss-Legendre quadrature of a
    positive integrand whose relative variation over the interval is below
    ``delta / y < 0.1`` (four-point quadrature error below 1e-12 relative); otherwise
    directly, where the cancellation is bounded (both measured below 5e-10 relative
    against mpmath, ``tests/test_numerics.py``).
    """
    near = delta < _QUADRATURE_BELOW * y
    # The quadrature's interval, kept short where it is not taken (finite gradients).
    step = xp.where(near, delta, _QUADRATURE_BELOW * y)

    def quadrature(y: object, step: object, delta: object, a: object) -> object:
        # The nodes on a trailing axis: one evaluation of the integrand for all of them.
        nodes = xp.last_axis(y) + xp.last_axis(step) * np.asarray(_GL_NODES)
        integrand = _digamma_difference(nodes, xp.last_axis(a), xp)
        return step * (integrand * np.asarray(_GL_WEIGHTS)).sum(axis=-1)

    def direct(y: object, step: object, delta: object, a: object) -> object:
        return _log_gamma_ratio(y + delta, a, xp) - _log_gamma_ratio(y, a, xp)

    return xp.select(near, quadrature, direct, y, step, delta, a)


def power_increment(t: np.ndarray, log_c: object, xp: object) -> object:
    """``t^c - (t-1)^c`` for integer ``t >= 1``, ``c = exp(log_c)``, without cancellation.

    ``(t-1)^c expm1(c log1p(1/(t-1)))`` for ``t >= 2``; exactly 1 for ``t = 1``.
    """
    t = xp.asfloat(t)
    later = t >= 2.0
    before = xp.where(later, t - 1.0, 1.0)
    c = xp.exp(log_c)
    value = xp.exp(c * xp.log(before)) * xp.expm1(c * xp.log1p(1.0 / before))
    return xp.where(later, value, 1.0)


def _pt_one_minus_exp(x: Any) -> Any:
    """``1 - exp(x)`` as ``-expm1(x)``, differentiated without a second exponential.

    PyTensor would differentiate ``expm1`` through ``exp(x)``: another exponential of
    every element. The derivative ``-exp(x)`` is ``value - 1``, so it is written that
    way: ``value + (x - x') (value - 1)`` with ``x'`` the same ``x`` cut from the
    gradient has the value ``value`` (the second term is an exact zero) and the gradient
    ``value - 1``.
    """
    fixed = zero_grad(x)
    value = -pt.expm1(fixed)
    return value + (x - fixed) * (value - 1.0)


def _np_select(condition: np.ndarray, if_true: Callable[..., Any],
               if_false: Callable[..., Any], *args: np.ndarray) -> np.ndarray:
    """``if_true(*args)`` where ``condition`` holds, else ``if_false(*args)``.

    Each function is computed on its own elements only.
    """
    condition, *args = np.broadcast_arrays(condition, *args)
    out = np.empty(condition.shape)
    for function, where in ((if_true, condition), (if_false, ~condition)):
        if where.any():
            out[where] = function(*(arg[where] for arg in args))
    return out


def _np_group_sum(values: np.ndarray, group: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (last axis) by ``group`` into an array shaped like ``like``."""
    out = np.zeros(np.shape(like))
    np.add.at(out, (..., np.asarray(group)), values)
    return out


NP = SimpleNamespace(
    exp=np.exp,
    log=np.log,
    expm1=np.expm1,
    log1p=np.log1p,
    where=np.where,
    softplus=lambda x: np.logaddexp(0.0, x),
    log1mexp=_np_log1mexp,
    one_minus_exp=lambda x: -np.expm1(x),
    gammaln=special.gammaln,
    betaln=special.betaln,
    last_axis=lambda x: np.asarray(x)[..., None],
    maximum=np.maximum,
    asfloat=lambda x: np.asarray(x, dtype=np.float64),
    group_sum=_np_group_sum,
    # if_true(*args) where condition holds, else if_false(*args); numpy computes each
    # only where it is taken (PyTensor everywhere: its gradient needs both finite).
    select=_np_select,
    # 0, 1, ..., max(values), for integer values.
    range_to_max=lambda values: np.arange(int(np.max(values)) + 1),
)
NP.log_gamma_ratio = lambda y, a: _log_gamma_ratio(y, a, NP)
NP.log_gamma_ratio_increment = lambda y, d, a: _log_gamma_ratio_increment(y, d, a, NP)

PT = SimpleNamespace(
    exp=pt.exp,
    log=pt.log,
    expm1=pt.expm1,
    log1p=pt.log1p,
    where=pt.switch,
    softplus=pt.softplus,
    log1mexp=pt.log1mexp,
    one_minus_exp=_pt_one_minus_exp,
    gammaln=pt.gammaln,
    betaln=lambda a, b: pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b),
    last_axis=lambda x: pt.as_tensor_variable(x)[..., None],
    maximum=pt.maximum,
    asfloat=lambda x: pt.cast(pt.as_tensor_variable(x), "float64"),
    # Sums of ``values`` (last axis) by ``group`` into an array shaped like ``like``.
    group_sum=lambda values, group, like: pt.inc_subtensor(
        pt.zeros_like(like)[..., group], values),
    range_to_max=lambda values: pt.arange(pt.max(values) + 1),
    select=lambda condition, if_true, if_false, *args: pt.switch(
        condition, if_true(*args), if_false(*args)),
)
PT.log_gamma_ratio = lambda y, a: _log_gamma_ratio(y, a, PT)
PT.log_gamma_ratio_increment = lambda y, d, a: _log_gamma_ratio_increment(y, d, a, PT)


# --------------------------------------------------------------------------------------
# Sums of log1p(gamma / w_i) over many customers, in O(nodes) per evaluation
# --------------------------------------------------------------------------------------
#
# Frullani's integral gives, for w, gamma > 0,
#     log1p(gamma / w) = int_0^inf exp(-t w) (1 - exp(-gamma t)) / t dt,
# so for a group of customers with weights c_i
#     sum_i c_i log1p(gamma / w_i) = int_0^inf M(t) (1 - exp(-gamma t)) / t dt,
#     M(t) = sum_i c_i exp(-t w_i)            (the Laplace transform of the data).
# With t = exp(u) the integrand is entire in u and decays doubly exponentially as
# u -> +inf and exponentially as u -> -inf, so the trapezoid rule in u converges
# geometrically: its error is of order exp(-pi^2 / step) (the integrand stays bounded in
# the strip |Im u| < pi / 2), 1e-17 relative at step 0.25. M(t) is computed once per node
# from the data; each evaluation of the likelihood then costs groups x nodes operations,
# whatever the number of customers.

#: Trapezoid step in log t. Measured error of the sums against exact per-customer sums
#: (math.fsum) at a million customers: below 2e-14 relative for 1e-8 <= gamma <= 1e12.
LAPLACE_STEP = 0.25
#: The last node has ``t w_min`` at least this: beyond it ``exp(-t w)`` is below 2e-22.
_UPPER_EXPONENT = 50.0
#: The first node has ``t w_max`` at most this; left of it ``M(t)`` departs from its value
#: at ``t = 0`` by at most this relative amount, and the tail there is summed in closed
#: form as if it did not: an error of 1e-10 of a tail that is itself below 1e-4 of the sum
#: for ``gamma`` up to 1e6 times the largest ``w`` (measured against math.fsum: 2e-16
#: relative, as with a first node 1e-18 / w_max, with a third fewer nodes).
_LOWER_EXPONENT = 1e-10


class LaplaceGrid:
    """Nodes ``t_k = exp(u_0 + k step)`` covering the data ``w`` (all positive).

    Parameters
    ----------
    w : numpy.ndarray
        Positive values whose Laplace transform is tabulated.
    step : float, default=LAPLACE_STEP
    """

    def __init__(self, w: np.ndarray, step: float = LAPLACE_STEP) -> None:
        w = np.asarray(w, dtype=np.float64)
        if w.size == 0:
            w = np.ones(1)
        self._cover(float(w.min()), float(w.max()), step)

    @classmethod
    def covering(cls, w_min: float, w_max: float, step: float = LAPLACE_STEP) -> LaplaceGrid:
        """The grid of any data whose smallest value is ``w_min`` and largest ``w_max``.

        Tables reduced apart (e.g. the partitions of a Dask DataFrame) share a grid this
        way, so their transforms add up.
        """
        grid = cls.__new__(cls)
        grid._cover(float(w_min), float(w_max), step)
        return grid

    def _cover(self, w_min: float, w_max: float, step: float) -> None:
        low = math.log(_LOWER_EXPONENT / w_max)
        high = math.log(_UPPER_EXPONENT / w_min)
        self.step = float(step)
        self.nodes = np.exp(low + self.step * np.arange(int(math.ceil((high - low) / step)) + 1))


# Sums over customers are compensated (each running sum carries the rounding error of its
# additions, Neumaier's scheme): their error is of order n eps^2 instead of n eps, so the
# rounded result is the correctly rounded sum but in vanishingly rare cases, whatever the
# order of the customers. Parts of a table summed apart (Dask partitions) and added with
# add_compensated therefore give the statistics of the whole table to the last bit, and a
# fit on them the same posterior draws.


@numba.njit(cache=True)
def _two_sum(a, b):  # pragma: no cover - numba
    total = a + b
    shifted = total - a
    return total, (a - (total - shifted)) + (b - shifted)


@numba.njit(cache=True, parallel=True)
def _exponential_sums(group, x, w, nodes, one, weighted):  # pragma: no cover - numba
    # One node per thread, each writing its own row: every sum runs over the customers in
    # input order, so the result does not depend on the number of threads. The arithmetic
    # is explicit: numba compiles without fast-math (no reassociation, no fused
    # multiply-add contraction) and math.exp is the C library's exp, the one Python's
    # math.exp calls; numpy's SIMD exp may differ from it in the last bit.
    for k in numba.prange(len(nodes)):
        t = nodes[k]
        for i in range(len(w)):
            exponent = t * w[i]
            if exponent < 746.0:  # exp(-746) is 0 in double precision
                value = math.exp(-exponent)
                g = group[i]
                total, error = _two_sum(one[0, k, g], value)
                one[0, k, g] = total
                one[1, k, g] += error
                total, error = _two_sum(weighted[0, k, g], x[i] * value)
                weighted[0, k, g] = total
                weighted[1, k, g] += error


@numba.njit(cache=True)
def _grouped_sums(group, values, out):  # pragma: no cover - numba
    for i in range(len(group)):
        g = group[i]
        for j in range(values.shape[1]):
            total, error = _two_sum(out[0, g, j], values[i, j])
            out[0, g, j] = total
            out[1, g, j] += error


def grouped_sums(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Compensated sums of the columns of ``values`` (n, k) per group.

    Returns
    -------
    numpy.ndarray, shape (2, n_groups, k)
        The running sums and their accumulated rounding errors; :func:`rounded` gives the
        sums, :func:`add_compensated` adds such pairs from parts of the data.
    """
    out = np.zeros((2, n_groups, values.shape[1]))
    _grouped_sums(np.ascontiguousarray(group, dtype=np.int64),
                  np.ascontiguousarray(values, dtype=np.float64), out)
    return out


def add_compensated(parts: list[np.ndarray]) -> np.ndarray:
    """The compensated sum of compensated sums (pairs as :func:`grouped_sums` gives)."""
    high, low = parts[0][0].copy(), parts[0][1].copy()
    for part in parts[1:]:
        total = high + part[0]
        shifted = total - high
        low = low + ((high - (total - shifted)) + (part[0] - shifted)) + part[1]
        high = total
    return np.stack([high, low])


def rounded(pair: np.ndarray) -> np.ndarray:
    """The double nearest a compensated sum."""
    return pair[0] + pair[1]


def exponential_sums_compensated(group: np.ndarray, x: np.ndarray, w: np.ndarray,
                                 n_groups: int, grid: LaplaceGrid
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exponential_sums` as compensated pairs, each of shape (2, n_groups, nodes)."""
    one = np.zeros((2, len(grid.nodes), n_groups))
    weighted = np.zeros((2, len(grid.nodes), n_groups))
    _exponential_sums(np.ascontiguousarray(group, dtype=np.int64),
                      np.ascontiguousarray(x, dtype=np.float64),
                      np.ascontiguousarray(w, dtype=np.float64),
                      grid.nodes, one, weighted)
    return (np.ascontiguousarray(one.transpose(0, 2, 1)),
            np.ascontiguousarray(weighted.transpose(0, 2, 1)))


def exponential_sums(group: np.ndarray, x: np.ndarray, w: np.ndarray, n_groups: int,
                     grid: LaplaceGrid) -> tuple[np.ndarray, np.ndarray]:
    """``sum_i exp(-t_k w_i)`` and ``sum_i x_i exp(-t_k w_i)`` per group and node.

    Returns
    -------
    tuple of numpy.ndarray, each of shape (n_groups, len(grid.nodes))
    """
    one, weighted = exponential_sums_compensated(group, x, w, n_groups, grid)
    return rounded(one), rounded(weighted)


def sum_log1p_ratio(gamma: object, transform: np.ndarray, total: np.ndarray,
                    nodes: np.ndarray, step: float, xp: object) -> object:
    """``sum_i c_i log1p(gamma_g / w_i)`` per group ``g``, from the tabulated transform.

    Parameters
    ----------
    gamma : array of shape (n_groups,)
        Positive.
    transform : numpy.ndarray, shape (n_groups, n_nodes)
        ``M_g(t_k) = sum_{i in g} c_i exp(-t_k w_i)`` (:func:`exponential_sums`).
    total : numpy.ndarray, shape (n_groups,)
        ``sum_{i in g} c_i``, the transform at ``t = 0``.
    nodes, step
        From :class:`LaplaceGrid`.
    xp : namespace
        :data:`NP` or :data:`PT`.

    Notes
    -----
    The trapezoid sum over the nodes, plus the nodes left of the first one in closed form:
    there ``M(t) = total`` and ``1 - exp(-gamma t) = y - y^2 / 2 + O(y^3)``, ``y = gamma
    t``, so they add ``total * step * (y0 r - y0^2 r2 / 2)`` with ``y0 = gamma t_0``,
    ``r = sum_j exp(-j step)``, ``r2 = sum_j exp(-2 j step)``. ``gamma t_0`` is below
    1e-4 for ``gamma`` up to 1e6 times the largest ``w``, far outside any posterior, and
    the ``O(y0^3)`` term is then below 1e-12 of the tail.
    """
    gamma_col = xp.last_axis(gamma)
    body = (transform * xp.one_minus_exp(-gamma_col * nodes)).sum(axis=-1)
    y0 = gamma * nodes[0]
    ratio = math.exp(-step) / -math.expm1(-step)
    ratio2 = math.exp(-2.0 * step) / -math.expm1(-2.0 * step)
    tail = total * (y0 * ratio - 0.5 * y0 * y0 * ratio2)
    return step * (body + tail)
