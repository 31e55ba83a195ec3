"""What a retention family declares: a discrete-time survival, through its hazard.

Time is discrete, t = 1, 2, ...; ``S(0) = 1``; a customer churns in period t with
probability ``S(t-1) - S(t)``. Every family is written through its cumulative hazard
``H(t) = -log S(t)`` and the per-period increment ``dH(t) = H(t) - H(t-1)``, so that

* the hazard is ``h(t) = 1 - exp(-dH(t))`` (evaluated as ``-expm1(-dH)``),
* the conditional survival ``S(tau + j) / S(tau) = exp(-sum_{u=tau+1}^{tau+j} dH(u))``
  needs no subtraction of survival probabilities.

A family declares its pooled coordinates, natural parameters, ``log_hazard_increment``,
``cumulative_hazard`` and default priors (and may compute ``dH`` itself, where that is
cheaper than through its log); everything else (survival, retention rates,
the likelihoods of :mod:`bayesclv.models.retention.likelihood`) follows in this base.
Kernels are written once for numpy and PyTensor (see :mod:`bayesclv._math`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bayesclv._math import NP

__all__ = ["RetentionFamily"]


class RetentionFamily:
    """A discrete-time survival family with segment parameters on an unconstrained scale.

    Subclasses define ``coords`` (names of the unconstrained coordinates pooled across
    segments), ``param_names`` (natural parameters), :meth:`natural`,
    :meth:`log_hazard_increment`, :meth:`cumulative_hazard` and :meth:`default_priors`.
    ``psi`` arguments carry the coordinates on their last axis; ``t`` must broadcast
    against ``psi[..., 0]``.
    """

    name: ClassVar[str]
    coords: ClassVar[tuple[str, ...]]
    param_names: ClassVar[tuple[str, ...]]
    #: Sufficient statistics the likelihood is computed on: ``"risk_set"`` (customers at
    #: risk and churning per segment and period) or ``"groups"`` (unique
    #: ``(segment, entry, tenure, churned)`` rows with counts).
    statistics: ClassVar[str] = "risk_set"
    #: The coordinate customer covariates shift, and the sign that makes a positive
    #: coefficient mean longer lifetimes.
    covariate_coord: ClassVar[str]
    covariate_sign: ClassVar[float] = 1.0

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:
        """Natural parameters from ``psi``."""
        raise NotImplementedError

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``log dH(t)`` for periods ``t >= 1``."""
        raise NotImplementedError

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``H(t) = -log S(t)`` for ``t >= 0``."""
        raise NotImplementedError

    def hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``dH(t) = exp(log dH(t))`` for periods ``t >= 1``.

        What the likelihoods and valuations use. A family whose ``dH`` is a product of
        factors it computes anyway may override it to skip the logarithm and the
        exponential, one of each for every cell at every gradient.
        """
        return xp.exp(self.log_hazard_increment(t, psi, xp))

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:
        """Weakly informative priors, centred on the length of the observation window."""
        raise NotImplementedError

    def log_survival(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``log S(t)``."""
        return -self.cumulative_hazard(t, psi, xp)

    def survival(self, t: np.ndarray, psi: np.ndarray) -> np.ndarray:
        """``S(t)`` (numpy)."""
        return np.exp(self.log_survival(t, psi))

    def retention_rate(self, t: np.ndarray, psi: np.ndarray) -> np.ndarray:
        """``r(t) = S(t) / S(t-1)`` for ``t >= 1`` (numpy)."""
        return np.exp(-self.hazard_increment(t, psi))
