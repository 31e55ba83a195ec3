"""The naive baseline of a backtest: Berger–Nasr, constant retention and historical spend.

What a spreadsheet model would say from the same training table: each segment keeps its
customers with one constant rate ``r_s`` (the geometric maximum-likelihood estimate,
``1 - churns / periods at risk``), and each customer spends its historical mean per
active period (its segment's mean when it has not spent yet), so its expected residual
value over ``H`` periods is ``(margin * spend - cost) * sum_{j=1}^{H} r_s^j / (1+d)^j``.

Its predictive intervals take the model at its word: the only uncertainty is when the
customer churns (the number of periods ``N`` it stays, ``P(N >= n) = r_s^n``), with the
rate and the spend known exactly. Set beside the Bayesian model's, they show what
duration-dependent retention and parameter and spend uncertainty add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["BergerNasr"]

#: Customers simulated at once by :meth:`BergerNasr.simulate_flows`.
_CHUNK = 4096


@dataclass
class BergerNasr:
    """Constant retention per segment and historical mean spend, fitted by counting.

    Attributes
    ----------
    segments : list of str
        Segment labels, in order of first appearance in the training table.
    retention : numpy.ndarray, shape (segments,)
        Per-period retention rate ``r_s``.
    spend : numpy.ndarray, shape (segments,)
        Mean revenue per active period of the segment's spenders (the spend of a customer
        who has not spent yet).
    churns, exposure : numpy.ndarray, shape (segments,)
        Churns and customer-periods at risk the rate is estimated from.
    """

    segments: list[str]
    retention: np.ndarray
    spend: np.ndarray
    churns: np.ndarray
    exposure: np.ndarray

    @classmethod
    def fit(cls, table: pd.DataFrame, segment: np.ndarray) -> BergerNasr:
        """Estimate the rates and spends from a customer table (DESIGN §3).

        Parameters
        ----------
        table : pandas.DataFrame
            Validated customer table (``tenure``, ``churned``, ``n_periods_active``,
            ``mean_spend``; ``entry`` optional).
        segment : numpy.ndarray
            Each row's segment label.

        Returns
        -------
        BergerNasr

        Notes
        -----
        A segment with no period at risk gets the rate of all segments together, and
        one without spenders the spend of all segments together.
        """
        labels, code = _codes(segment)
        tenure = table["tenure"].to_numpy(dtype=np.int64)
        entry = (table["entry"].to_numpy(dtype=np.int64) if "entry" in table.columns
                 else np.zeros(len(table), dtype=np.int64))
        churned = table["churned"].to_numpy(dtype=bool)
        exposure = np.bincount(code, weights=tenure - entry, minlength=len(labels))
        churns = np.bincount(code, weights=churned, minlength=len(labels))
        pooled = 1.0 - churns.sum() / max(exposure.sum(), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            retention = np.where(exposure > 0, 1.0 - churns / exposure, pooled)
        n_active = table["n_periods_active"].to_numpy(dtype=np.float64)
        totals = np.nan_to_num(table["mean_spend"].to_numpy(dtype=np.float64)) * n_active
        spent = np.bincount(code, weights=totals, minlength=len(labels))
        periods = np.bincount(code, weights=n_active, minlength=len(labels))
        overall = spent.sum() / periods.sum() if periods.sum() > 0 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = np.where(periods > 0, spent / periods, overall)
        return cls(segments=labels, retention=retention, spend=spend, churns=churns,
                   exposure=exposure)

    def customer_spend(self, table: pd.DataFrame, code: np.ndarray) -> np.ndarray:
        """Each customer's historical mean spend, its segment's when it has none."""
        own = table["mean_spend"].to_numpy(dtype=np.float64)
        return np.where(table["n_periods_active"].to_numpy() > 0, own, self.spend[code])

    def codes(self, segment: np.ndarray) -> np.ndarray:
        """Positions in :attr:`segments` of segment labels (all must be known)."""
        found = pd.Index(self.segments).get_indexer(pd.Index(segment).astype(str))
        if (found < 0).any():
            raise ValueError("Segments unseen by the baseline: "
                             f"{sorted(set(np.asarray(segment)[found < 0].astype(str)))}.")
        return found

    def customer_values(self, spend: np.ndarray, code: np.ndarray, active: np.ndarray,
                        horizon: int, *, margin: float, cost_per_period: float,
                        discount_rate: float, levels: Sequence[float]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Expected residual value over ``horizon`` and its predictive quantiles.

        Returns
        -------
        mean : numpy.ndarray, shape (customers,)
        bounds : numpy.ndarray, shape (2 * levels, customers)
            For each level, the ``(1 - L) / 2`` and ``(1 + L) / 2`` quantiles of the value
            (0 for churned customers).
        """
        net = margin * spend - cost_per_period
        j = np.arange(1, horizon + 1)
        discount = (1.0 + discount_rate) ** -j
        annuity = np.r_[0.0, np.cumsum(discount)]  # value of n periods, n = 0..H
        r = self.retention[code]
        mean = np.where(active, net * (r[:, None] ** j * discount).sum(axis=1), 0.0)
        probs = np.concatenate([[(1 - level) / 2, (1 + level) / 2] for level in levels])
        # N = periods stayed, P(N <= n) = 1 - r^(n+1) below H; the quantile is the least
        # n whose cumulative probability reaches p, per segment.
        n = np.arange(horizon + 1)
        cdf = np.where(n[None, :] < horizon, 1.0 - self.retention[:, None] ** (n + 1), 1.0)
        stays = np.stack([(cdf < p - 1e-12).sum(axis=1) for p in probs])  # (2k, segments)
        values = net[None, :] * annuity[stays[:, code]]
        bounds = np.empty_like(values)
        bounds[0::2] = np.minimum(values[0::2], values[1::2])
        bounds[1::2] = np.maximum(values[0::2], values[1::2])
        return mean, np.where(active[None, :], bounds, 0.0)

    def simulate_flows(self, spend: np.ndarray, code: np.ndarray, active: np.ndarray,
                       horizon: int, n_simulations: int,
                       seed: int | np.random.SeedSequence) -> dict[str, np.ndarray]:
        """Expected and simulated active customers and revenue per segment and period.

        Returns
        -------
        dict
            ``active``, ``revenue``: expected, (segments, horizon); ``realised_active``,
            ``realised_revenue``: (simulations, segments, horizon), each customer's number
            of periods stayed drawn from its geometric distribution.
        """
        n_seg = len(self.segments)
        j = np.arange(1, horizon + 1)
        r = self.retention[code[active]]
        survival = r[:, None] ** j
        seg = code[active]
        onehot = np.zeros((len(seg), n_seg))
        onehot[np.arange(len(seg)), seg] = 1.0
        out = {
            "active": onehot.T @ survival,
            "revenue": onehot.T @ (survival * spend[active][:, None]),
            "realised_active": np.zeros((n_simulations, n_seg, horizon)),
            "realised_revenue": np.zeros((n_simulations, n_seg, horizon)),
        }
        rng = np.random.default_rng(seed)
        for start in range(0, len(seg), _CHUNK):
            sl = slice(start, start + _CHUNK)
            # periods stayed: the first failure of a Bernoulli(r) sequence, minus one
            stays = rng.geometric(1.0 - np.minimum(r[sl], 1.0 - 1e-12),
                                  size=(n_simulations, len(r[sl]))) - 1
            for k in range(horizon):
                alive = (stays >= k + 1).astype(np.float64)
                out["realised_active"][:, :, k] += alive @ onehot[sl]
                out["realised_revenue"][:, :, k] += (alive * spend[active][sl]) @ onehot[sl]
        return out


def _codes(segment: np.ndarray) -> tuple[list[str], np.ndarray]:
    codes, labels = pd.factorize(pd.Index(segment).astype(str))
    return [str(label) for label in labels], codes.astype(np.int64)
