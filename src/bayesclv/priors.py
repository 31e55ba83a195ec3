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

import pymc as pm

__all__ = ["Prior", "hierarchy_options", "merge_priors", "priors_from_dict", "priors_to_dict"]

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
    coordinates; ``centered``: sample ``psi_s`` directly (better when every segment has
    plenty of data) instead of the non-centred ``z_s`` (better when some have little);
    ``pooled``: ``False`` gives every segment the ``mu`` prior independently (no sharing
    of information between segments; for comparison with the pooled model).
    """
    return {"lkj_eta": 2.0, "correlated": correlated, "centered": False, "pooled": True}
