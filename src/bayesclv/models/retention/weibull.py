"""Duration-dependent retention: discrete Weibull lifetimes, the same for a segment."""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesclv._math import NP
from bayesclv.models.retention.base import RetentionFamily
from bayesclv.priors import Prior, hierarchy_options

__all__ = ["WeibullRetention"]


class WeibullRetention(RetentionFamily):
    """Duration-dependent retention ``S(t) = exp(-(t/eta)^k)``.

    Pooled coordinates: ``log_eta`` (scale, in periods) and ``log_k`` (shape). ``k < 1``:
    the hazard falls with tenure (retention rises); ``k = 1`` is constant retention.

    Notes
    -----
    The increment is evaluated without cancellation as
    ``dH(t) = (t/eta)^k * (1 - (1 - 1/t)^k) = exp(k log(t/eta)) * -expm1(k log1p(-1/t))``,
    with ``dH(1) = eta^-k``; the ``t = 1`` branch is selected with a safe dummy value in
    the other branch so that gradients stay finite.
    """

    name = "weibull"
    coords = ("log_eta", "log_k")
    param_names = ("eta", "k")
    covariate_coord = "log_eta"

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:  # noqa: D102
        return {"eta": xp.exp(psi[..., 0]), "k": xp.exp(psi[..., 1])}

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        first, log_power, log_shrink = _increment_exponents(t, psi, xp)
        later = log_power + xp.log(-xp.expm1(log_shrink))
        return xp.where(first, log_power, later)

    def hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``dH(t)`` as the product of its two factors, without a logarithm."""
        first, log_power, log_shrink = _increment_exponents(t, psi, xp)
        power = xp.exp(log_power)
        return xp.where(first, power, power * xp.one_minus_exp(log_shrink))

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        t = xp.asfloat(t)
        positive = t > 0
        log_t = xp.log(xp.where(positive, t, 1.0))
        value = xp.exp(xp.exp(psi[..., 1]) * (log_t - psi[..., 0]))
        return xp.where(positive, value, 0.0)

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:  # noqa: D102
        window = float(np.max(tenure))
        return {
            # eta within a factor ~150 of the observation window (95%).
            "mu": {
                "log_eta": Prior("Normal", mu=np.log(window), sigma=2.5),
                # k between ~0.37 and ~2.7 (95%).
                "log_k": Prior("Normal", mu=0.0, sigma=0.5),
            },
            "sigma": {
                "log_eta": Prior("HalfNormal", sigma=1.0),
                "log_k": Prior("HalfNormal", sigma=0.5),
            },
            **hierarchy_options(correlated=True),
        }


def _increment_exponents(t: np.ndarray, psi: Any, xp: Any) -> tuple[Any, Any, Any]:
    """``t <= 1``, ``k log(t/eta)`` and ``k log1p(-1/t)`` (a safe ``-k`` at ``t = 1``).

    ``dH(t) = exp(k log(t/eta)) (1 - exp(k log1p(-1/t)))``; at ``t = 1`` the second
    factor is 1 and ``k log(t/eta) = -k log eta``.
    """
    t = xp.asfloat(t)
    first = t <= 1.0
    log_t = xp.log(xp.maximum(t, 1.0))
    log_ratio = xp.where(first, -1.0, xp.log1p(-1.0 / xp.maximum(t, 2.0)))
    log_eta, k = psi[..., 0], xp.exp(psi[..., 1])
    return first, k * (log_t - log_eta), k * log_ratio
