"""Plots return their figures and draw what they say."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bayesclv  # noqa: E402
from bayesclv.plotting import plot_churn_check, plot_retention  # noqa: E402


@pytest.fixture(scope="module")
def model(small_customers):
    customers, _ = small_customers
    return bayesclv.RetentionModel("weibull", method="map", random_seed=0).fit(customers)


def test_plot_retention_one_panel_per_segment_with_life_table(model, small_customers):
    customers, _ = small_customers
    figure = plot_retention(model, customers)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    # The empirical step curve starts at S(0) = 1 and follows the life table.
    table = model.life_table(customers).loc["a"]
    steps = [line for line in visible[0].get_lines() if line.get_label() == "life table"]
    np.testing.assert_allclose(steps[0].get_ydata()[1:], table["survival"].to_numpy())
    assert steps[0].get_ydata()[0] == 1.0


def test_plot_retention_accepts_clv_model_and_given_axes(map_model):
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(1, 3)
    figure = plot_retention(map_model, periods=12, axes=axes)
    assert figure is axes[0].figure
    with pytest.raises(ValueError, match="axes"):
        plot_retention(map_model, axes=axes[:1])


def test_plot_churn_check_marks_points_outside(model):
    figure = plot_churn_check(model)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert all("inside" in title for title in titles)


def test_plot_prior_retention_draws_prior_bands_over_the_life_table(small_customers):
    from bayesclv.plotting import plot_prior_retention

    customers, _ = small_customers
    model = bayesclv.RetentionModel("weibull", random_seed=0)
    figure = plot_prior_retention(model, customers, periods=12, draws=60, n_curves=5)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["a", "b", "c"]
    # 5 single prior draws, the prior mean and the life table on each panel
    assert len(axes[0].lines) == 5 + 1 + 1
    assert not hasattr(model, "idata_")
    matplotlib.pyplot.close(figure)


def test_plot_forecast_draws_a_fan_per_segment(map_model, small_customers):
    from bayesclv.plotting import plot_forecast

    customers, _ = small_customers
    table = map_model.forecast(customers, periods=6, predictive_draws=50)
    figure = plot_forecast(table)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    expected = [*dict.fromkeys(customers["segment"].astype(str)), "all"]
    assert [ax.get_title() for ax in visible] == expected
    assert len(visible[0].collections) == 2  # two bands
    active = map_model.retention_model_.forecast_active(customers, periods=6,
                                                        predictive_draws=50)
    assert plot_forecast(active, "active", segments=["all"]).axes[0].get_ylabel() == "active"
    with pytest.raises(ValueError, match="no column"):
        plot_forecast(active, "revenue")
    with pytest.raises(ValueError, match="not in the forecast"):
        plot_forecast(table, segments=["zz"])
