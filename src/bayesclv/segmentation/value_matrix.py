"""The customer value matrix: current value x future value, with posterior probabilities.

Each customer is placed in one of four quadrants by their **current value** (what they
have already brought) and their **future value** (the posterior residual CLV of a fitted
:class:`bayesclv.CLVModel`). The current value is observed; the future value is
uncertain, so each customer gets the posterior probability of each quadrant, computed
from the CLV draws chunk by chunk (never a draws x customers matrix in memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from bayesclv.data.columns import _numeric
from bayesclv.exceptions import DataValidationError

__all__ = ["VALUE_QUADRANTS", "value_matrix"]

#: The quadrants of :func:`value_matrix`, in order, with (current high?, future high?)
#: and what each means.
VALUE_QUADRANTS: dict[str, tuple[bool, bool, str]] = {
    "star": (True, True, "high current and high future value: retain"),
    "rising": (False, True, "low current but high future value: develop"),
    "fading": (True, False, "high current but low future value: maintain, win back"),
    "low": (False, False, "low current and low future value: serve at low cost"),
}


def unpipe(model: Any, customers: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """A fitted CLV model and the table it predicts on, from a model or a Pipeline.

    A :class:`sklearn.pipeline.Pipeline` ending in a :class:`bayesclv.CLVModel` is
    split: ``customers`` goes through the transformers (e.g. a segmenter) and the final
    step is returned.

    Parameters
    ----------
    model : CLVModel or sklearn.pipeline.Pipeline
        Fitted.
    customers : pandas.DataFrame
        Customer table as given to the model (or to the pipeline).

    Returns
    -------
    model : CLVModel
    customers : pandas.DataFrame
        The (transformed) customer table.

    Raises
    ------
    TypeError
        If ``model`` is not a CLV model (nor a Pipeline ending in one).
    """
    if hasattr(model, "steps") and hasattr(model, "_final_estimator"):
        if len(model.steps) > 1:
            customers = model[:-1].transform(customers)
        model = model[-1]
    if not (hasattr(model, "customer_valuation") and hasattr(model, "predict")):
        raise TypeError("Expected a fitted bayesclv.CLVModel (or a Pipeline ending in one); "
                        f"got {type(model).__name__}.")
    return model, customers


def _thresholds(threshold: Any) -> tuple[Any, Any]:
    def ok(value: Any) -> bool:
        return value == "median" if isinstance(value, str) else (
            isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value))

    if isinstance(threshold, str):
        pair = (threshold, threshold)
    elif isinstance(threshold, Sequence) and len(threshold) == 2:
        pair = tuple(threshold)
    else:
        pair = None
    if pair is None or not all(ok(v) for v in pair):
        raise ValueError(
            "threshold must be 'median' or a pair (current, future) of finite numbers or "
            f"'median'; got {threshold!r}."
        )
    return pair


def value_matrix(
    model: Any,
    customers: pd.DataFrame,
    *,
    current_col: str | None = None,
    threshold: str | tuple[float | str, float | str] = "median",
    map_draws: int = 200,
) -> pd.DataFrame:
    """Place customers on the value matrix (current x future value) with probabilities.

    Parameters
    ----------
    model : CLVModel or sklearn.pipeline.Pipeline
        A fitted :class:`bayesclv.CLVModel`, or a Pipeline ending in one (``customers``
        is then passed through its transformers first).
    customers : pandas.DataFrame
        Customer table (DESIGN §3) as the model predicts on it.
    current_col : str, optional
        Column holding each customer's current value. By default the historical margin
        ``margin * mean_spend * n_periods_active - cost_per_period * (tenure - entry)``
        (the model's ``margin`` and ``cost_per_period``, undiscounted, over the observed
        periods), the past counterpart of the future value.
    threshold : "median" or (current, future), default="median"
        Where "high" starts. ``"median"`` uses the median current value and the median
        posterior mean future value of ``customers``; a pair gives each threshold as a
        number (in currency) or ``"median"``. A value is high when it is strictly above
        its threshold.
    map_draws : int, default=200
        When the model has a single posterior sample (``method="map"``), the future
        value is drawn this many times from each customer's conditional spend posterior
        under the MAP parameters, so the probabilities carry the uncertainty about the
        customer (not about the parameters). ``1`` keeps the single draw (probabilities
        0 or 1). Ignored for a sampled posterior.

    Returns
    -------
    pandas.DataFrame
        One row per input customer, in input order, with the input index: the customer
        id, ``segment``, ``current_value``, ``future_value`` (posterior mean residual
        CLV, as ``clv_mean`` of :meth:`~bayesclv.CLVModel.predict`), ``prob_high_future``
        (posterior probability that the future value is above its threshold),
        ``prob_star``, ``prob_rising``, ``prob_fading``, ``prob_low`` (posterior
        probability of each quadrant; they sum to 1), ``quadrant`` (categorical, the
        most probable quadrant; a tie goes to the higher future value) and
        ``quadrant_prob`` (its probability). ``attrs`` holds ``current_threshold``,
        ``future_threshold``, ``n_draws`` (draws behind the probabilities) and
        ``period``.

    Raises
    ------
    TypeError
        If ``model`` is not a CLV model.
    sklearn.exceptions.NotFittedError
        If the model is not fitted.
    ValueError
        For an invalid ``threshold`` or ``map_draws``.
    DataValidationError
        For an invalid customer table, a missing ``current_col`` or NaN, infinite or
        non-numeric current values (the message names the rows).

    Notes
    -----
    The quadrants (:data:`VALUE_QUADRANTS`):

    ==================  ======================  ===========================
    current / future    high future value       low future value
    ==================  ======================  ===========================
    high current value  ``star`` (retain)       ``fading`` (maintain)
    low current value   ``rising`` (develop)    ``low`` (serve at low cost)
    ==================  ======================  ===========================

    The current value is known, so only the future axis is uncertain: for a customer
    with a high current value, ``prob_star = P(future > threshold)`` and
    ``prob_fading = 1 - prob_star``, and the low-current quadrants have probability 0.
    The probability is the share of posterior draws above the threshold; the draws are
    streamed in chunks of customers (:meth:`CustomerValuation.iter_values`), so memory
    stays bounded for any number of customers. Churned customers have future value 0.

    Examples
    --------
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
    >>> matrix = bayesclv.value_matrix(model, customers)
    >>> len(matrix) == len(customers), sorted(matrix["quadrant"].cat.categories)
    (True, ['fading', 'low', 'rising', 'star'])
    """
    model, customers = unpipe(model, customers)
    current_rule, future_rule = _thresholds(threshold)
    if isinstance(map_draws, bool) or not isinstance(map_draws, (int, np.integer)) \
            or map_draws < 1:
        raise ValueError(f"map_draws must be an int >= 1; got {map_draws!r}.")
    data, _, valuation = model.customer_valuation(customers)
    if valuation.n_samples == 1 and map_draws > 1:
        valuation = valuation.repeated(int(map_draws))

    if current_col is None:
        current = (float(model.margin) * data.mean_spend * data.n_periods_active
                   - float(model.cost_per_period) * (data.tenure - data.entry))
    else:
        if current_col not in customers.columns:
            raise DataValidationError(
                f"Column {current_col!r} (current_col) missing from the customer table; it "
                f"has columns {list(customers.columns)}."
            )
        current = _numeric(customers, current_col, data.customer_ids)

    n = data.n_customers
    future = np.empty(n)
    size = valuation.chunk_size()
    for start in range(0, n, size):
        sl = slice(start, min(start + size, n))
        future[sl] = valuation.expected_values(sl).mean(axis=0)
    current_threshold = float(np.median(current)) if current_rule == "median" \
        else float(current_rule)
    future_threshold = float(np.median(future)) if future_rule == "median" \
        else float(future_rule)

    prob_high = np.empty(n)
    for sl, values in valuation.iter_values():
        prob_high[sl] = (values > future_threshold).mean(axis=0)

    high_current = current > current_threshold
    probs = np.zeros((n, len(VALUE_QUADRANTS)))
    for j, (current_high, future_high, _) in enumerate(VALUE_QUADRANTS.values()):
        p_future = prob_high if future_high else 1.0 - prob_high
        probs[:, j] = np.where(high_current == current_high, p_future, 0.0)
    best = probs.argmax(axis=1)

    out = pd.DataFrame(index=data.index)
    out[model.customer_col] = data.customer_ids.to_numpy()
    out["segment"] = data.segment
    out["current_value"] = current
    out["future_value"] = future
    out["prob_high_future"] = prob_high
    for j, name in enumerate(VALUE_QUADRANTS):
        out[f"prob_{name}"] = probs[:, j]
    out["quadrant"] = pd.Categorical.from_codes(best, categories=list(VALUE_QUADRANTS))
    out["quadrant_prob"] = probs[np.arange(n), best]
    out.attrs.update(current_threshold=current_threshold, future_threshold=future_threshold,
                     n_draws=int(valuation.n_samples), period=model.period_)
    return out
