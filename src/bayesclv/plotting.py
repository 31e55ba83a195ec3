"""Plots: model checks, CLV distributions and the value matrix (matplotlib, imported lazily).

Every function returns the matplotlib object it drew on, so callers can restyle or save it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats

from bayesclv.data import life_table, risk_set_table, segment_codes, validate_customers

__all__ = ["plot_churn_check", "plot_clv_distribution", "plot_forecast",
           "plot_prior_retention", "plot_retention", "plot_value_matrix"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'bayesclv[plot]'."
        ) from error
    return plt


def _grid(n_panels: int, axes: Any, width: float = 4.0, height: float = 3.0,
          sharey: bool = True) -> tuple[Any, list]:
    plt = _pyplot()
    if axes is not None:
        flat = list(np.ravel(axes))
        if len(flat) < n_panels:
            raise ValueError(f"Need {n_panels} axes, got {len(flat)}.")
        return flat[0].figure, flat
    n_cols = min(n_panels, 3)
    n_rows = -(-n_panels // n_cols)
    figure, grid = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows),
                                squeeze=False, sharey=sharey, layout="constrained")
    flat = list(grid.ravel())
    for extra in flat[n_panels:]:
        extra.set_visible(False)
    return figure, flat[:n_panels]


def _retention_model(model: Any) -> Any:
    return getattr(model, "retention_model_", model)


def plot_retention(
    model: Any, customers: pd.DataFrame | None = None, *, periods: int | None = None,
    segments: Sequence[str] | None = None, hdi_prob: float = 0.9, axes: Any = None,
) -> Any:
    """Posterior survival curves with HDI bands, over the empirical life table, per segment.

    The empirical curve is the life-table (Kaplan–Meier) estimate from customers at risk
    in each period (see :meth:`bayesclv.RetentionModel.life_table`), so left truncation
    and right censoring are respected; markers are sized by the number at risk.

    Parameters
    ----------
    model : RetentionModel or CLVModel
        Fitted.
    customers : pandas.DataFrame, optional
        Defaults to the training data.
    periods : int, optional
        Last period drawn; defaults to the longest tenure in the life table.
    segments : sequence of str, optional
        Defaults to the segments present in ``customers``.
    hdi_prob : float, default=0.9
    axes : array of matplotlib Axes, optional
        One per segment; created if not given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    retention = _retention_model(model)
    table = retention.life_table(customers)
    present = list(dict.fromkeys(table.index.get_level_values("segment")))
    segments = present if segments is None else list(segments)
    last = int(table.index.get_level_values("period").max()) if periods is None else periods
    curve = retention.retention_curve(periods=last, segments=segments)
    return _survival_panels(curve, table, hdi_prob, f"{retention.family} posterior",
                            retention.period_, axes)


def _survival_panels(curve: Any, table: pd.DataFrame, hdi_prob: float, label: str,
                     period_name: str, axes: Any, n_curves: int = 0) -> Any:
    """Survival draws (band, mean, a few single curves) over the life table, per segment."""
    segments = list(curve["segment"].to_numpy())
    present = set(table.index.get_level_values("segment"))
    draws = curve.stack(sample=("chain", "draw")).transpose("segment", "period", "sample")
    band = array_stats.hdi(draws.to_numpy(), hdi_prob, axis=-1)
    mean = draws.mean("sample").to_numpy()
    t = curve["period"].to_numpy()
    figure, flat = _grid(len(segments), axes)
    for i, (segment, ax) in enumerate(zip(segments, flat, strict=True)):
        if n_curves:
            ax.plot(t, draws.to_numpy()[i, :, :n_curves], color="C0", alpha=0.12, lw=0.8)
        ax.fill_between(t, band[i, :, 0], band[i, :, 1], alpha=0.3, color="C0",
                        label=f"{hdi_prob:.0%} HDI")
        ax.plot(t, mean[i], color="C0", label=f"{label} mean")
        if segment in present:
            empirical = table.loc[segment]
            periods_seen = np.concatenate([[0], empirical.index.to_numpy()])
            survival = np.concatenate([[1.0], empirical["survival"].to_numpy()])
            ax.step(periods_seen, survival, where="post", color="k", lw=1, label="life table")
            sizes = 10 + 40 * empirical["at_risk"] / empirical["at_risk"].max()
            ax.scatter(empirical.index, empirical["survival"], s=sizes, color="k", zorder=3)
        ax.set_title(str(segment))
        ax.set_xlabel(f"tenure ({period_name}s)")
        ax.set_ylim(0, 1.02)
    flat[0].set_ylabel("S(t): share still customers")
    flat[0].legend(loc="lower left", fontsize="small")
    return figure


def plot_prior_retention(
    model: Any, customers: pd.DataFrame, *, periods: int | None = None, draws: int = 300,
    hdi_prob: float = 0.9, n_curves: int = 40, axes: Any = None,
) -> Any:
    """Retention curves the priors imply, before fitting, over the empirical life table.

    A prior predictive check: the model's family and priors (defaults or the ones the
    model was given) are sampled without the data (see
    :meth:`bayesclv.RetentionModel.sample_prior_predictive`); the band, the mean and
    ``n_curves`` single draws are drawn for each segment of ``customers``, with the
    life-table estimate of the data on top. A prior that leaves the observed curve in a
    region of almost no prior mass will fight the data; one that piles up on curves no
    business has seen slows the sampler for nothing.

    Parameters
    ----------
    model : RetentionModel or CLVModel
        Fitted or not; only its family, priors and seed are used.
    customers : pandas.DataFrame
        Customer table (segments, the priors' scale, and the life table drawn).
    periods : int, optional
        Last period drawn; defaults to the longest tenure.
    draws : int, default=300
    hdi_prob : float, default=0.9
    n_curves : int, default=40
        Single prior draws drawn as thin lines (0 for none).
    axes : array of matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.plotting import plot_prior_retention
    >>> customers = bayesclv.datasets.load_example()
    >>> figure = plot_prior_retention(bayesclv.RetentionModel(random_seed=0), customers,
    ...                               draws=50)
    >>> [ax.get_title() for ax in figure.axes if ax.get_visible()]
    ['organic', 'paid_search', 'partner', 'referral']
    """
    data = validate_customers(customers, _retention_model(model)._columns(),
                              require_spend=False)
    last = int(data.tenure.max()) if periods is None else int(periods)
    curve = model.sample_prior_predictive(customers, periods=last, draws=draws)["survival"]
    segments = list(curve["segment"].to_numpy())
    codes = segment_codes(data.segment, segments)
    table = life_table(risk_set_table(codes, data.entry, data.tenure, data.churned,
                                      len(segments)), segments)
    family = getattr(model, "retention", getattr(model, "family", ""))
    return _survival_panels(curve, table, hdi_prob, f"{family} prior",
                            str(curve.attrs.get("period", "period")), axes, n_curves)


def plot_churn_check(model: Any, customers: pd.DataFrame | None = None, *,
                     hdi_prob: float = 0.9, axes: Any = None) -> Any:
    """Posterior predictive check: observed churners per period against predicted intervals.

    Parameters
    ----------
    model : RetentionModel or CLVModel
        Fitted.
    customers : pandas.DataFrame, optional
        Defaults to the training data.
    hdi_prob : float, default=0.9
    axes : array of matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        Observed counts outside the interval are drawn in red.
    """
    retention = _retention_model(model)
    check = retention.posterior_predictive_churn(customers, hdi_prob=hdi_prob)
    segments = list(dict.fromkeys(check.index.get_level_values("segment")))
    figure, flat = _grid(len(segments), axes)
    for segment, ax in zip(segments, flat, strict=True):
        cells = check.loc[segment]
        t = cells.index.to_numpy()
        ax.fill_between(t, cells["predicted_hdi_low"], cells["predicted_hdi_high"], step="mid",
                        alpha=0.3, color="C0", label=f"predicted {hdi_prob:.0%} HDI")
        colors = np.where(cells["inside"], "k", "C3")
        ax.scatter(t, cells["churned"], c=colors, s=12, zorder=3, label="observed")
        ax.set_title(f"{segment}: {cells['inside'].mean():.0%} inside")
        ax.set_xlabel(f"period ({retention.period_})")
    flat[0].set_ylabel("customers churning")
    flat[0].legend(loc="upper right", fontsize="small")
    return figure


def _segment_order(segments: Sequence[str], values: np.ndarray) -> list[str]:
    """Segments sorted by ``values`` (highest first), ties in the given order."""
    order = np.lexsort((np.arange(len(segments)), -np.asarray(values, dtype=np.float64)))
    return [segments[i] for i in order]


def compact_number(value: float) -> str:
    """A short tick label: ``1.23M``, ``250k``, ``900``, ``-3.5k`` (three significant digits).

    Examples
    --------
    >>> [compact_number(v) for v in (0, 950, 250_000, 1_234_567, -3_500)]
    ['0', '950', '250k', '1.23M', '-3.5k']
    """
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"


def plot_clv_distribution(
    model: Any, customers: pd.DataFrame, *, hdi_prob: float | None = None,
    max_points: int = 400, random_seed: int = 0, axes: Any = None,
) -> Any:
    """Per segment: customers' posterior mean CLV, and the posterior of the segment total.

    Left panel: the distribution over the segment's customers of each customer's
    posterior mean residual CLV (box from quartiles, whiskers from the 5th to the 95th
    percentile, a sample of the customers as points). Right panel: the posterior of the
    segment's total value (draws summed within each draw, DESIGN §4.3), as a violin
    with its mean and HDI; a MAP fit has one draw, drawn as a point.

    Parameters
    ----------
    model : CLVModel or sklearn.pipeline.Pipeline
        Fitted (a Pipeline ending in a CLVModel transforms ``customers`` first).
    customers : pandas.DataFrame
        Customer table to value.
    hdi_prob : float, optional
        Mass of the HDI drawn on the totals; defaults to the model's ``hdi_prob``.
    max_points : int, default=400
        At most this many customers per segment drawn as points (a random sample).
    random_seed : int, default=0
        Seed of that sample and of the points' jitter.
    axes : sequence of two matplotlib Axes, optional
        Created if not given.

    Returns
    -------
    matplotlib.figure.Figure
        Segments are ordered by posterior mean CLV per customer, highest at the top.

    Raises
    ------
    ValueError
        If fewer than two axes are given.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.plotting import plot_clv_distribution
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
    >>> figure = plot_clv_distribution(model, customers)
    >>> [ax.get_title() for ax in figure.axes]
    ['CLV per customer (posterior mean)', 'Segment total (posterior)']
    """
    from bayesclv.segmentation.value_matrix import unpipe

    plt = _pyplot()
    model, customers = unpipe(model, customers)
    hdi_prob = float(model.hdi_prob if hdi_prob is None else hdi_prob)
    predictions = model.predict(customers)
    totals = model.predict_segment_posterior(customers)
    segments = [str(s) for s in totals["segment"].to_numpy()]
    draws = totals.stack(sample=("chain", "draw")).transpose("segment", "sample").to_numpy()
    per_customer = {s: predictions.loc[predictions["segment"].astype(str) == s, "clv_mean"]
                    .to_numpy() for s in segments}
    order = _segment_order(segments, [per_customer[s].mean() for s in segments])[::-1]
    if axes is None:
        figure, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.7 * len(segments)),
                                    sharey=True, layout="constrained")
    axes = list(np.ravel(axes))
    if len(axes) < 2:
        raise ValueError(f"Need 2 axes, got {len(axes)}.")
    figure = axes[0].figure
    rng = np.random.default_rng(random_seed)
    positions = np.arange(1, len(order) + 1)
    left, right = axes[0], axes[1]
    left.boxplot([per_customer[s] for s in order], positions=positions,
                 orientation="horizontal", whis=(5, 95), showfliers=False, widths=0.6)
    for y, segment in zip(positions, order, strict=True):
        values = per_customer[segment]
        if len(values) > max_points:
            values = rng.choice(values, size=max_points, replace=False)
        left.scatter(values, y + rng.uniform(-0.2, 0.2, size=len(values)), s=4, alpha=0.3,
                     color="C0", zorder=3)
    left.set_yticks(positions, [f"{s} (n={len(per_customer[s]):,})" for s in order])
    left.set_xlabel("posterior mean residual CLV of each customer")
    left.set_title("CLV per customer (posterior mean)")

    by_segment = {s: draws[i] for i, s in enumerate(segments)}
    spread = [s for s in order if np.ptp(by_segment[s]) > 0]
    if spread:
        right.violinplot([by_segment[s] for s in spread],
                         positions=[positions[order.index(s)] for s in spread],
                         orientation="horizontal", showextrema=False, widths=0.7)
    for y, segment in zip(positions, order, strict=True):
        values = by_segment[segment]
        low, high = array_stats.hdi(values, hdi_prob) if values.size > 1 else (values[0],) * 2
        right.plot([low, high], [y, y], color="k", lw=2)
        right.scatter([values.mean()], [y], color="k", zorder=3, s=20)
    right.set_xlabel(f"segment total residual CLV (mean and {hdi_prob:.0%} HDI)")
    # Totals run to six figures and more: few ticks, written short (250k, 1.23M).
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    right.xaxis.set_major_locator(MaxNLocator(nbins=4))
    right.xaxis.set_major_formatter(FuncFormatter(lambda value, _: compact_number(value)))
    right.set_title("Segment total (posterior)")
    if draws.shape[1] == 1:
        right.text(0.99, 0.01, "MAP fit: one draw, no parameter uncertainty",
                   transform=right.transAxes, ha="right", va="bottom", fontsize="small")
    return figure


def plot_value_matrix(
    model: Any, customers: pd.DataFrame, *, matrix: pd.DataFrame | None = None,
    ax: Any = None, **value_matrix_kwargs: Any,
) -> Any:
    """The value matrix: current against future value, coloured by most probable quadrant.

    Each customer is a point at (current value, posterior mean future value), coloured
    by its most probable quadrant; the more probable that quadrant, the larger and more
    opaque the point (a point near the future threshold is faint). Dashed lines mark
    the two thresholds.

    Parameters
    ----------
    model : CLVModel or sklearn.pipeline.Pipeline
        Fitted.
    customers : pandas.DataFrame
        Customer table.
    matrix : pandas.DataFrame, optional
        The output of :func:`bayesclv.value_matrix` for ``customers``, if already
        computed (then ``model`` and ``customers`` are not used to compute it again).
    ax : matplotlib Axes, optional
        Created if not given.
    **value_matrix_kwargs
        Passed to :func:`bayesclv.value_matrix` (``current_col``, ``threshold``,
        ``map_draws``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.plotting import plot_value_matrix
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.CLVModel(method="map", horizon=24, random_seed=0).fit(customers)
    >>> figure = plot_value_matrix(model, customers)
    >>> figure.axes[0].get_xlabel()
    'current value (historical margin)'
    """
    from bayesclv.segmentation.value_matrix import VALUE_QUADRANTS, value_matrix

    plt = _pyplot()
    from matplotlib.colors import to_rgba

    if matrix is None:
        matrix = value_matrix(model, customers, **value_matrix_kwargs)
    if ax is None:
        figure, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
    figure = ax.figure
    confidence = np.clip(2.0 * matrix["quadrant_prob"].to_numpy() - 1.0, 0.0, 1.0)
    for j, name in enumerate(VALUE_QUADRANTS):
        mask = (matrix["quadrant"] == name).to_numpy()
        colors = np.tile(to_rgba(f"C{j}"), (int(mask.sum()), 1))
        colors[:, 3] = 0.15 + 0.75 * confidence[mask]
        ax.scatter(matrix["current_value"].to_numpy()[mask],
                   matrix["future_value"].to_numpy()[mask], c=colors,
                   s=6 + 24 * confidence[mask], edgecolors="none",
                   label=f"{name} ({int(mask.sum()):,})")
    current_threshold = matrix.attrs.get("current_threshold")
    future_threshold = matrix.attrs.get("future_threshold")
    if current_threshold is not None:
        ax.axvline(current_threshold, color="k", ls="--", lw=1)
    if future_threshold is not None:
        ax.axhline(future_threshold, color="k", ls="--", lw=1)
    ax.set_xlabel("current value (historical margin)")
    ax.set_ylabel("future value (posterior mean residual CLV)")
    ax.set_title("Value matrix: most probable quadrant (opacity = its probability)")
    legend = ax.legend(loc="upper right", fontsize="small", title="quadrant (customers)")
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return figure


def plot_forecast(forecast: pd.DataFrame, quantity: str = "margin", *,
                  segments: Sequence[str] | None = None, axes: Any = None) -> Any:
    """Fan chart per segment of a forecast: expected mean, its HDI, the predictive band.

    Parameters
    ----------
    forecast : pandas.DataFrame
        The output of :meth:`bayesclv.CLVModel.forecast` (or, for ``"active"``,
        :meth:`bayesclv.RetentionModel.forecast_active`).
    quantity : {"margin", "revenue", "active"}, default="margin"
    segments : sequence of str, optional
        Panels to draw; defaults to every segment of the table, ``"all"`` last.
    axes : array of matplotlib Axes, optional
        One per segment; created if not given.

    Returns
    -------
    matplotlib.figure.Figure
        The dark band is the HDI of the expected value (what is uncertain about the
        parameters and each customer's rates), the light band the predictive interval of
        the realised value (also who churns and what each period's spend turns out to be).
    """
    columns = [f"{quantity}_{part}" for part in ("mean", "hdi_low", "hdi_high", "pi_low",
                                                 "pi_high")]
    missing = [c for c in ["segment", "period", *columns] if c not in forecast.columns]
    if missing:
        raise ValueError(f"forecast has no column(s) {missing}: pass the table of "
                         "CLVModel.forecast (or forecast_active for 'active').")
    present = list(dict.fromkeys(forecast["segment"]))
    segments = present if segments is None else list(segments)
    unknown = [s for s in segments if s not in present]
    if unknown:
        raise ValueError(f"Segments {unknown} are not in the forecast; it has {present}.")
    figure, flat = _grid(len(segments), axes, sharey=False)
    prob = forecast.attrs.get("hdi_prob")
    label = f"{prob:.0%} " if prob is not None else ""
    for segment, ax in zip(segments, flat, strict=True):
        rows = forecast[forecast["segment"] == segment]
        period, mean, low, high, pi_low, pi_high = (rows[c].to_numpy() for c in
                                                    ["period", *columns])
        ax.fill_between(period, pi_low, pi_high, color="C0", alpha=0.15,
                        label=f"{label}predictive interval")
        ax.fill_between(period, low, high, color="C0", alpha=0.4, label=f"{label}HDI of the mean")
        ax.plot(period, mean, color="C0", label="expected")
        ax.set_title(str(segment))
        ax.set_xlabel(f"future {forecast.attrs.get('period') or 'period'}")
    flat[0].set_ylabel(quantity)
    flat[0].legend(loc="best", fontsize="small")
    return figure
