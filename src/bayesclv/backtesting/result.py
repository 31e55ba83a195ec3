"""The tables, summary and plots of a backtest (:class:`BacktestResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesclv._params import level_label
from bayesclv.backtesting.baseline import BergerNasr
from bayesclv.backtesting.scores import clopper_pearson, lift_table, with_observed, within
from bayesclv.backtesting.split import HoldoutSplit

__all__ = ["BacktestResult", "CutoffTables"]

MODEL_NAME = "bayesclv"
BASELINE_NAME = "naive (Berger-Nasr)"


@dataclass
class CutoffTables:
    """Everything one cutoff produced, before the cutoffs are stacked."""

    split: HoldoutSplit
    model: Any
    baseline: BergerNasr
    periods: pd.DataFrame
    customers: pd.DataFrame
    scores: tuple[pd.DataFrame, dict[str, float]]
    baseline_periods: pd.DataFrame
    baseline_customers: pd.DataFrame
    baseline_scores: tuple[pd.DataFrame, dict[str, float]]
    hdi_prob: float


@dataclass
class BacktestResult:
    """Predictions set against what happened after one or more cutoffs.

    Every table has a ``cutoff`` column (ISO date) first, so rolling-origin backtests
    stack.

    Attributes
    ----------
    name : str
        ``"bayesclv"``, or ``"naive (Berger-Nasr)"`` for :attr:`baseline`.
    periods : pandas.DataFrame
        One row per cutoff, segment (and ``"all"``) and holdout period: ``period``
        (1..horizon), ``calendar_period``, ``active_actual``, ``active_mean``,
        ``active_pi_low``, ``active_pi_high``, ``revenue_actual``, ``revenue_mean``,
        ``revenue_pi_low``, ``revenue_pi_high``, then the rest of the forecast
        (HDI of the expected flows, margin), ``revenue_uncounted`` (paid in the period a
        contract ended: not part of the forecast, DESIGN §4.3) and ``active_returned``,
        ``revenue_returned`` (customers labelled churned at the cutoff who bought again:
        not part of the forecast either; inactivity rule only).
    customers : pandas.DataFrame
        One row per cutoff and customer of the fit: ``customer_id``, ``segment``,
        ``active_at_cutoff``, ``realised_revenue`` (in the periods the customer stayed
        through), ``revenue_uncounted``, ``realised_value`` (``margin * revenue - cost``
        per period stayed through, discounted), ``value_mean`` (expected residual value
        over the horizon), ``value_pi_low``, ``value_pi_high`` (the widest level's
        predictive interval) and ``value_pi{L}_low``, ``value_pi{L}_high`` per level.
    coverage : pandas.DataFrame
        One row per cutoff, segment (and ``"all"``) and level: ``nominal`` (the level),
        ``n_customers`` (active at the cutoff), ``covered``, ``below`` and ``above``
        (missed low and high), ``observed`` (the coverage), its 95% binomial interval
        ``observed_low``, ``observed_high``, and ``verdict`` (``"under"``, ``"ok"``,
        ``"over"``, ``"n/a"``).
    ranking : pandas.DataFrame
        One row per cutoff: ``n_customers``, ``spearman`` and ``top_decile_capture``
        (customers active at the cutoff).
    baseline : BacktestResult or None
        The naive model's same tables (its ``periods`` have no HDI columns: it has no
        parameter uncertainty).
    model : object
        The fitted model (a Pipeline when one was given) of the last cutoff.
    models : dict
        The fitted model of each cutoff (ISO date keys).
    levels : list of float
    horizon : int
    unit, period_alias : str
        The period unit (``"month"``) and its pandas alias (``"M"``).
    hdi_prob : float
        Probability of the periods' intervals.
    notes : list of str
        What was left out or needs saying (customers acquired after a cutoff, ...).
    """

    name: str
    periods: pd.DataFrame
    customers: pd.DataFrame
    coverage: pd.DataFrame
    ranking: pd.DataFrame
    baseline: BacktestResult | None
    model: Any
    models: dict[str, Any]
    levels: list[float]
    horizon: int
    unit: str
    period_alias: str
    hdi_prob: float
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_cutoffs(cls, parts: list[CutoffTables], levels: list[float]) -> BacktestResult:
        """Stack the tables of each cutoff (in date order)."""
        def stacked(tables: list[pd.DataFrame], cutoffs: list[str]) -> pd.DataFrame:
            frames = [t.assign(cutoff=c)[["cutoff", *t.columns]]
                      for t, c in zip(tables, cutoffs, strict=True)]
            return pd.concat(frames, ignore_index=True)

        cutoffs = [str(p.split.cutoff.date()) for p in parts]
        fitted = {c: p.model for c, p in zip(cutoffs, parts, strict=True)}
        notes = [f"{c}: {n}" if len(parts) > 1 else n
                 for c, p in zip(cutoffs, parts, strict=True) for n in p.split.notes]
        first = parts[0]
        common = {"levels": levels, "horizon": first.split.horizon, "unit": first.split.unit,
                  "period_alias": first.split.alias,
                  "hdi_prob": first.hdi_prob, "notes": notes}
        def result(name: str, prefix: str, models: dict[str, Any],
                   baseline: BacktestResult | None) -> BacktestResult:
            # prefix "" reads the model's tables of each part, "baseline_" the baseline's
            tables = [{key: getattr(p, prefix + key) for key in
                       ("periods", "customers", "scores")} for p in parts]
            return cls(
                name=name,
                periods=stacked([t["periods"] for t in tables], cutoffs),
                customers=stacked([t["customers"] for t in tables], cutoffs),
                coverage=stacked([t["scores"][0] for t in tables], cutoffs),
                ranking=pd.DataFrame([{"cutoff": c, **t["scores"][1]}
                                      for c, t in zip(cutoffs, tables, strict=True)]),
                baseline=baseline, model=models[cutoffs[-1]], models=models, **common)

        naive = {c: p.baseline for c, p in zip(cutoffs, parts, strict=True)}
        return result(MODEL_NAME, "", fitted,
                      result(BASELINE_NAME, "baseline_", naive, None))

    @property
    def cutoffs(self) -> list[str]:
        """The cutoffs, in date order (ISO dates)."""
        return list(self.models)

    # ---- summary -----------------------------------------------------------------------

    def pooled_coverage(self, segment: str = "all") -> pd.DataFrame:
        """Coverage per level over every cutoff together, with its binomial interval.

        Columns as :attr:`coverage` (without ``cutoff`` and ``segment``).
        """
        part = self.coverage[self.coverage["segment"] == segment]
        pooled = part.groupby("nominal", sort=True)[
            ["n_customers", "covered", "below", "above"]].sum()
        return with_observed(pooled.reset_index())

    def _figures(self) -> dict[str, tuple[float, float, float]]:
        """The summary's figures of this result: ``{metric: (value, low, high)}``."""
        figures = {}
        for row in self.pooled_coverage().itertuples():
            figures[f"coverage of {level_label(row.nominal)}% intervals"] = (
                row.observed, row.observed_low, row.observed_high)
        figures["Spearman rank correlation"] = (self.ranking["spearman"].mean(),
                                                np.nan, np.nan)
        figures["top-decile capture"] = (self.ranking["top_decile_capture"].mean(),
                                         np.nan, np.nan)
        base = self.periods[self.periods["segment"] == "all"]
        sums = base.groupby("cutoff")[["revenue_mean", "revenue_actual"]].sum()
        figures["holdout revenue, predicted / actual"] = (
            _ratio(sums["revenue_mean"], sums["revenue_actual"]), np.nan, np.nan)
        last = base[base["period"] == self.horizon]
        figures["active at the horizon, predicted / actual"] = (
            _ratio(last["active_mean"], last["active_actual"]), np.nan, np.nan)
        cells = self.periods[self.periods["segment"] != "all"]
        if cells.empty:
            cells = base
        for name in ("active", "revenue"):
            inside = within(cells[f"{name}_actual"].to_numpy(),
                            cells[f"{name}_pi_low"].to_numpy(),
                            cells[f"{name}_pi_high"].to_numpy())
            low, high = clopper_pearson(inside.sum(), len(inside))  # NaN when empty
            figures[f"segment-periods with actual {name} in the interval"] = (
                inside.mean(), float(low), float(high))
        return figures

    def summary(self) -> pd.DataFrame:
        """The headline figures of the model and the naive baseline, side by side.

        Returns
        -------
        pandas.DataFrame
            Indexed by metric: ``nominal`` (the level a coverage should reach, or the
            interval probability of the periods' intervals), ``bayesclv`` with
            ``bayesclv_low``, ``bayesclv_high`` (the 95% binomial interval of a coverage)
            and the same three for the baseline. Coverage pools every cutoff's
            customers; the other figures are means over cutoffs. The intervals treat
            customers (and segment-periods) as independent: they share parameters (and
            a segment's periods share its customers), so read them as a lower bound on
            the uncertainty. Rows: coverage of each
            level, Spearman rank correlation, top-decile capture (share of realised
            value held by the predicted top 10%), predicted over actual holdout revenue
            and active customers at the horizon, and the share of segment-periods whose
            actual count and revenue fall in the predictive interval (with its binomial
            interval: a misspecified retention curve shows here first).
        """
        ours = self._figures()
        theirs = self.baseline._figures() if self.baseline is not None else {}
        rows = []
        for metric, (value, low, high) in ours.items():
            nominal = np.nan
            if metric.startswith("coverage of"):
                nominal = float(metric.split()[2].rstrip("%")) / 100
            elif "in the interval" in metric:
                nominal = self.hdi_prob
            base = theirs.get(metric, (np.nan, np.nan, np.nan))
            rows.append({"metric": metric, "nominal": nominal, self.name: value,
                         f"{self.name}_low": low, f"{self.name}_high": high,
                         "baseline": base[0], "baseline_low": base[1],
                         "baseline_high": base[2]})
        table = pd.DataFrame(rows).set_index("metric")
        table.attrs.update(cutoffs=self.cutoffs, horizon=self.horizon, unit=self.unit,
                           notes=list(self.notes))
        return table

    def lift(self) -> pd.DataFrame:
        """Cumulative share of realised value by decile of predicted value, per cutoff."""
        frames = []
        for cutoff, part in self.customers.groupby("cutoff", sort=True):
            alive = part[part["active_at_cutoff"]]
            table = lift_table(alive["value_mean"].to_numpy(),
                               alive["realised_value"].to_numpy())
            frames.append(table.assign(cutoff=cutoff)[["cutoff", *table.columns]])
        return pd.concat(frames, ignore_index=True)

    def __repr__(self) -> str:
        return (f"BacktestResult({self.name!r}, cutoffs={self.cutoffs}, "
                f"horizon={self.horizon} {self.unit}s, "
                f"customers={len(self.customers):,})")

    # ---- plots -------------------------------------------------------------------------

    def plot(self, segment: str = "all") -> Any:
        """Survivors, revenue, calibration and lift, the naive baseline beside the model.

        Four panels: active customers and revenue per period with their predictive
        bands against the actual; nominal against observed coverage of the customers'
        intervals (with binomial intervals); and the lift chart.

        Parameters
        ----------
        segment : str, default="all"
            The segment of the survivor and revenue panels.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(2, 2, figsize=(12, 8.5), layout="constrained")
        for ax, name, label in ((axes[0, 0], "active", "active customers"),
                                (axes[0, 1], "revenue", "revenue")):
            self._plot_flow(ax, name, label, segment)
        self._plot_calibration(axes[1, 0])
        self._plot_lift(axes[1, 1])
        figure.suptitle(f"Backtest: {self.horizon} {self.unit}s after "
                        f"{', '.join(self.cutoffs)}")
        return figure

    def _plot_flow(self, ax: Any, name: str, label: str, segment: str) -> None:
        for result, colour in ((self, "C0"), (self.baseline, "C1")):
            if result is None:
                continue
            rows = result.periods[result.periods["segment"] == segment]
            if rows.empty:
                raise ValueError(f"No segment {segment!r} in the backtest; segments: "
                                 f"{sorted(result.periods['segment'].unique())}.")
            for k, (_, part) in enumerate(rows.groupby("cutoff", sort=True)):
                x = pd.PeriodIndex(part["calendar_period"], freq=self.period_alias).to_timestamp()
                ax.fill_between(x, part[f"{name}_pi_low"], part[f"{name}_pi_high"],
                                color=colour, alpha=0.2, linewidth=0,
                                label=f"{result.name}: {self.hdi_prob:.0%} predictive"
                                if k == 0 else None)
                ax.plot(x, part[f"{name}_mean"], color=colour,
                        label=f"{result.name}: expected" if k == 0 else None)
                if result is self:
                    ax.plot(x, part[f"{name}_actual"], "k.-",
                            label="actual" if k == 0 else None)
        ax.set_title(f"{label} ({segment})")
        ax.set_xlabel(self.unit)
        ax.legend(fontsize="small")

    def _plot_calibration(self, ax: Any) -> None:
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="calibrated")
        for k, (result, colour) in enumerate(((self, "C0"), (self.baseline, "C1"))):
            if result is None:
                continue
            pooled = result.pooled_coverage()
            shift = (k - 0.5) * 0.01
            ax.errorbar(pooled["nominal"] + shift, pooled["observed"],
                        yerr=[pooled["observed"] - pooled["observed_low"],
                              pooled["observed_high"] - pooled["observed"]],
                        fmt="o-", color=colour, capsize=3, label=result.name)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal level of the predictive interval",
               ylabel="share of customers whose realised value it holds",
               title="calibration of customer value intervals")
        ax.legend(fontsize="small")

    def _plot_lift(self, ax: Any) -> None:
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="random order")
        for result, colour in ((self, "C0"), (self.baseline, "C1")):
            if result is None:
                continue
            for k, (_, part) in enumerate(result.lift().groupby("cutoff", sort=True)):
                ax.plot(np.r_[0, part["customers_share"]], np.r_[0, part["value_share"]],
                        "o-", color=colour, markersize=3,
                        label=result.name if k == 0 else None)
        ax.set(xlim=(0, 1), ylim=(0, None), xlabel="share of customers, highest predicted "
               "value first", ylabel="share of realised value", title="lift")
        ax.legend(fontsize="small")


def _ratio(predicted: pd.Series, actual: pd.Series) -> float:
    """Mean over cutoffs of predicted / actual, NaN where nothing happened."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = predicted.to_numpy(dtype=float) / actual.to_numpy(dtype=float)
    ratio[~np.isfinite(ratio)] = np.nan
    return float(np.nanmean(ratio)) if np.isfinite(ratio).any() else np.nan
