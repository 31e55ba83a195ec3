"""A fitted model's card: what it was fitted on, how, how well, and what it cannot do.

:func:`model_card` writes Markdown from the fitted state alone (nothing is recomputed
but the diagnostics table), for a model registry, a pull request or ``card.md`` beside a
saved model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from bayesclv._version import __version__
from bayesclv.diagnostics import ESS_MIN, RHAT_MAX
from bayesclv.priors import priors_table

__all__ = ["KNOWN_LIMITS", "CardMethods", "model_card"]

#: What every bayesclv model assumes, in words a reader of the card can check.
KNOWN_LIMITS = {
    "retention": (
        "Churn is contractual: a customer is a customer until it ends (an end date, or a "
        "label after a stretch without purchases); a customer labelled churned who comes "
        "back is not modelled, and with an inactivity rule churn is only seen that many "
        "periods late."),
    "spend": (
        "A customer is assumed to spend in every period it stays, at its own mean spend "
        "per active period: where customers skip periods, revenue and value are "
        "over-stated."),
    "stationarity": (
        "Stationarity: each segment's retention curve (by tenure) and spend are the same "
        "for every calendar period and cohort; trends, seasonality and shocks after the "
        "data are not in the intervals."),
    "unseen": (
        "A segment unseen in training is valued from the population of segments: a real "
        "answer with wide intervals."),
    "value": (
        "Values are residual (future) margin over the horizon, discounted per period, in "
        "the currency of the spend data."),
}
#: Which limits apply to which estimator.
_LIMITS_OF = {"CLVModel": list(KNOWN_LIMITS),
              "RetentionModel": ["retention", "stationarity", "unseen"],
              "SpendModel": ["spend", "stationarity", "unseen"]}


def _table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (index included)."""
    frame = frame.reset_index()
    cells = [[str(c) for c in frame.columns]] + [
        [_cell(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _families(model: Any) -> list[tuple[str, str]]:
    params = model.get_params(deep=False)
    if "retention" in params:
        return [("retention family", str(params["retention"])),
                ("spend family", str(params["spend"]))]
    kind = "retention" if hasattr(model, "retention_curve") else "spend"
    return [(f"{kind} family", str(params.get("family")))]


def _diagnostics(model: Any) -> list[str]:
    if getattr(model, "method", "nuts") == "map":
        return ["Point estimate (`method='map'`): no sampling, so no convergence "
                "diagnostics; intervals leave out parameter uncertainty."]
    table = model.diagnostics()
    rhat = float(table["r_hat"].max())
    ess_bulk, ess_tail = float(table["ess_bulk"].min()), float(table["ess_tail"].min())
    divergences = int(table.attrs.get("divergences", 0))
    steps = table.attrs.get("steps_per_draw_by_model") or {
        "model": table.attrs.get("steps_per_draw")}
    ok = rhat <= RHAT_MAX and min(ess_bulk, ess_tail) >= ESS_MIN and divergences == 0
    sampler = getattr(model, "sampler_", None) or getattr(
        getattr(model, "retention_model_", None), "sampler_", "not recorded")
    lines = [
        f"- sampler: {sampler}, "
        f"{table.attrs.get('chains')} chains x {table.attrs.get('draws')} draws",
        f"- largest R-hat: {rhat:.3f} (at most {RHAT_MAX})",
        f"- smallest bulk / tail ESS: {ess_bulk:,.0f} / {ess_tail:,.0f} "
        f"(at least {ESS_MIN})",
        f"- divergent transitions: {divergences}",
    ]
    if any(v is not None for v in steps.values()):
        lines.append("- leapfrog steps per draw: " + ", ".join(
            f"{k} {v:.1f}" for k, v in steps.items() if v is not None))
    lines.append("- verdict: " + ("converged by these checks" if ok else
                                  "**not converged by these checks**: see "
                                  "`model.diagnostics()` before trusting intervals"))
    return lines


def _priors(model: Any) -> str:
    priors = model.priors_
    if "retention" in priors and "spend" in priors:
        frames = [priors_table(priors[part]).assign(model=part) for part in
                  ("retention", "spend")]
        table = pd.concat(frames, ignore_index=True)
        table = table[["model", *[c for c in table.columns if c != "model"]]]
    else:
        table = priors_table(priors)
    return _table(table.set_index(table.columns[0]))


def model_card(model: Any, *, backtest: Any = None, source: str | None = None,
               segments: str | None = None, notes: Mapping[str, str] | None = None) -> str:
    """The model card of a fitted estimator, as Markdown.

    Parameters
    ----------
    model : CLVModel, RetentionModel or SpendModel
        Fitted.
    backtest : BacktestResult or pandas.DataFrame, optional
        A backtest of the model (:func:`bayesclv.backtest`) or its ``summary()``; its
        headline figures go in the card.
    source : str, optional
        Where the training data came from.
    segments : str, optional
        How the segments were made (a column, K-Means on RFM, ...).
    notes : mapping, optional
        More rows for the card's first table.
    """
    params = model.get_params(deep=False)
    lines = [f"# Model card: {type(model).__name__}", ""]
    about = {"library": f"bayesclv {__version__}",
             "data": source or "not recorded",
             "period unit": getattr(model, "period_", None) or "not recorded",
             "customers in the fit": f"{int(getattr(model, 'n_customers_in_', 0)):,}",
             "segments": f"{len(model.segments_)}: {', '.join(map(str, model.segments_))}"
                         + (f" ({segments})" if segments else ""),
             **dict(_families(model)),
             "method": str(params.get("method", "nuts")),
             "random seed": str(getattr(model, "seed_", params.get("random_seed")))}
    for name in ("horizon", "discount_rate", "margin", "cost_per_period", "hdi_prob"):
        if name in params:
            value = params[name]
            about[name.replace("_", " ")] = ("until the remaining survival is negligible"
                                             if name == "horizon" and value is None
                                             else str(value))
    about.update(dict(notes or {}))
    lines += ["## Summary", "", _table(pd.DataFrame({"value": about}).rename_axis("item")),
              ""]
    lines += ["## Priors", "", _priors(model), ""]
    lines += ["## Convergence", "", *_diagnostics(model), ""]
    lines += ["## Backtest", ""]
    if backtest is None:
        lines += ["No backtest recorded. `bayesclv.backtest(log, cutoff=..., horizon=...)` "
                  "fits the model on the log up to a past date and scores its forecasts "
                  "on what happened after it; pass the result to `card(backtest=...)`.", ""]
    else:
        summary = backtest.summary() if hasattr(backtest, "summary") else backtest
        attrs = getattr(summary, "attrs", {})
        if attrs.get("cutoffs"):
            lines += [f"Cutoffs {', '.join(attrs['cutoffs'])}, horizon {attrs.get('horizon')}"
                      f" {attrs.get('unit', 'period')}s.", ""]
        lines += [_table(summary), ""]
    limits = _LIMITS_OF.get(type(model).__name__, list(KNOWN_LIMITS))
    lines += ["## Known limits", "", *[f"- {KNOWN_LIMITS[key]}" for key in limits], ""]
    return "\n".join(lines)


class CardMethods:
    """Mixin of the three estimators: :meth:`card`."""

    def card(self, *, backtest: Any = None, source: str | None = None,
             segments: str | None = None, notes: Mapping[str, str] | None = None) -> str:
        """The model card, as Markdown: data, families and priors, convergence, limits.

        Parameters
        ----------
        backtest : BacktestResult or pandas.DataFrame, optional
            A backtest of this model (:func:`bayesclv.backtest`) or its ``summary()``.
        source : str, optional
            Where the training data came from.
        segments : str, optional
            How the segments were made.
        notes : mapping, optional
            More rows for the card's summary table.

        Returns
        -------
        str
            Markdown (``bayesclv fit`` writes it to ``card.md`` beside the model).

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.CLVModel(method="map", random_seed=0).fit(customers)
        >>> model.card().splitlines()[0]
        '# Model card: CLVModel'
        """
        check_is_fitted(self, "idata_")
        return model_card(self, backtest=backtest, source=source, segments=segments,
                          notes=notes)
