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
from bayesclv.data import CustomerData
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

    def _check_segment_column(self, customers: pd.DataFrame) -> None:
        if self.has_segment_column_ and self.segment_col not in customers.columns:
            raise DataValidationError(
                f"Column {self.segment_col!r} missing: the model was fitted with segments, "
                "so customers to predict must say which segment they belong to."
            )

    def _note_single_segment(self) -> None:
        if len(self.segments_) == 1:
            warnings.warn(
                f"Only one segment ({self.segments_[0]!r}): the spread of segments around the "
                "population has nothing to learn from, so its posterior is its prior, and a "
                "segment unseen in training gets prior-wide intervals.",
                UserWarning, stacklevel=3,
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


