""":func:`write_backtest`: a backtest's tables as CSV files and a self-contained HTML page."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesclv._html import document, figure_html, meta_html, table_html, write_together
from bayesclv._version import __version__
from bayesclv.backtesting.result import BacktestResult

__all__ = ["write_backtest"]

#: The CSV files written beside the page: name -> the result's attribute (of the
#: baseline for names starting with ``baseline_``).
_TABLES = {
    "summary": "summary",
    "periods": "periods",
    "customers": "customers",
    "coverage": "coverage",
    "ranking": "ranking",
    "baseline_periods": "periods",
    "baseline_customers": "customers",
    "baseline_coverage": "coverage",
    "baseline_ranking": "ranking",
}


def _summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    def cell(value: float, low: float, high: float) -> str:
        if np.isnan(value):
            return ""
        text = f"{value:.3f}"
        if not np.isnan(low):
            text += f" [{low:.3f}, {high:.3f}]"
        return text

    table = pd.DataFrame(index=summary.index)
    table["nominal"] = [("" if np.isnan(v) else f"{v:.2f}") for v in summary["nominal"]]
    for name, label in (("bayesclv", "bayesclv"), ("baseline", "naive (Berger-Nasr)")):
        table[label] = [cell(summary.at[m, name], summary.at[m, f"{name}_low"],
                             summary.at[m, f"{name}_high"]) for m in summary.index]
    return table


def _predicted(rows: pd.DataFrame, name: str) -> list[str]:
    """``mean [pi_low, pi_high]`` cells of one predicted flow."""
    return [f"{m:,.0f} [{lo:,.0f}, {hi:,.0f}]" for m, lo, hi in
            zip(rows[f"{name}_mean"], rows[f"{name}_pi_low"], rows[f"{name}_pi_high"],
                strict=True)]


def _period_table(periods: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    base = periods[periods["segment"] == "all"]
    naive = baseline[baseline["segment"] == "all"]
    table = pd.DataFrame({
        "cutoff": base["cutoff"].to_numpy(),
        "period": base["calendar_period"].to_numpy(),
        "active: actual": base["active_actual"].map("{:,}".format).to_numpy(),
        "active: predicted [PI]": _predicted(base, "active"),
        "active: naive": naive["active_mean"].map("{:,.0f}".format).to_numpy(),
        "revenue: actual": base["revenue_actual"].map("{:,.0f}".format).to_numpy(),
        "revenue: predicted [PI]": _predicted(base, "revenue"),
        "revenue: naive": naive["revenue_mean"].map("{:,.0f}".format).to_numpy(),
    })
    return table


def _coverage_table(coverage: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    def cell(rows: pd.DataFrame) -> list[str]:
        return [f"{c:.1%} [{lo:.1%}, {hi:.1%}] {v}" for c, lo, hi, v in
                zip(rows["observed"], rows["observed_low"], rows["observed_high"],
                    rows["verdict"], strict=True)]

    return pd.DataFrame({
        "cutoff": coverage["cutoff"].to_numpy(),
        "segment": coverage["segment"].to_numpy(),
        "level": coverage["nominal"].map("{:.0%}".format).to_numpy(),
        "customers": coverage["n_customers"].map("{:,}".format).to_numpy(),
        "bayesclv": cell(coverage),
        "naive (Berger-Nasr)": cell(baseline),
    })


def write_backtest(result: BacktestResult, out: str | Path, *,
                   title: str = "Backtest of customer lifetime value",
                   source: str | None = None,
                   meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``backtest.html`` and the result's tables as CSV files into a folder.

    Parameters
    ----------
    result : BacktestResult
    out : str or pathlib.Path
        Folder (created if needed). Every file is written, or none (an earlier backtest
        in the folder is left untouched when anything fails).
    title : str
    source : str, optional
        Where the data came from, shown on the page.
    meta : mapping, optional
        More rows for the page's description table (model options, ...).

    Returns
    -------
    dict of pathlib.Path
        ``html`` and one path per table: ``summary``, ``periods``, ``customers``,
        ``coverage``, ``ranking`` and the same four with a ``baseline_`` prefix.
    """
    import matplotlib.pyplot as plt

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    baseline = result.baseline
    contents = {"summary": summary.to_csv()}
    for name, attribute in _TABLES.items():
        if name == "summary":
            continue
        source_result = baseline if name.startswith("baseline_") else result
        contents[name] = getattr(source_result, attribute).to_csv(index=False)
    try:
        figure = result.plot()
        picture = figure_html(figure, "predicted against actual survivors and revenue, "
                                      "calibration and lift")
    finally:
        plt.close("all")
    rows = {
        "data": source or "transaction log",
        "cutoffs": ", ".join(result.cutoffs),
        "horizon": f"{result.horizon} {result.unit}s after each cutoff",
        "customers scored": f"{len(result.customers):,} (customer x cutoff rows)",
        "interval levels": ", ".join(f"{level:.0%}" for level in result.levels),
        **(dict(meta) if meta else {}),
        "written": f"{_dt.datetime.now().isoformat(timespec='seconds')} by bayesclv "
                   f"{__version__}",
    }
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in result.notes)
    body = f"""
<h1>{html.escape(title)}</h1>
{meta_html(rows)}
{notes}
<h2>Summary</h2>
<p>The model fitted on each cutoff's data against what its customers did in the
{result.horizon} {result.unit}s after it, beside a naive Berger-Nasr model (constant
retention per segment, each customer's historical mean spend) fitted on the same data.
A calibrated model's {', '.join(f'{level:.0%}' for level in result.levels)} predictive
intervals hold that share of the customers' realised values; brackets are 95% binomial
intervals.</p>
{table_html(_summary_table(summary), index=True)}
{picture}
<h2>Active customers and revenue per {html.escape(result.unit)}</h2>
<p>The whole base; predictive intervals at {result.hdi_prob:.0%}. Per segment in
periods.csv.</p>
{table_html(_period_table(result.periods, baseline.periods))}
<h2>Coverage of the customers' value intervals</h2>
<p>Customers active at the cutoff; verdict "under" when the whole binomial interval is
below the level, "over" when above.</p>
{table_html(_coverage_table(result.coverage, baseline.coverage))}
<p class="note">Files beside this page: {', '.join(f'{n}.csv' for n in contents)}.</p>
"""
    contents["html"] = document(title, body)
    paths = {name: folder / f"{name}.csv" for name in contents if name != "html"}
    paths["html"] = folder / "backtest.html"
    write_together(paths, contents)
    return paths
