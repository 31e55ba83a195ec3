"""Beta-discrete-Weibull retention: beta-mixed churn propensity with duration dependence.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S., Liu, Y., Davin, J. and Steenburgh, T. (2018).
   "How to project customer retention" revisited: the role of duration dependence.
   Journal of Interactive Marketing 43.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesclv._math import NP, power_increment
from bayesclv.models.retention.base import RetentionFamily
from bayesclv.models.retention.sbg import _beta_cumulative_hazard, _beta_priors
from bayesclv.priors import Prior

__all__ = ["BetaDiscreteWeibullRetention"]


def _power(t: np.ndarray, log_c: Any, xp: Any) -> Any:
    """``t^c`` for integer ``t >= 0`` with finite gradients in ``c`` at ``t = 0``."""
    t = xp.asfloat(t)
    positive = t > 0
    log_t = xp.log(xp.where(positive, t, 1.0))
    return xp.where(positive, xp.exp(xp.exp(log_c) * log_t), 0.0)


class BetaDiscreteWeibullRetention(RetentionFamily):
    """Beta-discrete-Weibull retention ``S(t) = B(alpha, beta + t^c) / B(alpha, beta)``.

    Heterogeneity (``theta ~ Beta(alpha, beta)`` across the customers of a segment) and
    duration dependence (each customer's own survival is ``(1 - theta)^(t^c)``): ``c < 1``,
    a customer's churn risk falls with tenure; ``c > 1``, it rises; ``c = 1`` is the
    shifted-beta-geometric. Pooled coordinates: ``log_alpha``, ``log_beta``, ``log_c``.

    Notes
    -----
    ``dH(t) = log B(alpha, beta + (t-1)^c) - log B(alpha, beta + t^c)``, a difference of
    log-beta functions (never of survival probabilities), each written as a log-gamma
    ratio that stays accurate for huge ``t^c``; a churned customer's term is
    ``log S(t-1) + log(1 - exp(-dH(t)))``.

    References
    ----------
    Fader, P. S., Hardie, B. G. S., Liu, Y., Davin, J. and Steenburgh, T. (2018).
    "How to project customer retention" revisited: the role of duration dependence.
    Journal of Interactive Marketing 43, 1-16.
    """

    name = "bdw"
    coords = ("log_alpha", "log_beta", "log_c")
    param_names = ("alpha", "beta", "c")
    statistics = "groups"
    covariate_coord = "log_beta"

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:  # noqa: D102
        return {"alpha": xp.exp(psi[..., 0]), "beta": xp.exp(psi[..., 1]),
                "c": xp.exp(psi[..., 2])}

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        t = xp.asfloat(t)
        alpha, beta = xp.exp(psi[..., 0]), xp.exp(psi[..., 1])
        before = _power(t - 1.0, psi[..., 2], xp)
        step = power_increment(t, psi[..., 2], xp)  # t^c - (t-1)^c, no cancellation
        increment = xp.log_gamma_ratio_increment(beta + before, step, alpha)
        # Guard against rounding to zero when the increment is below float resolution.
        return xp.log(xp.where(increment > 1e-300, increment, 1e-300))

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        alpha, beta = xp.exp(psi[..., 0]), xp.exp(psi[..., 1])
        return _beta_cumulative_hazard(alpha, beta, _power(t, psi[..., 2], xp), xp)

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:  # noqa: D102
        priors = _beta_priors(tenure)
        # c between ~0.37 and ~2.7 (95%), centred on no duration dependence.
        priors["mu"]["log_c"] = Prior("Normal", mu=0.0, sigma=0.5)
        priors["sigma"]["log_c"] = Prior("HalfNormal", sigma=0.5)
        return priors
