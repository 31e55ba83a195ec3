"""What a CLV model's priors imply before fitting: the methods of :class:`PriorChecks`.

Prior predictive checks of a :class:`~bayesclv.CLVModel`: each draws its retention and
spend sub-models' parameters from their priors and combines them as the fitted model
would, through the valuation functions of :mod:`bayesclv.valuation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.estimator.retention import RetentionModel
from bayesclv.estimator.spend import SpendModel
from bayesclv.valuation.decisions import prospect_values
from bayesclv.valuation.survival import residual_survival_sums

__all__ = ["PriorChecks"]


class PriorChecks:
    """Prior retention curves and prior predictive draws of :class:`bayesclv.CLVModel`."""

    retention: str
    spend: str
    priors: Any
    horizon: int | None
    discount_rate: float
    margin: float
    cost_per_period: float

    def prior_retention_curve(self, X: pd.DataFrame, periods: int = 24, *,
                              draws: int = 500) -> xr.DataArray:
        """Prior draws of ``S(t)`` per segment of ``X``, before fitting.

        See :meth:`RetentionModel.prior_retention_curve`; uses this model's retention
        family and ``priors["retention"]``.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, segment, period).

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel("weibull", random_seed=0)
        >>> model.prior_retention_curve(customers, periods=6, draws=50).dims
        ('chain', 'draw', 'segment', 'period')
        """
        return self._prior_sub_model("retention").prior_retention_curve(X, periods,
                                                                         draws=draws)

    def _prior_sub_model(self, part: str) -> RetentionModel | SpendModel:
        """The unfitted retention or spend estimator this model would fit."""
        priors = (self.priors or {}).get(part)
        # Seeds derived as fit derives them, so the two priors are drawn independently.
        seeds = np.random.SeedSequence(self._resolve_seed()).generate_state(3)
        seed = int(seeds[0] if part == "retention" else seeds[1])
        if part == "retention":
            return RetentionModel(self.retention, priors=priors, **self._sub_params(seed))
        return SpendModel(self.spend, priors=priors, **self._sub_params(seed))

    def sample_prior_predictive(self, X: pd.DataFrame, *, periods: int = 24,
                                draws: int = 500) -> xr.Dataset:
        """What the priors imply before any fitting: retention, spend and CLV per segment.

        Retention and spend parameters are drawn from their priors (the likelihood
        ignored), as :meth:`RetentionModel.sample_prior_predictive` and
        :meth:`SpendModel.sample_prior_predictive` do, and combined draw by draw into the
        value of a new customer of each segment, with this model's margin, cost, discount
        rate and horizon: a check that the priors allow the range of CLV the business
        considers plausible, and do not pile up on absurd values.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (sets the segments, the risk sets and the priors' scale).
        periods : int, default=24
            Last period of the survival curves.
        draws : int, default=500

        Returns
        -------
        xarray.Dataset
            ``survival`` and ``churned`` (see :meth:`RetentionModel.sample_prior_predictive`),
            ``mean_spend`` (chain, draw, segment) and ``new_customer_value`` (chain, draw,
            segment): ``(margin * mean_spend - cost_per_period) * sum_j S(j) / (1+d)^j``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(horizon=36, margin=0.3, random_seed=0)
        >>> prior = model.sample_prior_predictive(customers, periods=12, draws=50)
        >>> prior["new_customer_value"].dims
        ('chain', 'draw', 'segment')
        """
        self._validate_params()
        retention = self._prior_sub_model("retention")
        data, segments, psi = retention._prior_psi(X, periods, draws)
        out = retention._prior_predictive(X, data, segments, psi, periods)
        spend = self._prior_sub_model("spend").sample_prior_predictive(X, draws=draws)
        flat = psi.to_numpy().reshape((-1,) + psi.shape[2:])
        sums = residual_survival_sums(retention.family_, flat, np.zeros(len(segments), int),
                                      self.horizon, float(self.discount_rate))
        annuity = sums["discounted"].reshape(psi.shape[:3])
        value = prospect_values(annuity, spend["mean_spend"].to_numpy(),
                                margin=float(self.margin),
                                cost_per_period=float(self.cost_per_period))
        out["mean_spend"] = spend["mean_spend"]
        out["new_customer_value"] = (("chain", "draw", "segment"), value)
        return out
