"""The CLV estimator: posterior customer lifetime value from retention and spend."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesclv._base import BayesianEstimator
from bayesclv._hierarchy import profile_names
from bayesclv._params import Interval, Options
from bayesclv.data import CustomerData, validate_customers
from bayesclv.data._dask import is_dask_frame, predict_partitions
from bayesclv.estimator._background import fit_side_by_side
from bayesclv.estimator._card import CardMethods
from bayesclv.estimator._clv_priors import PriorChecks
from bayesclv.estimator._common import (
    dask_statistics,
    documented,
    draw_array,
    flatten_samples,
    period_of,
    validate_for_prediction,
    wanted_segments,
)
from bayesclv.estimator._decision_methods import DecisionMethods
from bayesclv.estimator._forecast_methods import ForecastMethods
from bayesclv.estimator.retention import RetentionModel
from bayesclv.estimator.spend import SpendModel
from bayesclv.families import RETENTION_FAMILIES, SPEND_FAMILIES
from bayesclv.segmentation.strategy import segment_strategies
from bayesclv.valuation.customers import POINT_SPEND_DRAWS, CustomerValuation, lazy_draws
from bayesclv.valuation.programmes import rank_programmes
from bayesclv.valuation.segments import segment_summary
from bayesclv.valuation.survival import customer_survival_sums

__all__ = ["CLVModel"]

#: Customers per chunk of a Zarr store written by ``predict_posterior(to=...)``.
_ZARR_CHUNK = 10_240


@documented
class CLVModel(DecisionMethods, ForecastMethods, PriorChecks, CardMethods,
               BayesianEstimator):
    """Posterior customer lifetime value from hierarchical retention and spend models.

    Parameters
    ----------
    retention : {"weibull", "geometric", "sbg", "bdw"}, default="weibull"
        Retention family (see :class:`RetentionModel`).
    spend : {"gamma_gamma"}, default="gamma_gamma"
    discount_rate : float, default=0.01
        Per period (0.01 a month is about 12.7% a year).
    horizon : int or None, default=None
        Future periods valued; ``None`` values until the remaining discounted survival is
        negligible.
    margin : float, default=1.0
        Multiplies revenue (a gross-margin rate); value may be negative.
    cost_per_period : float, default=0.0
        Cost of serving an active customer for one period, subtracted from margin.
    hdi_prob : float, default=0.9
        Mass of the highest-density intervals reported.
    {common_parameters}

    Attributes
    ----------
    retention_model_ : RetentionModel
    spend_model_ : SpendModel
    idata_ : xarray.DataTree
        ``posterior`` of both models, ``sample_stats_retention`` and
        ``sample_stats_spend``.
    segments_ : list of str
    n_customers_in_ : int
    seed_ : int
    period_ : str

    Notes
    -----
    For draw ``g`` the residual value of active customer ``i`` with tenure ``tau`` is
    ``sum_{j=1}^{H} [margin * spend_i(g) - cost] S(tau+j; g) / S(tau; g) / (1+d)^j``,
    with ``spend_i(g)`` drawn from the customer's conditional posterior (DESIGN §4.3).
    Churned customers are worth 0. These are draws of the *expected* value (parameter and
    customer-rate uncertainty), not of realised value. ``priors`` takes
    ``{"retention": {...}, "spend": {...}}``, each overriding that family's defaults.

    **Which quantity for which decision.** *Expected* value (:meth:`predict`,
    :meth:`predict_posterior`, :meth:`segment_report`, :meth:`segment_comparison`,
    :meth:`budget_probability`, :meth:`expected_new_customer_value`,
    :meth:`max_acquisition_cost`) integrates out when the customer churns and what it
    spends each period: use it to rank and target customers and to budget on average
    over many customers. *Realised* value (:meth:`distribution_customer_value`) also
    simulates whether and when each customer churns and its period-by-period spend: it is
    what a finance team will see customer by customer, so use it for the risk that a
    customer ends up worth less than an offer made to it (its intervals are far wider;
    its mean over paths is the expected value).

    Examples
    --------
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.CLVModel(method="map", horizon=36, margin=0.3, random_seed=0)
    >>> predictions = model.fit(customers).predict(customers)
    >>> len(predictions) == len(customers)
    True
    """

    _saved_state = ("seed_", "valuation_seed_", "period_", "has_segment_column_", "segments_",
                    "n_customers_in_")
    _saved_children = {"retention_model_": "RetentionModel", "spend_model_": "SpendModel"}
    _parameter_constraints = {
        "retention": Options(tuple(RETENTION_FAMILIES)),
        "spend": Options(tuple(SPEND_FAMILIES)),
        "discount_rate": Interval(float, 0.0, None),
        "horizon": Interval(int, 1, None, allow_none=True),
        "margin": Interval(float),
        "cost_per_period": Interval(float),
        "hdi_prob": Interval(float, 0.0, 1.0, closed="neither"),
        # None: the retention and spend models' own defaults.
        "target_accept": Interval(float, 0.5, 1.0, closed="neither", allow_none=True),
    }

    def __init__(
        self, retention: str = "weibull", spend: str = "gamma_gamma", *,
        discount_rate: float = 0.01, horizon: int | None = None, margin: float = 1.0,
        cost_per_period: float = 0.0, hdi_prob: float = 0.9, method: str = "nuts",
        draws: int = 1000, tune: int = 1000, chains: int = 4,
        target_accept: float | None = None,
        sampler: str = "auto", random_seed: int | None = None, priors: dict | None = None,
        progressbar: bool = False, covariates: list[str] | None = None,
        customer_col: str = "customer_id", segment_col: str | None = "segment",
        tenure_col: str = "tenure",
        churned_col: str = "churned", entry_col: str | None = "entry",
        n_periods_active_col: str = "n_periods_active", mean_spend_col: str = "mean_spend",
    ) -> None:
        self.retention = retention
        self.spend = spend
        self.discount_rate = discount_rate
        self.horizon = horizon
        self.margin = margin
        self.cost_per_period = cost_per_period
        self.hdi_prob = hdi_prob
        self.method = method
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.sampler = sampler
        self.random_seed = random_seed
        self.priors = priors
        self.progressbar = progressbar
        self.covariates = covariates
        self.customer_col = customer_col
        self.segment_col = segment_col
        self.tenure_col = tenure_col
        self.churned_col = churned_col
        self.entry_col = entry_col
        self.n_periods_active_col = n_periods_active_col
        self.mean_spend_col = mean_spend_col

    def _sub_params(self, seed: int) -> dict[str, Any]:
        """The sub-models' hyper-parameters: all those the three estimators share.

        The seed (derived from this model's) and the priors (given per part) excepted, and
        ``target_accept`` when it is None (each part's own default).
        """
        shared = (set(RetentionModel._get_param_names()) & set(SpendModel._get_param_names())
                  & set(self._get_param_names())) - {"random_seed", "priors"}
        if self.target_accept is None:
            shared -= {"target_accept"}
        return {name: getattr(self, name) for name in sorted(shared)} | {"random_seed": seed}

    def fit(self, X: pd.DataFrame, y: None = None, *, period: str | None = None) -> CLVModel:
        """Fit the retention and spend models to a customer table.

        Parameters
        ----------
        X : pandas.DataFrame or dask.dataframe.DataFrame
            Customer table (DESIGN §3). A Dask table is reduced to its sufficient
            statistics on the workers, once for both models
            (:func:`bayesclv.data.training_statistics`, whose compensated sums are the
            same doubles for any partitioning), and gives the posterior draws the pandas
            table gives; customer covariates need a pandas table.
        y : None
            Ignored.
        period : str, optional
            The period unit (e.g. ``"month"``); defaults to ``X.attrs["period"]``.

        Returns
        -------
        CLVModel
            The fitted estimator.
        """
        self._validate_params()
        priors = self.priors or {}
        unknown = set(priors) - {"retention", "spend"}
        if unknown:
            raise ValueError(f"priors keys must be 'retention' and/or 'spend'; got {unknown}.")
        if is_dask_frame(X):
            self._training_table = None
            statistics = dask_statistics(X, self._columns(), self.covariates)
            self.period_ = period_of(X._meta, period)
        else:
            self._remember_training_table(X)
            validate_customers(X, self._columns())
            self.period_ = period_of(X, period)
        self.seed_ = self._resolve_seed()
        retention_seed, spend_seed, self.valuation_seed_ = (
            int(s) for s in np.random.SeedSequence(self.seed_).generate_state(3)
        )
        retention = RetentionModel(self.retention, priors=priors.get("retention"),
                                   **self._sub_params(retention_seed))
        spend = SpendModel(self.spend, priors=priors.get("spend"),
                           **self._sub_params(spend_seed))
        if is_dask_frame(X):
            self.retention_model_ = retention._fit_statistics(X, statistics, self.period_)
            self.spend_model_ = spend._fit_statistics(X, statistics, self.period_)
        else:
            self.retention_model_, self.spend_model_ = fit_side_by_side(retention, spend, X,
                                                                         self.period_)
        self.segments_ = list(self.retention_model_.segments_)
        self.n_customers_in_ = self.retention_model_.n_customers_in_
        self.has_segment_column_ = self.retention_model_.has_segment_column_
        self.idata_ = combined_idata(self.retention_model_, self.spend_model_)
        return self

    def _validated(self, X: pd.DataFrame) -> CustomerData:
        """Validate a table to value (every column), after checking the segment column."""
        check_is_fitted(self, "idata_")
        return validate_for_prediction(X, self._columns(), {}, self.segments_,
                                       self.retention_model_.has_segment_column_)

    @property
    def priors_(self) -> dict[str, Any]:
        """The resolved priors of the fitted model: ``{"retention": ..., "spend": ...}``."""
        check_is_fitted(self, "idata_")
        return {"retention": self.retention_model_.priors_,
                "spend": self.spend_model_.priors_}

    def customer_valuation(self, X: pd.DataFrame, *, horizon: int | None | str = "model"
                           ) -> tuple[CustomerData, list[str], CustomerValuation]:
        """The valuation engine behind :meth:`predict` and the decision methods.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        horizon : int, None or "model", default="model"
            Periods valued: the model's ``horizon`` unless given (``None``: until the
            remaining survival is negligible).

        Returns
        -------
        data : bayesclv.data.CustomerData
            ``X`` validated.
        segments : list of str
            The segments valued, in order of first appearance (codes index this list).
        valuation : bayesclv.valuation.customers.CustomerValuation
            Each customer's value under every posterior sample, streamed in chunks by
            :meth:`~bayesclv.valuation.customers.CustomerValuation.iter_values` (memory
            bounded whatever the number of customers) and summarised by
            :meth:`~bayesclv.valuation.customers.CustomerValuation.summarize`.
        """
        data = self._validated(X)
        segments = wanted_segments(data)
        retention = self.retention_model_
        profile, profiles = retention._profiles(X, data, segments)
        sums, pair = customer_survival_sums(
            retention.family_, flatten_samples(retention._profile_draws(segments, profiles)),
            profile, data.tenure, self.horizon if horizon == "model" else horizon,
            float(self.discount_rate))
        valuation = CustomerValuation(
            sums=sums, pair=pair, segment=profile, active=~data.churned,
            spend_family=self.spend_model_.family_,
            spend_params=self.spend_model_.segment_params(segments, profiles),
            inputs=self.spend_model_.family_.customer_inputs(data),
            margin=float(self.margin), cost_per_period=float(self.cost_per_period),
            seed=self.valuation_seed_, segment_names=profile_names(segments, profiles),
            tenure=data.tenure,
            profile_segment=None if profiles is None else profiles.segment,
        )
        return data, segments, valuation

    def _summarised_valuation(self, X: pd.DataFrame
                              ) -> tuple[CustomerData, list[str], CustomerValuation]:
        """:meth:`customer_valuation`, a point estimate's sample repeated for its summaries.

        One draw of each customer's spend would make an interval of one value; repeated,
        the draws describe what is uncertain about the customer at the point.
        """
        data, segments, valuation = self.customer_valuation(X)
        if valuation.n_samples == 1:
            valuation = valuation.repeated(POINT_SPEND_DRAWS)
        return data, segments, valuation

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Posterior summary of each customer's residual lifetime value.

        Parameters
        ----------
        X : pandas.DataFrame or dask.dataframe.DataFrame
            Customer table; segments unseen in training are valued from the population
            distribution (wider intervals). A Dask DataFrame gives a Dask DataFrame,
            valued partition by partition (on a ``dask.distributed`` cluster, by the
            workers; the fitted model is sent once to each), with the same rows as the
            pandas path: a customer's summary depends only on its own inputs (values
            equal up to floating-point rounding, below 1e-12 relative).

        Returns
        -------
        pandas.DataFrame
            One row per input row, in input order, with the input index: the customer id,
            ``segment``, ``clv_mean``, ``clv_sd``, ``clv_hdi_low``, ``clv_hdi_high``,
            ``expected_spend`` (posterior mean spend per active period),
            ``retention_next`` (probability of staying through the next period) and
            ``expected_residual_lifetime`` (further periods active within the horizon).
            ``attrs["period"]`` names the period unit. With ``method="map"`` (one
            posterior point) ``clv_sd`` and the HDI come from 200 draws of each
            customer's spend at that point: what is uncertain about the customer, with
            no parameter uncertainty.
        """
        if is_dask_frame(X):
            check_is_fitted(self, "idata_")
            meta = self.predict(X.head(5, npartitions=-1)).iloc[:0]
            return predict_partitions(self, X, meta, self._columns())
        data, segments, valuation = self._summarised_valuation(X)
        summary = valuation.summarize(float(self.hdi_prob), len(segments))
        out = pd.DataFrame(index=data.index)
        out[self.customer_col] = data.customer_ids.to_numpy()
        out["segment"] = data.segment
        out["clv_mean"] = summary.mean
        out["clv_sd"] = summary.sd
        out["clv_hdi_low"] = summary.hdi_low
        out["clv_hdi_high"] = summary.hdi_high
        out["expected_spend"] = valuation.expected_spend()
        out["retention_next"] = valuation.pair_means("retention_next")
        out["expected_residual_lifetime"] = valuation.pair_means("lifetime")
        out.attrs["period"] = self.period_
        return out

    def predict_posterior(self, X: pd.DataFrame, *, chunks: int | None = None,
                          to: str | os.PathLike | None = None) -> xr.DataArray:
        """All posterior draws of each customer's residual lifetime value.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        chunks : int, optional
            Customers per chunk. When given, the result is a lazy, Dask-backed array:
            nothing is computed until asked for, and each chunk is computed on its own
            (locally or on a Dask cluster), so memory grows with the chunk, not the table.
            A chunk holds ``chunks`` x draws doubles: around 10,000 customers for 4,000
            draws (320 MB) computes faster than much larger chunks.
            Needs ``pip install 'bayesclv[dask]'``.
        to : str or path-like, optional
            A Zarr store (a directory, which must not exist) to write every draw to, chunk
            by chunk; the array returned then reads from it lazily. Chunks of ``chunks``
            customers (default 10,240). Needs Dask.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, customer); the draws :meth:`predict` summarises. Each
            customer's draws depend only on the seed and its inputs, so they are the same
            whatever the chunking. Without ``chunks`` or ``to`` the array is in memory,
            which grows as draws x customers: for large tables prefer :meth:`predict`,
            ``chunks`` or ``to``.

        Raises
        ------
        ImportError
            ``chunks`` or ``to`` without Dask installed.
        FileExistsError
            ``to`` names an existing path.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
        >>> lazy = model.predict_posterior(customers, chunks=1000)
        >>> lazy.chunks[-1][:2], lazy.shape == (1, 1, len(customers))
        ((1000, 1000), True)
        """
        data, _, valuation = self.customer_valuation(X)
        posterior = self.retention_model_.posterior_
        shape = (posterior.sizes["chain"], posterior.sizes["draw"], data.n_customers)
        coords = {"customer": data.customer_ids.to_numpy(),
                  "segment": ("customer", data.segment.astype(str))}
        attrs = {"period": self.period_, "quantity": "expected residual value"}
        if chunks is None and to is None:
            values = np.empty((valuation.n_samples, data.n_customers))
            for sl, chunk in valuation.iter_values():
                values[:, sl] = chunk
            return draw_array(values, posterior, ("customer",), coords, name="clv", attrs=attrs)
        size = _ZARR_CHUNK if chunks is None else chunks
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"chunks must be an int >= 1; got {chunks!r}.")
        if to is not None and os.path.exists(to):
            raise FileExistsError(f"{os.fspath(to)!r} exists; predict_posterior(to=...) "
                                  "writes a new Zarr store and never overwrites one.")
        lazy = draw_array(lazy_draws(valuation, int(size), shape), posterior, ("customer",),
                          coords, name="clv", attrs=attrs)
        if to is None:
            return lazy
        lazy.to_dataset().to_zarr(to, mode="w-", consolidated=False)
        return xr.open_zarr(to, consolidated=False)["clv"]

    def predict_segment_posterior(self, X: pd.DataFrame) -> xr.DataArray:
        """Posterior draws of each segment's total residual value.

        Totals are sums within each posterior draw, streamed over chunks of customers,
        so memory grows as draws x segments whatever the number of customers.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, segment), segments in order of first appearance in ``X``;
            the totals :meth:`segment_report` summarises.
        """
        _, segments, valuation = self.customer_valuation(X)
        totals = valuation.summarize(float(self.hdi_prob), len(segments)).segment_totals
        return draw_array(totals, self.retention_model_.posterior_, ("segment",),
                          {"segment": segments}, name="segment_total",
                          attrs={"period": self.period_, "quantity": "expected residual value"})

    def segment_report(
        self, X: pd.DataFrame,
        strategy: Mapping[Any, str] | Callable[[pd.Series], str] | None = None,
        programmes: Mapping[str, pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """Per segment: customers, CLV per customer, total, share of value and strategy.

        Totals are sums within each posterior draw, so their intervals are honest; the
        share is each draw's segment total over that draw's grand total.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table.
        strategy : mapping, callable or None, default=None
            How the ``strategy`` column is filled. ``None``: the default rule
            (:func:`bayesclv.segmentation.default_segment_strategy`): ``retain`` for
            segments whose customers are worth at least the overall CLV per customer
            and whose share of value is at least ``1 / n_segments``, ``develop`` for
            such customers with a smaller share, ``upgrade`` for customers worth less
            than average with a large share, ``maintain`` otherwise. A mapping
            segment -> strategy must cover every segment; a callable receives each
            report row (a Series named by the segment) and returns its strategy.
        programmes : mapping of str to pandas.DataFrame, optional
            Retention programmes: name -> the table of :meth:`scenario`. Each segment
            then gets the programme with the best posterior expected gain per unit of
            cost among those acting on it (:func:`bayesclv.valuation.programmes.
            rank_programmes`).

        Returns
        -------
        pandas.DataFrame
            Indexed by segment: ``n_customers``, ``n_active``, ``clv_per_customer_mean``,
            ``clv_per_customer_hdi_low``/``_high``, ``total_mean``, ``total_hdi_low``/
            ``_high``, ``share_mean``, ``share_hdi_low``/``_high``, ``value_rank``
            (1 = highest posterior mean CLV per customer) and ``strategy``; with
            ``programmes``, also ``best_programme``, ``best_programme_gain_per_cost``
            and ``best_programme_prob_exceeds_cost`` (missing where none acts).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        ValueError
            If a ``strategy`` mapping leaves a segment out.
        TypeError
            If ``strategy`` is neither None, a mapping nor a callable.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0)
        >>> report = model.fit(customers).segment_report(customers)
        >>> set(report["strategy"]) <= {"retain", "develop", "upgrade", "maintain"}
        True
        """
        _, segments, valuation = self._summarised_valuation(X)
        hdi_prob = float(self.hdi_prob)
        totals = valuation.summarize(hdi_prob, len(segments)).segment_totals
        report = segment_summary(totals, valuation.customer_segment, valuation.active,
                                 segments, hdi_prob)
        report["value_rank"] = report["clv_per_customer_mean"].rank(
            ascending=False, method="min").astype(np.int64)
        report["strategy"] = segment_strategies(report, strategy)
        if programmes is not None:
            ranked = rank_programmes(programmes)
            best = ranked[ranked["rank"] == 1].set_index("segment")
            report["best_programme"] = best["programme"].reindex(report.index)
            report["best_programme_gain_per_cost"] = best["gain_per_cost"].reindex(
                report.index)
            report["best_programme_prob_exceeds_cost"] = best[
                "prob_exceeds_cost"].reindex(report.index)
        report.attrs["period"] = self.period_
        report.attrs["hdi_prob"] = hdi_prob
        return report

    def retention_curve(self, periods: int = 24, segments: Sequence[str] | None = None
                        ) -> xr.DataArray:
        """Posterior draws of ``S(t)``, ``t = 0..periods``, dims (chain, draw, segment, period)."""
        check_is_fitted(self, "idata_")
        return self.retention_model_.retention_curve(periods, segments)

    def thin(self, draws: int = 500) -> CLVModel:
        """A copy keeping ``draws`` posterior samples of each sub-model.

        :meth:`RetentionModel.thin` applied to both sub-models, for scoring-only copies
        (its Notes give the Monte-Carlo error thinning adds).

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", random_seed=0).fit(customers)
        >>> model.thin(100).spend_model_.posterior_.sizes["draw"]
        1
        """
        check_is_fitted(self, "idata_")
        thinned = copy.copy(self)
        thinned.retention_model_ = self.retention_model_.thin(draws)
        thinned.spend_model_ = self.spend_model_.thin(draws)
        thinned.idata_ = combined_idata(thinned.retention_model_, thinned.spend_model_)
        return thinned

    def diagnostics(self) -> pd.DataFrame:
        """Convergence diagnostics of both sub-models (ArviZ summary).

        Returns
        -------
        pandas.DataFrame
            Indexed by (``model``, ``parameter``), ``model`` being ``"retention"`` or
            ``"spend"``; the columns of :meth:`RetentionModel.diagnostics`.
            ``attrs["divergences"]`` is the total of divergent transitions and
            ``attrs["divergences_by_model"]`` splits it per sub-model;
            ``attrs["steps_per_draw_by_model"]`` gives each sub-model's mean leapfrog
            steps per draw.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", random_seed=0).fit(customers)
        >>> sorted(set(model.diagnostics().index.get_level_values("model")))
        ['retention', 'spend']
        """
        check_is_fitted(self, "idata_")
        tables = {"retention": self.retention_model_.diagnostics(),
                  "spend": self.spend_model_.diagnostics()}
        table = pd.concat(tables, names=["model", "parameter"])
        by_model = {name: int(t.attrs["divergences"]) for name, t in tables.items()}
        attrs = {key: value for key, value in tables["retention"].attrs.items()
                 if key != "steps_per_draw"}
        table.attrs = {**attrs, "divergences": sum(by_model.values()),
                       "divergences_by_model": by_model,
                       "steps_per_draw_by_model": {name: t.attrs["steps_per_draw"]
                                                   for name, t in tables.items()}}
        return table


def combined_idata(retention: RetentionModel, spend: SpendModel) -> xr.DataTree:
    """``CLVModel.idata_``: both posteriors merged, each sampler's statistics apart."""
    children = {"posterior": xr.merge([retention.posterior_, spend.posterior_])}
    for name, sub in (("retention", retention), ("spend", spend)):
        if "sample_stats" in sub.idata_.children:
            children[f"sample_stats_{name}"] = sub.idata_["sample_stats"].to_dataset()
    return xr.DataTree.from_dict(children)
