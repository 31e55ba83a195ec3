import numpy as np
import pandas as pd

from bayesclv.data import validate_customers
from bayesclv.datasets import (
    EXAMPLE_SEED,
    _regenerate,
    load_example,
    simulate_customers,
    true_residual_value,
)


def test_example_is_valid_deterministic_and_regenerable(tmp_path):
    customers = load_example()
    assert customers.attrs["period"] == "month"
    assert len(customers) == 4000 and customers["segment"].nunique() == 4
    validate_customers(customers)
    pd.testing.assert_frame_equal(customers, load_example())
    _regenerate(tmp_path / "again.csv")
    again = pd.read_csv(tmp_path / "again.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(customers.reset_index(drop=True), again, check_dtype=False)
    assert EXAMPLE_SEED == 2026


def test_simulated_lifetimes_follow_the_weibull_survival():
    segments = {"s": {"share": 1.0, "eta": 10.0, "k": 0.7, "p": 2.0, "q": 3.0, "gamma": 10.0}}
    customers, truth = simulate_customers(40_000, segments, observation_periods=500,
                                          random_seed=1)
    lifetime = truth.customers["lifetime"].to_numpy()
    for t in (1, 5, 10, 30):
        expected = np.exp(-((t / 10.0) ** 0.7))
        tolerance = 4 * np.sqrt(expected * (1 - expected) / 40_000)
        assert abs((lifetime > t).mean() - expected) < tolerance


def test_left_truncation_keeps_only_survivors():
    customers, truth = simulate_customers(3000, observation_periods=12, truncation_periods=24,
                                          random_seed=4)
    truncated = customers["entry"] > 0
    assert truncated.any()
    assert (truth.customers["lifetime"][truncated] > customers["entry"][truncated]).all()
    validate_customers(customers)


def test_true_residual_value_uses_true_spend_and_survival():
    customers, truth = simulate_customers(50, random_seed=3)
    value = true_residual_value(customers, truth, discount_rate=0.0, horizon=1)
    params = truth.segments.loc[customers["segment"]]
    tau = customers["tenure"].to_numpy()
    ratio = np.exp((tau / params["eta"].to_numpy()) ** params["k"].to_numpy()
                   - ((tau + 1) / params["eta"].to_numpy()) ** params["k"].to_numpy())
    expected = np.where(customers["churned"], 0.0, truth.customers["true_mean_spend"] * ratio)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
