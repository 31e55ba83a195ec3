"""Retention: discrete-time survival families and their hierarchical PyMC model.

Time is discrete, t = 1, 2, ...; ``S(0) = 1``; a customer churns in period t with
probability ``S(t-1) - S(t)``. Every family here is written through its cumulative hazard
``H(t) = -log S(t)`` and the per-period increment ``dH(t) = H(t) - H(t-1)``, so that

* the hazard is ``h(t) = 1 - exp(-dH(t))`` (evaluated as ``-expm1(-dH)``),
* the conditional survival ``S(tau + j) / S(tau) = exp(-sum_{u=tau+1}^{tau+j} dH(u))``
  needs no subtraction of survival probabilities.

Kernels are written once for numpy and PyTensor (see :mod:`bayesclv._math`).

References
----------
.. [1] Berger, P. D. and Nasr, N. I. (1998). Customer lifetime value: marketing models
   and applications. Journal of Interactive Marketing 12(1).
.. [2] Fader, P. S., Hardie, B. G. S., Liu, Y., Davin, J. and Steenburgh, T. (2018).
   "How to project customer retention" revisited: the role of duration dependence.
   Journal of Interactive Marketing 43.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pymc as pm

from bayesclv._hierarchy import segment_effects
from bayesclv._math import NP, PT
from bayesclv.priors import Prior, hierarchy_options

__all__ = [
    "GeometricRetention",
    "RETENTION_FAMILIES",
    "RetentionFamily",
    "WeibullRetention",
    "build_retention_model",
    "customer_loglik",
    "risk_set_loglik",
]


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

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:
        """Natural parameters from ``psi``."""
        raise NotImplementedError

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``log dH(t)`` for periods ``t >= 1``."""
        raise NotImplementedError

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``H(t) = -log S(t)`` for ``t >= 0``."""
        raise NotImplementedError

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:
        """Weakly informative priors, centred on the length of the observation window."""
        raise NotImplementedError

    def log_survival(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:
        """``log S(t)``."""
        return -self.cumulative_hazard(t, psi, xp)

    def survival(self, t: np.ndarray, psi: np.ndarray) -> np.ndarray:
        """``S(t)`` (numpy)."""
        return np.exp(self.log_survival(t, psi))


class GeometricRetention(RetentionFamily):
    """Constant retention ``S(t) = (1 - theta)^t``: the Berger–Nasr baseline.

    Pooled coordinate: ``logit_theta``. The churn probability per period is ``theta``
    whatever the tenure, so ``dH = -log(1 - theta) = softplus(logit_theta)``.
    """

    name = "geometric"
    coords = ("logit_theta",)
    param_names = ("theta",)

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:  # noqa: D102
        return {"theta": 1.0 / (1.0 + xp.exp(-psi[..., 0]))}

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        return xp.log(xp.softplus(psi[..., 0])) + 0.0 * np.asarray(t, dtype=np.float64)

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        return np.asarray(t, dtype=np.float64) * xp.softplus(psi[..., 0])

    def default_priors(self, tenure: np.ndarray) -> dict[str, Any]:  # noqa: D102
        window = float(np.max(tenure))
        return {
            # logit(theta) ~ log(1/characteristic lifetime); centred on 1/window.
            "mu": {"logit_theta": Prior("Normal", mu=-np.log(window), sigma=2.5)},
            "sigma": {"logit_theta": Prior("HalfNormal", sigma=1.0)},
            **hierarchy_options(correlated=False),
        }


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

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:  # noqa: D102
        return {"eta": xp.exp(psi[..., 0]), "k": xp.exp(psi[..., 1])}

    def log_hazard_increment(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        t = np.asarray(t, dtype=np.float64)
        first = t <= 1.0
        log_t = np.log(np.maximum(t, 1.0))
        log_ratio = np.where(first, -1.0, np.log1p(-1.0 / np.maximum(t, 2.0)))
        log_eta, k = psi[..., 0], xp.exp(psi[..., 1])
        later = k * (log_t - log_eta) + xp.log(-xp.expm1(k * log_ratio))
        return xp.where(first, -k * log_eta, later)

    def cumulative_hazard(self, t: np.ndarray, psi: Any, xp: Any = NP) -> Any:  # noqa: D102
        t = np.asarray(t, dtype=np.float64)
        positive = t > 0
        log_t = np.log(np.where(positive, t, 1.0))
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


RETENTION_FAMILIES: dict[str, RetentionFamily] = {
    family.name: family for family in (GeometricRetention(), WeibullRetention())
}


def risk_set_loglik(
    family: RetentionFamily, psi: Any, period: np.ndarray, at_risk: np.ndarray,
    churned: np.ndarray, xp: Any = NP,
) -> Any:
    """Log-likelihood of each risk-set cell (DESIGN §4.1).

    ``d log h(t) + (n - d) log(1 - h(t))`` with ``log(1 - h) = -dH`` and
    ``log h = log1mexp(-dH)``. The binomial coefficient is left out, so the sum over cells
    equals the sum of per-customer log-likelihoods (see :func:`customer_loglik`).

    Parameters
    ----------
    family : RetentionFamily
    psi : array, shape (..., cells, coord)
        Parameters of each cell's segment.
    period, at_risk, churned : numpy.ndarray, shape (cells,)
        The columns of :func:`bayesclv.data.risk_set_table`.
    xp : namespace, default=NP
    """
    log_increment = family.log_hazard_increment(period, psi, xp)
    increment = xp.exp(log_increment)
    survived = np.asarray(at_risk - churned, dtype=np.float64)
    return np.asarray(churned, dtype=np.float64) * xp.log1mexp(-increment) - survived * increment


def customer_loglik(
    family: RetentionFamily, psi: np.ndarray, entry: np.ndarray, tenure: np.ndarray,
    churned: np.ndarray,
) -> np.ndarray:
    """Per-customer log-likelihood, conditioning on survival to ``entry`` (numpy).

    A churned customer contributes ``log(S(T-1) - S(T)) - log S(e)``, a censored one
    ``log S(T) - log S(e)``. Used for grouped-row likelihoods and as the reference the
    risk-set likelihood is tested against.
    """
    h_entry = family.cumulative_hazard(entry, psi)
    h_before = family.cumulative_hazard(tenure - 1, psi)
    h_tenure = family.cumulative_hazard(tenure, psi)
    increment = np.exp(family.log_hazard_increment(tenure, psi))
    churn_term = -h_before + NP.log1mexp(-increment)
    return np.where(churned, churn_term, -h_tenure) + h_entry


def build_retention_model(
    family: RetentionFamily, risk_set: pd.DataFrame, segments: Sequence[str],
    priors: Mapping[str, Any],
) -> pm.Model:
    """Build the hierarchical retention model on risk-set sufficient statistics.

    Parameters
    ----------
    family : RetentionFamily
    risk_set : pandas.DataFrame
        Output of :func:`bayesclv.data.risk_set_table` (segment codes index ``segments``).
    segments : sequence of str
        Segment labels.
    priors : mapping
        A resolved prior set (see :mod:`bayesclv.priors`).

    Returns
    -------
    pymc.Model
        With deterministics ``retention_psi`` (segment, coord), the natural parameters
        per segment (e.g. ``eta``, ``k``) and the population ``retention_mu``,
        ``retention_sigma``, ``retention_chol``. The likelihood is a single potential
        whose cost is O(segments x periods).
    """
    coords = {
        "segment": list(segments),
        "retention_coord": list(family.coords),
        "retention_coord_": list(family.coords),
    }
    with pm.Model(coords=coords) as model:
        psi = segment_effects("retention", family.coords, priors)
        for name, value in family.natural(psi, PT).items():
            pm.Deterministic(name, value, dims="segment")
        cell_psi = psi[risk_set["segment"].to_numpy()]
        cells = risk_set_loglik(
            family, cell_psi, risk_set["period"].to_numpy(), risk_set["at_risk"].to_numpy(),
            risk_set["churned"].to_numpy(), PT,
        )
        pm.Potential("retention_loglik", cells.sum())
    return model
