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

from bayesclv._hierarchy import Profiles, profile_effects, segment_effects
from bayesclv._laplace import SegmentLaplace
from bayesclv._math import NP, PT, power_increment
from bayesclv.priors import Prior, hierarchy_options

__all__ = [
    "BetaDiscreteWeibullRetention",
    "GeometricRetention",
    "RETENTION_FAMILIES",
    "RetentionFamily",
    "ShiftedBetaGeometricRetention",
    "WeibullRetention",
    "build_retention_model",
    "customer_loglik",
    "grouped_loglik",
    "risk_set_loglik",
    "row_loglik",
    "statistics_loglik",
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
        return np.exp(-np.exp(self.log_hazard_increment(t, psi)))


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
        t = xp.asfloat(t)
        first = t <= 1.0
        log_t = xp.log(xp.maximum(t, 1.0))
        log_ratio = xp.where(first, -1.0, xp.log1p(-1.0 / xp.maximum(t, 2.0)))
        log_eta, k = psi[..., 0], xp.exp(psi[..., 1])
        later = k * (log_t - log_eta) + xp.log(-xp.expm1(k * log_ratio))
        return xp.where(first, -k * log_eta, later)

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


def _power(t: np.ndarray, log_c: Any, xp: Any) -> Any:
    """``t^c`` for integer ``t >= 0`` with finite gradients in ``c`` at ``t = 0``."""
    t = xp.asfloat(t)
    positive = t > 0
    log_t = xp.log(xp.where(positive, t, 1.0))
    return xp.where(positive, xp.exp(xp.exp(log_c) * log_t), 0.0)


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


RETENTION_FAMILIES: dict[str, RetentionFamily] = {
    family.name: family
    for family in (GeometricRetention(), WeibullRetention(), ShiftedBetaGeometricRetention(),
                   BetaDiscreteWeibullRetention())
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
    churned = xp.asfloat(churned)
    survived = xp.asfloat(at_risk) - churned
    return churned * xp.log1mexp(-increment) - survived * increment


def row_loglik(
    family: RetentionFamily, psi: Any, entry: np.ndarray, tenure: np.ndarray,
    churned: np.ndarray, xp: Any = NP,
) -> Any:
    """Log-likelihood of one customer per row, conditioning on survival to ``entry``.

    A churned customer contributes ``log(S(T-1) - S(T)) - log S(e)``, evaluated as
    ``log S(T-1) + log(1 - exp(-dH(T))) - log S(e)``; a censored one
    ``log S(T) - log S(e)``.

    Parameters
    ----------
    family : RetentionFamily
    psi : array, shape (..., rows, coord)
    entry, tenure : numpy.ndarray of int, shape (rows,)
    churned : numpy.ndarray of bool, shape (rows,)
    xp : namespace, default=NP

    Returns
    -------
    array, shape (..., rows)
    """
    entry = xp.asfloat(entry)
    tenure = xp.asfloat(tenure)
    h_entry = family.cumulative_hazard(entry, psi, xp)
    h_before = family.cumulative_hazard(tenure - 1.0, psi, xp)
    increment = xp.exp(family.log_hazard_increment(tenure, psi, xp))
    churn_term = -h_before + xp.log1mexp(-increment)
    censored_term = -h_before - increment
    return xp.where(xp.asfloat(churned) > 0.5, churn_term, censored_term) + h_entry


def customer_loglik(
    family: RetentionFamily, psi: np.ndarray, entry: np.ndarray, tenure: np.ndarray,
    churned: np.ndarray,
) -> np.ndarray:
    """Per-customer log-likelihood (numpy); see :func:`row_loglik`."""
    return row_loglik(family, psi, entry, tenure, churned, NP)


def grouped_loglik(
    family: RetentionFamily, psi: Any, groups: Any, xp: Any = NP
) -> Any:
    """Per-row log-likelihood of :func:`bayesclv.data.survival_groups` rows (one customer each).

    Multiply by ``groups["count"]`` and sum for the total log-likelihood.

    Parameters
    ----------
    family : RetentionFamily
    psi : array, shape (..., segments, coord)
        Parameters per segment; rows pick theirs through ``groups["segment"]``.
    groups : pandas.DataFrame
    xp : namespace, default=NP
    """
    row_psi = psi[..., _column(groups, "segment"), :]
    return row_loglik(family, row_psi, _column(groups, "entry"), _column(groups, "tenure"),
                      _column(groups, "churned"), xp)


def _column(table: Any, name: str) -> Any:
    """A column as an array: of a DataFrame, or of a mapping of (symbolic) arrays."""
    column = table[name]
    return column.to_numpy() if isinstance(column, pd.Series) else column


def build_retention_model(
    family: RetentionFamily, statistics: pd.DataFrame, segments: Sequence[str],
    priors: Mapping[str, Any], profiles: Profiles | None = None,
    laplace: SegmentLaplace | None = None,
) -> pm.Model:
    """Build the hierarchical retention model on sufficient statistics.

    Parameters
    ----------
    family : RetentionFamily
    statistics : pandas.DataFrame
        For ``family.statistics == "risk_set"`` (and no covariates) the output of
        :func:`bayesclv.data.risk_set_table`; otherwise that of
        :func:`bayesclv.data.survival_groups`, whose codes index the segments, or the
        profiles when ``profiles`` is given.
    segments : sequence of str
        Segment labels.
    priors : mapping
        A resolved prior set (see :mod:`bayesclv.priors`).
    profiles : Profiles, optional
        Customer covariates: each profile's segment and standardised covariate values.
        The coefficients ``retention_coef`` shift ``family.covariate_coord`` of the
        profile's segment.
    laplace : SegmentLaplace, optional
        Each segment's mode and scale given its own data: the origin and unit of its
        centred coordinates (see :func:`bayesclv._hierarchy.segment_effects`).

    Returns
    -------
    pymc.Model
        With deterministics ``retention_psi`` (segment, coord), the natural parameters
        per segment (e.g. ``eta``, ``k``) and the population ``retention_mu``,
        ``retention_sigma``, ``retention_chol``. The likelihood is a single potential
        whose cost is O(segments x periods) for risk sets and O(unique rows) for groups,
        whatever the number of customers.
    """
    coords = {
        "segment": list(segments),
        "retention_coord": list(family.coords),
        "retention_coord_": list(family.coords),
    }
    if profiles is not None:
        coords["retention_covariate"] = list(profiles.names)
    with pm.Model(coords=coords) as model:
        psi = segment_effects("retention", family.coords, priors, laplace)
        for name, value in family.natural(psi, PT).items():
            pm.Deterministic(name, value, dims="segment")
        if profiles is not None:
            psi = profile_effects("retention", psi, profiles, priors,
                                  family.coords.index(family.covariate_coord),
                                  family.covariate_sign)
        grouped = profiles is not None or family.statistics == "groups"
        columns = (("segment", "entry", "tenure", "churned", "count") if grouped
                   else ("segment", "period", "at_risk", "churned"))
        # Model data, not constants: the compiled model is the same for every table.
        data = {name: pm.Data(f"retention_{name}", statistics[name].to_numpy().astype(
            np.int64 if name == "segment" else np.float64)) for name in columns}
        pm.Potential("retention_loglik", statistics_loglik(family, psi, data, grouped, PT))
    return model


def statistics_loglik(family: RetentionFamily, psi: Any, statistics: pd.DataFrame,
                      grouped: bool, xp: Any = NP) -> Any:
    """Total log-likelihood of the sufficient statistics the model is built on.

    Parameters
    ----------
    family : RetentionFamily
    psi : array, shape (codes, coord)
        Parameters per code of ``statistics`` (segments, or profiles with covariates).
    statistics : pandas.DataFrame or mapping
        :func:`bayesclv.data.survival_groups` rows (``grouped``) or
        :func:`bayesclv.data.risk_set_table` cells; or a mapping of their columns (e.g.
        the model data of :func:`build_retention_model`).
    grouped : bool
    xp : namespace, default=NP
    """
    if grouped:
        rows = grouped_loglik(family, psi, statistics, xp)
        return (rows * xp.asfloat(_column(statistics, "count"))).sum()
    cell_psi = psi[_column(statistics, "segment")]
    return risk_set_loglik(
        family, cell_psi, _column(statistics, "period"), _column(statistics, "at_risk"),
        _column(statistics, "churned"), xp,
    ).sum()
