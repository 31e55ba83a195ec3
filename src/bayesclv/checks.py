"""Predictive checks and projections of a fitted retention model: arrays in, arrays out.

The estimator validates its input and gathers the posterior draws of each segment's (or
covariate profile's) parameters; these functions simulate from them. Each simulation
rests on at least :data:`PREDICTIVE_SAMPLES` draws: a MAP fit (one draw) is simulated
that many times at its point estimate, so its intervals are the sampling variation alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from arviz_stats.base import array_stats

__all__ = ["PREDICTIVE_SAMPLES", "churn_check", "replicates", "survivor_projection"]

PREDICTIVE_SAMPLES = 1000


def replicates(n_samples: int) -> int:
    """Simulations per posterior sample, so predictive intervals rest on >= 1000 draws."""
    return max(1, -(-PREDICTIVE_SAMPLES // n_samples))


def churn_check(family: Any, psi: np.ndarray, cells: dict[str, np.ndarray],
                cell_of: np.ndarray | None, at_risk: np.ndarray, observed: np.ndarray,
                rng: np.random.Generator, hdi_prob: float) -> dict[str, np.ndarray]:
    """Posterior predictive distribution of churners per risk-set row, against the data.

    Parameters
    ----------
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, codes, coord)
        Parameter draws of the codes ``cells["profile"]`` indexes.
    cells : dict
        ``profile`` (code of each cell), ``period`` (float) and ``at_risk`` (customers at
        risk): the cells churn is simulated on.
    cell_of : numpy.ndarray or None
        With covariates, the risk-set row each cell adds to; None when the cells are the
        rows.
    at_risk, observed : numpy.ndarray
        Customers at risk and churning per risk-set row.
    rng : numpy.random.Generator
    hdi_prob : float

    Returns
    -------
    dict
        Per row: ``predicted_mean``, ``predicted_hdi_low``, ``predicted_hdi_high``,
        ``inside`` and ``p_value`` (two-sided, ``2 min(P(D >= d), P(D <= d))``).
    """
    cell_psi = psi[:, cells["profile"], :]
    hazard = -np.expm1(-family.hazard_increment(cells["period"], cell_psi))
    hazard = np.repeat(hazard, replicates(hazard.shape[0]), axis=0)
    simulated = rng.binomial(cells["at_risk"][None, :], hazard)
    # Customers of one segment with different covariates churn with different hazards:
    # simulate per (profile, period) cell, then add the cells of each segment's period.
    simulated = simulated.astype(np.float64)
    if cell_of is not None:
        per_row = np.zeros((simulated.shape[0], len(at_risk)))
        np.add.at(per_row.T, cell_of, simulated.T)
        simulated = per_row
    bounds = array_stats.hdi(simulated.T, hdi_prob, axis=-1)
    upper = (simulated >= observed).mean(axis=0)
    lower = (simulated <= observed).mean(axis=0)
    return {
        "predicted_mean": simulated.mean(axis=0),
        "predicted_hdi_low": bounds[:, 0],
        "predicted_hdi_high": bounds[:, 1],
        "inside": (observed >= bounds[:, 0]) & (observed <= bounds[:, 1]),
        "p_value": np.minimum(1.0, 2.0 * np.minimum(upper, lower)),
    }


def survivor_projection(family: Any, psi: np.ndarray, t: np.ndarray, cohort_size: int,
                        rng: np.random.Generator, hdi_prob: float) -> dict[str, np.ndarray]:
    """Survivors of a cohort after each period ``t``, expected and predicted.

    Parameters
    ----------
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, segments, coord)
    t : numpy.ndarray
        Consecutive periods after the one the cohort has reached.
    cohort_size : int
    rng : numpy.random.Generator
    hdi_prob : float

    Returns
    -------
    dict
        Arrays of shape (segments, periods): ``expected_mean``, ``expected_hdi_low``,
        ``expected_hdi_high`` (posterior of ``cohort_size * S(t) / S(observed)``) and
        ``predicted_hdi_low``, ``predicted_hdi_high`` (adding who actually churns).
    """
    log_rate = -family.hazard_increment(t, psi[:, :, None, :])
    conditional = np.exp(np.cumsum(log_rate, axis=-1))
    expected = cohort_size * conditional
    log_rate = np.repeat(log_rate, replicates(log_rate.shape[0]), axis=0)
    alive = np.full(log_rate.shape[:2], int(cohort_size), dtype=np.int64)
    predicted = np.empty(log_rate.shape, dtype=np.int64)
    for j in range(len(t)):
        alive = rng.binomial(alive, np.exp(log_rate[..., j]))
        predicted[..., j] = alive
    expected_hdi = array_stats.hdi(np.moveaxis(expected, 0, -1), hdi_prob, axis=-1)
    predicted_hdi = array_stats.hdi(np.moveaxis(predicted, 0, -1).astype(np.float64),
                                    hdi_prob, axis=-1)
    return {
        "expected_mean": expected.mean(axis=0),
        "expected_hdi_low": expected_hdi[..., 0],
        "expected_hdi_high": expected_hdi[..., 1],
        "predicted_hdi_low": predicted_hdi[..., 0],
        "predicted_hdi_high": predicted_hdi[..., 1],
    }
