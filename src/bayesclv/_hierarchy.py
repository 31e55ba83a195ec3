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

from bayesclv.priors import _DISTRIBUTIONS

__all__ = ["Profiles", "draw_new_segments", "profile_effects", "profile_names", "profile_psi",
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
    coef = priors["coef"].create(f"{prefix}_coef", dims=f"{prefix}_covariate")
    offset = sign * pt.dot(pt.as_tensor(profiles.design), coef)
    return profile_psi(psi, profiles.segment, offset, coord_index, len(priors["mu"]))


def segment_effects(prefix: str, coords: Sequence[str], priors: Mapping[str, Any]) -> Any:
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
        ``{"mu": {coord: Prior}, "sigma": {coord: Prior}, "lkj_eta": float}``.

    Returns
    -------
    pytensor.tensor.TensorVariable
        ``psi`` with shape (segment, coordinate), also stored as the deterministic
        ``f"{prefix}_psi"``.
    """
    coord_dim = f"{prefix}_coord"
    n_coords = len(coords)
    if not priors.get("pooled", True):
        return _unpooled_effects(prefix, coords, priors)
    mu = pt.stack([priors["mu"][c].create(f"{prefix}_mu_{c}") for c in coords])
    mu = pm.Deterministic(f"{prefix}_mu", mu, dims=coord_dim)
    sigma_priors = [priors["sigma"][c] for c in coords]
    if n_coords > 1 and priors.get("correlated", True):
        if len({p.distribution for p in sigma_priors}) != 1:
            raise ValueError(
                "With correlated segment effects all 'sigma' priors must use one "
                "distribution; set priors={'correlated': False} to mix them."
            )
        params = {
            key: np.array([p.params[key] for p in sigma_priors])
            for key in sigma_priors[0].params
        }
        sd_dist = _vector_dist(sigma_priors[0].distribution, params, n_coords)
        chol, _, sigma = pm.LKJCholeskyCov(
            f"{prefix}_lkj", eta=float(priors["lkj_eta"]), n=n_coords, sd_dist=sd_dist,
            compute_corr=True, store_in_trace=False,
        )
        pm.Deterministic(f"{prefix}_sigma", sigma, dims=coord_dim)
    else:
        sigma = pt.stack([p.create(f"{prefix}_sigma_{c}") for p, c in zip(sigma_priors, coords,
                                                                          strict=True)])
        sigma = pm.Deterministic(f"{prefix}_sigma", sigma, dims=coord_dim)
        chol = pt.diag(sigma)
    chol = pm.Deterministic(f"{prefix}_chol", chol, dims=(coord_dim, f"{coord_dim}_"))
    # Estimators resolve "auto" from the segment sizes before building; a model built
    # directly from a default prior set gets DESIGN's non-centred form.
    centered = priors.get("centered", False)
    if not isinstance(centered, str) and bool(centered):
        psi = pm.MvNormal(f"{prefix}_psi", mu=mu, chol=chol, dims=("segment", coord_dim))
        return psi
    z = pm.Normal(f"{prefix}_z", 0.0, 1.0, dims=("segment", coord_dim))
    psi = mu[None, :] + z @ chol.T
    return pm.Deterministic(f"{prefix}_psi", psi, dims=("segment", coord_dim))


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
    return _DISTRIBUTIONS[name].dist(**params, shape=size)


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
