"""Customers acquired in the current period (tenure 0) and customers with no spend yet."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv.exceptions import DataValidationError


def with_new_customers(customers: pd.DataFrame, spend: list[float]) -> pd.DataFrame:
    """``customers`` with customers of tenure 0 in the middle (``NaN``: no spend yet)."""
    n = len(spend)
    new = pd.DataFrame({
        "customer_id": [f"new{i}" for i in range(n)],
        "segment": np.resize(sorted(customers["segment"].unique()), n),
        "tenure": 0, "churned": False, "entry": 0,
        "n_periods_active": [0 if np.isnan(v) else 1 for v in spend],
        "mean_spend": spend,
    })
    half = len(customers) // 2
    both = pd.concat([customers.iloc[:half], new, customers.iloc[half:]], ignore_index=True)
    both.attrs = dict(customers.attrs)
    return both


@pytest.fixture(scope="module")
def table(small_customers):
    customers, _ = small_customers
    return with_new_customers(customers, [np.nan, np.nan, np.nan, 25.0, np.nan, 60.0])


@pytest.fixture(scope="module")
def fitted(table):
    return bayesclv.CLVModel(method="map", horizon=24, margin=0.5, random_seed=3).fit(table)


def test_new_customers_without_spend_change_no_fit(map_model, small_customers):
    customers, _ = small_customers
    table = with_new_customers(customers, [np.nan] * 6)
    model = bayesclv.CLVModel(method="map", horizon=24, margin=0.5, random_seed=3).fit(table)
    for part in ("retention_model_", "spend_model_"):
        expected = getattr(map_model, part).posterior_
        actual = getattr(model, part).posterior_
        for name, value in expected.data_vars.items():
            np.testing.assert_array_equal(actual[name].to_numpy(), value.to_numpy(),
                                          err_msg=name)


def test_nuts_draws_are_bitwise_those_without_new_customers(small_customers):
    customers, _ = small_customers
    kwargs = dict(draws=60, tune=60, chains=2, random_seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        plain = bayesclv.RetentionModel(**kwargs).fit(customers)
        more = bayesclv.RetentionModel(**kwargs).fit(
            with_new_customers(customers, [np.nan] * 9))
    np.testing.assert_array_equal(more.posterior_["retention_psi"].to_numpy(),
                                  plain.posterior_["retention_psi"].to_numpy())


def test_every_new_customer_is_valued_in_input_order(fitted, table):
    predictions = fitted.predict(table)

    assert predictions.index.equals(table.index)
    assert predictions["customer_id"].tolist() == table["customer_id"].tolist()
    new = table["tenure"].to_numpy() == 0
    assert np.isfinite(predictions.loc[new].drop(columns=["customer_id", "segment"])).all().all()
    assert (predictions.loc[new, "clv_mean"] > 0).all()


def test_a_new_customer_survives_its_first_decision_with_probability_s1(fitted, table):
    predictions = fitted.predict(table)
    new = table.index[table["tenure"] == 0]
    curve = fitted.retention_model_.retention_curve(periods=1)
    s1 = curve.sel(period=1).mean(("chain", "draw")).to_series()
    np.testing.assert_allclose(predictions.loc[new, "retention_next"].to_numpy(),
                               s1.loc[table.loc[new, "segment"]].to_numpy(), rtol=1e-12)


def test_a_customer_with_no_spend_is_valued_with_its_segment_spend(fitted, table):
    spend = fitted.spend_model_
    expected = spend.predict(table)
    no_spend = table.index[table["n_periods_active"] == 0]
    segments = table.loc[no_spend, "segment"].to_numpy()
    params = spend.segment_params(sorted(set(segments)))
    segment_mean = dict(zip(sorted(set(segments)),
                            spend.family_.segment_mean_spend(params).mean(axis=0), strict=True))
    np.testing.assert_allclose(expected.loc[no_spend, "expected_spend"].to_numpy(),
                               [segment_mean[s] for s in segments], rtol=1e-10)
    # A new customer who has already paid is valued on that payment as well.
    paid = table.index[(table["tenure"] == 0) & (table["n_periods_active"] == 1)]
    assert not np.allclose(expected.loc[paid, "expected_spend"].to_numpy(),
                           [segment_mean[s] for s in table.loc[paid, "segment"]])


def test_a_table_of_new_customers_only_cannot_fit_retention(table):
    new = table[table["tenure"] == 0]
    with pytest.raises(DataValidationError, match="Every customer has tenure 0"):
        bayesclv.RetentionModel(method="map").fit(new)


def test_a_table_with_no_spend_cannot_fit_spend(table):
    no_spend = table[table["n_periods_active"] == 0]
    with pytest.raises(DataValidationError, match="No customer has an active period"):
        bayesclv.SpendModel(method="map").fit(no_spend)


def test_pointwise_spend_loglik_has_rows_for_customers_with_spend_only(fitted, table):
    loglik, counts = fitted.spend_model_.pointwise_loglik(table)
    spenders = int((table["n_periods_active"] > 0).sum())
    assert loglik.sizes["row"] == len(counts) == spenders
    assert np.isfinite(loglik.to_numpy()).all()


def test_default_priors_refuse_what_fit_refuses(table):
    from bayesclv.families import default_priors

    with pytest.raises(DataValidationError, match="Every customer has tenure 0"):
        default_priors(table[table["tenure"] == 0].assign(mean_spend=1.0,
                                                          n_periods_active=1))
    with pytest.raises(DataValidationError, match="No customer has an active period"):
        default_priors(table.assign(n_periods_active=0, mean_spend=np.nan))
