"""The retention estimator: hierarchical discrete-time survival pooled across segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from arviz_stats.base import array_stats
from sklearn.utils.validation import check_is_fitted

from bayesclv._base import FitUnderWay, graph_building
from bayesclv._hierarchy import Profiles, profile_names
from bayesclv._params import Options
from bayesclv.data import (
    CustomerData,
    TrainingStatistics,
    is_dask_frame,
    risk_set_table,
    segment_codes,
    survival_groups,
)
from bayesclv.data.statistics import require_renewals
from bayesclv.estimator._common import (
    SegmentedModel,
    documented,
    draw_array,
    flatten_samples,
    period_of,
    positive_int,
    wanted_segments,
)
from bayesclv.estimator._retention_checks import RetentionChecks
from bayesclv.families import RETENTION_FAMILIES
from bayesclv.models.retention import (
    build_retention_model,
    code_loglik,
)
from bayesclv.priors import merge_priors
from bayesclv.valuation.forecast import (
    PREDICTIVE_DRAWS,
    TenureGroups,
    expected_flows,
    forecast_dataset,
    forecast_table,
    realised_active,
    simulation_plan,
    stable_keys,
)
from bayesclv.valuation.survival import customer_survival_sums

__all__ = ["RetentionModel"]


@documented
class RetentionModel(RetentionChecks, SegmentedModel):
    """Hierarchical discrete-time retention model, pooled across segments.

    Parameters
    ----------
    family : {"weibull", "geometric", "sbg", "bdw"}, default="weibull"
        ``weibull``: ``S(t) = exp(-(t/eta)^k)``; ``geometric``: ``(1 - theta)^t``
        (constant retention); ``sbg``: shifted-beta-geometric,
        ``B(alpha, beta + t) / B(alpha, beta)`` (customers differ, each with constant
        retention); ``bdw``: beta-discrete-Weibull, ``B(alpha, beta + t^c) / B(alpha, beta)``
        (customers differ *and* each one's churn risk changes with tenure).
    {common_parameters}

    Attributes
    ----------
    idata_ : xarray.DataTree
        Posterior (the family's natural parameters per segment, e.g. ``eta`` and ``k``,
        ``retention_psi``, population ``retention_mu``/``retention_sigma``/
        ``retention_chol``) and sampler statistics.
    segments_ : list of str
    priors_ : dict
        The resolved priors.
    risk_set_ : pandas.DataFrame
        Customers at risk and churning per segment and period (the likelihood of
        ``geometric`` and ``weibull``; the life table of every family).
    groups_ : pandas.DataFrame
        Unique ``(segment, entry, tenure, churned)`` rows with counts (the likelihood of
        ``sbg`` and ``bdw``; pointwise log-likelihood for model comparison).
    n_customers_in_ : int
    seed_ : int
    has_segment_column_ : bool
    period_ : str

    Notes
    -----
    The likelihood is computed on sufficient statistics (DESIGN §4.1): the risk-set
    binomial for ``geometric``/``weibull``, grouped rows weighted by their counts for
    ``sbg``/``bdw`` (the per-customer churn probability integrated out analytically), so
    its cost does not grow with the number of customers. Customers with ``entry > 0``
    (already ``entry`` periods old when observation began) are conditioned on surviving
    to ``entry``. With one segment the population spread has nothing to learn
    from; its posterior stays at the prior (a new segment then gets prior-wide intervals).

    Examples
    --------
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    >>> model.retention_curve(periods=12).dims
    ('chain', 'draw', 'segment', 'period')
    """

    _prefix = "retention"
    _requirements = {"require_spend": False}
    _saved_state = ("seed_", "period_", "has_segment_column_", "segments_", "n_customers_in_",
                    "priors_", "sampler_", "sampling_seconds_")
    _parameter_constraints = {"family": Options(tuple(RETENTION_FAMILIES))}

    def __init__(
        self, family: str = "weibull", *, method: str = "nuts", draws: int = 1000,
        tune: int = 1000, chains: int = 4, target_accept: float = 0.93, sampler: str = "auto",
        random_seed: int | None = None, priors: dict | None = None, progressbar: bool = False,
        covariates: list[str] | None = None,
        customer_col: str = "customer_id", segment_col: str | None = "segment",
        tenure_col: str = "tenure", churned_col: str = "churned", entry_col: str | None = "entry",
        n_periods_active_col: str = "n_periods_active", mean_spend_col: str = "mean_spend",
    ) -> None:
        self.family = family
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

    @property
    def family_(self) -> Any:
        """The retention family object."""
        return RETENTION_FAMILIES[self.family]

    def fit(self, X: pd.DataFrame, y: None = None, *, period: str | None = None) -> RetentionModel:
        """Fit the model to a customer table.

        Parameters
        ----------
        X : pandas.DataFrame or dask.dataframe.DataFrame
            Customer table with tenure, churned, optional entry and segment columns. A
            Dask table is reduced to its sufficient statistics on the workers
            (:func:`bayesclv.data.training_statistics`); customer covariates need a
            pandas table.
        y : None
            Ignored; present for scikit-learn compatibility.
        period : str, optional
            The period unit (e.g. ``"month"``); defaults to ``X.attrs["period"]``.

        Returns
        -------
        RetentionModel
            The fitted estimator.
        """
        if is_dask_frame(X):
            return self._fit_statistics(X, self._dask_statistics(X), period)
        return self._end_fit(self._begin_fit(X, period))

    def _begin_fit(self, X: pd.DataFrame, period: str | None) -> FitUnderWay:
        """Validate a pandas table, build the model and start fitting it (see ``_end_fit``)."""
        data, codes = self._start_fit(X, period)
        self.risk_set_ = risk_set_table(codes, data.entry, data.tenure, data.churned,
                                        len(self.segments_))
        self.groups_ = survival_groups(codes, data.entry, data.tenure, data.churned)
        model, self.priors_ = self._build_model(data, self.segments_,
                                                self._profiles(X, data, self.segments_))
        return self._start_sampling(model, self._monitored_vars(), "retention")

    def _model_from_statistics(self, statistics: TrainingStatistics) -> tuple[pm.Model, dict]:
        self.risk_set_, self.groups_ = statistics.risk_set, statistics.groups
        cells = (statistics.groups if self.family_.statistics == "groups"
                 else statistics.risk_set)
        return self._model(cells, np.array([statistics.max_tenure]), statistics.segments,
                           None)

    def _build_model(self, data: CustomerData, segments: list[str],
                     profiled: tuple[np.ndarray, Profiles | None]) -> tuple[pm.Model, dict]:
        """The PyMC model of ``data`` and its resolved priors."""
        profile, profiles = profiled
        if profiles is not None or self.family_.statistics == "groups":
            statistics = survival_groups(profile, data.entry, data.tenure, data.churned)
        else:
            statistics = risk_set_table(profile, data.entry, data.tenure, data.churned,
                                        len(segments))
        return self._model(statistics, data.tenure, segments, profiles)

    @graph_building()
    def _model(self, statistics: pd.DataFrame, tenure: np.ndarray, segments: list[str],
               profiles: Profiles | None) -> tuple[pm.Model, dict]:
        family = self.family_
        require_renewals(tenure)
        grouped = profiles is not None or family.statistics == "groups"
        priors, laplace = self._parametrised(
            merge_priors(family.default_priors(tenure), self.priors),
            lambda psi: code_loglik(family, psi, statistics, grouped), segments,
            profiles)
        model = build_retention_model(family, statistics, segments, priors, profiles, laplace)
        return model, priors

    def retention_curve(self, periods: int = 24, segments: Sequence[str] | None = None
                        ) -> xr.DataArray:
        """Posterior draws of ``S(t)``, ``t = 0..periods``, per segment.

        Parameters
        ----------
        periods : int, default=24
        segments : sequence of str, optional
            Defaults to the fitted segments; unseen ones are drawn from the population.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, segment, period).
        """
        check_is_fitted(self, "idata_")
        segments = list(self.segments_ if segments is None else segments)
        psi = self._draws_for(segments)
        t = np.arange(int(periods) + 1)
        survival = self.family_.survival(t, psi[:, :, :, None, :])
        return draw_array(survival, self.posterior_, ("segment", "period"),
                          {"segment": segments, "period": t}, name="survival",
                          attrs={"period": self.period_})

    def prior_retention_curve(self, X: pd.DataFrame, periods: int = 24, *,
                              draws: int = 500) -> xr.DataArray:
        """Prior draws of ``S(t)``, ``t = 0..periods``, per segment of ``X``; no fit needed.

        The model is built on ``X`` with this estimator's family and priors and its
        parameters drawn from the prior (the likelihood is ignored), to check before
        fitting that the priors allow plausible retention curves.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (sets the segments and the default priors' scale).
        periods : int, default=24
        draws : int, default=500

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, segment, period), ``attrs["quantity"] == "prior"``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> curve = bayesclv.RetentionModel("sbg", random_seed=0).prior_retention_curve(
        ...     customers, periods=12, draws=100)
        >>> curve.sizes["draw"], float(curve.isel(period=0).min())
        (100, 1.0)
        """
        return self.sample_prior_predictive(X, periods=periods, draws=draws)["survival"]

    def sample_prior_predictive(self, X: pd.DataFrame, *, periods: int = 24,
                                draws: int = 500) -> xr.Dataset:
        """What the priors imply before any fitting: retention curves and churn counts.

        The model is built on ``X`` with this estimator's family and priors, and its
        parameters are drawn from the prior (the likelihood ignored). For each draw, the
        survival curve of each segment, and the customers of ``X`` at risk in each period
        simulated to churn (``Binomial(at risk, h(t))``): compare those with the observed
        churn counts (:meth:`life_table`) to see whether the priors allow data like yours.
        With covariates, curves and hazards are those of a customer at the covariates'
        training means and mix of levels.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (sets the segments, the risk sets and the default priors'
            scale).
        periods : int, default=24
            Last period of the survival curves.
        draws : int, default=500

        Returns
        -------
        xarray.Dataset
            ``survival`` (chain, draw, segment, period ``0..periods``) and ``churned``
            (chain, draw, segment, period ``1..`` the longest tenure; 0 where nobody is at
            risk), ``attrs["quantity"] == "prior"``.

        Raises
        ------
        ValueError
            If ``periods`` or ``draws`` is not a positive integer.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> prior = bayesclv.RetentionModel(random_seed=0).sample_prior_predictive(
        ...     customers, periods=12, draws=50)
        >>> sorted(prior.data_vars), prior["survival"].sizes["draw"]
        (['churned', 'survival'], 50)
        """
        return self._prior_predictive(X, *self._prior_psi(X, periods, draws), periods)

    def _prior_predictive(self, X: pd.DataFrame, data: CustomerData, segments: list[str],
                          psi: xr.DataArray, periods: int) -> xr.Dataset:
        t = np.arange(int(periods) + 1)
        family = self.family_
        survival = family.survival(t, psi.to_numpy()[:, :, :, None, :])
        codes = segment_codes(data.segment, segments)
        risk_set = risk_set_table(codes, data.entry, data.tenure, data.churned, len(segments))
        last = int(data.tenure.max())
        at_risk = np.zeros((len(segments), last), dtype=np.int64)
        at_risk[risk_set["segment"], risk_set["period"] - 1] = risk_set["at_risk"]
        periods_observed = np.arange(1, last + 1, dtype=np.float64)
        hazard = -np.expm1(-family.hazard_increment(
            periods_observed, psi.to_numpy()[:, :, :, None, :]))
        churned = self._rng(3).binomial(at_risk, hazard)
        attrs = {"period": period_of(X, None), "quantity": "prior"}
        return xr.Dataset(
            {
                "survival": draw_array(survival, psi, ("segment", "period"),
                                       {"segment": segments, "period": t}, attrs=attrs),
                "churned": draw_array(churned, psi, ("segment", "churn_period"),
                                      {"segment": segments, "churn_period":
                                       periods_observed.astype(np.int64)}, attrs=attrs),
            },
            attrs=attrs,
        )

    def _pair_sums(self, X: pd.DataFrame, data: CustomerData, horizon: int | None,
                   discount_rate: float, segments: list[str],
                   profiled: tuple[np.ndarray, Profiles | None] | None = None,
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Residual sums per unique (profile, tenure) pair, and each customer's pair.

        Without covariates a profile is a segment. ``profiled``: the output of
        :meth:`_profiles` if the caller has it already.
        """
        profile, profiles = profiled or self._profiles(X, data, segments)
        return customer_survival_sums(
            self.family_, flatten_samples(self._profile_draws(segments, profiles)), profile,
            data.tenure, horizon, discount_rate)

    def predict(self, X: pd.DataFrame, *, horizon: int | None = None,
                discount_rate: float = 0.0, hdi_prob: float = 0.9) -> pd.DataFrame:
        """Retention summaries per customer, one row per input row, in input order.

        Returns
        -------
        pandas.DataFrame
            ``retention_next`` (probability of staying through the next period) with HDI
            bounds, ``expected_residual_lifetime`` (further periods active within the
            horizon) and ``discounted_residual_lifetime``. Churned customers get 0.
        """
        check_is_fitted(self, "idata_")
        data = self._validated(X)
        sums, pair = self._pair_sums(X, data, horizon, discount_rate, wanted_segments(data))
        active = ~data.churned
        bounds = array_stats.hdi(sums["retention_next"].T, hdi_prob, axis=-1)[pair]
        out = pd.DataFrame(index=data.index)
        out[self.customer_col] = data.customer_ids.to_numpy()
        out["retention_next"] = np.where(active, sums["retention_next"].mean(0)[pair], 0.0)
        out["retention_next_hdi_low"] = np.where(active, bounds[:, 0], 0.0)
        out["retention_next_hdi_high"] = np.where(active, bounds[:, 1], 0.0)
        out["expected_residual_lifetime"] = np.where(active, sums["lifetime"].mean(0)[pair], 0.0)
        out["discounted_residual_lifetime"] = np.where(
            active, sums["discounted"].mean(0)[pair], 0.0
        )
        out.attrs["period"] = self.period_
        return out

    def forecast_active(self, X: pd.DataFrame, periods: int, *,
                        predictive_draws: int = PREDICTIVE_DRAWS, hdi_prob: float = 0.9,
                        return_draws: bool = False) -> pd.DataFrame | xr.Dataset:
        """Active customers per segment and future period: expected, and realised.

        For each future period ``j = 1..periods``: the posterior of the expected number
        of the table's active customers still customers in period ``tau + j`` (the sum
        over customers of ``S(tau + j) / S(tau)`` within each draw), and the predictive
        interval of the realised number, which also simulates who churns when.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (churned customers count for nothing).
        periods : int
        predictive_draws : int, default=1000
            Simulations of the realised counts (posterior draws evenly thinned).
        hdi_prob : float, default=0.9
        return_draws : bool, default=False
            Return the draws: ``active`` (chain, draw, segment, period) and
            ``realised_active`` (simulation, segment, period).

        Returns
        -------
        pandas.DataFrame or xarray.Dataset
            One row per segment (in order of first appearance, then ``"all"``) and
            period: ``segment``, ``period``, ``active_mean``, ``active_hdi_low``,
            ``active_hdi_high``, ``active_pi_low``, ``active_pi_high``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
        >>> table = model.forecast_active(customers, periods=6, predictive_draws=100)
        >>> table.columns.tolist()[:4]
        ['segment', 'period', 'active_mean', 'active_hdi_low']
        """
        check_is_fitted(self, "idata_")
        periods = positive_int(periods, "periods")
        predictive_draws = positive_int(predictive_draws, "predictive_draws")
        data = self._validated(X)
        segments = wanted_segments(data)
        profile, profiles = self._profiles(X, data, segments)
        psi = flatten_samples(self._profile_draws(segments, profiles))
        groups = TenureGroups.of(profile, data.tenure, ~data.churned)
        profile_segment = None if profiles is None else np.asarray(profiles.segment)
        active, _ = expected_flows(self.family_, psi, groups, periods, len(segments),
                                   profile_segment)
        chosen, n_paths = simulation_plan(len(psi), predictive_draws)
        seed = self.seed_ if hasattr(self, "seed_") else self._resolve_seed()
        simulated = realised_active(self.family_, psi[chosen], groups, periods, n_paths,
                                    seed, len(segments), profile_segment,
                                    stable_keys(profile_names(segments, profiles)))
        draws = forecast_dataset({"active": active}, {"active": simulated}, segments,
                                 self.posterior_["chain"].to_numpy(),
                                 {"period": self.period_, "periods": periods,
                                  "quantity": "active customers per future period"})
        if return_draws:
            return draws
        return forecast_table(draws, float(hdi_prob), ("active",))

    def _segments(self, segments: str | Sequence[str] | None) -> list[str]:
        if segments is None:
            return list(self.segments_)
        if isinstance(segments, str):
            return [segments]
        return list(segments)

    def _rng(self, stream: int) -> np.random.Generator:
        seed = self.seed_ if hasattr(self, "seed_") else self._resolve_seed()
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))

    def expected_retention_rate(self, periods: int = 24,
                                segments: str | Sequence[str] | None = None) -> xr.DataArray:
        """Posterior draws of the retention rate ``r(t) = S(t) / S(t-1)``, ``t = 1..periods``.

        ``r(t)`` is the share of the segment's customers still active after ``t - 1``
        periods who stay through period ``t``. Under ``geometric`` it is flat; under the
        other families it changes with tenure.

        Parameters
        ----------
        periods : int, default=24
        segments : str or sequence of str, optional
            Defaults to the fitted segments; unseen ones are drawn from the population.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, segment, period).

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.RetentionModel("sbg", method="map", random_seed=0).fit(customers)
        >>> rate = model.expected_retention_rate(periods=6)
        >>> bool((rate.diff("period") >= 0).all())  # sBG: rates rise with tenure
        True
        """
        check_is_fitted(self, "idata_")
        segments = self._segments(segments)
        psi = self._draws_for(segments)
        t = np.arange(1, int(periods) + 1, dtype=np.float64)
        rate = self.family_.retention_rate(t, psi[:, :, :, None, :])
        return draw_array(rate, self.posterior_, ("segment", "period"),
                          {"segment": segments, "period": t.astype(np.int64)},
                          name="retention_rate", attrs={"period": self.period_})

    def expected_residual_lifetime(
        self, X: pd.DataFrame, *, discount_rate: float = 0.0, horizon: int | None = None,
        hdi_prob: float = 0.9,
    ) -> pd.DataFrame:
        """Discounted expected residual lifetime of each customer, given their tenure.

        ``sum_{j=1}^{H} S(tau + j) / S(tau) / (1 + d)^j`` for an active customer who has
        completed ``tau`` periods: the number of further periods the customer is expected
        to stay, each discounted. Multiplied by a per-period margin it is the customer's
        expected residual value, so under duration dependence a long-tenured customer is
        worth more than a new one with the same spend. Churned customers get 0.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (tenure, churned, segment).
        discount_rate : float, default=0.0
            Per period.
        horizon : int, optional
            Future periods counted; ``None`` until the remaining survival is negligible.
        hdi_prob : float, default=0.9

        Returns
        -------
        pandas.DataFrame
            One row per input row, in input order: the customer id,
            ``residual_lifetime_mean``, ``residual_lifetime_sd``,
            ``residual_lifetime_hdi_low``, ``residual_lifetime_hdi_high``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
        >>> lifetime = model.expected_residual_lifetime(customers, discount_rate=0.01)
        >>> len(lifetime) == len(customers)
        True
        """
        check_is_fitted(self, "idata_")
        if not discount_rate >= 0:
            raise ValueError(f"discount_rate must be >= 0; got {discount_rate!r}.")
        data = self._validated(X)
        sums, pair = self._pair_sums(X, data, horizon, float(discount_rate),
                                     wanted_segments(data))
        discounted = sums["discounted"]
        active = ~data.churned
        bounds = array_stats.hdi(discounted.T, hdi_prob, axis=-1)[pair]
        out = pd.DataFrame(index=data.index)
        out[self.customer_col] = data.customer_ids.to_numpy()
        out["residual_lifetime_mean"] = np.where(active, discounted.mean(0)[pair], 0.0)
        out["residual_lifetime_sd"] = np.where(active, discounted.std(0)[pair], 0.0)
        out["residual_lifetime_hdi_low"] = np.where(active, bounds[:, 0], 0.0)
        out["residual_lifetime_hdi_high"] = np.where(active, bounds[:, 1], 0.0)
        out.attrs["period"] = self.period_
        return out
