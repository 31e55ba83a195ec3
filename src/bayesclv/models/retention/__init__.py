"""Retention families: one module each, registered in :data:`RETENTION_FAMILIES`.

* :mod:`~bayesclv.models.retention.geometric`: constant retention (Berger–Nasr);
* :mod:`~bayesclv.models.retention.weibull`: discrete Weibull, duration dependence;
* :mod:`~bayesclv.models.retention.sbg`: shifted-beta-geometric (heterogeneity);
* :mod:`~bayesclv.models.retention.bdw`: beta-discrete-Weibull (both).

:mod:`~bayesclv.models.retention.base` says what a family declares;
:mod:`~bayesclv.models.retention.likelihood` holds the likelihoods and the PyMC model
every family shares. A new family is a new module whose class is added to the registry.
"""

from __future__ import annotations

from bayesclv.models.retention.base import RetentionFamily
from bayesclv.models.retention.bdw import BetaDiscreteWeibullRetention
from bayesclv.models.retention.geometric import GeometricRetention
from bayesclv.models.retention.likelihood import (
    build_retention_model,
    code_loglik,
    customer_loglik,
    grouped_loglik,
    risk_set_loglik,
    row_loglik,
    statistics_loglik,
)
from bayesclv.models.retention.sbg import ShiftedBetaGeometricRetention
from bayesclv.models.retention.weibull import WeibullRetention

__all__ = [
    "BetaDiscreteWeibullRetention",
    "GeometricRetention",
    "RETENTION_FAMILIES",
    "RetentionFamily",
    "ShiftedBetaGeometricRetention",
    "WeibullRetention",
    "build_retention_model",
    "code_loglik",
    "customer_loglik",
    "grouped_loglik",
    "risk_set_loglik",
    "row_loglik",
    "statistics_loglik",
]

RETENTION_FAMILIES: dict[str, RetentionFamily] = {
    family.name: family
    for family in (GeometricRetention(), WeibullRetention(), ShiftedBetaGeometricRetention(),
                   BetaDiscreteWeibullRetention())
}
