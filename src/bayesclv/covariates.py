"""Customer covariates: the model, validation, encoding and standardisation.

**The model.** With ``covariates=[...]`` a customer's parameters are its segment's with one
coordinate shifted by a linear predictor ``eta_i = coef . x_i`` of its standardised
covariates ``x_i``; the coefficients are shared by every segment (pooled), one set for
retention and one for spend::

    weibull      log eta_i   = log eta_s + eta_i        (lifetime scale times exp(eta_i))
    sbg, bdw     log beta_i  = log beta_s + eta_i       (see below)
    geometric    logit theta_i = logit theta_s - eta_i  (churn odds divided by exp(eta_i))
    gamma_gamma  log gamma_i = log gamma_s + eta_i      (mean spend times exp(eta_i))

so a positive retention coefficient always means longer lifetimes. For the beta-mixture
families the shift is on ``log beta``: under the sBG the expected lifetime is
``1 + beta / (alpha - 1)``, so ``exp(eta_i)`` multiplies the part of it beyond the first
period, and when churn probabilities are small (``alpha << beta``) it divides the mean
churn probability ``alpha / (alpha + beta)`` by nearly ``exp(eta_i)``: the log of the Beta
mean moves by about ``-eta_i``. Shifting the log of the Beta mean itself would let it
exceed 1; shifting ``log beta`` keeps every customer's parameters valid.

Every design column is centred on its training mean — indicators too, so a level's
column is ``1{level} - share of the level in training`` — which keeps the segment
parameters and the coefficients nearly uncorrelated in the posterior (an uncentred
indicator makes them trade off, and the sampler crawls along that ridge). The segment
parameters are therefore those of a customer at the training mean of each numeric
covariate and at the training mix of each categorical one; segment-level outputs
(retention curves, new-customer values, prior checks) describe that average customer.
Centring does not change what a coefficient means: the effect of a level against the
baseline is still the difference of their design values, 1, times the coefficient.

**The likelihood stays on sufficient statistics.** Customers with the same segment and the
same covariate values form a *profile*; retention rows are grouped by
``(profile, entry, tenure, churned)`` and spend by profile, so categorical covariates add
little, while a continuous covariate makes nearly every customer its own profile (one
likelihood term per customer, as without aggregation). Valuation works per profile too:
its memory grows as distinct ``(profile, tenure)`` pairs times posterior draws.

**Encoding.** A covariate column is either numeric (centred and scaled by its training mean
and standard deviation) or categorical (strings, booleans or a pandas ``category``;
dummy-coded against its first level in sorted order, the *baseline*). The encoder remembers
what it learnt from the training table, so the table to predict for is encoded the same
way (with the training means and shares), and it is stored as plain JSON in saved
models. The coefficients' prior
(``priors["coef"]``, Normal(0, 1) by default) is on this standardised scale;
:meth:`bayesclv.RetentionModel.covariate_effects` reports them per unit of each covariate.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import _describe_rows, _fail, _numeric, _reject_mixed_types
from bayesclv.exceptions import CovariateRangeWarning, DataValidationError

__all__ = ["CovariateEncoder", "covariate_profiles"]


def _is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _labels(series: pd.Series, column: str, ids: pd.Index) -> np.ndarray:
    """A categorical column as strings, rejecting missing values and mixed types."""
    missing = series.isna().to_numpy()
    if missing.any():
        _fail(column, ids, missing, "missing (NaN) covariate values",
              "Fill them explicitly (e.g. an 'unknown' level); nothing is dropped silently.")
    _reject_mixed_types(series, column, ids)
    return series.astype(str).to_numpy(dtype=object)


@dataclass
class CovariateEncoder:
    """Turns covariate columns into a standardised design matrix.

    Build one with :meth:`fit`; :meth:`transform` then encodes any table with the same
    columns. Numeric columns become ``(x - mean) / sd`` with the training mean and
    standard deviation; a categorical column with levels ``l_0 < l_1 < ...`` becomes one
    indicator per level after the first (the baseline), centred on the level's training
    share (``1{level} - share``). A coefficient therefore is
    the effect of one training standard deviation (numeric) or of the level against the
    baseline (categorical); :meth:`per_unit` turns numeric ones into effects per unit.

    Attributes
    ----------
    columns : list of str
        The covariate columns, in the order given.
    numeric : dict
        ``{column: {"mean", "sd", "min", "max"}}`` from the training table.
    levels : dict
        ``{column: [level, ...]}`` for categorical columns, baseline first.
    shares : dict
        ``{column: [share, ...]}``: the training share of each level after the baseline
        (what its indicator is centred on).
    """

    columns: list[str]
    numeric: dict[str, dict[str, float]] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)
    shares: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, customers: pd.DataFrame, columns: Sequence[str], ids: pd.Index,
            reserved: Sequence[str] = ()) -> CovariateEncoder:
        """Learn the encoding from the training table.

        Parameters
        ----------
        customers : pandas.DataFrame
        columns : sequence of str
            Covariate column names.
        ids : pandas.Index
            Customer ids (for error messages).
        reserved : sequence of str
            Columns the model already uses (id, segment, tenure, ...), which cannot also
            be covariates.

        Raises
        ------
        DataValidationError
            For a missing column, a reserved one, missing or non-finite values, mixed
            types, or a column with a single value (nothing to estimate).
        """
        clash = [c for c in columns if c in set(reserved)]
        if clash:
            raise DataValidationError(
                f"Covariate column(s) {clash} are already used by the model (id, segment, "
                "tenure, churn, entry or spend columns); a covariate must be another column."
            )
        _require(customers, columns)
        encoder = cls(columns=list(columns))
        for column in columns:
            series = customers[column]
            if _is_categorical(series):
                labels = _labels(series, column, ids)
                found = sorted(set(labels))
                if len(found) < 2:
                    raise DataValidationError(
                        f"Column {column!r}: every customer has the same value {found[0]!r}; a "
                        "covariate needs at least two values to have an effect to estimate."
                    )
                encoder.levels[column] = found
                encoder.shares[column] = [float(np.mean(labels == level))
                                          for level in found[1:]]
            else:
                values = _numeric(customers, column, ids)
                sd = float(values.std())
                if not sd > 0:
                    raise DataValidationError(
                        f"Column {column!r}: every customer has the same value {values[0]!r}; "
                        "a covariate needs at least two values to have an effect to estimate."
                    )
                encoder.numeric[column] = {"mean": float(values.mean()), "sd": sd,
                                           "min": float(values.min()),
                                           "max": float(values.max())}
        return encoder

    @property
    def feature_names(self) -> list[str]:
        """One name per design column: the column, or ``column[level]`` for indicators."""
        names: list[str] = []
        for column in self.columns:
            if column in self.numeric:
                names.append(column)
            else:
                names.extend(f"{column}[{level}]" for level in self.levels[column][1:])
        return names

    def transform(self, customers: pd.DataFrame, ids: pd.Index) -> np.ndarray:
        """The design matrix of a table, shape ``(customers, len(feature_names))``.

        Warns
        -----
        CovariateRangeWarning
            For numeric values outside the training range: the prediction extrapolates the
            log-linear effect, which the data did not check.

        Raises
        ------
        DataValidationError
            For a missing column, missing or non-finite values, mixed types, or a
            categorical level the model was not fitted on.
        """
        _require(customers, self.columns)
        blocks = []
        for column in self.columns:
            series = customers[column]
            if column in self.numeric:
                if _is_categorical(series):
                    _fail(column, ids, np.ones(len(series), bool),
                          f"non-numeric values (dtype {series.dtype}) for a covariate fitted "
                          "as numeric", "Convert the column to numbers.")
                values = _numeric(customers, column, ids)
                stats = self.numeric[column]
                outside = (values < stats["min"]) | (values > stats["max"])
                if outside.any():
                    warnings.warn(
                        f"Column {column!r}: {_describe_rows(ids, outside, 'customer ids')} "
                        f"lie outside the training range [{stats['min']:g}, "
                        f"{stats['max']:g}]; their predictions extrapolate the fitted effect.",
                        CovariateRangeWarning, stacklevel=3,
                    )
                blocks.append(((values - stats["mean"]) / stats["sd"])[:, None])
            else:
                labels = _labels(series, column, ids)
                known = self.levels[column]
                unseen = ~np.isin(labels, known)
                if unseen.any():
                    _fail(column, ids, unseen,
                          f"levels not seen in training ({sorted(set(labels[unseen]))[:5]})",
                          f"The model knows {known}; map new levels to one of them.")
                indicator = labels[:, None] == np.asarray(known[1:], dtype=object)[None, :]
                blocks.append(indicator - np.asarray(self.shares[column])[None, :])
        return np.hstack(blocks) if blocks else np.empty((len(customers), 0))

    def per_unit(self, coefficients: np.ndarray) -> np.ndarray:
        """Coefficients (last axis = features) per unit of each numeric covariate."""
        scale = np.concatenate([
            [self.numeric[c]["sd"]] if c in self.numeric else np.ones(len(self.levels[c]) - 1)
            for c in self.columns
        ])
        return np.asarray(coefficients) / scale

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (for saved models)."""
        return {"columns": list(self.columns), "numeric": self.numeric, "levels": self.levels,
                "shares": self.shares}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CovariateEncoder:
        """Inverse of :meth:`to_dict`."""
        encoder = cls(columns=[str(c) for c in data["columns"]],
                      numeric={str(k): {s: float(v) for s, v in stats.items()}
                               for k, stats in data.get("numeric", {}).items()},
                      levels={str(k): [str(v) for v in levels]
                              for k, levels in data.get("levels", {}).items()},
                      shares={str(k): [float(v) for v in shares]
                              for k, shares in data.get("shares", {}).items()})
        for column in encoder.columns:
            if (column in encoder.numeric) == (column in encoder.levels):
                raise ValueError(f"covariate {column!r} must be numeric or categorical.")
            if column in encoder.numeric and not {"mean", "sd", "min", "max"} <= set(
                    encoder.numeric[column]):
                raise ValueError(f"covariate {column!r}: missing mean/sd/min/max.")
            if column in encoder.levels and len(encoder.levels[column]) < 2:
                raise ValueError(f"covariate {column!r}: needs at least two levels.")
            if column in encoder.levels and (
                    len(encoder.shares.get(column, ())) != len(encoder.levels[column]) - 1):
                raise ValueError(f"covariate {column!r}: needs one share per level after "
                                 "the baseline.")
        return encoder


def _require(customers: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in customers.columns]
    if missing:
        raise DataValidationError(
            f"Covariate column(s) {missing} missing from the customer table; it has columns "
            f"{list(customers.columns)}."
        )


def covariate_profiles(segment_code: np.ndarray, design: np.ndarray, n_segments: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(segment, covariate values)`` combinations.

    Without covariates (``design`` with no columns) the profiles are the segments
    themselves, in order.

    Returns
    -------
    profile : numpy.ndarray of int, shape (customers,)
        Each customer's profile.
    profile_segment : numpy.ndarray of int, shape (profiles,)
    profile_design : numpy.ndarray, shape (profiles, features)
    """
    segment_code = np.asarray(segment_code, dtype=np.int64)
    if design.shape[1] == 0:
        return segment_code, np.arange(n_segments, dtype=np.int64), np.empty((n_segments, 0))
    keys = np.column_stack([segment_code.astype(np.float64), design])
    rows, profile = np.unique(keys, axis=0, return_inverse=True)
    return (profile.reshape(-1).astype(np.int64), rows[:, 0].astype(np.int64),
            np.ascontiguousarray(rows[:, 1:]))
