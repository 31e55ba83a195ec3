"""Retention likelihoods on the sufficient statistics, and the hierarchical PyMC model.

Every function takes a family (:mod:`bayesclv.models.retention`) and its ``psi``; none
knows a family by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

from bayesclv._hierarchy import Profiles, profile_effects, segment_effects
from bayesclv._laplace import SegmentLaplace
from bayesclv._math import NP, PT
from bayesclv.models.retention.base import RetentionFamily

__all__ = [
    "build_retention_model",
    "code_loglik",
    "customer_loglik",
    "grouped_loglik",
    "risk_set_loglik",
    "row_loglik",
    "statistics_loglik",
]


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
    increment = family.hazard_increment(period, psi, xp)
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
    return _row_terms(family.cumulative_hazard(entry, psi, xp),
                      family.cumulative_hazard(tenure - 1.0, psi, xp),
                      family.hazard_increment(tenure, psi, xp), churned, xp)


def _row_terms(h_entry: Any, h_before: Any, increment: Any, churned: Any, xp: Any) -> Any:
    """A row's log-likelihood from ``H(e)``, ``H(T-1)`` and ``dH(T)``."""
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
    family: RetentionFamily, psi: Any, groups: Any, xp: Any = NP, *,
    by_period: bool | None = None,
) -> Any:
    """Per-row log-likelihood of :func:`bayesclv.data.survival_groups` rows (one customer each).

    Multiply by ``groups["count"]`` and sum for the total log-likelihood.

    Parameters
    ----------
    family : RetentionFamily
    psi : array, shape (..., codes, coord)
        Parameters per code (segment or profile); rows pick theirs through
        ``groups["segment"]``.
    groups : pandas.DataFrame or mapping
        Integer ``entry`` and ``tenure`` columns.
    xp : namespace, default=NP
    by_period : bool, optional
        Evaluate the family once per code and period ``0..max(tenure)`` and give each row
        the values of its own code and periods, rather than three evaluations per row:
        the same numbers, and far fewer evaluations where rows share their code's periods
        (e.g. under left truncation, rows by entry and tenure). Default: whichever
        evaluates the family fewer times; symbolic ``groups`` must say.
    """
    code, entry, tenure = (_column(groups, name) for name in ("segment", "entry", "tenure"))
    churned = _column(groups, "churned")
    if by_period is None:
        grid = (int(np.max(code, initial=0)) + 1) * (int(np.max(tenure, initial=0)) + 1)
        by_period = 2 * grid < 3 * len(code)
    if not by_period:
        return row_loglik(family, psi[..., code, :], entry, tenure, churned, xp)
    periods = xp.range_to_max(tenure)
    grid_psi = psi[..., :, None, :]
    # Period 0 stands in for itself in H; dH starts at period 1 (0 would not be finite).
    h = family.cumulative_hazard(periods, grid_psi, xp)
    increment = family.hazard_increment(xp.maximum(periods, 1), grid_psi, xp)
    return _row_terms(_pick(h, code, entry), _pick(h, code, tenure - 1),
                      _pick(increment, code, tenure), churned, xp)


def _pick(table: Any, code: Any, period: Any) -> Any:
    """``table[..., code, period]`` for index arrays: one take along the last two axes."""
    width = table.shape[-1]
    flat = table.reshape((*(table.shape[axis] for axis in range(table.ndim - 2)), -1))
    return flat[..., code * width + period]


def _column(table: Any, name: str) -> Any:
    """A column as an array: of a DataFrame, or of a mapping of (symbolic) arrays."""
    column = table[name]
    return column.to_numpy() if isinstance(column, pd.Series) else column


# Columns that index (codes, periods) rather than enter the arithmetic.
_INDEX_COLUMNS = ("segment", "entry", "tenure")


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
        whose cost is O(segments x periods) for risk sets and for groups by segment (the
        family evaluated per segment and period, each row picking its own), and O(unique
        rows) for groups by profile; whatever the number of customers.
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
            np.int64 if name in _INDEX_COLUMNS else np.float64)) for name in columns}
        pm.Potential("retention_loglik", statistics_loglik(
            family, psi, data, grouped, PT, by_period=profiles is None))
    return model


def statistics_loglik(family: RetentionFamily, psi: Any, statistics: pd.DataFrame,
                      grouped: bool, xp: Any = NP, *, by_period: bool | None = None) -> Any:
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
    by_period : bool, optional
        For ``grouped`` rows: see :func:`grouped_loglik`.
    """
    return _statistics_terms(family, psi, statistics, grouped, xp, by_period).sum()


def code_loglik(family: RetentionFamily, psi: np.ndarray, statistics: pd.DataFrame,
                grouped: bool) -> np.ndarray:
    """Each code's log-likelihood (numpy), shape (codes,): :func:`statistics_loglik` by code."""
    terms = _statistics_terms(family, psi, statistics, grouped, NP)
    return np.bincount(_column(statistics, "segment"), weights=terms, minlength=len(psi))


def _statistics_terms(family: RetentionFamily, psi: Any, statistics: pd.DataFrame,
                      grouped: bool, xp: Any, by_period: bool | None = None) -> Any:
    """The log-likelihood of each row (times its count) or risk-set cell."""
    if grouped:
        rows = grouped_loglik(family, psi, statistics, xp, by_period=by_period)
        return rows * xp.asfloat(_column(statistics, "count"))
    cell_psi = psi[_column(statistics, "segment")]
    return risk_set_loglik(
        family, cell_psi, _column(statistics, "period"), _column(statistics, "at_risk"),
        _column(statistics, "churned"), xp,
    )
