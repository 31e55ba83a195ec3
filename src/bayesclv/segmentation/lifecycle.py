"""Lifecycle stages (exploration, formation, stability, decline) from tenure and spend trend."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesclv.data.columns import _fail
from bayesclv.exceptions import DataValidationError
from bayesclv.segmentation._common import _row_labels

__all__ = ["LIFECYCLE_STAGES", "lifecycle_stage"]

#: The lifecycle stages returned by :func:`lifecycle_stage`, in lifecycle order.
LIFECYCLE_STAGES: tuple[str, ...] = ("exploration", "formation", "stability", "decline")


def _churn_flags(series: pd.Series, column: str, labels: pd.Index, label: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype) and not series.isna().any():
        return series.to_numpy(dtype=bool)
    valid = series.map(
        lambda v: isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating))
        and not pd.isna(v) and v in (0, 1)
    ).to_numpy(dtype=bool)
    if not valid.all():
        _fail(column, labels, ~valid, "values other than True/False (or 1/0)",
              "Encode churn as a boolean column.", label=label)
    return series.to_numpy().astype(np.float64).astype(bool)


def lifecycle_stage(
    customers: pd.DataFrame,
    *,
    exploration_periods: int = 3,
    growth_ratio: float = 1.25,
    decline_ratio: float = 0.8,
    tenure_col: str = "tenure",
    churned_col: str | None = "churned",
    trend_col: str = "spend_trend",
) -> pd.Series:
    """Place each customer in a lifecycle stage from tenure and the trend of spend.

    Rules, in order (the first that holds wins):

    1. ``decline`` if the customer has churned (``churned_col``; the relationship has
       ended, the last step of decline);
    2. ``exploration`` if ``tenure <= exploration_periods`` (too new to show a trend);
    3. ``decline`` if ``spend_trend < decline_ratio`` (spending less per period in the
       recent half of the tenure than in the first half);
    4. ``formation`` if ``spend_trend > growth_ratio`` (the relationship is growing);
    5. ``stability`` otherwise (spend flat within the two ratios).

    Parameters
    ----------
    customers : pandas.DataFrame
        Customer table with ``tenure_col``, ``trend_col`` and (optionally)
        ``churned_col``, e.g. from :func:`bayesclv.data.summarize`, whose
        ``spend_trend`` is the ratio of mean spend per period in the recent half of the
        tenure to that in the first half.
    exploration_periods : int, default=3
        Tenure (in periods) up to which a customer is exploring (>= 1).
    growth_ratio : float, default=1.25
        Trend above which a customer is in formation.
    decline_ratio : float, default=0.8
        Trend below which a customer is declining; ``0 < decline_ratio <= growth_ratio``.
    tenure_col, churned_col, trend_col : str, default="tenure", "churned", "spend_trend"
        Column names; ``churned_col=None`` ignores churn (rule 1).

    Returns
    -------
    pandas.Series
        Categorical with categories :data:`LIFECYCLE_STAGES`, the index of
        ``customers`` and the name ``"lifecycle_stage"``.

    Raises
    ------
    ValueError
        For an invalid threshold.
    DataValidationError
        For a missing column, NaN or infinite tenure, non-boolean churn flags, or a NaN
        trend for a customer past exploration.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesclv.segmentation import lifecycle_stage
    >>> table = pd.DataFrame({
    ...     "tenure": [2, 12, 12, 12, 12],
    ...     "churned": [False, False, False, False, True],
    ...     "spend_trend": [float("nan"), 1.6, 1.0, 0.5, 1.0],
    ... })
    >>> lifecycle_stage(table).tolist()
    ['exploration', 'formation', 'stability', 'decline', 'decline']
    """
    if isinstance(exploration_periods, bool) or not isinstance(
            exploration_periods, (int, np.integer)) or exploration_periods < 1:
        raise ValueError(
            f"exploration_periods must be an int >= 1; got {exploration_periods!r}."
        )
    ratios_ok = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                    and np.isfinite(v) for v in (growth_ratio, decline_ratio))
    if not ratios_ok or not 0 < decline_ratio <= growth_ratio:
        raise ValueError(
            "Need finite ratios with 0 < decline_ratio <= growth_ratio; got "
            f"decline_ratio={decline_ratio!r}, growth_ratio={growth_ratio!r}."
        )
    if not isinstance(customers, pd.DataFrame):
        raise DataValidationError(
            f"Expected a pandas DataFrame of customers, got {type(customers).__name__}."
        )
    needed = [tenure_col, trend_col] + ([churned_col] if churned_col is not None else [])
    missing = [c for c in needed if c not in customers.columns]
    if missing:
        hint = (" spend_trend is computed by bayesclv.data.summarize."
                if trend_col in missing else "")
        raise DataValidationError(
            f"Column(s) {missing} missing from the customer table (lifecycle stages); it has "
            f"columns {list(customers.columns)}.{hint}"
        )
    labels, label = _row_labels(customers)
    tenure = customers[tenure_col].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(tenure).all():
        _fail(tenure_col, labels, ~np.isfinite(tenure), "missing or infinite tenure",
              "Every customer needs a tenure.", label=label)
    trend = customers[trend_col].to_numpy(dtype=np.float64, na_value=np.nan)
    if churned_col is not None:
        churned = _churn_flags(customers[churned_col], churned_col, labels, label)
    else:
        churned = np.zeros(len(customers), dtype=bool)

    exploring = ~churned & (tenure <= exploration_periods)
    undecided = ~churned & ~exploring
    no_trend = undecided & np.isnan(trend)
    if no_trend.any():
        _fail(trend_col, labels, no_trend, "missing (NaN) spend trend past exploration",
              "Compute spend_trend with bayesclv.data.summarize (it is NaN only for "
              "tenure 1) or fill it.", label=label)
    code = np.full(len(customers), 2, dtype=np.int64)  # stability
    code[undecided & (trend > growth_ratio)] = 1  # formation
    code[undecided & (trend < decline_ratio)] = 3  # decline
    code[exploring] = 0
    code[churned] = 3
    return pd.Series(pd.Categorical.from_codes(code, categories=list(LIFECYCLE_STAGES)),
                     index=customers.index, name="lifecycle_stage")
