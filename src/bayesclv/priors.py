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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

__all__ = ["Prior", "hierarchy_options", "pymc_distribution",
           "merge_priors", "priors_from_dict", "priors_table", "priors_to_dict",
           "resolve_parametrisation"]

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
    little), and ``"auto"`` (the default) weights the two per segment and coordinate by
    how tightly the segment's own data pin it (:func:`resolve_parametrisation`);
    ``pooled``: ``False`` gives every segment the ``mu`` prior independently (no sharing
    of information between segments; for comparison with the pooled model); ``coef``: the
    prior of each customer-covariate coefficient, on the standardised scale (used only
    with ``covariates=[...]``; Normal(0, 1) lets one standard deviation of a covariate
    change the lifetime scale or the mean spend by up to a factor ~7 either way, 95%).
    """
    return {"lkj_eta": 2.0, "correlated": correlated, "centered": "auto", "pooled": True,
            "coef": Prior("Normal", mu=0.0, sigma=1.0)}


def resolve_parametrisation(priors: Mapping[str, Any], n_segments: int, n_coords: int, *,
                            method: str) -> dict[str, Any]:
    """The prior set with ``centered`` checked, and resolved for a MAP fit.

    ``"auto"`` (the default) stays as it is for a NUTS fit (``method="nuts"``): each
    segment's coordinate is then sampled in a form weighted by how tightly the segment's
    own data pin it, from centred to non-centred
    (:func:`bayesclv._hierarchy.segment_effects`). ``True`` or ``False`` force one form for
    every segment and coordinate, and a mask (a list per segment of a bool per coordinate)
    one per element. A MAP fit is non-centred: the mode of a hierarchical density depends
    on the parametrisation, and the non-centred one has no spike as the segment spread
    goes to 0.

    Parameters
    ----------
    priors : mapping
        A family's prior set, after :func:`merge_priors`.
    n_segments, n_coords : int
        The shape a mask must have.
    method : {"nuts", "map"}

    Returns
    -------
    dict
        A copy of ``priors`` whose ``centered`` is ``"auto"`` or a list (segments) of lists
        (coords) of bools.

    Raises
    ------
    ValueError
        If ``centered`` is not ``True``, ``False``, ``"auto"`` or a mask of that shape.

    Examples
    --------
    >>> from bayesclv.priors import resolve_parametrisation
    >>> resolve_parametrisation({"centered": "auto"}, 2, 1, method="nuts")["centered"]
    'auto'
    >>> resolve_parametrisation({"centered": "auto"}, 2, 1, method="map")["centered"]
    [[False], [False]]
    """
    shape = (n_segments, n_coords)
    value = priors.get("centered", "auto")
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"priors 'centered' must be True, False or 'auto'; got {value!r}.")
        if method == "nuts":
            return {**priors, "centered": "auto"}
        mask = np.zeros(shape, dtype=bool)
    elif isinstance(value, (bool, np.bool_)):
        mask = np.full(shape, bool(value))
    else:
        mask = np.asarray(value, dtype=object)
        if mask.shape != shape or not all(isinstance(v, (bool, np.bool_))
                                          for v in mask.ravel()):
            raise ValueError(
                "priors 'centered' must be True, False, 'auto' or a list per segment of a "
                f"bool per coordinate, shape {shape}; got {value!r}."
            )
        mask = mask.astype(bool)
    return {**priors, "centered": mask.tolist()}


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
