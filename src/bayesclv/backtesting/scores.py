"""Scores of predictions against what happened: coverage, ranking and lift.

Module-level functions on plain arrays and tables, shared by the model and the naive
baseline so that both are scored by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bayesclv._params import level_label
from bayesclv.valuation.forecast import labels_with_total

__all__ = ["clopper_pearson", "coverage_table", "lift_table", "ranking_scores", "with_observed",
           "within"]

#: Confidence of the binomial interval on each coverage figure.
COVERAGE_CONFIDENCE = 0.95


def within(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Whether each actual value lies in its interval, bounds included (with rounding)."""
    slack = 1e-9 * np.maximum(np.abs(low), np.abs(high))
    return (actual >= low - slack) & (actual <= high + slack)


def clopper_pearson(covered: np.ndarray, n: np.ndarray,
                    confidence: float = COVERAGE_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) binomial interval of ``covered / n``."""
    covered, n = np.asarray(covered, dtype=float), np.asarray(n, dtype=float)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        low = np.where(covered > 0, stats.beta.ppf(alpha / 2, covered, n - covered + 1), 0.0)
        high = np.where(covered < n, stats.beta.ppf(1 - alpha / 2, covered + 1, n - covered),
                        1.0)
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def coverage_table(customers: pd.DataFrame, levels: Sequence[float], segments: list[str]
                   ) -> pd.DataFrame:
    """Observed coverage of the customers' predictive intervals, overall and per segment.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``segment``, ``realised_value``, ``active_at_cutoff`` and, per level,
        ``value_pi{L}_low`` and ``value_pi{L}_high``. Only customers active at the cutoff
        are scored (a churned customer's interval is the point 0).
    levels : sequence of float
    segments : list of str
        Segments in the order of the table (the whole base, ``"all"``, is appended).

    Returns
    -------
    pandas.DataFrame
        One row per segment and level: ``segment``, ``nominal`` (the level),
        ``n_customers``, ``covered``, ``below`` and ``above`` (realised values under the
        lower bound and over the upper one: each should be about ``(1 - nominal) / 2`` of
        the customers, and a lopsided split says which way the model is biased),
        ``observed`` (the coverage), ``observed_low``, ``observed_high`` (its 95%
        Clopper–Pearson interval) and ``verdict``: ``"under"`` when the whole interval is
        below the nominal level, ``"over"`` when above, ``"n/a"`` without customers, else
        ``"ok"``.
    """
    scored = customers[customers["active_at_cutoff"].to_numpy(dtype=bool)]
    rows = []
    labels = labels_with_total(segments)
    for label in labels:
        part = scored if label == labels[-1] else scored[
            scored["segment"].astype(str) == label]
        for level in levels:
            name = f"value_pi{level_label(level)}"
            realised = part["realised_value"].to_numpy()
            low, high = part[f"{name}_low"].to_numpy(), part[f"{name}_high"].to_numpy()
            hits = within(realised, low, high)
            above = ~hits & (realised > high)
            rows.append({"segment": label, "nominal": float(level), "n_customers": len(part),
                         "covered": int(hits.sum()), "below": int((~hits & ~above).sum()),
                         "above": int(above.sum())})
    return with_observed(pd.DataFrame(rows))


def with_observed(table: pd.DataFrame) -> pd.DataFrame:
    """Add the observed coverage, its binomial interval and the verdict to counts.

    ``table`` has ``nominal``, ``n_customers`` and ``covered``. A row without customers
    has NaN coverage and the verdict ``"n/a"``.
    """
    table = table.copy()
    n, covered = table["n_customers"].to_numpy(), table["covered"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["observed"] = np.where(n > 0, covered / np.maximum(n, 1), np.nan)
    table["observed_low"], table["observed_high"] = clopper_pearson(covered, n)
    table["verdict"] = np.select(
        [n == 0, table["observed_high"] < table["nominal"],
         table["observed_low"] > table["nominal"]], ["n/a", "under", "over"], "ok")
    return table


def ranking_scores(predicted: np.ndarray, realised: np.ndarray, top: float = 0.1
                   ) -> dict[str, float]:
    """Spearman rank correlation and the top-``top`` capture rate.

    The capture rate is the share of the total realised value held by the ``top``
    fraction of customers with the highest predicted value (ties broken by position).
    """
    predicted, realised = np.asarray(predicted, float), np.asarray(realised, float)
    n = len(predicted)
    if n < 2 or np.ptp(predicted) == 0 or np.ptp(realised) == 0:
        spearman = np.nan
    else:
        spearman = float(stats.spearmanr(predicted, realised).statistic)
    total = realised.sum()
    k = max(1, int(np.ceil(top * n))) if n else 0
    order = np.argsort(-predicted, kind="stable")
    capture = float(realised[order[:k]].sum() / total) if n and total > 0 else np.nan
    return {"n_customers": n, "spearman": spearman, "top_decile_capture": capture}


def lift_table(predicted: np.ndarray, realised: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Cumulative share of realised value against share of customers ranked by prediction.

    Returns one row per decile (``bins`` groups of customers, highest predicted first):
    ``customers_share`` (cumulative), ``value_share`` (cumulative share of realised
    value) and ``lift`` (``value_share / customers_share``).
    """
    predicted, realised = np.asarray(predicted, float), np.asarray(realised, float)
    order = np.argsort(-predicted, kind="stable")
    n, total = len(order), realised.sum()
    edges = np.ceil(np.arange(1, bins + 1) / bins * n).astype(int)
    cumulative = np.r_[0.0, np.cumsum(realised[order])]
    share = cumulative[edges] / total if total > 0 else np.full(bins, np.nan)
    customers_share = edges / max(n, 1)
    return pd.DataFrame({"decile": np.arange(1, bins + 1), "customers_share": customers_share,
                         "value_share": share, "lift": share / customers_share})
