"""split_log: the customer table at the cutoff, and what its customers did after it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv.backtesting import split_log
from bayesclv.data import summarize
from bayesclv.datasets import simulate_transactions


def _contract_log() -> pd.DataFrame:
    """Four customers, monthly, cutoff 2024-03-31, horizon 3 (April-June)."""
    rows = [
        # a: joins Jan, pays every month, contract ends 2024-05-31 (pays in May)
        ("a", "2024-01-10", 10.0, "2024-05-31"), ("a", "2024-02-10", 10.0, "2024-05-31"),
        ("a", "2024-03-10", 10.0, "2024-05-31"), ("a", "2024-04-10", 11.0, "2024-05-31"),
        ("a", "2024-05-10", 12.0, "2024-05-31"),
        # b: joins Feb, ends in March (churned at the cutoff)
        ("b", "2024-02-03", 20.0, "2024-03-15"), ("b", "2024-03-03", 20.0, "2024-03-15"),
        # c: joins March, active throughout, two payments in April
        ("c", "2024-03-20", 5.0, None), ("c", "2024-04-01", 5.0, None),
        ("c", "2024-04-21", 2.0, None), ("c", "2024-05-20", 5.0, None),
        ("c", "2024-06-20", 5.0, None), ("c", "2024-07-20", 5.0, None),
        # d: first bought after the cutoff
        ("d", "2024-04-05", 7.0, None), ("d", "2024-06-05", 7.0, None),
    ]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount", "end_date"])
    log["end_date"] = pd.to_datetime(log["end_date"])
    return log


def test_the_training_table_is_the_summary_of_the_rows_up_to_the_cutoff():
    log = _contract_log()
    split = split_log(log, "2024-03-31", 3, end_col="end_date")
    expected = summarize(log[pd.to_datetime(log["date"]) <= "2024-03-31"],
                         observation_end="2024-03-31", end_col="end_date")
    pd.testing.assert_frame_equal(split.training, expected)
    assert list(split.training["customer_id"]) == ["a", "b", "c"]
    assert split.periods == ["2024-04", "2024-05", "2024-06"]
    assert (split.left_out_customers, split.left_out_rows) == (1, 2)
    assert split.rows_after_horizon == 1  # c's July payment
    assert any("first bought after the cutoff" in note for note in split.notes)


def test_holdout_activity_and_revenue_follow_the_models_timing():
    split = split_log(_contract_log(), "2024-03-31", 3, end_col="end_date")
    # a ends in May: a customer at the end of April only; b ended before; c throughout
    np.testing.assert_array_equal(split.active, [[True, False, False],
                                                 [False, False, False],
                                                 [True, True, True]])
    np.testing.assert_allclose(split.revenue, [[11, 12, 0], [0, 0, 0], [7, 5, 5]])
    # a's May payment is in the period its contract ends: kept apart, not forecast
    np.testing.assert_allclose(split.counted_revenue, [[11, 0, 0], [0, 0, 0], [7, 5, 5]])
    np.testing.assert_allclose(split.uncounted_revenue.sum(axis=1), [12, 0, 0])


def test_a_customer_labelled_churned_who_comes_back_is_active_in_the_holdout():
    log = pd.DataFrame({
        "customer_id": ["x", "x", "x", "y", "y"],
        "date": ["2024-01-05", "2024-01-20", "2024-05-02", "2024-01-10", "2024-06-10"],
        "amount": [10.0, 5.0, 30.0, 8.0, 3.0],
    })
    split = split_log(log, "2024-03-31", 3, inactivity=2)
    assert split.training["churned"].tolist() == [True, True]  # silent Feb and March
    # x buys again in May: a customer again throughout (the whole log labels churn)
    assert split.active[0].tolist() == [True, True, True]
    np.testing.assert_allclose(split.counted_revenue[0], [0, 30, 0])
    assert split.churn_rule == "inactivity"
    assert any("without a purchase" in note for note in split.notes)


def test_bad_cutoffs_and_horizons_are_refused_with_the_dates_to_use():
    log = _contract_log()
    with pytest.raises(ValueError, match=r"2024-03-15 is not the last day of a month.*"
                                         r"2024-02-29 or 2024-03-31"):
        split_log(log, "2024-03-15", 3, end_col="end_date")
    with pytest.raises(ValueError, match=r"before the last holdout month \(2024-08\)"):
        split_log(log, "2024-03-31", 5, end_col="end_date")
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        split_log(log, "2024-03-31", 0, end_col="end_date")
    with pytest.raises(ValueError, match="No transaction is dated on or before"):
        split_log(log, "2023-12-31", 3, end_col="end_date")
    with pytest.raises(ValueError, match="cutoff must be a date"):
        split_log(log, "soon", 3, end_col="end_date")
    with pytest.raises(bayesclv.DataValidationError, match="'when'"):
        split_log(log, "2024-03-31", 3, date_col="when", end_col="end_date")
    # weeks end on Sundays
    with pytest.raises(ValueError, match="not the last day of a week"):
        split_log(log, "2024-03-30", 3, period="W", end_col="end_date")
    assert split_log(log, "2024-03-31", 3, period="W", end_col="end_date").periods[0] \
        == "2024-04-01/2024-04-07"


@pytest.mark.filterwarnings("ignore::bayesclv.ConvergenceWarning")  # 30 draws on purpose
def test_holdout_rows_never_reach_the_fit():
    """Shuffling the rows after the cutoff (and their amounts) leaves the fit bit-identical."""
    log, _ = simulate_transactions(400, n_periods=24, random_seed=5, active_probability=1.0)
    cutoff = pd.Timestamp("2023-06-30")
    later = np.flatnonzero(pd.to_datetime(log["date"]) > cutoff)
    rng = np.random.default_rng(0)
    changed = log.copy()
    # move the holdout rows' dates and amounts between rows (and so between customers)
    changed.loc[later, "date"] = changed.loc[rng.permutation(later), "date"].to_numpy()
    changed.loc[later, "amount"] = changed.loc[later, "amount"].to_numpy()[
        rng.permutation(len(later))] * 3.0
    options = {"end_col": None, "inactivity": 3, "segment_col": "channel"}
    changed_end = changed.drop(columns="end_date")
    first = split_log(log.drop(columns="end_date"), cutoff, 6, **options)
    second = split_log(changed_end, cutoff, 6, **options)
    pd.testing.assert_frame_equal(first.training, second.training)
    assert not np.array_equal(first.revenue, second.revenue)  # the holdout did change

    model = bayesclv.CLVModel(draws=30, tune=30, chains=1, random_seed=3)
    fits = [model.__class__(**model.get_params()).fit(s.training) for s in (first, second)]
    for name in ("retention_model_", "spend_model_"):
        a, b = (getattr(f, name).posterior_ for f in fits)
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].to_numpy(), b[var].to_numpy())
