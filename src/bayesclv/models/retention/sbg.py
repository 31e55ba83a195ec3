"""Shifted-beta-geometric retention: a churn probability per customer, beta-distributed.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer retention.
   Journal of Interactive Marketing 21(1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesclv._math import NP
from bayesclv.models.retention.base import RetentionFamily
from bayesclv.priors import Prior, hierarchy_options

__all__ = ["ShiftedBetaGeometricRetention"]


class ShiftedBetaGeometricRetention(RetentionFamily):
    """Shifted-beta-geometric retention ``S(t) = B(alpha, beta + t) / B(alpha, beta)``.

    Each customer churns with a constant probability ``theta`` per period, and ``theta``
    varies across the customers of a segment as ``Beta(alpha, beta)``. ``theta`` is
    integrated out, so the segment's retention rate ``r(t) = (beta + t - 1) /
    (alpha + beta + t - 1)`` rises with tenure only because the customers most likely to
    churn leave first. Pooled coordinates: ``log_alpha``, ``log_beta``.

    Notes
    -----
    The increment has the exact form ``dH(t) = log1p(alpha / (beta + t - 1))``, so no
    survival probabilities are subtracted.
    """

    name = "sbg"
    coords = ("log_alpha", "log_beta")
    param_names = ("alpha", "beta")
    statistics = "groups"
    covariate_coord = "log_beta"

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:  # noqa: D102
        return {"alpha": xp.exp(psi[..., 0]), "beta": xp.exp(psi[..., 1])}

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        t = xp.asfloat(t)
        # alpha / (beta + t - 1) in log space: log_alpha - log(beta + t - 1).
        ratio = xp.exp(psi[..., 0] - xp.log(xp.exp(psi[..., 1]) + (t - 1.0)))
        return xp.log(xp.log1p(ratio))

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        t = xp.asfloat(t)
        return _beta_cumulative_hazard(xp.exp(psi[..., 0]), xp.exp(psi[..., 1]), t, xp)

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:  # noqa: D102
        return _beta_priors(tenure)


def _beta_cumulative_hazard(alpha: Any, beta: Any, x: Any, xp: Any) -> Any:
    """``-log[B(alpha, beta + x) / B(alpha, beta)]``, as a difference of log-gamma ratios.

    ``log B(alpha, beta + x) - log B(alpha, beta) = log G(beta + x) - log G(alpha + beta + x)
    - log G(beta) + log G(alpha + beta)``; pairing the terms as
    ``log G(y + alpha) - log G(y)`` keeps it accurate when ``beta + x`` is huge (``x = t^c``
    reaches 1e20 for ``t = 1e4, c = 5``), where the four log-gammas themselves are not.
    """
    return xp.log_gamma_ratio(beta + x, alpha) - xp.log_gamma_ratio(beta, alpha)


def _beta_priors(tenure: np.ndarray) -> dict[str, Any]:
    """Priors on (log alpha, log beta) for the beta-mixture families.

    ``alpha`` within ~[0.05, 20] (95%); ``beta`` centred so that the mean first-period
    churn probability ``alpha / (alpha + beta)`` is about one over the observation
    window, within a factor ~50 either way.
    """
    window = max(float(np.max(tenure)), 2.0)
    return {
        "mu": {
            "log_alpha": Prior("Normal", mu=0.0, sigma=1.5),
            "log_beta": Prior("Normal", mu=float(np.log(window - 1.0)), sigma=2.0),
        },
        "sigma": {
            "log_alpha": Prior("HalfNormal", sigma=1.0),
            "log_beta": Prior("HalfNormal", sigma=1.0),
        },
        **hierarchy_options(correlated=True),
    }
