"""Forecast methods of :class:`bayesclv.CLVModel`: the base's cash flows per future period.

Thin wrappers over :mod:`bayesclv.valuation.forecast`; they use only the fitted state
(``retention_model_``, ``spend_model_``, ``valuation_seed_``, ``period_``, ``hdi_prob``)
and :meth:`CLVModel.customer_valuation`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

from bayesclv.estimator._common import flatten_samples
from bayesclv.valuation.decisions import RealisedValuation
from bayesclv.valuation.forecast import (
    CASH_FLOWS,
    expected_cash_flows,
    realised_cash_flows,
    with_totals,
)

__all__ = ["ALL_SEGMENTS", "ForecastMethods", "forecast_table"]

#: The label of the whole base in forecast tables.
ALL_SEGMENTS = "all"
#: Simulations of the realised cash flows behind the predictive intervals, by default.
PREDICTIVE_DRAWS = 1000


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
        periods = _positive_int(periods, "periods")
        predictive_draws = _positive_int(predictive_draws, "predictive_draws")
        # With a MAP fit the point is repeated, each repetition drawing the customers'
        # spend afresh: the same valuation segment_report sums.
        data, segments, valuation = self._summarised_valuation(X)
        retention = self.retention_model_
        profile, profiles = retention._profiles(X, data, segments)
        psi = flatten_samples(retention._profile_draws(segments, profiles))
        repeats = valuation.n_samples // len(psi)
        expected = with_totals(expected_cash_flows(
            valuation, retention.family_, np.repeat(psi, repeats, axis=0), periods,
            len(segments)), axis=1)
        chosen, n_paths = _simulation_plan(len(psi), predictive_draws)
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
        simulated = with_totals(realised_cash_flows(realised, segment_of, len(segments)),
                                axis=2)
        posterior = retention.posterior_
        n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"] * repeats
        coords = {"chain": posterior["chain"].to_numpy(), "draw": np.arange(n_draws),
                  "segment": [*segments, ALL_SEGMENTS], "period": np.arange(1, periods + 1),
                  "simulation": np.arange(len(chosen) * n_paths)}
        variables: dict[str, Any] = {}
        for name in CASH_FLOWS:
            variables[name] = (("chain", "draw", "segment", "period"),
                               expected[name].reshape(n_chains, n_draws, len(segments) + 1,
                                                      periods))
            variables[f"realised_{name}"] = (
                ("simulation", "segment", "period"),
                simulated[name].reshape(-1, len(segments) + 1, periods))
        return xr.Dataset(variables, coords=coords,
                          attrs={"period": self.period_, "periods": periods,
                                 "quantity": "cash flows per future period"})


def forecast_table(draws: xr.Dataset, hdi_prob: float) -> pd.DataFrame:
    """The tidy summary of :meth:`ForecastMethods.forecast_draws`: one row per segment, period."""
    segments = draws["segment"].to_numpy()
    periods = draws["period"].to_numpy()
    out = pd.DataFrame({"segment": np.repeat(segments, len(periods)),
                        "period": np.tile(periods, len(segments))})
    for name in CASH_FLOWS:
        expected = draws[name].stack(sample=("chain", "draw")).transpose(
            "segment", "period", "sample").to_numpy()
        realised = draws[f"realised_{name}"].transpose("segment", "period",
                                                       "simulation").to_numpy()
        interval = array_stats.hdi(expected, hdi_prob, axis=-1)
        predictive = array_stats.hdi(realised, hdi_prob, axis=-1)
        out[f"{name}_mean"] = expected.mean(axis=-1).ravel()
        out[f"{name}_hdi_low"] = interval[..., 0].ravel()
        out[f"{name}_hdi_high"] = interval[..., 1].ravel()
        out[f"{name}_pi_low"] = predictive[..., 0].ravel()
        out[f"{name}_pi_high"] = predictive[..., 1].ravel()
    out.attrs.update(period=draws.attrs.get("period"), hdi_prob=hdi_prob)
    return out


def _simulation_plan(n_samples: int, predictive_draws: int) -> tuple[np.ndarray, int]:
    """Which posterior samples to simulate from, and how many paths each."""
    if n_samples >= predictive_draws:
        chosen = np.unique(np.linspace(0, n_samples - 1, predictive_draws).round().astype(int))
        return chosen, 1
    return np.arange(n_samples), -(-predictive_draws // n_samples)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    return int(value)
