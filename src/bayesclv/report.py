"""A self-contained HTML report of a fitted CLV model, with its tables as CSV files.

:func:`write_report` writes ``report.html`` (tables as HTML, figures embedded as base64
PNG images, styles inline: no external resource, so the file can be e-mailed or opened
offline), ``predictions.csv`` (one row per customer), ``segment_report.csv`` and
``forecast.csv`` (the base's cash flows per segment and future period).
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesclv._html import document, figure_html, meta_html, table_html, write_together
from bayesclv._version import __version__
from bayesclv.segmentation.strategy import SEGMENT_STRATEGIES
from bayesclv.segmentation.value_matrix import VALUE_QUADRANTS, unpipe, value_matrix
from bayesclv.valuation.programmes import rank_programmes

__all__ = ["write_report"]

def _money(value: float) -> str:
    return f"{value:,.0f}"


def _interval(low: float, high: float, fmt: Callable[[float], str]) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def _segment_table(report: pd.DataFrame) -> pd.DataFrame:
    ordered = report.sort_values("value_rank", kind="stable")
    table = pd.DataFrame(index=ordered.index)
    table["value rank"] = ordered["value_rank"]
    table["customers"] = ordered["n_customers"].map("{:,}".format)
    table["active"] = ordered["n_active"].map("{:,}".format)
    table["CLV per customer"] = ordered["clv_per_customer_mean"].map(_money)
    table["CLV per customer HDI"] = [
        _interval(lo, hi, _money) for lo, hi in
        zip(ordered["clv_per_customer_hdi_low"], ordered["clv_per_customer_hdi_high"],
            strict=True)]
    table["segment total"] = ordered["total_mean"].map(_money)
    table["total HDI"] = [_interval(lo, hi, _money) for lo, hi in
                          zip(ordered["total_hdi_low"], ordered["total_hdi_high"], strict=True)]
    table["share of value"] = ordered["share_mean"].map("{:.1%}".format)
    table["share HDI"] = [
        _interval(lo, hi, "{:.1%}".format) for lo, hi in
        zip(ordered["share_hdi_low"], ordered["share_hdi_high"], strict=True)]
    table["strategy"] = ordered["strategy"]
    return table


def _quadrant_table(matrix: pd.DataFrame) -> pd.DataFrame:
    counts = matrix["quadrant"].value_counts().reindex(list(VALUE_QUADRANTS), fill_value=0)
    expected = {name: matrix[f"prob_{name}"].sum() for name in VALUE_QUADRANTS}
    future = matrix.groupby("quadrant", observed=False)["future_value"].sum()
    total_future = float(matrix["future_value"].sum())
    table = pd.DataFrame(index=pd.Index(list(VALUE_QUADRANTS), name="quadrant"))
    table["meaning"] = [VALUE_QUADRANTS[q][2] for q in VALUE_QUADRANTS]
    table["customers (most probable)"] = counts.map("{:,}".format)
    table["expected customers"] = [f"{expected[q]:,.1f}" for q in VALUE_QUADRANTS]
    table["mean probability"] = [
        f"{matrix.loc[matrix['quadrant'] == q, 'quadrant_prob'].mean():.0%}"
        if counts[q] else "" for q in VALUE_QUADRANTS]
    table["future value"] = [_money(future.get(q, 0.0)) for q in VALUE_QUADRANTS]
    table["share of future value"] = [
        f"{future.get(q, 0.0) / total_future:.1%}" if total_future else ""
        for q in VALUE_QUADRANTS]
    return table


def _top_customers(predictions: pd.DataFrame, customer_col: str, top: int) -> pd.DataFrame:
    best = predictions.sort_values("clv_mean", ascending=False, kind="stable").head(top)
    table = pd.DataFrame({
        "customer": best[customer_col].astype(str).to_numpy(),
        "segment": best["segment"].astype(str).to_numpy(),
        "CLV (mean)": best["clv_mean"].map(_money).to_numpy(),
        "CLV HDI": [_interval(lo, hi, _money) for lo, hi in
                    zip(best["clv_hdi_low"], best["clv_hdi_high"], strict=True)],
        "P(next period retained)": best["retention_next"].map("{:.0%}".format).to_numpy(),
        "quadrant": best["quadrant"].astype(str).to_numpy(),
        "P(quadrant)": best["quadrant_prob"].map("{:.0%}".format).to_numpy(),
    })
    table.index = np.arange(1, len(table) + 1)
    return table


def _forecast_table(forecast: pd.DataFrame) -> pd.DataFrame:
    """The whole base's rows of a forecast, formatted."""
    rows = forecast[forecast["segment"] == "all"]
    table = pd.DataFrame({"period": rows["period"].to_numpy()})
    for name, fmt in (("active", "{:,.0f}".format), ("revenue", _money), ("margin", _money)):
        table[f"{name} (mean)"] = rows[f"{name}_mean"].map(fmt).to_numpy()
        table[f"{name} HDI"] = [_interval(lo, hi, fmt) for lo, hi in
                                zip(rows[f"{name}_hdi_low"], rows[f"{name}_hdi_high"],
                                    strict=True)]
        table[f"{name} predictive"] = [_interval(lo, hi, fmt) for lo, hi in
                                       zip(rows[f"{name}_pi_low"], rows[f"{name}_pi_high"],
                                           strict=True)]
    return table


def _programme_table(ranked: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "segment": ranked["segment"].to_numpy(),
        "rank": ranked["rank"].to_numpy(),
        "programme": ranked["programme"].to_numpy(),
        "gain (mean)": ranked["delta_mean"].map(_money).to_numpy(),
        "gain HDI": [_interval(lo, hi, _money) for lo, hi in
                     zip(ranked["delta_hdi_low"], ranked["delta_hdi_high"], strict=True)],
        "cost": [_money(c) if np.isfinite(c) else "" for c in ranked["cost"]],
        "gain per unit cost": [f"{g:,.2f}" if np.isfinite(g) else ""
                               for g in ranked["gain_per_cost"]],
        "P(gain > cost)": [f"{p:.0%}" if np.isfinite(p) else ""
                           for p in ranked["prob_exceeds_cost"]],
    })


def write_report(
    model: Any,
    customers: pd.DataFrame,
    out_dir: str | Path,
    *,
    title: str = "Customer lifetime value report",
    source: str | None = None,
    segmenter: str | None = None,
    strategy: Mapping[Any, str] | Callable[[pd.Series], str] | None = None,
    top: int = 20,
    forecast_periods: int | None = 12,
    scenarios: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Path]:
    """Write a self-contained HTML report and CSV tables for a fitted CLV model.

    Parameters
    ----------
    model : CLVModel or sklearn.pipeline.Pipeline
        Fitted (a Pipeline ending in a CLVModel transforms ``customers`` first).
    customers : pandas.DataFrame
        Customer table to value (usually the training table).
    out_dir : str or pathlib.Path
        Folder for the files; created if missing, files in it overwritten.
    title : str, default="Customer lifetime value report"
    source : str, optional
        Where the data came from (shown in the report).
    segmenter : str, optional
        How the segments were made (shown in the report).
    strategy : mapping, callable or None, default=None
        Passed to :meth:`bayesclv.CLVModel.segment_report`.
    top : int, default=20
        Number of most valuable customers listed.
    forecast_periods : int or None, default=12
        Periods of the cash-flow forecast section (:meth:`~bayesclv.CLVModel.forecast`);
        ``None`` leaves it out.
    scenarios : mapping of str to pandas.DataFrame, optional
        Retention programmes (name -> :meth:`~bayesclv.CLVModel.scenario` table): a
        "programmes" table ranks them by expected gain per unit of cost, and the
        segment table names each segment's best.

    Returns
    -------
    dict of str to pathlib.Path
        ``"html"``, ``"predictions"``, ``"segment_report"`` and, with a forecast,
        ``"forecast"``: the files written. ``predictions.csv`` has the columns of
        :meth:`~bayesclv.CLVModel.predict` and those of :func:`bayesclv.value_matrix`
        (current value, quadrant probabilities); ``segment_report.csv`` those of
        :meth:`~bayesclv.CLVModel.segment_report`; ``forecast.csv`` those of
        :meth:`~bayesclv.CLVModel.forecast`.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'bayesclv[plot]'``).

    Examples
    --------
    >>> import tempfile, bayesclv
    >>> from bayesclv.report import write_report
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
    >>> paths = write_report(model, customers, tempfile.mkdtemp())
    >>> sorted(paths)
    ['forecast', 'html', 'predictions', 'segment_report']
    """
    from bayesclv.plotting import (
        plot_clv_distribution,
        plot_forecast,
        plot_retention,
        plot_value_matrix,
    )

    model, customers = unpipe(model, customers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictions = model.predict(customers)
    report = model.segment_report(customers, strategy=strategy, programmes=scenarios)
    forecast = (None if forecast_periods is None
                else model.forecast(customers, periods=forecast_periods))
    matrix = value_matrix(model, customers)
    extra = [c for c in matrix.columns if c not in predictions.columns]
    # By position: both are one row per input row, in input order, whatever the index
    # (a join on a repeated index would multiply rows).
    table = pd.concat([predictions.reset_index(drop=True),
                       matrix[extra].reset_index(drop=True)], axis=1)

    paths = {"html": out / "report.html", "predictions": out / "predictions.csv",
             "segment_report": out / "segment_report.csv"}
    if forecast is not None:
        paths["forecast"] = out / "forecast.csv"

    period = model.period_
    n_draws = int(model.idata_["posterior"].sizes["chain"]
                  * model.idata_["posterior"].sizes["draw"])
    horizon = "until negligible" if model.horizon is None else f"{model.horizon} {period}s"
    meta = {
        "data": source or "(in memory)",
        "customers": f"{len(predictions):,} ({int(report['n_active'].sum()):,} active)",
        "segments": f"{len(report)}" + (f" ({segmenter})" if segmenter else ""),
        "period": period,
        "model": f"{model.retention} retention + {model.spend} spend, hierarchical by segment",
        "fit": ("MAP point estimate (method='map')" if model.method == "map"
                else f"NUTS, {model.chains} chains x {model.draws} draws"),
        "horizon": horizon,
        "discount rate": f"{model.discount_rate:g} per {period}",
        "margin": f"{model.margin:g}",
        "cost per period": f"{model.cost_per_period:g}",
        "intervals": f"{model.hdi_prob:.0%} highest-density intervals",
        "total residual value": f"{report['total_mean'].sum():,.0f}",
        "bayesclv": __version__,
        "generated": _dt.date.today().isoformat(),
    }
    notes = []
    if n_draws == 1:
        notes.append(
            "This is a MAP fit: one posterior point. Its intervals (per customer and per "
            "segment) and the value-matrix probabilities come from "
            f"{matrix.attrs['n_draws']} draws of each customer's spend at that point: "
            "they describe what is uncertain about the customers, not about the model's "
            "parameters. Fit with NUTS for honest parameter uncertainty.")
    if segmenter and "RFM" in segmenter:
        notes.append(
            "Segment names describe past behaviour (recency, frequency and monetary value "
            "at the end of observation); the value rank and the strategy come from each "
            "segment's predicted residual value. A segment named for high past value can "
            "rank low, e.g. big spenders who have become inactive.")
    strategies = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                         for k, v in SEGMENT_STRATEGIES.items())
    figures = {
        "clv": figure_html(plot_clv_distribution(model, customers),
                            "CLV per customer and segment totals"),
        "matrix": figure_html(plot_value_matrix(model, customers, matrix=matrix),
                               "value matrix"),
        "retention": figure_html(plot_retention(model, customers),
                                  "retention curves per segment"),
    }
    sections = []
    if forecast is not None:
        fan = figure_html(plot_forecast(forecast, "margin"), "margin per future period")
        sections.append(f"""
<h2>Forecast</h2>
<p>The whole base's cash flows in each of the next {forecast_periods} {period}s: the
expected value with its HDI (what is uncertain about the parameters and each customer's
rates) and the predictive interval of what will actually come in (also who churns and
what each period's spend turns out to be). Per segment in forecast.csv.</p>
{table_html(_forecast_table(forecast))}
{fan}""")
    if scenarios:
        sections.append(f"""
<h2>Programmes</h2>
<p>Retention programmes ranked per segment by posterior expected gain per unit of cost;
the gain is a difference within each posterior draw, so its interval is honest.</p>
{table_html(_programme_table(rank_programmes(scenarios)))}""")
    body = f"""
<h1>{html.escape(title)}</h1>
{meta_html(meta)}
{''.join(f'<p class="note">{html.escape(n)}</p>' for n in notes)}
<h2>Value by segment</h2>
<p>Residual lifetime value (future margin, discounted) per segment, ordered by CLV per
customer. Totals and shares are computed within each posterior draw, so their intervals
are honest.</p>
{table_html(_segment_table(report))}
<p class="note">Default strategies (unless given): </p><ul class="note">{strategies}</ul>
{figures["clv"]}
<h2>Value matrix</h2>
<p>Current value (historical margin) against future value (posterior residual CLV).
Thresholds: current value above
{_money(matrix.attrs['current_threshold'])}, future value above
{_money(matrix.attrs['future_threshold'])} (medians unless given). Each customer has the
posterior probability of each quadrant.</p>
{table_html(_quadrant_table(matrix), "quadrants")}
{figures["matrix"]}
<h2>Most valuable customers</h2>
{table_html(_top_customers(table, model.customer_col, top), index=True)}
<h2>Retention</h2>
<p>Posterior survival curves per segment over the life table of the data.</p>
{figures["retention"]}
{"".join(sections)}
<p class="note">Files beside this report: predictions.csv (one row per customer),
segment_report.csv (one row per segment){", forecast.csv (one row per segment and period)"
                                          if forecast is not None else ""}.</p>
"""
    page = document(title, body)
    contents = {"predictions": table.to_csv(index=False),
                "segment_report": report.to_csv(), "html": page}
    if forecast is not None:
        contents["forecast"] = forecast.to_csv(index=False)
    write_together(paths, contents)
    return paths
