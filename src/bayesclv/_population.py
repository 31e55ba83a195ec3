"""The population of the segment hierarchy (DESIGN §4.1): its mean ``mu`` and spread ``chol``.

The forms :func:`bayesclv._hierarchy.segment_effects` builds them in: as their own
variables (a MAP fit, prior draws: :func:`population_prior`), or, for NUTS, in coordinates
close to independent normals however few the segments (:func:`population_scale` with
``sampled=True``, :func:`sampled_population_mean`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import gammaln

from bayesclv._laplace import SegmentLaplace
from bayesclv.priors import pymc_distribution

__all__ = ["REAL_LINE", "population_mean", "population_prior", "population_scale",
           "prior_variable", "sampled_population_mean", "unpooled_population"]

# Prior distributions on the whole real line: the population mean may be reparametrised.
REAL_LINE = frozenset({"Normal", "StudentT"})


def prior_variable(prior: Any, name: str, **kwargs: Any) -> Any:
    """Create a random variable with ``prior``, its parameters as model data.

    Data, not constants, so that a model whose default priors follow the table (centred
    on its median spend or observation window) compiles to the same function for every
    table.
    """
    return pymc_distribution(prior.distribution)(name, **_prior_data(prior, name), **kwargs)


def _prior_data(prior: Any, name: str) -> dict[str, Any]:
    return {key: pm.Data(f"{name}_{key}", float(value)) for key, value in prior.params.items()}


def population_mean(prefix: str, coords: Sequence[str], priors: Mapping[str, Any]) -> Any:
    """Create the population mean ``f"{prefix}_mu"`` (dim ``f"{prefix}_coord"``) as priors.

    One random variable ``f"{prefix}_mu_{coord}"`` per coordinate, with that coordinate's
    ``mu`` prior: the form a MAP fit optimises and prior draws come from.
    """
    mu = pt.stack([prior_variable(priors["mu"][c], f"{prefix}_mu_{c}") for c in coords])
    return pm.Deterministic(f"{prefix}_mu", mu, dims=f"{prefix}_coord")


def population_scale(prefix: str, coords: Sequence[str], priors: Mapping[str, Any], *,
                     sampled: bool) -> Any:
    """Create the spread of segments around the population: ``sigma`` and ``chol``.

    Stores the deterministics (or variables) ``f"{prefix}_sigma"`` (coordinate) and
    ``f"{prefix}_chol"`` (coordinate, coordinate), ``chol = diag(sigma) L`` with ``L``
    the Cholesky factor of an LKJ(``lkj_eta``) correlation matrix when the coordinates
    are correlated, ``diag(sigma)`` otherwise.

    Parameters
    ----------
    sampled : bool
        The form NUTS samples: ``sigma`` a variable (sampled as ``log sigma``) and the
        correlation's Cholesky factor from the flat ``f"{prefix}_corr_offset"``
        (:func:`_correlation_cholesky`), scale-free coordinates: the same prior as
        ``LKJCholeskyCov``, which instead samples ``chol``'s off-diagonal elements on
        the scale of ``sigma``, a funnel when few segments leave ``sigma`` wide. Else
        ``LKJCholeskyCov``, whose density over ``chol`` a MAP fit maximises.
    """
    coord_dim = f"{prefix}_coord"
    n_coords = len(coords)
    sigma_priors = [priors["sigma"][c] for c in coords]
    if n_coords > 1 and priors.get("correlated", True):
        if len({p.distribution for p in sigma_priors}) != 1:
            raise ValueError(
                "With correlated segment effects all 'sigma' priors must use one "
                "distribution; set priors={'correlated': False} to mix them."
            )
        params = {
            key: pm.Data(f"{prefix}_sigma_{key}", np.array([p.params[key] for p in sigma_priors]))
            for key in sigma_priors[0].params
        }
        eta = float(priors["lkj_eta"])
        if sampled:
            sigma = pymc_distribution(sigma_priors[0].distribution)(
                f"{prefix}_sigma", **params, dims=coord_dim)
            correlation = _correlation_cholesky(prefix, n_coords, eta)
            chol = pt.stack([pt.stack([sigma[i] * correlation[i][k] for k in range(n_coords)])
                             for i in range(n_coords)])
        else:
            sd_dist = _vector_dist(sigma_priors[0].distribution, params, n_coords)
            chol, _, sigma = pm.LKJCholeskyCov(
                f"{prefix}_lkj", eta=eta, n=n_coords, sd_dist=sd_dist,
                compute_corr=True, store_in_trace=False,
            )
            pm.Deterministic(f"{prefix}_sigma", sigma, dims=coord_dim)
    else:
        sigma = pt.stack([prior_variable(p, f"{prefix}_sigma_{c}")
                          for p, c in zip(sigma_priors, coords, strict=True)])
        sigma = pm.Deterministic(f"{prefix}_sigma", sigma, dims=coord_dim)
        chol = pt.diag(sigma)
    return pm.Deterministic(f"{prefix}_chol", chol, dims=(coord_dim, f"{coord_dim}_"))


def population_prior(prefix: str, coords: Sequence[str], priors: Mapping[str, Any],
                     draws: int, random_seed: Any) -> xr.Dataset:
    """Prior draws of the population: ``f"{prefix}_mu"`` and ``f"{prefix}_chol"``.

    From the priors alone (no data), in the parametrisation a MAP fit uses, so that they
    are drawn forward whatever form NUTS samples.

    Returns
    -------
    xarray.Dataset
        The two variables, dims (chain, draw, coordinate[, coordinate_]), one chain.
    """
    coord_dim = f"{prefix}_coord"
    names = [f"{prefix}_mu", f"{prefix}_chol"]
    with pm.Model(coords={coord_dim: list(coords), f"{coord_dim}_": list(coords)}) as model:
        if priors.get("pooled", True):
            population_mean(prefix, coords, priors)
            population_scale(prefix, coords, priors, sampled=False)
        else:
            unpooled_population(prefix, coords, priors)
    prior = pm.sample_prior_predictive(draws=int(draws), model=model, var_names=names,
                                       random_seed=random_seed)
    return prior["prior"].to_dataset()[names].transpose("chain", "draw", ...)


def _correlation_cholesky(prefix: str, n: int, eta: float) -> list[list[Any]]:
    """The Cholesky factor ``L`` of an LKJ(``eta``) correlation matrix, entry by entry.

    Sampled through the flat ``f"{prefix}_corr_offset"`` (``n (n - 1) / 2`` reals ``y``)
    as PyMC's ``LKJCorr`` transform does: row ``i`` of ``L`` is ``(y_i0, ..., y_i(i-1),
    1)`` over its norm. The potential ``f"{prefix}_correlation"`` is ``LKJCorr``'s log
    density of ``L``, ``c(eta, n) + sum_i (2 eta - 2 + n - i) log L_ii`` (one-based
    ``i``), plus the log Jacobian of ``y -> L``, ``sum_i (i + 1) log L_ii``. Written out,
    not as ``LKJCorr``, because its transform's array ops would be vectorised draw by draw
    in the trace.
    """
    offset = pm.Flat(f"{prefix}_corr_offset", shape=n * (n - 1) // 2)
    low: list[list[Any]] = [[0.0] * n for _ in range(n)]
    low[0][0] = 1.0
    position = 0
    log_density = 0.0
    for i in range(1, n):
        row = [offset[position + k] for k in range(i)]
        position += i
        inverse_norm = 1.0 / pt.sqrt(1.0 + sum((y * y for y in row), start=0.0))
        for k in range(i):
            low[i][k] = row[k] * inverse_norm
        low[i][i] = inverse_norm
        # log L_ii (L_00 = 1 adds nothing): LKJ's exponent and the Jacobian's.
        log_density = log_density + (2.0 * eta - 2.0 + n - (i + 1) + (i + 2)) * pt.log(
            inverse_norm)
    k = np.arange(1, n)
    constant = ((n - 1) * gammaln(eta + 0.5 * (n - 1))
                - np.sum(0.5 * k * np.log(np.pi) + gammaln(eta + 0.5 * (n - 1 - k))))
    pm.Potential(f"{prefix}_correlation", log_density + float(constant))
    return low


def sampled_population_mean(prefix: str, coords: Sequence[str], mu_priors: Mapping[str, Any],
                             chol: Any, laplace: SegmentLaplace, *, independent: bool) -> Any:
    """The population mean ``mu`` as NUTS samples it, from one flat ``f"{prefix}_mu_offset"``.

    Given the spread ``Sigma = chol chol^T``, each segment's data say ``x_s ~ N(mu, Sigma
    + C_s)`` under their Laplace fit (mode ``x_s``, covariance ``C_s``; segments without
    one say nothing), and the prior says ``mu ~ N(m0, S0)`` (the priors' location and
    scale), so ``mu`` has the conditional posterior ``N(Lambda^-1 b, Lambda^-1)`` with
    ``Lambda = S0^-1 + sum_s (Sigma + C_s)^-1`` and ``b = S0^-1 m0 + sum_s (Sigma +
    C_s)^-1 x_s``. ``mu = Lambda^-1 b + R^-T u`` (``Lambda = R R^T``) makes ``u`` close to
    ``N(0, I)`` whatever ``Sigma``: without it the scale of ``mu`` follows ``sigma /
    sqrt(segments)``, a funnel when a few segments leave ``sigma`` wide. It is a change of
    variable with the Jacobian ``det R^-1``, which depends on ``chol`` alone, so the
    posterior is the same: the potential is the prior's log density at ``mu`` (any prior
    on the real line) minus ``sum log diag R``.

    With ``independent`` coordinates (a diagonal ``chol``) each coordinate is standardised
    on its own with the diagonal of ``C_s``: ``Lambda`` is diagonal, a few array
    operations where the full form is many small ones (numba compiles them for seconds).
    """
    coord_dim = f"{prefix}_coord"
    n_segments, n_coords = np.shape(laplace.mode)
    covariance = np.asarray(laplace.covariance, dtype=np.float64)
    known = np.isfinite(covariance.reshape(n_segments, -1)).all(axis=1)
    location = [float(mu_priors[c].params["mu"]) for c in coords]
    scale = np.array([float(mu_priors[c].params["sigma"]) for c in coords])
    data_mode = pm.Data(f"{prefix}_population_mode", np.where(
        known[:, None], np.asarray(laplace.mode, dtype=np.float64), 0.0))
    # A segment without a Laplace fit weighs nothing; a unit covariance keeps the sum finite.
    data_covariance = pm.Data(f"{prefix}_population_covariance", np.where(
        known[:, None, None], covariance, np.eye(n_coords)))
    data_weight = pm.Data(f"{prefix}_population_weight", known.astype(np.float64))
    prior_precision = pm.Data(f"{prefix}_mu_precision", 1.0 / scale**2)
    prior_location = pm.Data(f"{prefix}_mu_location", np.asarray(location))
    offset = pm.Flat(f"{prefix}_mu_offset", dims=coord_dim)
    if independent:
        # A diagonal spread: each coordinate on its own, with the data's marginal variances.
        spread = pt.diagonal(chol) ** 2
        variance = pt.diagonal(data_covariance, axis1=1, axis2=2)
        weights = data_weight[:, None] / (spread[None, :] + variance)
        precision = prior_precision + weights.sum(axis=0)
        weighted = prior_precision * prior_location + (weights * data_mode).sum(axis=0)
        mu = weighted / precision + offset / pt.sqrt(precision)
        log_jacobian = -0.5 * pt.sum(pt.log(precision))
    else:
        mu, log_jacobian = _correlated_population_mean(
            chol, data_mode, data_covariance, data_weight, prior_precision, prior_location,
            offset, n_coords)
    prior = [pm.logp(pymc_distribution(mu_priors[c].distribution).dist(
                 **_prior_data(mu_priors[c], f"{prefix}_mu_{c}")), mu[j])
             for j, c in enumerate(coords)]
    pm.Potential(f"{prefix}_population", sum(prior, start=0.0) + log_jacobian)
    return mu


def _correlated_population_mean(chol: Any, data_mode: Any, data_covariance: Any,
                                data_weight: Any, prior_precision: Any, prior_location: Any,
                                offset: Any, n: int) -> tuple[Any, Any]:
    """``mu`` from ``offset`` and ``log |d mu / d offset|`` with a full spread ``chol``."""
    # Entry by entry (n <= 3 coordinates): elementwise over segments, which PyTensor fuses
    # into a few loops, where batched LAPACK calls would double the cost of a gradient.
    spread = [[sum((chol[i, k] * chol[j, k] for k in range(min(i, j) + 1)), start=0.0)
               for j in range(n)] for i in range(n)]
    root = _cholesky([[spread[i][j] + data_covariance[:, i, j] for j in range(n)]
                      for i in range(n)])
    inverse_root = [_forward(root, [float(i == j) for i in range(n)]) for j in range(n)]
    # Each segment's (Sigma + C_s)^-1, the upper triangle, once for the precision and mean.
    upper = {(i, j): sum((inverse_root[i][k] * inverse_root[j][k] for k in range(j, n)),
                         start=0.0) for i in range(n) for j in range(i, n)}
    inverse = [[upper[min(i, j), max(i, j)] for j in range(n)] for i in range(n)]
    weights = {key: pt.sum(data_weight * value) for key, value in upper.items()}
    precision = [[weights[min(i, j), max(i, j)] + (prior_precision[i] if i == j else 0.0)
                  for j in range(n)] for i in range(n)]
    modes = [pt.sum(data_weight * sum((inverse[i][j] * data_mode[:, j] for j in range(n)),
                                      start=0.0)) for i in range(n)]
    weighted = [prior_precision[i] * prior_location[i] + modes[i] for i in range(n)]
    precision_root = _cholesky(precision)
    mean = _backward(precision_root, _forward(precision_root, weighted))
    spread_of_mean = _backward(precision_root, [offset[i] for i in range(n)])
    mu = pt.stack([mean[i] + spread_of_mean[i] for i in range(n)])
    return mu, -sum((pt.log(precision_root[i][i]) for i in range(n)), start=0.0)


def _cholesky(matrix: list[list[Any]]) -> list[list[Any]]:
    """The lower Cholesky factor of a symmetric positive-definite matrix, entry by entry.

    ``matrix[i][j]`` (``j <= i`` read) are tensors that broadcast together (a batch).
    """
    n = len(matrix)
    low: list[list[Any]] = [[0.0] * n for _ in range(n)]
    for j in range(n):
        low[j][j] = pt.sqrt(matrix[j][j] - sum((low[j][k] ** 2 for k in range(j)), start=0.0))
        for i in range(j + 1, n):
            low[i][j] = (matrix[i][j] - sum((low[i][k] * low[j][k] for k in range(j)),
                                            start=0.0)) / low[j][j]
    return low


def _forward(low: list[list[Any]], vector: list[Any]) -> list[Any]:
    """``L^-1 v`` for a lower-triangular ``L`` given entry by entry."""
    out: list[Any] = []
    for i in range(len(low)):
        # Known zeros stay Python zeros: the unit vectors of an inverse add no nodes.
        terms = [low[i][k] * out[k] for k in range(i) if not _is_zero(out[k])]
        if _is_zero(vector[i]) and not terms:
            out.append(0.0)
        else:
            out.append((vector[i] - sum(terms, start=0.0)) / low[i][i])
    return out


def _is_zero(value: Any) -> bool:
    return isinstance(value, float) and value == 0.0


def _backward(low: list[list[Any]], vector: list[Any]) -> list[Any]:
    """``L^-T v`` for a lower-triangular ``L`` given entry by entry."""
    n = len(low)
    out: list[Any] = [0.0] * n
    for i in reversed(range(n)):
        out[i] = (vector[i] - sum((low[k][i] * out[k] for k in range(i + 1, n)), start=0.0)
                  ) / low[i][i]
    return out


def unpooled_population(prefix: str, coords: Sequence[str], priors: Mapping[str, Any]
                         ) -> tuple[Any, Any]:
    """Store the ``mu`` priors' location and scale as the population; return them.

    They are model data, as every prior parameter is: default priors follow the table
    (its observation window, its median spend), and as constants they would make a new
    model to compile for every table.
    """
    coord_dim = f"{prefix}_coord"
    mu_priors = [priors["mu"][c] for c in coords]
    if any(p.distribution != "Normal" for p in mu_priors):
        raise ValueError(
            "Unpooled segments (priors={'pooled': False}) need Normal 'mu' priors: each "
            "segment's parameters get that prior independently."
        )
    location = pm.Data(f"{prefix}_mu_location",
                       np.array([float(p.params["mu"]) for p in mu_priors]))
    scale = pm.Data(f"{prefix}_mu_scale", np.array([float(p.params["sigma"]) for p in mu_priors]))
    pm.Deterministic(f"{prefix}_mu", location, dims=coord_dim)
    pm.Deterministic(f"{prefix}_sigma", scale, dims=coord_dim)
    pm.Deterministic(f"{prefix}_chol", pt.diag(scale), dims=(coord_dim, f"{coord_dim}_"))
    return location, scale


def _vector_dist(name: str, params: Mapping[str, np.ndarray], size: int) -> Any:
    return pymc_distribution(name).dist(**params, shape=size)
