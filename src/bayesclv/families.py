"""The model families, registered in one place, and the defaults they give a table.

:data:`RETENTION_FAMILIES` and :data:`SPEND_FAMILIES` map the names the estimators, the
command line and the docs accept to the family objects (each declares its parameters,
priors and likelihood in :mod:`bayesclv.models.retention` or
:mod:`bayesclv.models.spend`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bayesclv.data import validate_customers
from bayesclv.data.statistics import median_spend, require_renewals
from bayesclv.models.retention import RETENTION_FAMILIES
from bayesclv.models.spend import SPEND_FAMILIES

__all__ = ["RETENTION_FAMILIES", "SPEND_FAMILIES", "default_priors"]


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
    spend : {"gamma_gamma", "lognormal"} or None, default="gamma_gamma"
        ``None`` for a retention-only table (no spend columns).
    columns : bayesclv.data.CustomerColumns, optional
        Column names, if not the defaults.

    Returns
    -------
    dict
        ``{"retention": {...}, "spend": {...}}``, each a prior set as
        :func:`bayesclv.priors.merge_priors` resolves it.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.families import default_priors
    >>> priors = default_priors(bayesclv.datasets.load_example())
    >>> priors["retention"]["mu"]["log_k"]
    Prior(distribution='Normal', params={'mu': 0.0, 'sigma': 0.5})
    """
    for name, value, families in (("retention", retention, RETENTION_FAMILIES),
                                  ("spend", spend, SPEND_FAMILIES)):
        if value is not None and value not in families:
            raise ValueError(f"{name} must be one of {sorted(families)}; got {value!r}.")
    data = validate_customers(customers, columns, require_spend=spend is not None)
    require_renewals(data.tenure)
    out = {"retention": RETENTION_FAMILIES[retention].default_priors(data.tenure)}
    if spend is not None:
        spent = data.mean_spend[data.spend_observed]
        median_spend(spent)  # refuses a table in which no customer has spend
        out["spend"] = SPEND_FAMILIES[spend].default_priors(spent)
    return out
