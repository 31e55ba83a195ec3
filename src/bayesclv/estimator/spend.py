"""The spend estimator: hierarchical revenue per active period, pooled across segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesclv._base import FitUnderWay, graph_building
from bayesclv._hierarchy import Profiles, profile_names
from bayesclv._params import Options
from bayesclv._streams import customer_keys
from bayesclv.data import CustomerData, TrainingStatistics, is_dask_frame
from bayesclv.data.statistics import median_spend
from bayesclv.estimator._common import (
    SegmentedModel,
    documented,
    draw_array,
    flatten_samples,
    period_of,
    wanted_segments,
)
from bayesclv.exceptions import DataValidationError
from bayesclv.families import SPEND_FAMILIES
from bayesclv.models.spend import build_spend_model
from bayesclv.priors import merge_priors
from bayesclv.valuation.customers import spend_summary

__all__ = ["SpendModel"]


@documented
class SpendModel(SegmentedModel):
    """Hierarchical model of revenue per active period, pooled across segments.

    Parameters
    ----------
    family : {"gamma_gamma", "lognormal"}, default="gamma_gamma"
        ``"gamma_gamma"`` (Fader, Hardie & Lee) reads ``n_periods_active`` and
        ``mean_spend``; ``"lognormal"`` (log revenue normal, customer effects pooled)
        also needs ``mean_log_spend`` and, to tell within- from between-customer spread,
        ``sd_log_spend`` (:func:`bayesclv.data.summarize` with ``log_spend=True`` writes
        both). See :mod:`bayesclv.models.spend`.
    {common_parameters}

    Attributes
    ----------
    idata_ : xarray.DataTree
        Posterior (the family's natural parameters per segment, e.g. ``p``, ``q``,
        ``gamma``; ``spend_psi``; population ``spend_mu``/``spend_sigma``/``spend_chol``)
        and sampler statistics.
    segments_ : list of str
    priors_ : dict
    n_customers_in_ : int
    seed_ : int
    has_segment_column_ : bool
    period_ : str

    Examples
    --------
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> spend = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    >>> list(spend.predict(customers).columns)[:2]
    ['customer_id', 'expected_spend']
    """

    _prefix = "spend"
    _requirements = {"require_retention": False}
    _saved_state = ("seed_", "period_", "has_segment_column_", "segments_", "n_customers_in_",
                    "priors_", "sampler_", "sampling_seconds_")
    _parameter_constraints = {"family": Options(tuple(SPEND_FAMILIES))}

    def __init__(
        self, family: str = "gamma_gamma", *, method: str = "nuts", draws: int = 1000,
        tune: int = 1000, chains: int = 4, target_accept: float = 0.9, sampler: str = "auto",
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
        """The spend family object."""
        return SPEND_FAMILIES[self.family]

    def fit(self, X: pd.DataFrame, y: None = None, *, period: str | None = None) -> SpendModel:
        """Fit the model to a customer table with ``n_periods_active`` and ``mean_spend``.

        Parameters
        ----------
        X : pandas.DataFrame or dask.dataframe.DataFrame
            A Dask table is reduced to its sufficient statistics on the workers
            (:func:`bayesclv.data.training_statistics`); customer covariates need a
            pandas table.
        y : None
            Ignored.
        period : str, optional
            The period unit; defaults to ``X.attrs["period"]``.

        Returns
        -------
        SpendModel
            The fitted estimator.
        """
        if is_dask_frame(X):
            return self._fit_statistics(X, self._dask_statistics(X), period)
        return self._end_fit(self._begin_fit(X, period))

    def _begin_fit(self, X: pd.DataFrame, period: str | None) -> FitUnderWay:
        """Validate a pandas table, build the model and start fitting it (see ``_end_fit``)."""
        return self._start_sampling(self._prepared_model(X, period), self._monitored_vars(),
                                    "spend")

    def _prepared_model(self, X: pd.DataFrame, period: str | None) -> pm.Model:
        """Validate a pandas table, set the fitted state and build the model to fit."""
        stats, spent, profiles = self._prepared_inputs(X, period)
        model, self.priors_ = self._model(stats, spent, self.segments_, profiles)
        return model

    def _prepared_inputs(self, X: pd.DataFrame, period: str | None
                         ) -> tuple[dict, np.ndarray, Profiles | None]:
        """Validate a pandas table, set the fitted state and compute what :meth:`_model` takes.

        Returns the statistics, the spenders' mean spend and the covariate profiles.
        """
        data, _ = self._start_fit(X, period)
        self.observed_ = self.family_.observed(data)
        profiled = self._profiles(X, data, self.segments_)
        stats, spent = self._model_inputs(data, self.segments_, profiled)
        return stats, spent, profiled[1]

    def _model_from_statistics(self, statistics: TrainingStatistics) -> tuple[pm.Model, dict]:
        self.observed_ = self.family_.observed(
            {name: True for name in statistics.log_spend_columns})
        return self._model(self.family_.training_statistics(statistics),
                           np.array([statistics.median_spend]),
                           statistics.segments, None)

    def _build_model(self, data: CustomerData, segments: list[str],
                     profiled: tuple[np.ndarray, Profiles | None]) -> tuple[pm.Model, dict]:
        """The PyMC model of ``data`` and its resolved priors."""
        stats, spent = self._model_inputs(data, segments, profiled)
        return self._model(stats, spent, segments, profiled[1])

    def _model_inputs(self, data: CustomerData, segments: list[str],
                      profiled: tuple[np.ndarray, Profiles | None]) -> tuple[dict, np.ndarray]:
        """What :meth:`_model` takes from the table: the statistics and the spenders' spend."""
        profile, profiles = profiled
        n_profiles = len(segments) if profiles is None else len(profiles.segment)
        spent = data.mean_spend[data.spend_observed]
        median_spend(spent)  # refuses a table in which no customer has spend
        return self.family_.statistics(profile, data, n_profiles), spent

    @graph_building()
    def _model(self, stats: dict, mean_spend: np.ndarray, segments: list[str],
               profiles: Profiles | None) -> tuple[pm.Model, dict]:
        family = self.family_
        priors, laplace = self._parametrised(
            merge_priors(family.default_priors(mean_spend), self.priors),
            lambda psi: family.code_loglik(psi, stats), segments, profiles)
        return build_spend_model(family, stats, segments, priors, profiles, laplace), priors

    def sample_prior_predictive(self, X: pd.DataFrame, *, draws: int = 500) -> xr.Dataset:
        """What the priors imply before any fitting: each segment's mean spend per period.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table (sets the segments and the default priors' scale).
        draws : int, default=500

        Returns
        -------
        xarray.Dataset
            ``mean_spend`` (chain, draw, segment): ``p gamma / (q - 1)``, the mean
            per-period spend of a customer of the segment, under prior draws;
            ``attrs["quantity"] == "prior"``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> prior = bayesclv.SpendModel(random_seed=0).sample_prior_predictive(
        ...     customers, draws=50)
        >>> prior["mean_spend"].dims
        ('chain', 'draw', 'segment')
        """
        params = self.sample_prior_parameters(X, draws=draws)
        mean_spend = self.family_.segment_mean_spend(params)
        return xr.Dataset(
            {"mean_spend": mean_spend},
            attrs={"period": period_of(X, None), "quantity": "prior"},
        )

    def segment_params(self, segments: Sequence[str], profiles: Profiles | None = None
                       ) -> dict[str, np.ndarray]:
        """Natural parameters per sample (chain * draw) and segment, unseen ones included.

        With ``profiles`` (customer covariates), per sample and profile instead.
        """
        check_is_fitted(self, "idata_")
        return self.family_.natural(flatten_samples(self._profile_draws(list(segments),
                                                                        profiles)))

    def predict(self, X: pd.DataFrame, *, hdi_prob: float = 0.9) -> pd.DataFrame:
        """Each customer's mean per-period spend: posterior mean and HDI.

        The draws are of the customer's mean spend from its conditional posterior given
        each sample (gamma-gamma: ``p / nu_i``), so the interval covers what is uncertain
        about the customer as well as the segment.

        Returns
        -------
        pandas.DataFrame
            ``expected_spend``, ``expected_spend_hdi_low``, ``expected_spend_hdi_high``;
            one row per input row, in input order, with the input index.
        """
        check_is_fitted(self, "idata_")
        data = self._validated(X)
        segments = wanted_segments(data)
        profile, profiles = self._profiles(X, data, segments)
        family = self.family_
        inputs = family.customer_inputs(data)
        keys = customer_keys(self.seed_, np.asarray(profile_names(segments, profiles),
                                                    dtype=str)[profile],
                             np.zeros(data.n_customers, dtype=np.int64), inputs)
        summary = spend_summary(family, self.segment_params(segments, profiles), profile,
                                inputs, keys, hdi_prob)
        out = pd.DataFrame(index=data.index)
        out[self.customer_col] = data.customer_ids.to_numpy()
        out["expected_spend"] = summary.mean
        out["expected_spend_hdi_low"] = summary.hdi_low
        out["expected_spend_hdi_high"] = summary.hdi_high
        out.attrs["period"] = self.period_
        return out

    def observed(self, X: pd.DataFrame | None = None) -> str:
        """What the fitted likelihood (and :meth:`pointwise_loglik`) is the density of.

        Set by the columns of the table the model was fitted on (see
        ``family.observed``); ``X`` is ignored.
        """
        check_is_fitted(self, "idata_")
        # Files saved before the log-spend columns existed were fitted on mean spend.
        return getattr(self, "observed_", None) or "mean revenue per active period"

    def pointwise_loglik(self, X: pd.DataFrame) -> tuple[xr.DataArray, np.ndarray]:
        """Log-likelihood per posterior draw of each customer's spend data.

        One row per customer with spend data (continuous, so no two rows are merged;
        customers with no active period have no spend data and no row); memory grows as
        draws x customers, as ArviZ's LOO needs.

        Returns
        -------
        loglik : xarray.DataArray
            Dims (chain, draw, row).
        counts : numpy.ndarray of int
            Ones: customers per row.

        Raises
        ------
        DataValidationError
            If ``X`` has segments the model was not fitted on.
        """
        data = self._training_like(X)
        table, fitted = self.family_.observed(data), self.observed()
        if table != fitted:
            raise DataValidationError(
                f"This model was fitted on the density of {fitted}, but this table's "
                f"columns give the density of {table}: the posterior was not conditioned on "
                "it. Pass the table the model was fitted on."
            )
        profile, profiles = self._profiles(X, data, self.segments_)
        psi = self._profile_draws(self.segments_, profiles)
        spent = data.spend_observed
        columns = {name: getattr(data, name)[spent] for name in (
            "n_periods_active", "mean_spend", "mean_log_spend", "sd_log_spend")
            if getattr(data, name) is not None}
        values = self.family_.customer_loglik(np.asarray(psi)[:, :, profile[spent], :],
                                              columns)
        loglik = draw_array(values, self.posterior_, ("row",), name="spend")
        return loglik, np.ones(int(spent.sum()), dtype=np.int64)
