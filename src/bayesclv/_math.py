"""Elementwise math written once for numpy and PyTensor.

Kernels take a namespace ``xp`` (:data:`NP` or :data:`PT`) so that the numpy form used for
prediction and the PyTensor form used for sampling are the same code.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytensor.tensor as pt
from scipy import special

__all__ = ["NP", "PT"]

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


NP = SimpleNamespace(
    exp=np.exp,
    log=np.log,
    expm1=np.expm1,
    log1p=np.log1p,
    where=np.where,
    softplus=lambda x: np.logaddexp(0.0, x),
    log1mexp=_np_log1mexp,
    gammaln=special.gammaln,
    betaln=special.betaln,
)
NP.log_gamma_ratio = lambda y, a: _log_gamma_ratio(y, a, NP)

PT = SimpleNamespace(
    exp=pt.exp,
    log=pt.log,
    expm1=pt.expm1,
    log1p=pt.log1p,
    where=pt.switch,
    softplus=pt.softplus,
    log1mexp=pt.log1mexp,
    gammaln=pt.gammaln,
    betaln=lambda a, b: pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b),
)
PT.log_gamma_ratio = lambda y, a: _log_gamma_ratio(y, a, PT)
