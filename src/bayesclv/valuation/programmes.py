"""What-if retention programmes: the value of the base with and without one.

A programme for segment ``s`` multiplies the churn probability of each future period
``j >= from_period``, ``h(tau + j) = 1 - S(tau + j) / S(tau + j - 1)``, by ``1 - u_s``
(``u_s = 1``: nobody churns in those periods), whatever the retention family, and may
scale the spend of those periods by ``1 + c_s``. Under posterior draw ``g`` the value of
the segment's active customers is, with and without it (DESIGN §4.3)::

    V_s(g)  = sum_i sum_j [margin * spend_i(g) - cost] S(tau_i + j) / S(tau_i) / (1+d)^j
    V'_s(g) = sum_i sum_j [margin * f_j spend_i(g) - cost] S'(tau_i + j) / S'(tau_i) / (1+d)^j

with the same draw of each customer's spend in both, so the change ``V' - V`` is a
difference within each draw and its interval is honest. Customers sharing a segment (or
covariate profile) and a tenure are summed once, like the forecasts
(:mod:`bayesclv.valuation.forecast`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.valuation.customers import CustomerValuation
from bayesclv.valuation.forecast import TenureGroups, group_spend, window_hazards
from bayesclv.valuation.kernels import programme_sums
from bayesclv.valuation.survival import MAX_PERIODS

__all__ = ["programme_values", "rank_programmes"]

_FIRST_HORIZON = 120
_RELATIVE_TOL = 1e-6


def programme_values(valuation: CustomerValuation, family: Any, psi: np.ndarray,
                     reduction: np.ndarray, spend_change: np.ndarray, from_period: int,
                     horizon: int | None, discount_rate: float, n_segments: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's residual value without and with a programme, per sample.

    Parameters
    ----------
    valuation : CustomerValuation
        The customers (segments or profiles, tenures, spend draws).
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, profiles, coord)
    reduction, spend_change : numpy.ndarray, shape (segments,)
        ``u_s`` in [0, 1] and ``c_s`` > -1 per segment.
    from_period : int
        The first future period (1 = the next) the programme acts in.
    horizon : int or None
        Future periods valued; ``None``: until the rest is negligible (relative 1e-6),
        at most 10,000 periods.
    discount_rate : float
    n_segments : int

    Returns
    -------
    baseline, programme : numpy.ndarray, each (samples, segments)
    """
    groups = TenureGroups.of(valuation.segment, valuation.tenure, valuation.active)
    spend = group_spend(valuation, groups)
    limit = MAX_PERIODS if horizon is None else int(horizon)
    periods = limit if horizon is not None else min(_FIRST_HORIZON, limit)
    while True:
        baseline, programme, tail = _values(valuation, family, psi, groups, spend, reduction,
                                            spend_change, int(from_period), periods,
                                            float(discount_rate), n_segments)
        if horizon is not None or tail <= _RELATIVE_TOL or periods >= limit:
            break
        periods = min(2 * periods, limit)
    if horizon is None and tail > _RELATIVE_TOL:
        warnings.warn(
            f"With horizon=None the future was summed over {MAX_PERIODS} periods and "
            "survival had not yet become negligible; set a horizon or a discount rate.",
            RuntimeWarning, stacklevel=3)
    return baseline, programme


def _values(valuation: CustomerValuation, family: Any, psi: np.ndarray,
            groups: TenureGroups, spend: np.ndarray, reduction: np.ndarray,
            spend_change: np.ndarray, from_period: int, periods: int, discount_rate: float,
            n_segments: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Values over ``periods`` future periods, and a bound on what the rest would add."""
    n_samples = psi.shape[0]
    baseline = np.zeros((n_samples, n_segments))
    programme = np.zeros_like(baseline)
    discount = (1.0 + discount_rate) ** -np.arange(1.0, periods + 1.0)
    margin, cost = float(valuation.margin), float(valuation.cost_per_period)
    counts = groups.counts
    tail = 0.0
    for p, chosen in groups.windows():
        s = int(p if valuation.profile_segment is None else valuation.profile_segment[p])
        totals, offsets = window_hazards(family, psi[:, p, :], groups.tenure[chosen], periods)
        sums = [np.empty((n_samples, len(chosen))) for _ in range(4)]
        programme_sums(totals, offsets, float(reduction[s]), from_period,
                       1.0 + float(spend_change[s]), discount, *sums)
        base, survival, spending, last_survival = sums
        group_spend_draws = spend[chosen].T  # (samples, groups)
        base_value = ((margin * group_spend_draws - cost * counts[chosen]) * base
                      ).sum(axis=1)
        baseline[:, s] += base_value
        # As a change from the baseline: exactly none where the programme acts not.
        programme[:, s] += base_value + (
            margin * group_spend_draws * (spending - base)
            - cost * counts[chosen] * (survival - base)).sum(axis=1)
        # What more periods could add, relative to the sums so far: the last
        # survival ratio, discounted (or, undiscounted, over the remaining periods).
        remaining = (1.0 / discount_rate if discount_rate > 0
                     else float(MAX_PERIODS - periods))
        bound = last_survival * discount[-1] * remaining
        scale = np.maximum(np.minimum(base, survival), 1e-300)
        tail = max(tail, float(np.max(bound / scale)))
    return baseline, programme, tail


def rank_programmes(scenarios: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Programmes side by side, ranked per segment by expected gain per unit of cost.

    Parameters
    ----------
    scenarios : mapping of str to pandas.DataFrame
        Programme name -> the table :meth:`bayesclv.CLVModel.scenario` returned.

    Returns
    -------
    pandas.DataFrame
        One row per programme and segment it changes (or is charged to), ``"all"``
        included: ``programme``, ``segment``, ``delta_mean``, ``delta_hdi_low``,
        ``delta_hdi_high``, ``cost``, ``gain_per_cost`` (``delta_mean / cost``; missing
        without a positive cost), ``prob_exceeds_cost`` and ``rank`` (1 = the best
        gain per unit of cost for that segment; programmes without a cost rank after, by
        expected gain). Sorted by segment (in order of first appearance) and rank.
    """
    rows = []
    for name, table in scenarios.items():
        missing = [c for c in ("delta_mean", "delta_hdi_low", "delta_hdi_high", "cost",
                               "prob_exceeds_cost") if c not in table.columns]
        if missing:
            raise ValueError(f"Programme {name!r}: not a table of CLVModel.scenario "
                             f"(no column(s) {missing}).")
        for segment, row in table.iterrows():
            acts = row["delta_mean"] != 0 or (np.isfinite(row["cost"]) and row["cost"] != 0)
            if not acts:
                continue
            cost = float(row["cost"])
            rows.append({
                "programme": str(name), "segment": str(segment),
                "delta_mean": row["delta_mean"], "delta_hdi_low": row["delta_hdi_low"],
                "delta_hdi_high": row["delta_hdi_high"], "cost": cost,
                "gain_per_cost": row["delta_mean"] / cost if cost > 0 else np.nan,
                "prob_exceeds_cost": row["prob_exceeds_cost"],
            })
    columns = ["programme", "segment", "delta_mean", "delta_hdi_low", "delta_hdi_high",
               "cost", "gain_per_cost", "prob_exceeds_cost", "rank"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    order = list(dict.fromkeys(out["segment"]))
    if "all" in order:
        order = [s for s in order if s != "all"] + ["all"]
    out["segment_order"] = out["segment"].map({s: i for i, s in enumerate(order)})
    out = out.sort_values(["segment_order", "gain_per_cost", "delta_mean"],
                          ascending=[True, False, False], na_position="last", kind="stable")
    out["rank"] = out.groupby("segment_order").cumcount() + 1
    return out.drop(columns="segment_order").reset_index(drop=True)[columns]
