"""The non-centred hierarchy shared by every model family (DESIGN §4.1).

Each segment ``s`` has a vector ``psi_s`` of unconstrained parameters (one entry per
coordinate: ``log_eta``, ``log_k``, ...), drawn from a population distribution::

    psi_s = mu + chol @ z_s,   z_s ~ Normal(0, I),   chol = diag(sigma) L,   L ~ LKJ

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
from bayesclv.priors import pymc_distribution

__all__ = ["Profiles", "centring_mask", "draw_new_segments", "prior_variable",
           "profile_effects", "profile_names", "profile_psi", "segment_effects",
           "segment_psi_draws"]


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
    params = {key: pm.Data(f"{name}_{key}", float(value)) for key, value in prior.params.items()}
    return pymc_distribution(prior.distribution)(name, **params, **kwargs)


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
        mask}``; ``centered`` is a bool or a list (segments) of lists (coords) of bools
        (:func:`bayesclv.priors.resolve_parametrisation`).
    laplace : SegmentLaplace, optional
        Each segment's mode and standard deviation given its own data
        (:func:`bayesclv._laplace.segment_laplace`). A centred coordinate is sampled as
        ``psi = mode + sd * f"{prefix}_offset"``: an affine change of variable (constant
        Jacobian), so the posterior is the same, but its offset is of order 1 from the
        first iteration, where the sampler's initial jitter and step size are set.
        Defaults to the prior means of ``mu`` and a unit scale.

    Returns
    -------
    pytensor.tensor.TensorVariable
        ``psi`` with shape (segment, coordinate), also stored as the deterministic
        ``f"{prefix}_psi"``.

    Notes
    -----
    With ``chol`` lower triangular, ``psi[s, j] = mu[j] + sum_{k <= j} chol[j, k]
    z[s, k]``. Each element is sampled either as ``z[s, j]`` (non-centred) or as
    ``psi[s, j]`` itself (centred), through one unconstrained variable
    ``f"{prefix}_offset"`` (segment, coord): the centred elements give ``z[s, j] =
    (psi[s, j] - mu[j] - sum_{k < j} chol[j, k] z[s, k]) / chol[j, j]`` in order of ``j``,
    and the density is ``sum N(z; 0, 1)`` with the Jacobian ``-log chol[j, j]`` of each
    centred element. All-centred is ``MvNormal(mu, chol chol^T)``, all-non-centred the
    usual ``psi = mu + chol z``; in between, each segment and coordinate gets the form that
    suits how much data it has. The mask, mode and scale are model data, so the compiled model
    does not depend on them. The offset is flat and its density a potential, so PyMC
    cannot draw ``psi`` forward: prior draws come from ``mu`` and ``chol``
    (:func:`draw_new_segments`), as an unseen segment's do.
    """
    coord_dim = f"{prefix}_coord"
    n_coords = len(coords)
    if not priors.get("pooled", True):
        return _unpooled_effects(prefix, coords, priors)
    mu = pt.stack([prior_variable(priors["mu"][c], f"{prefix}_mu_{c}") for c in coords])
    mu = pm.Deterministic(f"{prefix}_mu", mu, dims=coord_dim)
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
        sd_dist = _vector_dist(sigma_priors[0].distribution, params, n_coords)
        chol, _, sigma = pm.LKJCholeskyCov(
            f"{prefix}_lkj", eta=float(priors["lkj_eta"]), n=n_coords, sd_dist=sd_dist,
            compute_corr=True, store_in_trace=False,
        )
        pm.Deterministic(f"{prefix}_sigma", sigma, dims=coord_dim)
    else:
        sigma = pt.stack([prior_variable(p, f"{prefix}_sigma_{c}")
                          for p, c in zip(sigma_priors, coords, strict=True)])
        sigma = pm.Deterministic(f"{prefix}_sigma", sigma, dims=coord_dim)
        chol = pt.diag(sigma)
    chol = pm.Deterministic(f"{prefix}_chol", chol, dims=(coord_dim, f"{coord_dim}_"))
    n_segments = len(pm.modelcontext(None).coords["segment"])
    mask = centring_mask(priors.get("centered", "auto"), n_segments, n_coords)
    if laplace is None:
        mode = np.broadcast_to([_prior_mean(priors["mu"][c]) for c in coords],
                               (n_segments, n_coords))
        scale = np.ones((n_segments, n_coords))
    else:
        mode = laplace.mode
        scale = np.where(np.isfinite(laplace.sd) & (laplace.sd > 0), laplace.sd, 1.0)
    centred = pm.Data(f"{prefix}_centred", mask.astype(np.float64),
                      dims=("segment", coord_dim))
    mode = pm.Data(f"{prefix}_mode", np.asarray(mode, dtype=np.float64),
                   dims=("segment", coord_dim))
    scale = pm.Data(f"{prefix}_scale", np.asarray(scale, dtype=np.float64),
                    dims=("segment", coord_dim))
    offset = pm.Flat(f"{prefix}_offset", dims=("segment", coord_dim))
    z_columns, psi_columns = [], []
    log_density = 0.0
    for j in range(n_coords):
        is_centred = centred[:, j] > 0.5
        before = mu[j] + sum((chol[j, k] * z_columns[k] for k in range(j)), start=0.0)
        value = mode[:, j] + scale[:, j] * offset[:, j]
        z_j = pt.switch(is_centred, (value - before) / chol[j, j], offset[:, j])
        psi_columns.append(pt.switch(is_centred, value, before + chol[j, j] * z_j))
        z_columns.append(z_j)
        # Jacobians of the centred elements: d psi / d offset = scale, d z / d psi = 1/chol.
        log_density = (log_density - 0.5 * pt.sum(z_j * z_j)
                       + pt.sum(centred[:, j] * (pt.log(scale[:, j]) - pt.log(chol[j, j]))))
    pm.Potential(f"{prefix}_hierarchy", log_density)
    return pm.Deterministic(f"{prefix}_psi", pt.stack(psi_columns, axis=-1),
                            dims=("segment", coord_dim))


def centring_mask(centered: Any, n_segments: int, n_coords: int) -> np.ndarray:
    """The ``centered`` prior entry (a bool or a nested list) as a (segments, coords) mask.

    ``"auto"`` is resolved by the estimators from the data
    (:func:`bayesclv.priors.resolve_parametrisation`); a model built directly from a
    default prior set gets DESIGN's non-centred form.
    """
    if isinstance(centered, str):
        centered = False
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
    z = pm.Normal(f"{prefix}_z", 0.0, 1.0, dims=("segment", coord_dim))
    psi = location[None, :] + z * scale[None, :]
    return pm.Deterministic(f"{prefix}_psi", psi, dims=("segment", coord_dim))


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
