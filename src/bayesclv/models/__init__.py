"""The statistical models: one module per family, each declaring only what is its own.

* :mod:`bayesclv.models.spend`: revenue per active period (gamma-gamma, lognormal).

Priors (:mod:`bayesclv.priors`) and the pooling across segments
(:mod:`bayesclv._hierarchy`) are shared by every family; the registries of
:mod:`bayesclv.families` list what the estimators and the command line accept.
"""
