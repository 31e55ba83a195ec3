"""CLVModel.predict_interval: quantiles of each customer's realised residual value."""

from __future__ import annotations

import numpy as np
import pytest

import bayesclv


@pytest.fixture(scope="module")
def fitted():
    customers = bayesclv.datasets.load_example()
    model = bayesclv.CLVModel(method="map", horizon=12, random_seed=0).fit(customers)
    return model, customers.head(300)


def test_the_intervals_are_quantiles_of_the_realised_value_draws(fitted):
    model, customers = fitted
    table = model.predict_interval(customers, levels=[0.8, 0.5], predictive_draws=400)
    assert list(table.columns) == ["customer_id", "segment", "value_mean", "value_pi50_low",
                                   "value_pi50_high", "value_pi80_low", "value_pi80_high"]
    assert (table.index == customers.index).all()
    draws = model.distribution_customer_value(customers, n_paths=400)
    flat = draws.to_numpy().reshape(-1, len(customers))
    for level in (0.5, 0.8):
        name = f"value_pi{level * 100:g}"
        np.testing.assert_allclose(table[f"{name}_low"], np.quantile(flat, (1 - level) / 2,
                                                                     axis=0))
        np.testing.assert_allclose(table[f"{name}_high"], np.quantile(flat, (1 + level) / 2,
                                                                      axis=0))
    # the expected value is predict's, and the simulation's mean is close to it
    np.testing.assert_allclose(table["value_mean"], model.predict(customers)["clv_mean"])
    alive = ~customers["churned"].to_numpy()
    np.testing.assert_allclose(flat.mean(axis=0)[alive].sum(),
                               table["value_mean"][alive].sum(), rtol=0.02)
    assert (table.loc[~alive, "value_pi80_high"] == 0).all()
    assert table.attrs["horizon"] == 12 and table.attrs["levels"] == [0.5, 0.8]


def test_the_horizon_can_differ_from_the_models(fitted):
    model, customers = fitted
    short = model.predict_interval(customers, levels=[0.9], horizon=3, predictive_draws=200)
    long = model.predict_interval(customers, levels=[0.9], predictive_draws=200)
    alive = ~customers["churned"].to_numpy()
    assert (short["value_mean"][alive] < long["value_mean"][alive]).all()
    assert short.attrs["horizon"] == 3
    for bad, match in [({"levels": [0.5, 1.0]}, "levels must be numbers in"),
                       ({"levels": "x"}, "levels must be numbers in"),
                       ({"horizon": 0}, "horizon"),
                       ({"predictive_draws": 0}, "predictive_draws")]:
        with pytest.raises(ValueError, match=match):
            model.predict_interval(customers, **bad)
    with pytest.raises(bayesclv.NotFittedError):
        bayesclv.CLVModel().predict_interval(customers)
