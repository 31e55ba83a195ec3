"""Shared machinery of the estimators: fitted-state helpers and common docstrings."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesclv._base import BayesianEstimator
from bayesclv._hierarchy import segment_psi_draws
from bayesclv.data import CustomerData, segment_codes, validate_customers
from bayesclv.diagnostics import diagnostics_table
from bayesclv.exceptions import DataValidationError

_DEFAULT_PERIOD = "period"


def period_of(customers: pd.DataFrame, period: str | None) -> str:
    if period is not None:
        return str(period)
    return str(customers.attrs.get("period", _DEFAULT_PERIOD))


def flatten_samples(array: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (chain * draw, ...)."""
    return array.reshape((-1,) + array.shape[2:])


def wanted_segments(data: CustomerData) -> list[str]:
    return list(pd.unique(data.segment))


class SegmentedModel(BayesianEstimator):
    """Shared fitted-state helpers of the per-segment models."""

    _prefix: str
    #: Keyword arguments of :func:`validate_customers` for this model's columns.
    _requirements: dict[str, bool]

    def _validated(self, X: pd.DataFrame) -> CustomerData:
        """Validate a table to predict for, after checking it has the segment column."""
        self._check_segment_column(X)
        return validate_customers(X, self._columns(), **self._requirements)

    def _start_fit(self, X: pd.DataFrame, period: str | None) -> tuple[CustomerData, np.ndarray]:
        """The steps every ``fit`` begins with; returns the data and segment codes."""
        self._validate_params()
        self._remember_training_table(X)
        data = validate_customers(X, self._columns(), **self._requirements)
        self.seed_ = self._resolve_seed()
        self.period_ = period_of(X, period)
        self.has_segment_column_ = self.segment_col is not None and self.segment_col in X.columns
        self.segments_ = sorted(set(data.segment))
        self._note_single_segment(stacklevel=4)
        self.n_customers_in_ = data.n_customers
        return data, segment_codes(data.segment, self.segments_)

    def _check_segment_column(self, customers: pd.DataFrame) -> None:
        if self.has_segment_column_ and self.segment_col not in customers.columns:
            raise DataValidationError(
                f"Column {self.segment_col!r} missing: the model was fitted with segments, "
                "so customers to predict must say which segment they belong to."
            )

    def _note_single_segment(self, stacklevel: int = 3) -> None:
        if len(self.segments_) == 1:
            warnings.warn(
                f"Only one segment ({self.segments_[0]!r}): the spread of segments around the "
                "population has nothing to learn from, so its posterior is its prior, and a "
                "segment unseen in training gets prior-wide intervals.",
                UserWarning, stacklevel=stacklevel,
            )

    def _draws_for(self, segments: Sequence[str]) -> np.ndarray:
        """``psi`` draws (chain, draw, segment, coord); unseen segments from the population."""
        return segment_psi_draws(
            self.idata_["posterior"].to_dataset(), self._prefix, self.segments_, segments,
            self.seed_,
        )

    @property
    def posterior_(self) -> xr.Dataset:
        """The posterior as an :class:`xarray.Dataset` (chain, draw, ...)."""
        check_is_fitted(self, "idata_")
        return self.idata_["posterior"].to_dataset()

    def _monitored_vars(self) -> list[str]:
        """The parameters whose convergence is checked and reported."""
        return [f"{self._prefix}_mu", f"{self._prefix}_sigma", *self.family_.param_names]

    def diagnostics(self) -> pd.DataFrame:
        """Convergence diagnostics of the fitted parameters (ArviZ summary).

        Returns
        -------
        pandas.DataFrame
            One row per scalar parameter (population ``mu``/``sigma`` per coordinate, the
            family's natural parameters per segment, e.g. ``eta[organic]``): ``mean``,
            ``sd``, interval bounds, ``ess_bulk``, ``ess_tail``, ``r_hat``, ``mcse_mean``,
            ``mcse_sd``. ``attrs["divergences"]`` counts divergent transitions. R-hat
            above ``attrs["rhat_max"]`` or bulk ESS below ``attrs["ess_min"]`` means the
            intervals are not yet trustworthy; a MAP fit has a single draw, so its
            ``sd``, ESS and R-hat are NaN.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
        >>> table = model.diagnostics()
        >>> "r_hat" in table.columns and table.attrs["divergences"] == 0
        True
        """
        check_is_fitted(self, "idata_")
        return diagnostics_table(self.idata_, self._monitored_vars())


_COMMON_DOC = """method : {"nuts", "map"}, default="nuts"
        NUTS sampling, or a maximum a posteriori point (one "draw"; fast, no parameter
        uncertainty).
    draws, tune, chains : int, default=1000, 1000, 4
    target_accept : float, default=0.9
    sampler : {"pymc", "nutpie"}, default="pymc"
        NUTS implementation; nutpie needs the ``fast`` extra.
    random_seed : int or None, default=None
        Seed of every random step (sampling and valuation draws).
    priors : dict or None, default=None
        Overrides of the family's default priors (see :mod:`bayesclv.priors`).
    progressbar : bool, default=False
    customer_col, segment_col, tenure_col, churned_col, entry_col, n_periods_active_col, \
mean_spend_col : str
        Column names of the customer table (DESIGN §3).
"""


def documented(cls: type) -> type:
    """Insert the parameters every estimator shares into the class docstring."""
    cls.__doc__ = cls.__doc__.replace("{common_parameters}", _COMMON_DOC.rstrip())
    return cls


