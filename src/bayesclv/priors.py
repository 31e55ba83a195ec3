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

__all__ = ["CENTERED_MIN_CUSTOMERS", "Prior", "default_priors", "hierarchy_options",
           "merge_priors", "priors_from_dict", "priors_table", "priors_to_dict",
           "resolve_parametrisation"]

#: With ``centered="auto"``, NUTS samples the centred parametrisation when every segment
#: has at least this many customers. There the data pin each segment's parameters far more
#: tightly than the population spread does, and the non-centred form turns into a narrow
#: ridge: at 1,000,000 customers in 10 segments the non-centred gamma-gamma fit needs ~1,000
#: leapfrog steps per draw (tree depth 10) against ~150 centred.
CENTERED_MIN_CUSTOMERS = 10_000

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
    coordinates; ``centered``: ``True`` samples ``psi_s`` directly (better when every
    segment has plenty of data), ``False`` the non-centred ``z_s`` (better when some have
    little), and ``"auto"`` (the default) is resolved at fit time by
    :func:`resolve_parametrisation`;
    ``pooled``: ``False`` gives every segment the ``mu`` prior independently (no sharing
    of information between segments; for comparison with the pooled model); ``coef``: the
    prior of each customer-covariate coefficient, on the standardised scale (used only
    with ``covariates=[...]``; Normal(0, 1) lets one standard deviation of a covariate
    change the lifetime scale or the mean spend by up to a factor ~7 either way, 95%).
    """
    return {"lkj_eta": 2.0, "correlated": correlated, "centered": "auto", "pooled": True,
            "coef": Prior("Normal", mu=0.0, sigma=1.0)}


def resolve_parametrisation(priors: Mapping[str, Any], segment_sizes: np.ndarray, *,
                            method: str) -> dict[str, Any]:
    """The prior set with ``centered="auto"`` replaced by the parametrisation to use.

    ``"auto"`` becomes ``True`` (centred) when the fit samples (``method="nuts"``) and
    every segment has at least :data:`CENTERED_MIN_CUSTOMERS` customers, and ``False``
    (the non-centred form of DESIGN §4.1) otherwise. An explicit ``True`` or ``False`` is
    kept. A MAP fit stays non-centred: the mode of a hierarchical density depends on the
    parametrisation, and the non-centred one has no spike as the segment spread goes to 0.

    Parameters
    ----------
    priors : mapping
        A family's prior set, after :func:`merge_priors`.
    segment_sizes : numpy.ndarray of int
        Customers per segment in the training table.
    method : {"nuts", "map"}

    Returns
    -------
    dict
        A copy of ``priors`` whose ``centered`` is a bool.

    Raises
    ------
    ValueError
        If ``centered`` is not ``True``, ``False`` or ``"auto"``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesclv.priors import resolve_parametrisation
    >>> resolve_parametrisation({"centered": "auto"}, np.array([250_000, 40_000]),
    ...                         method="nuts")["centered"]
    True
    >>> resolve_parametrisation({"centered": "auto"}, np.array([250_000, 900]),
    ...                         method="nuts")["centered"]
    False
    """
    value = priors.get("centered", "auto")
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"priors 'centered' must be True, False or 'auto'; got {value!r}.")
        sizes = np.asarray(segment_sizes)
        value = (method == "nuts" and sizes.size > 0
                 and int(sizes.min()) >= CENTERED_MIN_CUSTOMERS)
    elif not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"priors 'centered' must be True, False or 'auto'; got {value!r}.")
    return {**priors, "centered": bool(value)}


def default_priors(customers: pd.DataFrame, *, retention: str = "weibull",
                   spend: str | None = "gamma_gamma", columns: Any = None) -> dict[str, Any]:
    """The default priors a :class:`~bayesclv.CLVModel` would use on this table.

    Every family's defaults are weakly informative on interpretable scales, centred on the
    table's observation window (retention) and median spend (spend); see the docs page
    "Priors" for what each implies. Pass any part of the result, changed, as ``priors=``
    to override it; the rest keep their defaults.

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table (DESIGN §3).
    retention : {"weibull", "geometric", "sbg", "bdw"}, default="weibull"
    spend : {"gamma_gamma"} or None, default="gamma_gamma"
        ``None`` for a retention-only table (no spend columns).
    columns : bayesclv.data.CustomerColumns, optional
        Column names, if not the defaults.

    Returns
    -------
    dict
        ``{"retention": {...}, "spend": {...}}``, each a prior set as
        :func:`merge_priors` resolves it.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.priors import default_priors
    >>> priors = default_priors(bayesclv.datasets.load_example())
    >>> priors["retention"]["mu"]["log_k"]
    Prior(distribution='Normal', params={'mu': 0.0, 'sigma': 0.5})
    """
    from bayesclv.data import validate_customers
    from bayesclv.retention import RETENTION_FAMILIES
    from bayesclv.spend import SPEND_FAMILIES

    for name, value, families in (("retention", retention, RETENTION_FAMILIES),
                                  ("spend", spend, SPEND_FAMILIES)):
        if value is not None and value not in families:
            raise ValueError(f"{name} must be one of {sorted(families)}; got {value!r}.")
    data = validate_customers(customers, columns, require_spend=spend is not None)
    out = {"retention": RETENTION_FAMILIES[retention].default_priors(data.tenure)}
    if spend is not None:
        out["spend"] = SPEND_FAMILIES[spend].default_priors(data.mean_spend)
    return out


def priors_table(priors: Mapping[str, Any]) -> pd.DataFrame:
    """A nested prior set as a flat table: one row per prior or setting.

    Parameters
    ----------
    priors : mapping
        A prior set (``{"mu": {...}, "sigma": {...}, ...}``) or several under names
        (``{"retention": {...}, "spend": {...}}``, as :func:`default_priors` gives).

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
