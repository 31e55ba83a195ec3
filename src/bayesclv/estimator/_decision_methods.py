"""Decision methods of :class:`bayesclv.CLVModel`: prospects, realised value, comparisons.

Thin wrappers over the pure functions of :mod:`bayesclv.valuation.decisions`, kept apart from the
valuation core of ``estimator/clv.py``; they use only its fitted state (``idata_``,
``retention_model_``, ``spend_model_``, ``valuation_seed_``, ``period_``) and
:meth:`CLVModel.predict_segment_posterior`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesclv._params import interval_levels, level_label
from bayesclv.data import segment_codes, validate_customers
from bayesclv.estimator._common import (
    draw_array,
    flatten_samples,
    positive_int,
    segment_values,
    wanted_segments,
)
from bayesclv.valuation.customers import POINT_SPEND_DRAWS
from bayesclv.valuation.decisions import (
    RealisedValuation,
    acquisition_cost_ceiling,
    exceedance_probability,
    pairwise_exceedance,
    prospect_discounted_survival,
    prospect_values,
    realised_quantiles,
)
from bayesclv.valuation.forecast import PREDICTIVE_DRAWS, simulation_plan

__all__ = ["DecisionMethods"]


class DecisionMethods:
    """Mixin of :class:`bayesclv.CLVModel`: the decision quantities (DESIGN §4.3)."""

    def _draw_array(self, values: np.ndarray, dims: tuple[str, ...],
                    coords: dict[str, Any], name: str, quantity: str) -> xr.DataArray:
        return draw_array(values, self.retention_model_.posterior_, dims, coords, name=name,
                          attrs={"period": self.period_, "quantity": quantity})

    def expected_new_customer_value(
        self, segment: str | Sequence[str] | None = None, *,
        acquisition_cost: float | Mapping[Any, float] = 0.0, horizon: int | None = None,
    ) -> xr.DataArray:
        """Posterior draws of the expected value of a customer not yet acquired.

        For draw ``g`` and segment ``s``, from acquisition (period 0)::

            -acquisition_cost_s + sum_{t=0}^{H-1} [margin * E spend_s(g) - cost] S_s(t; g)
                                  / (1 + d)^t

        with ``E spend_s(g) = p gamma / (q - 1)`` the mean per-period spend of a customer of
        the segment. Use it to decide what acquiring a customer of a segment is worth.

        Parameters
        ----------
        segment : str or sequence of str, optional
            Defaults to the fitted segments; unseen ones are drawn from the population
            distribution (wider intervals).
        acquisition_cost : float or mapping, default=0.0
            One cost for all segments, or a mapping segment -> cost covering each.
        horizon : int, optional
            Periods valued, the acquisition period included; defaults to the model's
            ``horizon`` and, if that is None too, sums until the rest is negligible.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, segment).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        ValueError
            If ``horizon`` is not a positive integer or a per-segment cost is missing.
        TypeError
            If ``acquisition_cost`` is neither a number nor a mapping.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
        >>> value = model.expected_new_customer_value(acquisition_cost=10.0)
        >>> value.dims
        ('chain', 'draw', 'segment')
        """
        check_is_fitted(self, "idata_")
        segments = self.retention_model_._segments(segment)
        horizon = self.horizon if horizon is None else horizon
        if horizon is not None and not (isinstance(horizon, (int, np.integer))
                                        and not isinstance(horizon, bool) and horizon >= 1):
            raise ValueError(f"horizon must be an integer >= 1 or None; got {horizon!r}.")
        cost = segment_values(acquisition_cost, segments, "acquisition_cost")
        psi = flatten_samples(self.retention_model_._draws_for(segments))
        survival = prospect_discounted_survival(self.retention_model_.family_, psi, horizon,
                                                float(self.discount_rate))
        mean_spend = self.spend_model_.family_.segment_mean_spend(
            self.spend_model_.segment_params(segments))
        values = prospect_values(survival, mean_spend, margin=float(self.margin),
                                 cost_per_period=float(self.cost_per_period),
                                 acquisition_cost=cost)
        out = self._draw_array(values, ("segment",), {"segment": segments},
                               "new_customer_value", "expected value of a new customer")
        out.attrs["horizon"] = "none" if horizon is None else int(horizon)
        return out

    def max_acquisition_cost(self, segment: str | Sequence[str] | None = None,
                             prob: float = 0.9, *, horizon: int | None = None
                             ) -> pd.DataFrame:
        """The largest acquisition cost a new customer still repays with probability ``prob``.

        Per segment, the largest ``c`` with ``P(value > c) >= prob``, ``value`` being the
        zero-cost draws of :meth:`expected_new_customer_value`: their ``1 - prob``
        quantile (a draw, ``method="lower"``). It is below the posterior mean value
        whenever there is posterior uncertainty; with a MAP fit (one draw) it is that value.

        Parameters
        ----------
        segment : str or sequence of str, optional
        prob : float, default=0.9
            Strictly between 0 and 1; higher is more cautious.
        horizon : int, optional
            As in :meth:`expected_new_customer_value`.

        Returns
        -------
        pandas.DataFrame
            Indexed by segment: ``max_acquisition_cost`` and ``value_mean``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
        >>> list(model.max_acquisition_cost(prob=0.9).columns)
        ['max_acquisition_cost', 'value_mean']
        """
        value = self.expected_new_customer_value(segment, horizon=horizon)
        draws = value.stack(sample=("chain", "draw")).transpose("sample", "segment").to_numpy()
        out = pd.DataFrame(
            {"max_acquisition_cost": acquisition_cost_ceiling(draws, prob),
             "value_mean": draws.mean(axis=0)},
            index=pd.Index(value["segment"].to_numpy(), name="segment"),
        )
        out.attrs.update(period=self.period_, prob=float(prob))
        return out

    def distribution_customer_value(self, X: pd.DataFrame, *, n_paths: int = 1
                                    ) -> xr.DataArray:
        """Draws of the predictive distribution of each customer's *realised* residual value.

        For each posterior draw and each of ``n_paths`` simulations, every active
        customer's churn period is drawn from its segment's conditional hazards given
        survival to its tenure, and its spend in each period it stays from
        ``Gamma(p, nu_i)`` with ``nu_i`` from its conditional posterior; the value is the
        discounted sum over the simulated lifetime within the horizon of
        ``margin * spend - cost_per_period`` (see :class:`bayesclv.valuation.decisions.
        RealisedValuation`). Churned customers are 0. Its mean over paths is the expected
        value that :meth:`predict_posterior` draws; its spread is far wider.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        n_paths : int, default=1
            Simulations per posterior draw (more with a MAP fit, which has one draw).

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, path, customer). Memory grows as draws x paths x customers.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        ValueError
            If ``n_paths`` is not a positive integer.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=12, random_seed=0).fit(customers)
        >>> realised = model.distribution_customer_value(customers.head(5), n_paths=200)
        >>> realised.sizes["path"]
        200
        """
        realised, data = self._realised(X, n_paths)
        values = np.empty((realised.n_samples, realised.n_paths, data.n_customers))
        for sl, chunk in realised.iter_values():
            values[..., sl] = chunk
        return self._draw_array(
            values, ("path", "customer"),
            {"path": np.arange(realised.n_paths), "customer": data.customer_ids.to_numpy(),
             "segment": ("customer", data.segment.astype(str))},
            "clv", "realised residual value",
        )

    def predict_interval(self, X: pd.DataFrame, levels: Sequence[float] = (0.5, 0.8, 0.9),
                         *, horizon: int | None | str = "model",
                         predictive_draws: int = PREDICTIVE_DRAWS) -> pd.DataFrame:
        """Predictive intervals of each customer's *realised* residual value.

        Where :meth:`predict`'s HDI describes what is uncertain about a customer's
        *expected* value, these intervals also simulate whether and when the customer
        churns and what it spends each period (:meth:`distribution_customer_value`): a
        ``level`` interval should hold the value the customer actually brings with
        probability ``level``, which a backtest checks (:func:`bayesclv.backtest`). The
        table holds both quantities, named apart (DESIGN §4.3): ``value_mean`` is the
        posterior mean of the *expected* value, ``value_pi*`` are quantiles of the
        *realised* value.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        levels : sequence of float, default=(0.5, 0.8, 0.9)
            Probabilities of the central (equal-tailed) intervals, each in (0, 1).
        horizon : int, None or "model", default="model"
            Periods valued: the model's ``horizon`` unless given.
        predictive_draws : int, default=1000
            Simulations per customer: posterior draws evenly thinned to this many (with
            a MAP fit, this many paths at the point). Memory grows as predictive_draws
            x one chunk of customers.

        Returns
        -------
        pandas.DataFrame
            One row per input row, in input order, with the input index: the customer
            id, ``segment``, ``value_mean`` (the posterior mean of the expected value over
            the horizon, as :meth:`predict`'s ``clv_mean``) and, for each level ``L``
            (in percent), ``value_pi{L}_low`` and ``value_pi{L}_high``: the
            ``(1 - L) / 2`` and ``(1 + L) / 2`` quantiles of the realised value. Churned
            customers are 0 throughout.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=12, random_seed=0).fit(customers)
        >>> table = model.predict_interval(customers.head(3), levels=[0.9],
        ...                                predictive_draws=500)
        >>> list(table.columns[2:])
        ['value_mean', 'value_pi90_low', 'value_pi90_high']
        """
        check_is_fitted(self, "idata_")
        levels = interval_levels(levels)
        if horizon != "model" and horizon is not None:
            horizon = positive_int(horizon, "horizon")
        predictive_draws = positive_int(predictive_draws, "predictive_draws")
        data, segments, valuation = self.customer_valuation(X, horizon=horizon)
        chosen, n_paths = simulation_plan(valuation.n_samples, predictive_draws)
        if valuation.n_samples == 1:
            valuation = valuation.repeated(POINT_SPEND_DRAWS)
        mean = valuation.summarize(float(self.hdi_prob), len(segments)).mean
        realised, _ = self._realised(X, n_paths, horizon=horizon, samples=chosen)
        probs = np.concatenate([[(1 - level) / 2, (1 + level) / 2] for level in levels])
        quantiles = realised_quantiles(realised, probs)
        out = pd.DataFrame(index=data.index)
        out[self.customer_col] = data.customer_ids.to_numpy()
        out["segment"] = data.segment
        out["value_mean"] = mean
        for k, level in enumerate(levels):
            name = f"value_pi{level_label(level)}"
            out[f"{name}_low"] = quantiles[2 * k]
            out[f"{name}_high"] = quantiles[2 * k + 1]
        out.attrs.update(period=self.period_, levels=list(levels),
                         horizon=self.horizon if horizon == "model" else horizon)
        return out

    def _realised(self, X: pd.DataFrame, n_paths: int, *,
                  horizon: int | None | str = "model", samples: np.ndarray | None = None
                  ) -> tuple[RealisedValuation, Any]:
        """The simulation of realised values; ``samples`` picks posterior samples."""
        if not (isinstance(n_paths, (int, np.integer)) and not isinstance(n_paths, bool)
                and n_paths >= 1):
            raise ValueError(f"n_paths must be an integer >= 1; got {n_paths!r}.")
        data = self._validated(X)
        segments = wanted_segments(data)
        # With covariates the parameter arrays are per profile (segment and covariates).
        profile, profiles = self.retention_model_._profiles(X, data, segments)
        psi = flatten_samples(self.retention_model_._profile_draws(segments, profiles))
        spend_params = self.spend_model_.segment_params(segments, profiles)
        if samples is not None:
            psi = psi[samples]
            spend_params = {key: value[samples] for key, value in spend_params.items()}
        realised = RealisedValuation(
            family=self.retention_model_.family_, psi=psi,
            segment=profile, tenure=np.asarray(data.tenure),
            active=~np.asarray(data.churned),
            spend_family=self.spend_model_.family_, spend_params=spend_params,
            inputs=self.spend_model_.family_.customer_inputs(data),
            margin=float(self.margin), cost_per_period=float(self.cost_per_period),
            discount_rate=float(self.discount_rate),
            horizon=self.horizon if horizon == "model" else horizon,
            n_paths=int(n_paths), seed=self.valuation_seed_,
        )
        return realised, data

    def segment_comparison(self, X: pd.DataFrame) -> pd.DataFrame:
        """Posterior probability that one segment's CLV per customer exceeds another's.

        Computed within draws from :meth:`predict_segment_posterior`: entry ``[a, b]`` is
        the share of posterior draws in which segment ``a``'s total over its number of
        customers exceeds segment ``b``'s (ties count for neither; diagonal 0).

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.

        Returns
        -------
        pandas.DataFrame
            Square, rows and columns the segments in order of first appearance in ``X``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
        >>> table = model.segment_comparison(customers)
        >>> table.shape[0] == table.shape[1]
        True
        """
        totals = self.predict_segment_posterior(X)
        segments = totals["segment"].to_numpy()
        counts = self._segment_counts(X, list(segments))
        draws = totals.stack(sample=("chain", "draw")).transpose("sample", "segment").to_numpy()
        table = pd.DataFrame(pairwise_exceedance(draws / counts),
                             index=pd.Index(segments, name="segment"),
                             columns=pd.Index(segments, name="versus"))
        table.attrs["quantity"] = "P(CLV per customer of row > of column)"
        return table

    def _segment_counts(self, X: pd.DataFrame, segments: list[str]) -> np.ndarray:
        data = validate_customers(X, self._columns())
        return np.bincount(segment_codes(data.segment, segments), minlength=len(segments))

    def budget_probability(self, X: pd.DataFrame, budget: float | Mapping[Any, float]
                           ) -> pd.Series:
        """Posterior probability that each segment's total residual value exceeds a budget.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        budget : float or mapping
            One budget for all segments, or a mapping segment -> budget covering each.

        Returns
        -------
        pandas.Series
            Indexed by segment, named ``p_total_above_budget``.

        Raises
        ------
        ValueError
            If a per-segment budget is missing or not finite.
        TypeError
            If ``budget`` is neither a number nor a mapping.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
        >>> model.budget_probability(customers, 0.0).between(0, 1).all()
        np.True_
        """
        totals = self.predict_segment_posterior(X)
        segments = list(totals["segment"].to_numpy())
        limits = segment_values(budget, segments, "budget")
        draws = totals.stack(sample=("chain", "draw")).transpose("sample", "segment").to_numpy()
        return pd.Series(exceedance_probability(draws, limits),
                         index=pd.Index(segments, name="segment"), name="p_total_above_budget")
