"""Constant retention (geometric lifetimes): the Berger–Nasr baseline.

References
----------
.. [1] Berger, P. D. and Nasr, N. I. (1998). Customer lifetime value: marketing models
   and applications. Journal of Interactive Marketing 12(1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesclv._math import NP
from bayesclv.models.retention.base import RetentionFamily
from bayesclv.priors import Prior, hierarchy_options

__all__ = ["GeometricRetention"]


class GeometricRetention(RetentionFamily):
    """Constant retention ``S(t) = (1 - theta)^t``: the Berger–Nasr baseline.

    Pooled coordinate: ``logit_theta``. The churn probability per period is ``theta``
    whatever the tenure, so ``dH = -log(1 - theta) = softplus(logit_theta)``.
    """

    name = "geometric"
    coords = ("logit_theta",)
    param_names = ("theta",)
    covariate_coord = "logit_theta"
    covariate_sign = -1.0

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:  # noqa: D102
        return {"theta": 1.0 / (1.0 + xp.exp(-psi[..., 0]))}

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        return xp.log(xp.softplus(psi[..., 0])) + 0.0 * xp.asfloat(t)

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        return xp.asfloat(t) * xp.softplus(psi[..., 0])

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:  # noqa: D102
        window = float(np.max(tenure))
        return {
            # logit(theta) ~ log(1/characteristic lifetime); centred on 1/window.
            "mu": {"logit_theta": Prior("Normal", mu=-np.log(window), sigma=2.5)},
            "sigma": {"logit_theta": Prior("HalfNormal", sigma=1.0)},
            **hierarchy_options(correlated=False),
        }
