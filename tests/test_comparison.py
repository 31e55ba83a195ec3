"""PSIS-LOO on grouped rows equals PSIS-LOO on one column per customer."""

from __future__ import annotations

import warnings

import arviz_stats
import numpy as np
import pytest
import xarray as xr

import bayesclv
from bayesclv.datasets import simulate_customers
from bayesclv.models.retention import customer_loglik


@pytest.fixture(scope="module")
def fitted():
    segments = {
        "a": {"share": 0.5, "eta": 10.0, "k": 0.6, "p": 4.0, "q": 4.0, "gamma": 40.0},
        "b": {"share": 0.5, "eta": 15.0, "k": 1.3, "p": 4.0, "q": 4.0, "gamma": 40.0},
    }
    customers, _ = simulate_customers(400, segments, observation_periods=12,
                                      truncation_periods=3, random_seed=8)
    models = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        for family in ("geometric", "weibull"):
            models[family] = bayesclv.RetentionModel(
                family, draws=200, tune=300, chains=2, random_seed=5).fit(customers)
    return customers, models


def test_grouped_loo_equals_per_customer_loo(fitted):
    customers, models = fitted
    model = models["weibull"]
    grouped = bayesclv.loo(model, customers)

    # Reference: ArviZ given one log-likelihood column per customer.
    psi = model._draws_for(model.segments_)
    position = {label: i for i, label in enumerate(model.segments_)}
    codes = customers["segment"].map(position).to_numpy()
    per_customer = customer_loglik(
        model.family_, psi[:, :, codes, :], customers["entry"].to_numpy(),
        customers["tenure"].to_numpy(), customers["churned"].to_numpy())
    tree = xr.DataTree.from_dict({
        "posterior": model.posterior_[["retention_psi"]],
        "log_likelihood": xr.Dataset(
            {"retention": (("chain", "draw", "customer"), per_customer)}),
    })
    reference = arviz_stats.loo(tree, pointwise=True, var_name="retention")

    assert grouped.n_data_points == reference.n_data_points == len(customers)
    np.testing.assert_allclose(grouped.elpd, reference.elpd, rtol=1e-10)
    np.testing.assert_allclose(grouped.se, reference.se, rtol=1e-8)
    np.testing.assert_allclose(grouped.p, reference.p, rtol=1e-8)
    # Same values per customer, up to the order of customers.
    np.testing.assert_allclose(np.sort(grouped.elpd_i.to_numpy()),
                               np.sort(reference.elpd_i.to_numpy()), rtol=1e-10)
    np.testing.assert_allclose(np.sort(grouped.pareto_k.to_numpy()),
                               np.sort(reference.pareto_k.to_numpy()), rtol=1e-8)


def test_compare_ranks_duration_dependent_model_first(fitted):
    customers, models = fitted
    table = bayesclv.compare(models, customers)
    assert list(table.index) == ["weibull", "geometric"]
    assert {"elpd", "p", "elpd_diff", "weight", "se", "dse"} <= set(table.columns)
    # The segments' shapes (k = 0.6 and 1.3) are far from constant retention: the
    # geometric model is worse (ArviZ reports the difference to the best model, negative)
    # by more than two standard errors of the difference, not by chance (-23.7, se 7.5).
    assert table.loc["weibull", "elpd_diff"] == 0.0
    assert table.loc["geometric", "elpd_diff"] < -2 * table.loc["geometric", "dse"]


def test_compare_accepts_clv_models_and_needs_two(fitted):
    customers, models = fitted
    with pytest.raises(ValueError, match="two"):
        bayesclv.compare({"w": models["weibull"]}, customers)
    with pytest.raises(TypeError, match="RetentionModel"):
        bayesclv.compare({"a": object(), "b": models["weibull"]}, customers)


def test_loo_refuses_map_fits(fitted):
    customers, _ = fitted
    model = bayesclv.RetentionModel("geometric", method="map", random_seed=0).fit(customers)
    with pytest.raises(ValueError, match="nuts"):
        bayesclv.loo(model, customers)
