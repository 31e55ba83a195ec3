""":func:`backtest`: fit before a cutoff, score what happened after it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from bayesclv._params import interval_levels, level_label
from bayesclv.backtesting.baseline import BergerNasr
from bayesclv.backtesting.result import BacktestResult, CutoffTables
from bayesclv.backtesting.scores import coverage_table, ranking_scores
from bayesclv.backtesting.split import HoldoutSplit, cutoff_day, split_log
from bayesclv.data import period_alias
from bayesclv.estimator import CLVModel
from bayesclv.estimator._common import positive_int
from bayesclv.families import SPEND_FAMILIES
from bayesclv.valuation.forecast import PREDICTIVE_DRAWS, labels_with_total

__all__ = ["backtest"]

#: Interval levels scored unless given.
LEVELS = (0.5, 0.8, 0.9)


def backtest(
    transactions: pd.DataFrame,
    cutoff: Any = None,
    horizon: int | None = None,
    *,
    cutoffs: Sequence[Any] | None = None,
    period: str = "M",
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    end_col: str | None = None,
    inactivity: int | None = None,
    segment_col: str | None = None,
    segmenter: Any = None,
    model: Any = None,
    levels: Sequence[float] = LEVELS,
    predictive_draws: int = PREDICTIVE_DRAWS,
    refunds: str = "error",
    date_format: str | None = None,
) -> BacktestResult:
    """Fit a CLV model on a log up to a cutoff and score its forecasts on what came after.

    For each cutoff, the rows dated on or before it are summarised as
    :func:`bayesclv.data.summarize` would have on that day (customers first seen after it
    are left out, and the result says how many), the model is fitted to that table, and
    its predictions for the ``horizon`` periods after the cutoff are set against what the
    same customers did:

    * per segment and period, active customers and revenue: expected (mean, HDI) and
      predictive interval (:meth:`bayesclv.CLVModel.forecast`) against actual;
    * per customer, the residual value over the horizon: expected and predictive
      intervals at ``levels`` (:meth:`bayesclv.CLVModel.predict_interval`) against the
      realised value, with the coverage of each level (overall and per segment, with a
      binomial interval), the Spearman rank correlation and the share of realised value
      held by the predicted top 10%;
    * the same figures for a naive Berger–Nasr model fitted to the same table
      (:class:`~bayesclv.backtesting.BergerNasr`): constant retention per segment and each
      customer's historical mean spend.

    Parameters
    ----------
    transactions : pandas.DataFrame
        The whole transaction log, before and after the cutoff (as for
        :func:`bayesclv.data.summarize`): a shop's log with ``inactivity=k``, or a
        contract log (one row per payment) with each customer's end date in ``end_col``.
    cutoff : date-like or sequence of date-likes
        Last day of the training data; the last day of a ``period`` (e.g.
        ``"2024-06-30"`` for months). Several cutoffs (or ``cutoffs=``) run a
        rolling-origin backtest: one fit per cutoff, tables stacked with a ``cutoff``
        column.
    horizon : int
        Periods after the cutoff to forecast and score; the log must reach into the last.
    cutoffs : sequence of date-likes, optional
        The same as a sequence ``cutoff``; give one of the two.
    period, customer_col, date_col, amount_col, end_col, inactivity, segment_col, \
refunds, date_format
        As :func:`bayesclv.data.summarize` (exactly one of ``end_col`` and
        ``inactivity``).
    segmenter : transformer, optional
        A segmenter (e.g. :class:`~bayesclv.segmentation.KMeansSegmenter`), cloned and
        fitted on each cutoff's table before the model.
    model : CLVModel or sklearn.pipeline.Pipeline, optional
        The model to test, cloned for each cutoff (the object given is not fitted). A
        Pipeline's last step must be a :class:`~bayesclv.CLVModel`; its other steps are
        fitted on the table first. Defaults to ``CLVModel()``.
    levels : sequence of float, default=(0.5, 0.8, 0.9)
        Probabilities of the customers' central predictive intervals.
    predictive_draws : int, default=1000
        Simulations behind each predictive interval.

    Returns
    -------
    BacktestResult
        Tables ``periods``, ``customers``, ``coverage``, ``ranking``; the baseline's in
        ``baseline``; the fitted model in ``model`` (``models`` by cutoff);
        :meth:`~BacktestResult.summary` and :meth:`~BacktestResult.plot`.

    Raises
    ------
    ValueError
        For a cutoff that is not the last day of a period, a missing or non-positive
        horizon, a log that stops before the end of the horizon, both or neither of
        ``cutoff`` and ``cutoffs``, or a model that is not a CLVModel.
    DataValidationError
        As :func:`bayesclv.data.summarize`.

    Notes
    -----
    Timing follows the models (DESIGN §4.3): a customer is active in a holdout period
    when it has not ended by the end of it, and a payment counts at the end of a period
    the customer stays through. What a customer pays in the period its contract ends is
    reported apart (``revenue_uncounted``) rather than scored, and so are customers
    labelled churned at the cutoff who buy again (``active_returned``,
    ``revenue_returned``; with ``inactivity`` only): the forecast is of the customers
    active at the cutoff.

    Only the training rows reach the fit: changing, shuffling or adding rows dated after
    the cutoff (valid ones: the whole log is checked as :func:`~bayesclv.data.summarize`
    checks it) leaves the training table, and so the fit, bit-identical.

    The tables name the customer id ``customer_id`` and the segment ``segment``, as
    :func:`~bayesclv.data.summarize` does; leave the model's column options at their
    defaults. With both ``segment_col`` and ``segmenter``, the segmenter's segments are
    the ones fitted and scored. Each
    fit costs what one fit on the summarised table costs (sufficient statistics), so a
    rolling backtest over ``k`` cutoffs costs ``k`` fits, plus one summary of the log
    per cutoff.

    The binomial interval of a coverage figure treats customers as independent; they
    share the segment parameters, so with few segments the real uncertainty is wider.
    Repeat the backtest over cutoffs (or simulations) to see it.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.datasets import simulate_transactions
    >>> log, _ = simulate_transactions(600, n_periods=24, random_seed=1,
    ...                                active_probability=1.0)
    >>> result = bayesclv.backtest(
    ...     log, cutoff="2023-06-30", horizon=6, end_col="end_date",
    ...     segment_col="channel", predictive_draws=200,
    ...     model=bayesclv.CLVModel(method="map", random_seed=0))
    >>> result.summary().index[:3].tolist()
    ['coverage of 50% intervals', 'coverage of 80% intervals', 'coverage of 90% intervals']
    """
    alias, unit = period_alias(period)
    dates = _cutoffs(cutoff, cutoffs, alias, unit)
    if horizon is None:
        raise ValueError("horizon is required: the number of periods after the cutoff to "
                         "score (e.g. horizon=12).")
    template = _template(CLVModel() if model is None else model, segmenter)
    estimator = template.steps[-1][1] if isinstance(template, Pipeline) else template
    levels = interval_levels(levels)
    predictive_draws = positive_int(predictive_draws, "predictive_draws")
    spend = estimator.spend
    family = SPEND_FAMILIES.get(spend) if isinstance(spend, str) else None
    log_spend = family is not None and "mean_log_spend" in family.inputs
    options = {"period": alias, "customer_col": customer_col, "date_col": date_col,
               "amount_col": amount_col, "end_col": end_col, "inactivity": inactivity,
               "segment_col": segment_col, "refunds": refunds, "date_format": date_format,
               "log_spend": log_spend}
    # Every split first: a cutoff the log cannot score fails before any fit.
    splits = [split_log(transactions, date, horizon, **options) for date in dates]
    parts = [_one_cutoff(split, template, levels, predictive_draws) for split in splits]
    return BacktestResult.from_cutoffs(parts, levels)


def _cutoffs(cutoff: Any, cutoffs: Sequence[Any] | None, alias: str, unit: str
             ) -> list[pd.Timestamp]:
    """The cutoffs as days (each the last of a period), sorted, without repeats."""
    if (cutoff is None) == (cutoffs is None):
        raise ValueError("Give the cutoff date (cutoff='2024-06-30') or several "
                         "(cutoffs=[...]), not both" + (" and not neither."
                                                        if cutoff is None else "."))
    given = cutoffs if cutoffs is not None else cutoff
    if isinstance(given, (str, bytes, pd.Timestamp)) or not np.iterable(given):
        given = [given]
    days = [cutoff_day(c, alias, unit) for c in given]
    if not days:
        raise ValueError("cutoffs is empty: give at least one date.")
    if len(set(days)) != len(days):
        raise ValueError(f"cutoffs repeat a day: {[str(d.date()) for d in days]}.")
    return sorted(days)


def _template(model: Any, segmenter: Any) -> Any:
    """What each cutoff fits a clone of: the model, or a Pipeline ending in it."""
    if segmenter is not None:
        if isinstance(model, Pipeline):
            raise ValueError("Give the segmenter inside the Pipeline or as segmenter=, "
                             "not both.")
        model = Pipeline([("segmenter", segmenter), ("model", model)])
    estimator = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if not isinstance(estimator, CLVModel):
        raise ValueError(
            "model must be a bayesclv.CLVModel (or a Pipeline ending in one): the backtest "
            f"scores value and cash-flow forecasts; got {type(estimator).__name__}.")
    defaults = CLVModel().get_params()
    renamed = {name: value for name, value in estimator.get_params(deep=False).items()
               if name.endswith("_col") and value != defaults[name]}
    if renamed:
        raise ValueError(
            "The backtest summarises the log into the customer table's own column names "
            "(customer_id, segment, tenure, churned, n_periods_active, mean_spend): leave "
            f"the model's column options at their defaults (got {renamed}). Name the "
            "log's columns in backtest(customer_col=..., segment_col=..., ...) instead.")
    return model


def _one_cutoff(split: HoldoutSplit, template: Any, levels: list[float],
                predictive_draws: int) -> CutoffTables:
    fitted = clone(template)
    estimator = fitted.steps[-1][1] if isinstance(fitted, Pipeline) else fitted
    table = split.training
    if isinstance(fitted, Pipeline):
        # What Pipeline.fit does, keeping the transformed table instead of recomputing it.
        table = fitted[:-1].fit_transform(table)
    estimator.fit(table)
    horizon = split.horizon
    intervals = estimator.predict_interval(table, levels, horizon=horizon,
                                           predictive_draws=predictive_draws)
    forecast = estimator.forecast(table, periods=horizon, predictive_draws=predictive_draws)
    segment = intervals["segment"].astype(str).to_numpy()
    segments = list(pd.unique(segment))
    active_at_cutoff = ~table["churned"].to_numpy(dtype=bool)
    margin, cost = float(estimator.margin), float(estimator.cost_per_period)
    discount = (1.0 + float(estimator.discount_rate)) ** -np.arange(1, horizon + 1)
    counted = split.counted_revenue
    realised_value = ((margin * counted - cost * split.active) * discount).sum(axis=1)

    customers = pd.DataFrame({
        "customer_id": intervals["customer_id"].to_numpy(),
        "segment": segment,
        "active_at_cutoff": active_at_cutoff,
        "realised_revenue": counted.sum(axis=1),
        "revenue_uncounted": split.uncounted_revenue.sum(axis=1),
        "realised_value": realised_value,
    })
    # predict_interval's columns after value_mean: each level's low and high, in order
    model_customers = _valued(customers, intervals["value_mean"].to_numpy(),
                              intervals.iloc[:, 3:].to_numpy().T, levels)
    actual = _actual_flows(split, segment, segments)
    periods = _compared(forecast, actual, split)

    # The naive baseline, fitted to the same table.
    naive = BergerNasr.fit(table, segment)
    code = naive.codes(segment)
    spend = naive.customer_spend(table, code)
    mean, bounds = naive.customer_values(
        spend, code, active_at_cutoff, horizon, margin=margin, cost_per_period=cost,
        discount_rate=float(estimator.discount_rate), levels=levels)
    naive_customers = _valued(customers, mean, bounds, levels)
    seed = estimator.random_seed if isinstance(estimator.random_seed, (int, np.integer)) else 0
    flows = naive.simulate_flows(spend, code, active_at_cutoff, horizon, predictive_draws,
                                 np.random.SeedSequence([int(seed), split.cutoff.toordinal()]))
    naive_periods = _baseline_periods(flows, naive.segments, float(estimator.hdi_prob),
                                      margin, cost)
    naive_periods = _compared(naive_periods, actual, split)

    def scored(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
        coverage = coverage_table(frame, levels, segments)
        alive = frame["active_at_cutoff"].to_numpy(dtype=bool)
        ranking = ranking_scores(frame["value_mean"].to_numpy()[alive],
                                 frame["realised_value"].to_numpy()[alive])
        return coverage, ranking

    return CutoffTables(
        split=split, model=fitted, baseline=naive,
        periods=periods, customers=model_customers, scores=scored(model_customers),
        baseline_periods=naive_periods, baseline_customers=naive_customers,
        baseline_scores=scored(naive_customers), hdi_prob=float(estimator.hdi_prob),
    )


def _valued(customers: pd.DataFrame, mean: np.ndarray, bounds: np.ndarray,
            levels: list[float]) -> pd.DataFrame:
    """The customers with a model's expected value and its interval bounds per level.

    ``bounds`` is (2 x levels, customers): each level's low, then high. The widest level's
    bounds come first, unsuffixed, as ``value_pi_low`` and ``value_pi_high``.
    """
    out = customers.copy()
    out["value_mean"] = mean
    out["value_pi_low"], out["value_pi_high"] = bounds[-2], bounds[-1]
    for k, level in enumerate(levels):
        out[f"value_pi{level_label(level)}_low"] = bounds[2 * k]
        out[f"value_pi{level_label(level)}_high"] = bounds[2 * k + 1]
    return out


def _segment_periods(labels: list[str], horizon: int) -> pd.DataFrame:
    """One row per segment label and holdout period, segments outermost."""
    return pd.DataFrame({"segment": np.repeat(labels, horizon),
                         "period": np.tile(np.arange(1, horizon + 1), len(labels))})


def _actual_flows(split: HoldoutSplit, segment: np.ndarray, segments: list[str]
                  ) -> pd.DataFrame:
    """Actual active customers and revenue per segment (and the base) and period."""
    labels = labels_with_total(segments)
    code = pd.Index(segments).get_indexer(segment)
    onehot = np.zeros((len(segment), len(segments)))
    onehot[np.arange(len(segment)), code] = 1.0
    # The forecast is of the customers active at the cutoff; those labelled churned who
    # came back (inactivity) are counted apart.
    alive = ~split.training["churned"].to_numpy(dtype=bool)[:, None]
    flows = {"active_actual": onehot.T @ (split.active & alive),
             "revenue_actual": onehot.T @ (split.counted_revenue * alive),
             "revenue_uncounted": onehot.T @ (split.uncounted_revenue * alive),
             "active_returned": onehot.T @ (split.active & ~alive),
             "revenue_returned": onehot.T @ (split.revenue * ~alive)}
    if len(labels) > len(segments):
        flows = {k: np.vstack([v, v.sum(axis=0)]) for k, v in flows.items()}
    table = _segment_periods(labels, split.horizon)
    for name, values in flows.items():
        table[name] = values.ravel()
    for name in ("active_actual", "active_returned"):
        table[name] = table[name].round().astype(np.int64)
    return table


def _baseline_periods(flows: dict[str, np.ndarray], segments: list[str], prob: float,
                      margin: float, cost: float) -> pd.DataFrame:
    labels = labels_with_total(segments)
    if len(labels) > len(segments):
        flows = {k: np.concatenate([v, v.sum(axis=-2, keepdims=True)], axis=-2)
                 for k, v in flows.items()}
    table = _segment_periods(labels, flows["active"].shape[-1])
    flows["margin"] = margin * flows["revenue"] - cost * flows["active"]
    flows["realised_margin"] = (margin * flows["realised_revenue"]
                                - cost * flows["realised_active"])
    for name in ("active", "revenue", "margin"):
        table[f"{name}_mean"] = flows[name].ravel()
        interval = array_stats.hdi(np.moveaxis(flows[f"realised_{name}"], 0, -1), prob,
                                   axis=-1)
        table[f"{name}_pi_low"] = interval[..., 0].ravel()
        table[f"{name}_pi_high"] = interval[..., 1].ravel()
    return table


def _compared(predicted: pd.DataFrame, actual: pd.DataFrame, split: HoldoutSplit
              ) -> pd.DataFrame:
    """Predicted flows beside the actual ones, with the calendar period.

    The comparison columns come first, then the rest of the predicted ones.
    """
    table = predicted.merge(actual, on=["segment", "period"], how="left", validate="1:1")
    table.insert(2, "calendar_period", np.asarray(split.periods)[table["period"] - 1])
    first = ["segment", "period", "calendar_period", "active_actual", "active_mean",
             "active_pi_low", "active_pi_high", "revenue_actual", "revenue_mean",
             "revenue_pi_low", "revenue_pi_high"]
    return table[first + [c for c in table.columns if c not in first]]
