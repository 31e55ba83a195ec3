"""Forecast methods of :class:`bayesclv.CLVModel`: the base's cash flows per future period.

Thin wrappers over :mod:`bayesclv.valuation.forecast`; they use only the fitted state
(``retention_model_``, ``spend_model_``, ``valuation_seed_``, ``period_``, ``hdi_prob``)
and :meth:`CLVModel.customer_valuation`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.estimator._common import flatten_samples, positive_int
from bayesclv.valuation.decisions import RealisedValuation
from bayesclv.valuation.forecast import (
    PREDICTIVE_DRAWS,
    expected_cash_flows,
    forecast_dataset,
    forecast_table,
    realised_cash_flows,
    simulation_plan,
)

__all__ = ["ForecastMethods"]


class ForecastMethods:
    """Mixin of :class:`bayesclv.CLVModel`: cash-flow forecasts (DESIGN §4.3)."""

    def forecast(self, X: pd.DataFrame, periods: int, *,
                 predictive_draws: int = PREDICTIVE_DRAWS,
                 return_draws: bool = False) -> pd.DataFrame | xr.Dataset:
        """Active customers, revenue and margin of the base per future period.

        For each future period ``j = 1..periods`` and each segment (and the whole base,
        ``"all"``): the posterior of the *expected* number of active customers, revenue
        and margin (``margin * revenue - cost_per_period * active``), summed over the
        segment's customers within each posterior draw, and the predictive interval of
        the *realised* totals, which also simulates who churns when and what each
        customer spends each period. The expected margins, discounted, add up to
        :meth:`segment_report`'s totals draw by draw: a payment counts at the end of the
        period it pays for (DESIGN §4.3).

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (churned customers contribute nothing).
        periods : int
            Number of future periods forecast.
        predictive_draws : int, default=1000
            Simulations of the realised totals: posterior draws evenly thinned to this
            many (with a MAP fit, this many simulations at the point). Cost grows as
            customers x predictive_draws x periods.
        return_draws : bool, default=False
            Return the draws instead of their summaries.

        Returns
        -------
        pandas.DataFrame or xarray.Dataset
            One row per segment (in order of first appearance, then ``"all"``) and
            period: ``segment``, ``period`` and, for each of ``active``, ``revenue`` and
            ``margin``, ``_mean``, ``_hdi_low``, ``_hdi_high`` (expected totals, at
            ``hdi_prob``) and ``_pi_low``, ``_pi_high`` (the HDI of the realised
            totals). With ``return_draws``, a Dataset with ``active``, ``revenue``,
            ``margin`` (chain, draw, segment, period) and ``realised_active``,
            ``realised_revenue``, ``realised_margin`` (simulation, segment, period).

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=12, random_seed=0).fit(customers)
        >>> table = model.forecast(customers, periods=12, predictive_draws=200)
        >>> table.query("segment == 'all'")[["period", "active_mean"]].head(2).round(0)
            period  active_mean
        48       1       2038.0
        49       2       1966.0
        """
        draws = self.forecast_draws(X, periods, predictive_draws=predictive_draws)
        if return_draws:
            return draws
        return forecast_table(draws, float(self.hdi_prob))

    def forecast_draws(self, X: pd.DataFrame, periods: int, *,
                       predictive_draws: int = PREDICTIVE_DRAWS) -> xr.Dataset:
        """The draws :meth:`forecast` summarises (``return_draws=True``)."""
        periods = positive_int(periods, "periods")
        predictive_draws = positive_int(predictive_draws, "predictive_draws")
        # With a MAP fit the point is repeated, each repetition drawing the customers'
        # spend afresh: the same valuation segment_report sums.
        data, segments, valuation = self._summarised_valuation(X)
        retention = self.retention_model_
        profile, profiles = retention._profiles(X, data, segments)
        psi = flatten_samples(retention._profile_draws(segments, profiles))
        repeats = valuation.n_samples // len(psi)
        expected = expected_cash_flows(valuation, retention.family_,
                                       np.repeat(psi, repeats, axis=0), periods, len(segments))
        chosen, n_paths = simulation_plan(len(psi), predictive_draws)
        spend_params = self.spend_model_.segment_params(segments, profiles)
        realised = RealisedValuation(
            family=retention.family_, psi=psi[chosen], segment=valuation.segment,
            tenure=np.asarray(data.tenure), active=~np.asarray(data.churned),
            spend_family=self.spend_model_.family_,
            spend_params={key: value[chosen] for key, value in spend_params.items()},
            inputs=valuation.inputs, margin=float(self.margin),
            cost_per_period=float(self.cost_per_period),
            discount_rate=float(self.discount_rate), horizon=periods, n_paths=n_paths,
            seed=self.valuation_seed_,
        )
        segment_of = (np.arange(len(segments)) if profiles is None
                      else np.asarray(profiles.segment))
        simulated = realised_cash_flows(realised, segment_of, len(segments))
        return forecast_dataset(expected, simulated, segments,
                                retention.posterior_["chain"].to_numpy(),
                                {"period": self.period_, "periods": periods,
                                 "quantity": "cash flows per future period"})
