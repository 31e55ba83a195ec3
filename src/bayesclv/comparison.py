"""Model comparison by approximate leave-one-customer-out cross-validation (PSIS-LOO).

The retention likelihood is evaluated on grouped rows (:func:`bayesclv.data.survival_groups`):
every customer sharing a row's ``(segment, entry, tenure, churned)`` has the same
log-likelihood in every posterior draw. PSIS-LOO for one observation depends only on that
observation's log-likelihood draws, so leaving out any one customer of a row gives the
row's LOO value. ArviZ computes it once per row; the row values are then repeated by
their counts, so the ELPD, its standard error, the Pareto k diagnostics and the
comparison are per customer, exactly as if ArviZ had been given one column per customer
(at the cost of rows, not customers).

Spend models are compared on the density of each customer's spend data, one column per
customer. Two spend families are comparable only on the same data: each family says
what its likelihood is the density of for a table (``family.observed``), and
:func:`compare` refuses models that differ. With ``mean_log_spend`` and ``sd_log_spend``
both gamma-gamma and lognormal are densities of every active period's revenue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import arviz_stats
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.utils import ELPDData

__all__ = ["compare", "loo"]


_PARTS = ("retention", "spend")


def _component(model: Any, part: str | None) -> Any:
    """The retention or spend model of ``model`` that ``part`` names."""
    if part is not None and part not in _PARTS:
        raise ValueError(f"part must be 'retention', 'spend' or None; got {part!r}.")
    prefix = getattr(model, "_prefix", None)
    if part is None:
        part = prefix if prefix in _PARTS else "retention"
    component = getattr(model, f"{part}_model_", model)
    if getattr(component, "_prefix", None) != part or not hasattr(component,
                                                                  "pointwise_loglik"):
        raise TypeError(
            f"Expected a fitted {part.capitalize()}Model or CLVModel; got "
            f"{type(model).__name__}."
        )
    return component


def _expand(values: xr.DataArray, counts: np.ndarray) -> xr.DataArray:
    return xr.DataArray(np.repeat(values.to_numpy(), counts), dims="customer")


def loo(model: Any, customers: pd.DataFrame, *, part: str | None = None) -> ELPDData:
    """PSIS-LOO estimate of a retention or spend model's out-of-sample fit, per customer.

    Parameters
    ----------
    model : RetentionModel, SpendModel or CLVModel
        Fitted with ``method="nuts"`` (LOO needs posterior draws).
    customers : pandas.DataFrame
        The customer table the model was fitted on.
    part : {"retention", "spend"}, optional
        Which model of a :class:`~bayesclv.CLVModel` to score; by default its retention
        model (a RetentionModel or SpendModel is scored as itself).

    Returns
    -------
    arviz_stats.utils.ELPDData
        ``elpd``, ``se``, ``p`` (effective number of parameters), ``n_data_points`` (the
        number of customers) and per-customer ``elpd_i`` and ``pareto_k``.

    Raises
    ------
    ValueError
        If the model was fitted by MAP.

    Notes
    -----
    Computed on unique rows and repeated by counts (see the module docstring); the
    relative efficiency of the draws is taken from the posterior of ``retention_psi``.
    """
    component = _component(model, part)
    prefix = component._prefix
    posterior = component.posterior_
    if posterior.attrs.get("method") == "map" or posterior.sizes["draw"] < 2:
        raise ValueError("LOO needs posterior draws: fit with method='nuts'.")
    loglik, counts = component.pointwise_loglik(customers)
    tree = xr.DataTree.from_dict({
        "posterior": posterior[[f"{prefix}_psi"]],
        "log_likelihood": xr.Dataset({prefix: loglik}),
    })
    rows = arviz_stats.loo(tree, pointwise=True, var_name=prefix)
    elpd_rows = rows.elpd_i.to_numpy()
    lppd_rows = _log_mean_exp(loglik.to_numpy().reshape(-1, loglik.shape[-1]))
    n_customers = int(counts.sum())
    elpd_i = _expand(rows.elpd_i, counts)
    pareto_k = _expand(rows.pareto_k, counts)
    return type(rows)(
        elpd=float(np.dot(counts, elpd_rows)),
        se=float(np.sqrt(n_customers * elpd_i.var(ddof=1).item())),
        p=float(np.dot(counts, lppd_rows - elpd_rows)),
        n_samples=rows.n_samples,
        n_data_points=n_customers,
        scale="log",
        warning=bool((pareto_k > rows.good_k).any()),
        good_k=rows.good_k,
        elpd_i=elpd_i,
        pareto_k=pareto_k,
    )


def _log_mean_exp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=0)
    return top + np.log(np.mean(np.exp(values - top), axis=0))


def compare(models: Mapping[str, Any], customers: pd.DataFrame,
            method: str = "stacking", *, part: str | None = None) -> pd.DataFrame:
    """Rank models by expected log predictive density (PSIS-LOO, per customer).

    Parameters
    ----------
    models : mapping of str to RetentionModel, SpendModel or CLVModel
        Fitted (``method="nuts"``) on ``customers``; the names label the rows.
    customers : pandas.DataFrame
        The customer table every model was fitted on.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}, default="stacking"
        How ArviZ weights the models.
    part : {"retention", "spend"}, optional
        Which model of each :class:`~bayesclv.CLVModel` to compare; by default
        retention (a RetentionModel or SpendModel is compared as itself).

    Returns
    -------
    pandas.DataFrame
        ArviZ's comparison table (``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``,
        ``se``, ``dse``, ``warning``), best model first. ``elpd_diff`` and its standard
        error ``dse`` are computed customer by customer; values are not rounded.

    Examples
    --------
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example().head(600)
    >>> fits = {name: bayesclv.RetentionModel(name, draws=100, tune=100, chains=2,
    ...                                        random_seed=1).fit(customers)
    ...         for name in ("geometric", "weibull")}  # doctest: +SKIP
    >>> bayesclv.compare(fits, customers).index[0]  # doctest: +SKIP
    'weibull'
    """
    if len(models) < 2:
        raise ValueError("compare needs at least two models.")
    components = {name: _component(model, part) for name, model in models.items()}
    if len({component._prefix for component in components.values()}) > 1:
        raise ValueError("compare needs models of one kind: all retention or all spend.")
    observed = {name: component.observed(customers)
                for name, component in components.items()}
    if len(set(observed.values())) > 1:
        raise ValueError(
            "These models are densities of different data, so their ELPDs cannot be "
            f"compared: {observed}. For spend families, give the table 'mean_log_spend' "
            "and 'sd_log_spend' (bayesclv.data.summarize(..., log_spend=True)): then every "
            "family is a density of each active period's revenue."
        )
    return arviz_stats.compare(
        {name: loo(component, customers) for name, component in components.items()},
        method=method,
        round_to="none",
    )
