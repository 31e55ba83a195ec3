"""How well the data alone pin each segment's parameters: a Laplace approximation.

How the hierarchy is sampled (DESIGN §4.1) turns on one comparison per segment and
coordinate: how tightly the segment's own data determine ``psi[s, j]`` against how far
segments spread around the population. Where the data are sharp, the non-centred ``z``
lies on a narrow ridge and NUTS needs hundreds of leapfrog steps per draw; where they are
vague, the centred ``psi`` falls into a funnel as the spread shrinks.
:func:`segment_laplace` measures the first side, which
:func:`bayesclv._hierarchy.segment_effects` weighs against the sampled spread: the mode
of each segment's likelihood under the (wide) prior of the population mean, and the
posterior standard deviation there from the curvature. The log-likelihood is the model's own
numpy form on sufficient statistics, so this costs milliseconds at any number of
customers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

__all__ = ["SegmentLaplace", "segment_laplace"]

# Finite-difference step on the log scale of the parameters: the curvatures that decide
# the parametrisation range from ~0.1 (vague) to ~1e4 (sd 0.01); rounding in totals of
# ~1e6 contributes ~1e-10 / step^2 = 1e-4 to them.
_STEP = 1e-3
# Central first differences for the optimiser's gradient: truncation ~1e-10 of the third
# derivative, rounding ~1e-16 x |log density| / 1e-5, both far below what moves the mode.
_GRADIENT_STEP = 1e-5


@dataclass(frozen=True)
class SegmentLaplace:
    """Mode and covariance of each segment's ``psi`` from its own data.

    Attributes
    ----------
    mode : numpy.ndarray, shape (segments, coords)
    covariance : numpy.ndarray, shape (segments, coords, coords)
        ``H^-1`` of the segment's negative log density at the mode; ``nan`` where the
        curvature is not positive definite (the data say too little).
    """

    mode: np.ndarray
    covariance: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        """``sqrt(diag(H^-1))``, shape (segments, coords); ``inf`` where unknown."""
        variances = np.diagonal(self.covariance, axis1=-2, axis2=-1)
        return np.where(np.isfinite(variances), np.sqrt(variances), np.inf)


def _prior_location_scale(prior: Any) -> tuple[float, float]:
    """A location and scale for a population-mean prior (Normal-like; else wide)."""
    params = prior.params
    if "mu" in params and "sigma" in params:
        return float(params["mu"]), float(params["sigma"])
    return 0.0, 10.0


def segment_laplace(loglik: Callable[[np.ndarray], np.ndarray], n_segments: int,
                    coords: Sequence[str], mu_priors: Mapping[str, Any]) -> SegmentLaplace:
    """Laplace approximation of each segment's ``psi`` given its own data.

    The segments' log densities are separate, so every finite difference moves one
    coordinate of all segments at once and reads each segment's own change: a gradient
    costs ``2 x coords`` evaluations and the curvatures ``1 + 2 coords^2`` evaluations,
    whatever the number of segments.

    Parameters
    ----------
    loglik : callable
        ``psi`` (segments, coords) -> each segment's log-likelihood, shape (segments,)
        (numpy, on sufficient statistics).
    n_segments : int
    coords : sequence of str
        The pooled coordinates, in order.
    mu_priors : mapping
        The population-mean prior of each coordinate (``priors["mu"]``), which keeps the
        density proper where a segment's data say little.

    Returns
    -------
    SegmentLaplace
    """
    location, scale = map(np.array, zip(*(_prior_location_scale(mu_priors[c])
                                          for c in coords), strict=True))
    shape = (n_segments, len(coords))

    def density(psi: np.ndarray) -> np.ndarray:
        """Each segment's log density: its log-likelihood and the wide prior."""
        return loglik(psi) - 0.5 * (((psi - location) / scale) ** 2).sum(axis=-1)

    def negative(flat: np.ndarray) -> tuple[float, np.ndarray]:
        psi = flat.reshape(shape)
        value = density(psi).sum()
        if not np.isfinite(value):
            return 1e300, np.zeros(flat.size)
        gradient = np.empty(shape)
        for j in range(shape[1]):
            step = np.zeros(shape)
            step[:, j] = _GRADIENT_STEP
            gradient[:, j] = (density(psi + step) - density(psi - step)) / (2 * _GRADIENT_STEP)
        # A step across the edge of the likelihood's domain: no slope to follow there.
        return -value, -np.where(np.isfinite(gradient), gradient, 0.0).ravel()

    start = np.broadcast_to(location, shape).ravel().copy()
    with np.errstate(all="ignore"):
        # Totals of ~1e5 at large tables: scipy's default relative tolerance (2.2e-9) would
        # stop ~1e-4 short of the mode, a hundredth of a standard deviation.
        result = optimize.minimize(negative, start, jac=True, method="L-BFGS-B",
                                   options={"ftol": 1e-13, "gtol": 1e-7})
        mode = result.x.reshape(shape)
        hessians = _segment_hessians(density, mode)
        covariances = np.full((*shape, shape[1]), np.nan)
        for s, hessian in enumerate(hessians):
            if not np.all(np.isfinite(hessian)):
                continue
            try:
                covariance = np.linalg.inv(hessian)
            except np.linalg.LinAlgError:
                continue
            variances = np.diag(covariance)
            if np.all(np.isfinite(variances)) and np.all(np.linalg.eigvalsh(hessian) > 0):
                covariances[s] = covariance
    return SegmentLaplace(mode=mode, covariance=covariances)


def _segment_hessians(density: Callable[[np.ndarray], np.ndarray], mode: np.ndarray
                      ) -> np.ndarray:
    """Each segment's Hessian of its negative log density: central second differences.

    Shape (segments, coords, coords); a shift moves every segment's coordinates alike.
    """
    n_coords = mode.shape[1]

    def at(shift: np.ndarray) -> np.ndarray:
        return -density(mode + shift)

    centre = at(np.zeros(n_coords))
    unit = np.eye(n_coords) * _STEP
    hessians = np.empty((mode.shape[0], n_coords, n_coords))
    for j in range(n_coords):
        hessians[:, j, j] = (at(unit[j]) - 2.0 * centre + at(-unit[j])) / _STEP**2
        for k in range(j):
            hessians[:, j, k] = hessians[:, k, j] = (
                at(unit[j] + unit[k]) - at(unit[j] - unit[k])
                - at(unit[k] - unit[j]) + at(-unit[j] - unit[k])
            ) / (4.0 * _STEP**2)
    return hessians
