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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesclv._laplace import SegmentLaplace
from bayesclv._population import (
    REAL_LINE,
    population_mean,
    population_scale,
    prior_variable,
    sampled_population_mean,
    unpooled_population,
)

__all__ = ["Profiles", "centring_mask", "draw_new_segments", "parametrisation_data",
           "profile_effects", "profile_names", "profile_psi",
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
    its density a potential, so PyMC cannot draw ``psi`` forward: prior draws come from
    ``mu`` and ``chol`` (:func:`bayesclv._population.population_prior`,
    :func:`draw_new_segments`), as an unseen segment's do.

    With a Laplace fit (a NUTS fit) the population is sampled in such coordinates too
    (:mod:`bayesclv._population`): ``sigma`` and the correlation's Cholesky factor, and
    ``mu`` from a standardised offset given them, where its prior is on the real line.
    Without one (MAP) ``mu`` and ``chol`` are the
    variables, so that the optimum is the mode of their own density.
    """
    coord_dim = f"{prefix}_coord"
    n_coords = len(coords)
    if not priors.get("pooled", True):
        return _unpooled_effects(prefix, coords, priors)
    if laplace is not None and all(priors["mu"][c].distribution in REAL_LINE for c in coords):
        # NUTS's form: the population in coordinates close to independent normals.
        chol = population_scale(prefix, coords, priors, sampled=True)
        independent = n_coords == 1 or not priors.get("correlated", True)
        mu = pm.Deterministic(f"{prefix}_mu", sampled_population_mean(
            prefix, coords, priors["mu"], chol, laplace, independent=independent),
            dims=coord_dim)
    else:
        # The parameters on their own scale, whose joint mode a MAP fit reports.
        mu = population_mean(prefix, coords, priors)
        chol = population_scale(prefix, coords, priors, sampled=laplace is not None)
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

    The population mean and Cholesky factor are stored as the prior's (model data, so
    that the compiled model serves every table), so a segment unseen in training is
    drawn from the prior.
    """
    coord_dim = f"{prefix}_coord"
    location, scale = unpooled_population(prefix, coords, priors)
    z = pm.Normal(f"{prefix}_z", 0.0, 1.0, dims=("segment", coord_dim))
    psi = location[None, :] + z * scale[None, :]
    return pm.Deterministic(f"{prefix}_psi", psi, dims=("segment", coord_dim))


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
