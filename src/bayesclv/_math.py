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
