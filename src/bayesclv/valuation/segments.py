"""Segment totals summarised: value per customer, total and share of each segment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats

__all__ = ["segment_summary"]


def segment_summary(totals: np.ndarray, segment: np.ndarray, active: np.ndarray,
                    segments: Sequence[str], hdi_prob: float) -> pd.DataFrame:
    """Posterior summaries of each segment's value, from totals within each draw.

    Totals are sums within each posterior draw, so their intervals are honest; the
    share is each draw's segment total over that draw's grand total.

    Parameters
    ----------
    totals : numpy.ndarray, shape (samples, segments)
        Each segment's total residual value under each sample.
    segment : numpy.ndarray of int, shape (customers,)
        Each customer's segment code.
    active : numpy.ndarray of bool, shape (customers,)
    segments : sequence of str
        The segment names the codes index.
    hdi_prob : float

    Returns
    -------
    pandas.DataFrame
        Indexed by segment: ``n_customers``, ``n_active``, ``clv_per_customer_mean``,
        ``clv_per_customer_hdi_low``/``_high``, ``total_mean``, ``total_hdi_low``/
        ``_high``, ``share_mean``, ``share_hdi_low``/``_high``.
    """
    counts = np.bincount(segment, minlength=len(segments))
    n_active = np.bincount(segment, weights=active, minlength=len(segments))
    grand = totals.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(grand != 0, totals / grand, np.nan)
    per_customer = totals / counts

    def _hdi(draws: np.ndarray) -> np.ndarray:
        return array_stats.hdi(draws.T, hdi_prob, axis=-1)

    per_hdi, total_hdi, share_hdi = _hdi(per_customer), _hdi(totals), _hdi(share)
    return pd.DataFrame(
        {
            "n_customers": counts,
            "n_active": n_active.astype(np.int64),
            "clv_per_customer_mean": per_customer.mean(axis=0),
            "clv_per_customer_hdi_low": per_hdi[:, 0],
            "clv_per_customer_hdi_high": per_hdi[:, 1],
            "total_mean": totals.mean(axis=0),
            "total_hdi_low": total_hdi[:, 0],
            "total_hdi_high": total_hdi[:, 1],
            "share_mean": share.mean(axis=0),
            "share_hdi_low": share_hdi[:, 0],
            "share_hdi_high": share_hdi[:, 1],
        },
        index=pd.Index(segments, name="segment"),
    )
