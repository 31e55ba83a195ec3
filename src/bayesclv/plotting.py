"""Plots for checking models against data (matplotlib, imported only when a plot is drawn).

Every function returns the matplotlib object it drew on, so callers can restyle or save it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats

__all__ = ["plot_churn_check", "plot_retention"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'bayesclv[plot]'."
        ) from error
    return plt


def _grid(n_panels: int, axes: Any, width: float = 4.0, height: float = 3.0) -> tuple[Any, list]:
    plt = _pyplot()
    if axes is not None:
        flat = list(np.ravel(axes))
        if len(flat) < n_panels:
            raise ValueError(f"Need {n_panels} axes, got {len(flat)}.")
        return flat[0].figure, flat
    n_cols = min(n_panels, 3)
    n_rows = -(-n_panels // n_cols)
    figure, grid = plt.subplots(n_rows, n_cols, figsize=(width * n_cols, height * n_rows),
                                squeeze=False, sharey=True, layout="constrained")
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
    draws = curve.stack(sample=("chain", "draw")).transpose("segment", "period", "sample")
    band = array_stats.hdi(draws.to_numpy(), hdi_prob, axis=-1)
    mean = draws.mean("sample").to_numpy()
    t = curve["period"].to_numpy()
    figure, flat = _grid(len(segments), axes)
    for i, (segment, ax) in enumerate(zip(segments, flat, strict=True)):
        ax.fill_between(t, band[i, :, 0], band[i, :, 1], alpha=0.3, color="C0",
                        label=f"{hdi_prob:.0%} HDI")
        ax.plot(t, mean[i], color="C0", label=f"{retention.family} posterior mean")
        if segment in present:
            empirical = table.loc[segment]
            periods_seen = np.concatenate([[0], empirical.index.to_numpy()])
            survival = np.concatenate([[1.0], empirical["survival"].to_numpy()])
            ax.step(periods_seen, survival, where="post", color="k", lw=1, label="life table")
            sizes = 10 + 40 * empirical["at_risk"] / empirical["at_risk"].max()
            ax.scatter(empirical.index, empirical["survival"], s=sizes, color="k", zorder=3)
        ax.set_title(str(segment))
        ax.set_xlabel(f"tenure ({retention.period_}s)")
        ax.set_ylim(0, 1.02)
    flat[0].set_ylabel("S(t): share still customers")
    flat[0].legend(loc="lower left", fontsize="small")
    return figure


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
