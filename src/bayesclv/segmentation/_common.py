"""Checks shared by the segmenters: parameters, RFM columns, output column names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from bayesclv.data.columns import _fail
from bayesclv.exceptions import DataValidationError


class _ColumnName:
    """Constraint: a column name (a str), or ``None`` when ``allow_none``."""

    def __init__(self, allow_none: bool = False) -> None:
        self.allow_none = allow_none

    def check(self, value: Any) -> bool:
        return isinstance(value, str) or (self.allow_none and value is None)

    def describe(self) -> str:
        return "a column name (str)" + (" or None" if self.allow_none else "")


def _validate_params(estimator: BaseEstimator, constraints: Mapping[str, Any]) -> None:
    for name, constraint in constraints.items():
        value = getattr(estimator, name)
        if not constraint.check(value):
            raise ValueError(
                f"The {name!r} parameter of {type(estimator).__name__} must be "
                f"{constraint.describe()}; got {value!r}."
            )


def _row_labels(table: pd.DataFrame) -> tuple[pd.Index, str]:
    if "customer_id" in table.columns:
        return pd.Index(table["customer_id"]), "customer ids"
    return pd.Index(table.index), "row index"


def _rfm_values(table: Any, columns: Sequence[str], owner: str, *, min_value: float | None
                ) -> np.ndarray:
    """The RFM columns as a float array (n, 3), checked: numeric, finite, >= min_value."""
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(
            f"{owner} expects a pandas DataFrame of customers (e.g. from "
            f"bayesclv.data.summarize), got {type(table).__name__}."
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"Column(s) {missing} missing from the customer table ({owner}); it has columns "
            f"{list(table.columns)}. Compute them with bayesclv.data.summarize or pass "
            "recency_col=, frequency_col=, monetary_col=."
        )
    if len(table) == 0:
        raise DataValidationError("The customer table is empty: there is nothing to segment.")
    labels, label = _row_labels(table)
    out = np.empty((len(table), len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        series = table[column]
        if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(
                series.dtype):
            raise DataValidationError(
                f"Column {column!r}: numbers expected, got dtype {series.dtype}. Check the "
                "column names passed to the segmenter."
            )
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(values).any():
            _fail(column, labels, np.isnan(values), "missing (NaN) values",
                  "Fill or remove these customers explicitly; nothing is dropped silently.",
                  label=label)
        if not np.isfinite(values).all():
            _fail(column, labels, ~np.isfinite(values), "infinite values",
                  "Replace them with finite numbers.", label=label)
        if min_value is not None and (values < min_value).any():
            _fail(column, labels, values < min_value, f"values below {min_value}",
                  "Recency, frequency and monetary value are non-negative.", label=label)
        out[:, j] = values
    return out


def _feature_names_out(names_in: np.ndarray, added: Sequence[str | None]) -> np.ndarray:
    names = list(names_in)
    names += [a for a in added if a is not None and a not in names]
    return np.asarray(names, dtype=object)
