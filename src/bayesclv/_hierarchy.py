"""The hierarchy shared by every model family (DESIGN §4.1).

Each segment ``s`` has a vector ``psi_s`` of unconstrained parameters (one entry per
coordinate: ``log_eta``, ``log_k``, ...), drawn from a population distribution::

    psi_s = mu + chol @ z_s,   z_s ~ Normal(0, I),   chol = diag(sigma) L,   L ~ LKJ

NUTS samples each element in a form between the non-centred ``z`` and the centred ``psi``,
weighted by how tightly the segment's own data pin it (:func:`segment_effects`), and the
population's mean given its spread the same way: the same posterior, in coordinates that
stay close to independent normals.

The same function builds it in PyMC (:func:`segment_effects`) and draws a new segment
from the fitted population in numpy (:func:`draw_new_segments`), so that an unseen
segment gets a real answer with wider uncertainty.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import gammaln

from bayesclv._laplace import SegmentLaplace
from bayesclv.priors import pymc_distribution

# Prior distributions on the whole real line: the population mean may be reparametrised.
_REAL_LINE = frozenset({"Normal", "StudentT"})

__all__ = ["Profiles", "centring_mask", "draw_new_segments", "parametrisation_data",
           "population_prior", "prior_variable", "profile_effects", "profile_names", "profile_psi",
           "segment_effects", "segment_psi_draws"]


@dataclass(frozen=True)
class Profiles:
    """Distinct ``(segment, covariate values)`` combinations.

    Attributes
    ----------
    segment : numpy.ndarray of int, shape (profiles,)
        Each profile's segment code.
    design : numpy.ndarray, shape (profiles, features)
        Standardised covariate values.
    names : tuple of str
        Feature names (design columns).
    """

    segment: np.ndarray
    design: np.ndarray
    names: tuple[str, ...]


def profile_names(segments: Sequence[str], profiles: Profiles | None) -> list[str]:
    """A name per profile that says its segment and covariate values (random-stream keys).

    Without covariates, the segment names themselves.
    """
    if profiles is None:
        return list(segments)
    return [f"{segments[s]}\x1f" + ",".join(repr(float(v)) for v in row)
            for s, row in zip(profiles.segment, profiles.design, strict=True)]


def profile_psi(psi: Any, profile_segment: np.ndarray, offset: Any, coord_index: int,
                n_coords: int) -> Any:
    """Each profile's parameters: its segment's ``psi`` with one coordinate shifted.

    ``psi`` has segments on its second-to-last axis and ``offset`` (the covariate effect
    per profile) broadcasts against ``psi[..., profile_segment, 0]``; works on numpy
    arrays and PyTensor tensors alike.
    """
    unit = np.zeros(n_coords)
    unit[coord_index] = 1.0
    return psi[..., profile_segment, :] + offset[..., None] * unit


def profile_effects(prefix: str, psi: Any, profiles: Profiles, priors: Mapping[str, Any],
                    coord_index: int, sign: float) -> Any:
    """Create the pooled covariate coefficients and return ``psi`` per profile.

    The coefficients ``f"{prefix}_coef"`` (dim ``f"{prefix}_covariate"``) are shared by
    every segment, with the prior ``priors["coef"]`` on the standardised scale.
    """
    coef = prior_variable(priors["coef"], f"{prefix}_coef", dims=f"{prefix}_covariate")
    design = pm.Data(f"{prefix}_design", np.asarray(profiles.design, dtype=np.float64))
    segment = pm.Data(f"{prefix}_profile_segment", np.asarray(profiles.segment, dtype=np.int64))
    offset = sign * pt.dot(design, coef)
    return profile_psi(psi, segment, offset, coord_index, len(priors["mu"]))


def prior_variable(prior: Any, name: str, **kwargs: Any) -> Any:
    """Create a random variable with ``prior``, its parameters as model data.

    Data, not constants, so that a model whose default priors follow the table (centred
    on its median spend or observation window) compiles to the same function for every
    table.
    """
    return pymc_distribution(prior.distribution)(name, **_prior_data(prior, name), **kwargs)


def _prior_data(prior: Any, name: str) -> dict[str, Any]:
    return {key: pm.Data(f"{name}_{key}", float(value)) for key, value in prior.params.items()}


def segment_effects(prefix: str, coords: Sequence[str], priors: Mapping[str, Any],
                    laplace: SegmentLaplace | None = None) -> Any:
    """Create the hierarchical segment parameters in the current PyMC model.

    The model must define the dims ``segment`` and ``f"{prefix}_coord"`` (plus
    ``f"{prefix}_coord_"`` with the same values, for the Cholesky factor).

    Parameters
    ----------
    prefix : str
        Name prefix of the variables (``"retention"`` or ``"spend"``).
    coords : sequence of str
        Names of the pooled coordinates.
    priors : mapping
        ``{"mu": {coord: Prior}, "sigma": {coord: Prior}, "lkj_eta": float, "centered":
        ...}``; ``centered`` is ``"auto"``, a bool or a list (segments) of lists (coords)
        of bools (:func:`bayesclv.priors.resolve_parametrisation`).
    laplace : SegmentLaplace, optional
        Each segment's mode and covariance given its own data
        (:func:`bayesclv._laplace.segment_laplace`). Without it, ``"auto"`` is the
        non-centred form and a centred element has the prior mean of ``mu`` as origin
        and a unit scale.

    Returns
    -------
    pytensor.tensor.TensorVariable
        ``psi`` with shape (segment, coordinate), also stored as the deterministic
        ``f"{prefix}_psi"``.

    Notes
    -----
    With ``chol`` lower triangular, ``psi[s, j] = mu[j] + sum_{k <= j} chol[j, k]
    z[s, k]``, ``z ~ N(0, I)``: given the earlier coordinates, ``psi[s, j]`` has the prior
    ``N(b, c^2)``, ``b = mu[j] + sum_{k < j} chol[j, k] z[s, k]``, ``c = chol[j, j]``.
    Every element is sampled through one unconstrained ``f"{prefix}_offset"`` (segment,
    coord) as

        psi = m + sqrt(v) * offset,   v = 1 / (a / c^2 + P),   m = v (a b / c^2 + P x),

    with ``x`` and ``P`` the mode and precision of the element under a Gaussian
    approximation of the segment's own data (the Laplace fit), given the segment's earlier
    coordinates (``x = mode_j + sum_{k < j} slope_jk (psi_k - mode_k)``, ``slope`` from the
    Laplace covariance): the conditional posterior of ``psi`` if its likelihood were that
    Gaussian, so that the offset is close to ``N(0, 1)`` whatever the spread ``c``. Where the data
    pin the element (``P >> 1 / c^2``) this is the centred ``psi = x + sd * offset``;
    where they say little (``P << 1 / c^2``) the non-centred ``psi = b + c * offset``; and
    between the two it moves with ``c`` itself, so that neither the funnel of a small
    spread nor the narrow ridge of a large one remains. Given the population parameters
    it is a change of variable of the segment's ``psi`` with a triangular Jacobian of
    diagonal ``sqrt(v)``, so the posterior is the same: the density is
    ``sum N(z; 0, 1) - log c + log sqrt(v)`` over the elements, ``z = (psi - b) / c``.
    ``"auto"`` takes ``a = 1`` and ``x``, ``P`` from the Laplace fit (``P = 0`` where it
    found none); a mask forces the centred form (``a = 0``: ``psi = mode + sd * offset``)
    or the non-centred one (``P = 0``) per element. ``a``, ``P``, the mode and the slopes
    are model data, so the compiled model does not depend on them. The offset is flat and
    its density a potential, so PyMC cannot draw ``psi`` forward: prior draws
    come from ``mu`` and ``chol`` (:func:`population_prior`, :func:`draw_new_segments`),
    as an unseen segment's do.

    With a Laplace fit (a NUTS fit) the population is sampled in such coordinates too:
    ``sigma`` and the correlation's Cholesky factor (:func:`_population_scale`) and
    ``mu`` from a standardised offset given them (:func:`_sampled_population_mean`),
    where its prior is on the real line. Without one (MAP) ``mu`` and ``chol`` are the
    variables, so that the optimum is the mode of their own density.
    """
    coord_dim = f"{prefix}_coord"
    n_coords = len(coords)
    if not priors.get("pooled", True):
        return _unpooled_effects(prefix, coords, priors)
    if laplace is not None and all(priors["mu"][c].distribution in _REAL_LINE for c in coords):
        # NUTS's form: the population in coordinates close to independent normals.
        chol = _population_scale(prefix, coords, priors, sampled=True)
        independent = n_coords == 1 or not priors.get("correlated", True)
        mu = pm.Deterministic(f"{prefix}_mu", _sampled_population_mean(
            prefix, coords, priors["mu"], chol, laplace, independent=independent),
            dims=coord_dim)
    else:
        # The parameters on their own scale, whose joint mode a MAP fit reports.
        mu = _population_mean(prefix, coords, priors)
        chol = _population_scale(prefix, coords, priors, sampled=laplace is not None)
    n_segments = len(pm.modelcontext(None).coords["segment"])
    mode, slope, prior_weight, precision = parametrisation_data(
        priors.get("centered", "auto"), laplace,
        [_prior_mean(priors["mu"][c]) for c in coords], n_segments)
    mode = pm.Data(f"{prefix}_mode", mode, dims=("segment", coord_dim))
    slope = pm.Data(f"{prefix}_data_slope", slope, dims=("segment", coord_dim, f"{coord_dim}_"))
    prior_weight = pm.Data(f"{prefix}_prior_weight", prior_weight, dims=("segment", coord_dim))
    precision = pm.Data(f"{prefix}_data_precision", precision, dims=("segment", coord_dim))
    offset = pm.Flat(f"{prefix}_offset", dims=("segment", coord_dim))
    z_columns, psi_columns = [], []
    log_density = 0.0
    for j in range(n_coords):
        before = mu[j] + sum((chol[j, k] * z_columns[k] for k in range(j)), start=0.0)
        # The data's mode of this coordinate given the segment's earlier ones.
        data_mode = mode[:, j] + sum((slope[:, j, k] * (psi_columns[k] - mode[:, k])
                                      for k in range(j)), start=0.0)
        weight = prior_weight[:, j] / (chol[j, j] * chol[j, j])
        variance = 1.0 / (weight + precision[:, j])
        psi_j = (variance * (weight * before + precision[:, j] * data_mode)
                 + pt.sqrt(variance) * offset[:, j])
        z_j = (psi_j - before) / chol[j, j]
        psi_columns.append(psi_j)
        z_columns.append(z_j)
        log_density = (log_density - 0.5 * pt.sum(z_j * z_j)
                       + pt.sum(0.5 * pt.log(variance) - pt.log(chol[j, j])))
    pm.Potential(f"{prefix}_hierarchy", log_density)
    return pm.Deterministic(f"{prefix}_psi", pt.stack(psi_columns, axis=-1),
                            dims=("segment", coord_dim))


def _population_mean(prefix: str, coords: Sequence[str], priors: Mapping[str, Any]) -> Any:
    """Create the population mean ``f"{prefix}_mu"`` (dim ``f"{prefix}_coord"``) as priors.

    One random variable ``f"{prefix}_mu_{coord}"`` per coordinate, with that coordinate's
    ``mu`` prior: the form a MAP fit optimises and prior draws come from.
    """
    mu = pt.stack([prior_variable(priors["mu"][c], f"{prefix}_mu_{c}") for c in coords])
    return pm.Deterministic(f"{prefix}_mu", mu, dims=f"{prefix}_coord")


def _population_scale(prefix: str, coords: Sequence[str], priors: Mapping[str, Any], *,
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
            _population_mean(prefix, coords, priors)
            _population_scale(prefix, coords, priors, sampled=False)
        else:
            _unpooled_population(prefix, coords, priors)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Potentials.*")
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


def _sampled_population_mean(prefix: str, coords: Sequence[str], mu_priors: Mapping[str, Any],
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
    weights = [[pt.sum(data_weight * sum((inverse_root[i][k] * inverse_root[j][k]
                                          for k in range(max(i, j), n)), start=0.0))
                if i <= j else None for j in range(n)] for i in range(n)]
    precision = [[(weights[min(i, j)][max(i, j)] + (prior_precision[i] if i == j else 0.0))
                  for j in range(n)] for i in range(n)]
    modes = [pt.sum(data_weight * sum((inverse_root[i][k] * inverse_root[j][k]
                                       * data_mode[:, j]
                                       for j in range(n) for k in range(max(i, j), n)),
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


def parametrisation_data(centered: Any, laplace: SegmentLaplace | None,
                         prior_mean: Sequence[float], n_segments: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The data of :func:`segment_effects`' sampled form, per segment and coordinate.

    Parameters
    ----------
    centered : "auto", bool or nested list of bool
        The ``centered`` prior entry.
    laplace : SegmentLaplace or None
    prior_mean : sequence of float
        Each coordinate's prior mean of ``mu``: the mode where no Laplace fit is given.
    n_segments : int

    Returns
    -------
    mode : numpy.ndarray, shape (segments, coords)
        The Laplace mode ``x``.
    slope : numpy.ndarray, shape (segments, coords, coords)
        ``slope[s, j, k]`` (``k < j``): how the data's mode of coordinate ``j`` moves with
        coordinate ``k``, so that ``x_j + sum_k slope[s, j, k] (psi_k - x_k)`` is its mode
        given the earlier coordinates (``0`` for a forced form).
    prior_weight : numpy.ndarray, shape (segments, coords)
        ``a``: 0 for a forced centred element, else 1.
    precision : numpy.ndarray, shape (segments, coords)
        ``P``: the data's precision of the coordinate given the earlier ones (0 for a
        forced non-centred element or where the Laplace fit found none).
    """
    n_coords = len(prior_mean)
    shape = (n_segments, n_coords)
    slope = np.zeros((*shape, n_coords))
    if laplace is None:
        mode = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), shape).copy()
        sd = np.full(shape, np.inf)
    else:
        mode = np.asarray(laplace.mode, dtype=np.float64)
        sd = np.asarray(laplace.sd, dtype=np.float64)
    known = np.isfinite(sd) & (sd > 0)
    marginal_precision = np.where(known, 1.0 / np.where(known, sd, 1.0) ** 2, 0.0)
    mask = centring_mask(centered, n_segments, n_coords)
    if mask is not None:
        # A forced centred element without a Laplace scale gets a unit one: psi = x + offset.
        centred_precision = np.where(known, marginal_precision, 1.0)
        return (mode, slope, np.where(mask, 0.0, 1.0), np.where(mask, centred_precision, 0.0))
    precision = marginal_precision.copy()
    for s in range(n_segments if laplace is not None else 0):
        if not known[s].all():
            continue
        # The Gaussian approximation of the segment's data, one coordinate given the
        # earlier ones: regression slopes and the conditional variance.
        covariance = laplace.covariance[s]
        for j in range(1, n_coords):
            earlier, across = covariance[:j, :j], covariance[j, :j]
            slope[s, j, :j] = np.linalg.solve(earlier, across)
            precision[s, j] = 1.0 / (covariance[j, j] - across @ slope[s, j, :j])
    return mode, slope, np.ones(shape), precision


def centring_mask(centered: Any, n_segments: int, n_coords: int) -> np.ndarray | None:
    """The ``centered`` prior entry as a (segments, coords) mask; None for ``"auto"``.

    ``"auto"`` is the data-weighted form of :func:`segment_effects` (non-centred without a
    Laplace fit, as DESIGN's default); ``True`` or ``False`` force one form everywhere.
    """
    if isinstance(centered, str):
        return None
    if isinstance(centered, (bool, np.bool_)):
        return np.full((n_segments, n_coords), bool(centered))
    mask = np.asarray(centered, dtype=bool)
    if mask.shape != (n_segments, n_coords):
        raise ValueError(f"priors 'centered' has shape {mask.shape}; the model has "
                         f"{n_segments} segments and {n_coords} coordinates.")
    return mask


def _prior_mean(prior: Any) -> float:
    return float(prior.params.get("mu", 0.0))


def _unpooled_effects(prefix: str, coords: Sequence[str], priors: Mapping[str, Any]) -> Any:
    """Independent segments: ``psi_s ~ Normal(m, s)`` with the ``mu`` priors' parameters.

    The population mean and Cholesky factor are stored as constants (the prior), so a
    segment unseen in training is drawn from the prior.
    """
    coord_dim = f"{prefix}_coord"
    location, scale = _unpooled_population(prefix, coords, priors)
    z = pm.Normal(f"{prefix}_z", 0.0, 1.0, dims=("segment", coord_dim))
    psi = location[None, :] + z * scale[None, :]
    return pm.Deterministic(f"{prefix}_psi", psi, dims=("segment", coord_dim))


def _unpooled_population(prefix: str, coords: Sequence[str], priors: Mapping[str, Any]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Store the ``mu`` priors' location and scale as the population; return them."""
    coord_dim = f"{prefix}_coord"
    mu_priors = [priors["mu"][c] for c in coords]
    if any(p.distribution != "Normal" for p in mu_priors):
        raise ValueError(
            "Unpooled segments (priors={'pooled': False}) need Normal 'mu' priors: each "
            "segment's parameters get that prior independently."
        )
    location = np.array([p.params["mu"] for p in mu_priors])
    scale = np.array([p.params["sigma"] for p in mu_priors])
    pm.Deterministic(f"{prefix}_mu", pt.as_tensor(location), dims=coord_dim)
    pm.Deterministic(f"{prefix}_sigma", pt.as_tensor(scale), dims=coord_dim)
    pm.Deterministic(f"{prefix}_chol", pt.diag(pt.as_tensor(scale)),
                     dims=(coord_dim, f"{coord_dim}_"))
    return location, scale


def _vector_dist(name: str, params: Mapping[str, np.ndarray], size: int) -> Any:
    return pymc_distribution(name).dist(**params, shape=size)


def _label_key(label: object) -> int:
    digest = hashlib.sha256(str(label).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def draw_new_segments(
    mu: np.ndarray, chol: np.ndarray, labels: Sequence[object], seed: int, stream: str
) -> np.ndarray:
    """Draw ``psi`` for segments not seen in training, one population draw per posterior draw.

    Parameters
    ----------
    mu : numpy.ndarray, shape (chain, draw, coord)
    chol : numpy.ndarray, shape (chain, draw, coord, coord)
    labels : sequence
        Labels of the new segments; each label has its own random stream, so a segment's
        draws do not depend on which other segments are predicted.
    seed : int
        The estimator's seed.
    stream : str
        ``"retention"`` or ``"spend"``: independent streams for the two models.

    Returns
    -------
    numpy.ndarray, shape (chain, draw, len(labels), coord)
    """
    out = np.empty(mu.shape[:2] + (len(labels),) + mu.shape[2:])
    for j, label in enumerate(labels):
        sequence = np.random.SeedSequence(seed, spawn_key=(_label_key(stream), _label_key(label)))
        z = np.random.default_rng(sequence).standard_normal(mu.shape)
        out[:, :, j, :] = mu + np.einsum("cdij,cdj->cdi", chol, z)
    return out


def segment_psi_draws(
    posterior: xr.Dataset, prefix: str, trained: Sequence[object], wanted: Sequence[object],
    seed: int,
) -> np.ndarray:
    """``psi`` draws for the ``wanted`` segments: fitted ones from the posterior, others new.

    Returns
    -------
    numpy.ndarray, shape (chain, draw, len(wanted), coord)
    """
    psi = posterior[f"{prefix}_psi"].transpose("chain", "draw", "segment", ...).to_numpy()
    position = {label: i for i, label in enumerate(trained)}
    unseen = [label for label in wanted if label not in position]
    new = None
    if unseen:
        mu = posterior[f"{prefix}_mu"].transpose("chain", "draw", ...).to_numpy()
        chol = posterior[f"{prefix}_chol"].transpose("chain", "draw", ...).to_numpy()
        new = draw_new_segments(mu, chol, unseen, seed, prefix)
    out = np.empty(psi.shape[:2] + (len(wanted),) + psi.shape[3:])
    unseen_position = {label: i for i, label in enumerate(unseen)}
    for j, label in enumerate(wanted):
        if label in position:
            out[:, :, j, :] = psi[:, :, position[label], :]
        else:
            out[:, :, j, :] = new[:, :, unseen_position[label], :]
    return out
