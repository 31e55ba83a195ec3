"""Forecast methods of :class:`bayesclv.CLVModel`: cash flows per period and programmes.

Thin wrappers over :mod:`bayesclv.valuation.forecast` and
:mod:`bayesclv.valuation.programmes`; they use only the fitted state
(``retention_model_``, ``spend_model_``, ``valuation_seed_``, ``period_``, ``hdi_prob``)
and :meth:`CLVModel.customer_valuation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

from bayesclv.data.columns import segment_labels
from bayesclv.estimator._common import flatten_samples, positive_int, segment_values
from bayesclv.exceptions import DataValidationError
from bayesclv.valuation.decisions import RealisedValuation
from bayesclv.valuation.forecast import (
    PREDICTIVE_DRAWS,
    Cohorts,
    cohort_flows,
    expected_cash_flows,
    forecast_dataset,
    forecast_table,
    labels_with_total,
    realised_cash_flows,
    realised_cohort_flows,
    simulation_plan,
    stable_keys,
)
from bayesclv.valuation.programmes import programme_values

__all__ = ["ForecastMethods"]


class ForecastMethods:
    """Mixin of :class:`bayesclv.CLVModel`: cash-flow forecasts (DESIGN §4.3)."""

    def forecast(self, X: pd.DataFrame, periods: int, *,
                 new_customers: pd.DataFrame | None = None,
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
        new_customers : pandas.DataFrame, optional
            Customers not yet acquired: columns ``segment``, ``period`` (the future
            period of acquisition, ``1..periods``) and ``n_customers``. They are valued
            like prospects (:meth:`expected_new_customer_value`): each pays in its
            acquisition period and stays with its segment's survival, spending the
            segment's mean; their simulated spend is drawn from the segment's population.
        predictive_draws : int, default=1000
            Simulations of the realised totals: posterior draws evenly thinned to this
            many (with a MAP fit, this many simulations at the point). Cost grows as
            (customers + new customers) x predictive_draws x periods.
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

        Notes
        -----
        The realised totals simulate each customer's spending level and churn period; a
        segment's revenue in a period is then one gamma draw with the mean and variance
        of its staying customers' period spends
        (:func:`bayesclv.valuation.forecast.realised_cash_flows`). Their random streams
        follow blocks of rows, so reordering the table changes the predictive intervals
        within Monte-Carlo error; the expected totals do not depend on the order.

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
        draws = self._forecast_draws(X, periods, new_customers=new_customers,
                                     predictive_draws=predictive_draws)
        if return_draws:
            return draws
        return forecast_table(draws, float(self.hdi_prob))

    def _forecast_draws(self, X: pd.DataFrame, periods: int, *,
                        new_customers: pd.DataFrame | None = None,
                        predictive_draws: int = PREDICTIVE_DRAWS) -> xr.Dataset:
        """The draws :meth:`forecast` summarises (``return_draws=True``)."""
        periods = positive_int(periods, "periods")
        predictive_draws = positive_int(predictive_draws, "predictive_draws")
        # With a MAP fit the point is repeated, each repetition drawing the customers'
        # spend afresh: the same valuation segment_report sums.
        data, table_segments, valuation = self._summarised_valuation(X)
        cohorts, segments = _cohorts(new_customers, periods, table_segments)
        retention, spend_model = self.retention_model_, self.spend_model_
        _, profiles = retention._profiles(X, data, table_segments)
        psi = flatten_samples(retention._profile_draws(segments, profiles))
        repeats = valuation.n_samples // len(psi)
        expected = expected_cash_flows(valuation, retention.family_,
                                       np.repeat(psi, repeats, axis=0), periods, len(segments))
        chosen, n_paths = simulation_plan(len(psi), predictive_draws)
        spend_params = spend_model.segment_params(segments, profiles)
        realised = RealisedValuation(
            family=retention.family_, psi=psi[chosen], segment=valuation.segment,
            tenure=np.asarray(data.tenure), active=~np.asarray(data.churned),
            spend_family=spend_model.family_,
            spend_params={key: value[chosen] for key, value in spend_params.items()},
            inputs=valuation.inputs, margin=float(self.margin),
            cost_per_period=float(self.cost_per_period),
            discount_rate=float(self.discount_rate), horizon=periods, n_paths=n_paths,
            seed=self.valuation_seed_,
        )
        segment_of = (np.arange(len(segments)) if profiles is None
                      else np.asarray(profiles.segment))
        simulated = realised_cash_flows(realised, segment_of, len(segments))
        if cohorts is not None:
            # Not yet acquired: no covariates, the segments' own parameters.
            segment_psi = flatten_samples(retention._profile_draws(segments, None))
            segment_spend = spend_model.segment_params(segments, None)
            active, revenue = cohort_flows(
                retention.family_, np.repeat(segment_psi, repeats, axis=0),
                spend_model.family_,
                {key: np.repeat(value, repeats, axis=0) for key, value in segment_spend.items()},
                cohorts, periods, len(segments))
            expected["active"] += active
            expected["revenue"] += revenue
            expected["margin"] += (float(self.margin) * revenue
                                   - float(self.cost_per_period) * active)
            more = realised_cohort_flows(
                retention.family_, segment_psi[chosen], spend_model.family_,
                {key: value[chosen] for key, value in segment_spend.items()}, cohorts,
                periods, n_paths, self.valuation_seed_, len(segments))
            simulated["active"] += more["active"]
            simulated["revenue"] += more["revenue"]
            simulated["margin"] = (float(self.margin) * simulated["revenue"]
                                   - float(self.cost_per_period) * simulated["active"])
        return forecast_dataset(expected, simulated, segments,
                                retention.posterior_["chain"].to_numpy(),
                                {"period": self.period_, "periods": periods,
                                 "quantity": "cash flows per future period"})

    def scenario(self, X: pd.DataFrame,
                 churn_reduction: float | Mapping[Any, float] | None = None,
                 spend_change: float | Mapping[Any, float] | None = None, *,
                 from_period: int = 1, cost: float | Mapping[Any, float] | None = None,
                 return_draws: bool = False) -> pd.DataFrame | xr.DataArray:
        """What a retention programme is worth: the change in the base's residual value.

        A churn reduction ``u`` multiplies the churn probability of each future period
        from ``from_period`` on, ``1 - S(t) / S(t - 1)``, by ``1 - u``, for every
        retention family (``u = 0.2``: a fifth fewer customers leave in each of those
        periods); a spend change ``c`` multiplies the spend of those periods by
        ``1 + c``. The value with and without the programme uses the same posterior
        draws and the same draw of each customer's spend, so the change is a difference
        within each draw and its interval is honest. Values are over the model's
        ``horizon``, discounted and net of ``cost_per_period`` as in :meth:`predict`.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        churn_reduction, spend_change : float or mapping segment -> float, optional
            One number for every segment, or per segment (segments left out: 0).
            ``0 <= u <= 1``; ``c > -1``.
        from_period : int, default=1
            The first future period the programme acts in (1 = the next period).
        cost : float or mapping segment -> float, optional
            What the programme costs. A mapping gives each segment's cost (left out: 0)
            and the base's is their sum. A number is the whole programme's cost: the
            base's, and that of the one segment it acts in (with several, their rows
            get no cost and no probability). ``None``: 0.
        return_draws : bool, default=False
            Return the draws of the change (chain, draw, segment), ``"all"`` included.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            One row per segment (in order of first appearance, then ``"all"``):
            ``baseline_mean``, ``scenario_mean``, ``delta_mean``, ``delta_hdi_low``,
            ``delta_hdi_high`` (at ``hdi_prob``), ``cost`` and ``prob_exceeds_cost``,
            the posterior probability that the change exceeds the cost.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, margin=0.3,
        ...                           random_seed=0).fit(customers)
        >>> table = model.scenario(customers, churn_reduction={"partner": 0.2}, cost=1000)
        >>> bool(table.loc["partner", "delta_mean"] > 0)
        True
        >>> float(table.loc["organic", "delta_mean"])
        0.0
        """
        from_period = positive_int(from_period, "from_period")
        data, segments, valuation = self._summarised_valuation(X)
        reduction = _programme_values(churn_reduction, segments, "churn_reduction")
        change = _programme_values(spend_change, segments, "spend_change")
        if np.any((reduction < 0) | (reduction > 1)):
            raise ValueError(f"churn_reduction must be between 0 and 1; got {churn_reduction!r}.")
        if np.any(change <= -1):
            raise ValueError(f"spend_change must be above -1; got {spend_change!r}.")
        costs, total_cost = _programme_costs(cost, segments, (reduction != 0) | (change != 0))
        retention = self.retention_model_
        _, profiles = retention._profiles(X, data, segments)
        psi = flatten_samples(retention._profile_draws(segments, profiles))
        psi = np.repeat(psi, valuation.n_samples // len(psi), axis=0)
        baseline, programme = programme_values(
            valuation, retention.family_, psi, reduction, change, from_period, self.horizon,
            float(self.discount_rate), len(segments))
        labels = labels_with_total(segments)
        if len(labels) > len(segments):
            baseline = np.column_stack([baseline, baseline.sum(axis=1)])
            programme = np.column_stack([programme, programme.sum(axis=1)])
        delta = programme - baseline
        if return_draws:
            n_chains = retention.posterior_.sizes["chain"]
            return xr.DataArray(
                delta.reshape(n_chains, -1, len(labels)), dims=("chain", "draw", "segment"),
                coords={"chain": retention.posterior_["chain"].to_numpy(), "segment": labels},
                name="delta", attrs={"period": self.period_,
                                     "quantity": "change in residual value"})
        all_costs = np.r_[costs, total_cost][:len(labels)]
        interval = array_stats.hdi(delta.T, float(self.hdi_prob), axis=-1)
        with np.errstate(invalid="ignore"):
            exceeds = np.where(np.isnan(all_costs), np.nan,
                               (delta > np.nan_to_num(all_costs)).mean(axis=0))
        out = pd.DataFrame({
            "baseline_mean": baseline.mean(axis=0), "scenario_mean": programme.mean(axis=0),
            "delta_mean": delta.mean(axis=0), "delta_hdi_low": interval[:, 0],
            "delta_hdi_high": interval[:, 1], "cost": all_costs,
            "prob_exceeds_cost": exceeds,
        }, index=pd.Index(labels, name="segment"))
        out.attrs.update(period=self.period_, hdi_prob=float(self.hdi_prob))
        return out


def _programme_values(value: float | Mapping[Any, float] | None, segments: list[str],
                      name: str) -> np.ndarray:
    """A programme's number per segment (segments left out: 0), keys read as labels."""
    if value is None:
        return np.zeros(len(segments))
    if isinstance(value, Mapping):
        # Labels written as the table's are (1, 1.0 and "1" name one segment).
        names = segment_labels(pd.Series(list(value.keys()), dtype=object))
        value = dict(zip(names, value.values(), strict=True))
    return segment_values(value, segments, name, default=0.0)


def _programme_costs(cost: float | Mapping[Any, float] | None, segments: list[str],
                     targeted: np.ndarray) -> tuple[np.ndarray, float]:
    """Each segment's cost (NaN where a single cost cannot be split) and the base's."""
    if cost is None or isinstance(cost, Mapping):
        costs = _programme_values(cost, segments, "cost")
        return costs, float(costs.sum())
    total = float(_programme_values(cost, ["all"], "cost")[0])
    costs = np.zeros(len(segments))
    if targeted.sum() == 1:
        costs[targeted] = total
    else:
        costs[targeted] = np.nan
    return costs, total


def _cohorts(new_customers: pd.DataFrame | None, periods: int, segments: list[str]
             ) -> tuple[Cohorts | None, list[str]]:
    """The acquisitions table as cohorts, and the segments with theirs appended.

    Rows of one segment and period are one cohort (their customers added up).
    """
    if new_customers is None:
        return None, segments
    if not isinstance(new_customers, pd.DataFrame):
        raise TypeError("new_customers must be a pandas DataFrame with columns 'segment', "
                        f"'period' and 'n_customers'; got {type(new_customers).__name__}.")
    missing = [c for c in ("segment", "period", "n_customers") if c not in new_customers]
    if missing:
        raise DataValidationError(
            f"Column(s) {missing} missing from new_customers; it needs 'segment', 'period' "
            f"(future period of acquisition, 1..{periods}) and 'n_customers'.")
    table = new_customers.reset_index(drop=True)
    numbers = {}
    for column, low, high in (("period", 1, periods), ("n_customers", 0, None)):
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < low)
        if high is not None:
            bad |= values > high
        if bad.any():
            rows = np.flatnonzero(bad)
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise DataValidationError(
                f"Column {column!r} of new_customers: values that are not whole numbers in "
                f"{bounds} in {len(rows)} row(s) (positions: {rows[:5].tolist()}).")
        numbers[column] = values.astype(np.int64)
    if table["segment"].isna().any():
        rows = np.flatnonzero(table["segment"].isna().to_numpy())
        raise DataValidationError(f"Column 'segment' of new_customers: missing labels in "
                                  f"{len(rows)} row(s) (positions: {rows[:5].tolist()}).")
    cohorts = pd.DataFrame({"segment": segment_labels(table["segment"]),
                            "period": numbers["period"], "size": numbers["n_customers"]})
    cohorts = cohorts.groupby(["segment", "period"], sort=True, as_index=False)["size"].sum()
    extended = segments + [s for s in dict.fromkeys(cohorts["segment"]) if s not in segments]
    code = {s: i for i, s in enumerate(extended)}
    period = cohorts["period"].to_numpy(dtype=np.int64)
    keys = stable_keys(cohorts["segment"].tolist()) * (periods + 1) + period
    return Cohorts(segment=cohorts["segment"].map(code).to_numpy(dtype=np.int64),
                   period=period, size=cohorts["size"].to_numpy(dtype=np.int64),
                   key=keys), extended
