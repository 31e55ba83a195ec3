"""Priors as declarative, serialisable configuration.

A :class:`Prior` names a distribution from a fixed allow-list and its parameters. A
family's prior set is a plain nested dict::

    {"mu": {"log_eta": Prior("Normal", mu=3.2, sigma=2.5), ...},
     "sigma": {"log_eta": Prior("HalfNormal", sigma=1.0), ...},
     "lkj_eta": 2.0}

``mu`` is the population mean of each pooled coordinate, ``sigma`` the spread of the
segments around it and ``lkj_eta`` the LKJ concentration of their correlation (ignored
with a single coordinate). Users override any entry; the resolved set is stored on the
fitted estimator (``priors_``) and in saved models.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

__all__ = ["CENTRED_BELOW", "Prior", "hierarchy_options", "pymc_distribution",
           "merge_priors", "priors_from_dict", "priors_table", "priors_to_dict",
           "resolve_parametrisation"]

#: With ``centered="auto"``, NUTS samples a segment's coordinate in the centred form when
#: the segment's own data determine it (Laplace standard deviation) to within this fraction
#: of the spread of segments around the population, and in the non-centred form otherwise.
#: The spread is the smaller of the prior scale of ``sigma`` and the spread of the
#: segments' Laplace modes (their variance less the part their own uncertainty explains).
#: Measured on the bundled example and on tables simulated like it (600-2,100 customers a
#: segment): the centred form sampled well up to ~0.26 (log mean spend ~0.05, log(q - 1)
#: 0.1-0.23, Weibull coordinates 0.06-0.26) and fell into the funnel of a small spread at
#: 0.36 and above (log p, 0.36-1.5).
CENTRED_BELOW = 0.3

# Distributions a prior may name. A fixed table (not getattr on pymc) so that a prior read
# from a saved file can never reach arbitrary code.
_DISTRIBUTIONS = {
    "Normal": pm.Normal,
    "HalfNormal": pm.HalfNormal,
    "StudentT": pm.StudentT,
    "HalfStudentT": pm.HalfStudentT,
    "Exponential": pm.Exponential,
    "Gamma": pm.Gamma,
}


def pymc_distribution(name: str) -> type:
    """The PyMC distribution a prior may name (KeyError for any name off the allow-list)."""
    return _DISTRIBUTIONS[name]


@dataclass(frozen=True)
class Prior:
    """A prior distribution: a name from an allow-list and its parameters.

    Parameters
    ----------
    distribution : str
        One of ``Normal``, ``HalfNormal``, ``StudentT``, ``HalfStudentT``,
        ``Exponential``, ``Gamma``.
    **params : float
        The distribution's parameters, as PyMC names them.

    Examples
    --------
    >>> Prior("Normal", mu=0.0, sigma=1.0).to_dict()
    {'distribution': 'Normal', 'params': {'mu': 0.0, 'sigma': 1.0}}
    """

    distribution: str
    params: dict[str, float] = field(default_factory=dict)

    def __init__(self, distribution: str, **params: float) -> None:
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"Unknown prior distribution {distribution!r}; choose one of "
                f"{sorted(_DISTRIBUTIONS)}."
            )
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "params", {k: float(v) for k, v in params.items()})

    def dist(self, **kwargs: Any) -> Any:
        """Return an unnamed PyMC distribution (``pm.X.dist``)."""
        return _DISTRIBUTIONS[self.distribution].dist(**self.params, **kwargs)

    def create(self, name: str, **kwargs: Any) -> Any:
        """Create the named random variable in the current model context."""
        return _DISTRIBUTIONS[self.distribution](name, **self.params, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description."""
        return {"distribution": self.distribution, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prior:
        """Rebuild a prior from :meth:`to_dict` output."""
        return cls(data["distribution"], **data.get("params", {}))


def priors_to_dict(priors: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a nested prior set into plain JSON-serialisable data."""
    out: dict[str, Any] = {}
    for key, value in priors.items():
        if isinstance(value, Prior):
            out[key] = value.to_dict()
        elif isinstance(value, Mapping):
            out[key] = priors_to_dict(value)
        else:
            out[key] = value
    return out


def priors_from_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`priors_to_dict`."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and "distribution" in value:
            out[key] = Prior.from_dict(value)
        elif isinstance(value, Mapping):
            out[key] = priors_from_dict(value)
        else:
            out[key] = value
    return out


def merge_priors(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict:
    """Overlay user overrides on a family's defaults, checking the keys exist.

    Raises
    ------
    ValueError
        If an override names a key the family does not have.
    """
    merged = copy.deepcopy(dict(defaults))
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise ValueError(
                f"Unknown prior key {key!r}; this family has {sorted(merged)}."
            )
        if isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge_priors(merged[key], value)
        else:
            if isinstance(value, Mapping) and "distribution" in value:
                value = Prior.from_dict(value)
            merged[key] = value
    return merged


def hierarchy_options(*, correlated: bool) -> dict[str, Any]:
    """The structural entries of every prior set.

    ``lkj_eta``: LKJ concentration of the correlation between coordinates (2 favours weak
    correlation); ``correlated``: whether segment effects are correlated across
    coordinates; ``centered``: ``True`` samples ``psi_s`` directly (better where the data
    pin a segment's parameters), ``False`` the non-centred ``z_s`` (better where they say
    little), and ``"auto"`` (the default) chooses per segment and coordinate at fit time
    (:func:`resolve_parametrisation`);
    ``pooled``: ``False`` gives every segment the ``mu`` prior independently (no sharing
    of information between segments; for comparison with the pooled model); ``coef``: the
    prior of each customer-covariate coefficient, on the standardised scale (used only
    with ``covariates=[...]``; Normal(0, 1) lets one standard deviation of a covariate
    change the lifetime scale or the mean spend by up to a factor ~7 either way, 95%).
    """
    return {"lkj_eta": 2.0, "correlated": correlated, "centered": "auto", "pooled": True,
            "coef": Prior("Normal", mu=0.0, sigma=1.0)}


def spread_scale(prior: Prior) -> float:
    """The scale of a population-spread prior: ``sigma``, ``1 / lam`` or the mean."""
    params = prior.params
    if "sigma" in params:
        return float(params["sigma"])
    if "lam" in params:
        return 1.0 / float(params["lam"])
    if "alpha" in params and "beta" in params:
        return float(params["alpha"]) / float(params["beta"])
    raise ValueError(f"Cannot read a scale from the spread prior {prior!r}.")


def resolve_parametrisation(priors: Mapping[str, Any], data_sd: np.ndarray, *,
                            coords: Sequence[str], method: str,
                            data_mode: np.ndarray | None = None) -> dict[str, Any]:
    """The prior set with ``centered`` replaced by a mask: per segment and coordinate.

    ``"auto"`` samples ``psi[s, j]`` centred when a NUTS fit (``method="nuts"``) has data
    that determine it tightly, ``data_sd[s, j] < CENTRED_BELOW * spread_j``, and
    non-centred (DESIGN §4.1's form) otherwise. ``spread_j`` is the scale of the prior on
    the population spread ``sigma_j`` or, if smaller, the spread of the segments' modes
    ``data_mode[:, j]`` (their variance less the mean of ``data_sd[:, j]^2``, which their
    own uncertainty explains): where segments barely differ, the centred form would fall
    into the funnel of a small ``sigma_j``. ``True`` or ``False`` force one form for
    every segment and coordinate; a mask (a list per segment of a bool per coordinate,
    as a fitted model's ``priors_["centered"]`` holds) is kept. A MAP fit stays
    non-centred: the mode of a hierarchical density depends on the parametrisation, and
    the non-centred one has no spike as the segment spread goes to 0.

    Parameters
    ----------
    priors : mapping
        A family's prior set, after :func:`merge_priors`.
    data_sd : numpy.ndarray, shape (segments, coords)
        Each segment's parameters' standard deviation given its own data
        (:func:`bayesclv._laplace.segment_laplace`); ``inf`` where they say little.
    coords : sequence of str
        The pooled coordinates, in the order of ``data_sd``'s columns.
    method : {"nuts", "map"}
    data_mode : numpy.ndarray, shape (segments, coords), optional
        Each segment's parameters' mode given its own data; with two segments or more,
        their spread bounds ``spread_j``.

    Returns
    -------
    dict
        A copy of ``priors`` whose ``centered`` is a list (segments) of lists (coords) of
        bools.

    Raises
    ------
    ValueError
        If ``centered`` is not ``True``, ``False``, ``"auto"`` or a mask of that shape.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesclv.priors import Prior, resolve_parametrisation
    >>> priors = {"centered": "auto", "sigma": {"log_eta": Prior("HalfNormal", sigma=1.0)}}
    >>> resolve_parametrisation(priors, np.array([[0.03], [0.9]]), coords=["log_eta"],
    ...                         method="nuts")["centered"]
    [[True], [False]]
    """
    data_sd = np.asarray(data_sd, dtype=np.float64)
    value = priors.get("centered", "auto")
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"priors 'centered' must be True, False or 'auto'; got {value!r}.")
        spread = np.array([spread_scale(priors["sigma"][c]) for c in coords])
        if data_mode is not None and len(data_mode) >= 2:
            spread = np.minimum(spread, _between_segment_sd(data_mode, data_sd))
        mask = (data_sd < CENTRED_BELOW * spread) & (method == "nuts")
        if priors.get("correlated", False) and mask.shape[1] > 1:
            # Correlated effects couple the coordinates of a segment: one form for all of
            # them, centred where the data pin any. Retention on the bundled example
            # without its largest segment (partner: log eta pinned at 0.26 of the spread,
            # log k at 0.21): mixed forms took 29 leapfrog steps per draw and 40
            # divergences, all non-centred 43 and 28, all centred 14 and 18.
            mask = np.repeat(mask.any(axis=1, keepdims=True), mask.shape[1], axis=1)
    elif isinstance(value, (bool, np.bool_)):
        mask = np.full(data_sd.shape, bool(value))
    else:
        mask = np.asarray(value, dtype=object)
        if mask.shape != data_sd.shape or not all(isinstance(v, (bool, np.bool_))
                                                  for v in mask.ravel()):
            raise ValueError(
                "priors 'centered' must be True, False, 'auto' or a list per segment of a "
                f"bool per coordinate, shape {data_sd.shape}; got {value!r}."
            )
        mask = mask.astype(bool)
    return {**priors, "centered": mask.tolist()}


def _between_segment_sd(mode: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Method-of-moments spread of the segments' true parameters, per coordinate.

    The modes' variance across segments, less the mean variance each mode has from its
    own data; segments whose data say nothing (infinite ``sd``) are left out. ``inf``
    where fewer than two segments remain.
    """
    out = np.full(mode.shape[1], np.inf)
    for j in range(mode.shape[1]):
        known = np.isfinite(sd[:, j])
        if known.sum() >= 2:
            excess = np.var(mode[known, j], ddof=1) - np.mean(sd[known, j] ** 2)
            out[j] = np.sqrt(max(excess, 0.0))
    return out


def priors_table(priors: Mapping[str, Any]) -> pd.DataFrame:
    """A nested prior set as a flat table: one row per prior or setting.

    Parameters
    ----------
    priors : mapping
        A prior set (``{"mu": {...}, "sigma": {...}, ...}``) or several under names
        (``{"retention": {...}, "spend": {...}}``, as
        :func:`bayesclv.families.default_priors` gives).

    Returns
    -------
    pandas.DataFrame
        ``key`` (the path to pass in ``priors=``, e.g. ``mu.log_eta``), ``distribution``
        and ``params`` (or ``value`` for settings such as ``lkj_eta``).

    Examples
    --------
    >>> from bayesclv.priors import Prior, priors_table
    >>> priors_table({"mu": {"log_k": Prior("Normal", mu=0.0, sigma=0.5)}, "lkj_eta": 2.0})
             key distribution                    params
    0  mu.log_k       Normal  {'mu': 0.0, 'sigma': 0.5}
    1   lkj_eta                                     2.0
    """
    rows: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], path: str) -> None:
        for key, value in node.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(value, Prior):
                rows.append({"key": name, "distribution": value.distribution,
                             "params": dict(value.params)})
            elif isinstance(value, Mapping):
                walk(value, name)
            else:
                rows.append({"key": name, "distribution": "", "params": value})

    walk(priors, "")
    return pd.DataFrame(rows, columns=["key", "distribution", "params"])
