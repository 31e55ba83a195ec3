"""Checks shared by the segmenters: parameters, RFM columns, output columns, saved state.

The saved state is a segmenter's fitted attributes as plain JSON data; the ``_state_*``
helpers check it when it is read back.
"""

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


# ---------------------------------------------------------------------------------------
# Fitted state as plain JSON data (for saved models), and its checks when read back
# ---------------------------------------------------------------------------------------

def _names_state(names: np.ndarray) -> list[str | int]:
    """``feature_names_in_`` as a JSON list (column names must be strings or ints)."""
    out: list[str | int] = []
    for name in names:
        if isinstance(name, np.generic):
            name = name.item()
        if not isinstance(name, (str, int)) or isinstance(name, bool):
            raise ValueError(f"cannot save the column name {name!r}: the training table's "
                             "column names must be strings or ints.")
        out.append(name)
    return out


def _state_value(state: Any, key: str, owner: str) -> Any:
    if not isinstance(state, Mapping):
        raise TypeError(f"{owner}: the fitted state must be a mapping; got "
                        f"{type(state).__name__}.")
    if key not in state:
        raise ValueError(f"{owner}: the fitted state has no {key!r}.")
    return state[key]


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _state_count(state: Any, key: str, owner: str, low: int) -> int:
    value = _state_value(state, key, owner)
    if not _is_int(value, low):
        raise ValueError(f"{owner}: {key} must be an int >= {low}; got {value!r}.")
    return value


def _state_labels(state: Any, key: str, owner: str, size: int | None = None) -> list[str]:
    value = _state_value(state, key, owner)
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)
            and len(set(value)) == len(value)) or (size is not None and len(value) != size):
        count = "" if size is None else f"{size} "
        raise ValueError(f"{owner}: {key} must be a list of {count}distinct strings; got "
                         f"{value!r}.")
    return list(value)


def _state_floats(state: Any, key: str, owner: str, shape: tuple[int, ...], *,
                  allow_null: bool = False) -> np.ndarray:
    """A nested list of finite numbers of ``shape`` as a float64 array.

    ``allow_null``: ``null`` stands for ``-inf`` (JSON has no infinities).
    """
    value = _state_value(state, key, owner)

    def convert(item: Any, depth: int) -> Any:
        if depth == len(shape):
            if item is None and allow_null:
                return -np.inf
            if (isinstance(item, (int, float)) and not isinstance(item, bool)
                    and np.isfinite(item)):
                return float(item)
            raise ValueError(f"{owner}: {key} holds {item!r}, not a finite number"
                             + (" or null" if allow_null else "") + ".")
        if not isinstance(item, list) or len(item) != shape[depth]:
            raise ValueError(f"{owner}: {key} must be nested lists of shape {shape}; got "
                             f"{value!r}.")
        return [convert(v, depth + 1) for v in item]

    return np.asarray(convert(value, 0), dtype=np.float64).reshape(shape)


def _state_feature_names(state: Any, owner: str) -> tuple[int, np.ndarray]:
    """``n_features_in_`` and ``feature_names_in_``, checked against each other."""
    n_features = _state_count(state, "n_features_in_", owner, 1)
    names = _state_value(state, "feature_names_in_", owner)
    if not (isinstance(names, list) and len(names) == n_features and all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in names)):
        raise ValueError(f"{owner}: feature_names_in_ must be a list of {n_features} column "
                         f"names (strings or ints); got {names!r}.")
    return n_features, np.asarray(names, dtype=object)
