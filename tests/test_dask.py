"""Dask DataFrames in, Dask DataFrames out, on a ``dask.distributed`` cluster of 2 workers.

Every result is compared with the pandas path on the same data: the Dask paths must give
the same rows in the same order, with values equal up to floating-point rounding.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv.data import risk_set_from_table, risk_set_table, segment_codes, summarize
from bayesclv.datasets import simulate_transactions
from bayesclv.exceptions import DataValidationError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    """A local cluster of 2 worker processes: the model really travels to other processes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def transactions():
    log, _ = simulate_transactions(600, n_periods=24, random_seed=4)
    return log


@pytest.fixture(scope="module")
def fitted(example_customers):
    return bayesclv.CLVModel(method="map", random_seed=0, horizon=24).fit(example_customers)


@pytest.fixture(scope="module")
def example_customers():
    return bayesclv.datasets.load_example()


def test_predict_on_a_cluster_equals_the_pandas_path(client, fitted, example_customers):
    shuffled = example_customers.sample(frac=1.0, random_state=1)
    lazy = fitted.predict(dd.from_pandas(shuffled, npartitions=5, sort=False))

    assert isinstance(lazy, dd.DataFrame)
    assert list(lazy.columns) == list(fitted.predict(shuffled.head()).columns)
    # Same rows in the same order; values equal up to rounding in vectorised sums.
    pd.testing.assert_frame_equal(lazy.compute(), fitted.predict(shuffled), check_exact=False,
                                  rtol=1e-12, atol=1e-9)


def test_predict_sends_the_model_once(fitted, example_customers):
    lazy = fitted.predict(dd.from_pandas(example_customers, npartitions=8))
    graph = dict(lazy.__dask_graph__())
    holding = [key for key, task in graph.items()
               if isinstance(getattr(task, "value", None), bayesclv.CLVModel)]
    model_size = len(pickle.dumps(fitted))
    partition_tasks = [task for key, task in graph.items()
                       if getattr(task, "value", None) is None]

    # One graph node holds the estimator; the 8 partition tasks refer to it by key.
    assert len(holding) == 1
    assert len(partition_tasks) == 8
    assert all(len(pickle.dumps(task)) < model_size / 4 for task in partition_tasks)


def test_predict_of_an_unfitted_model_fails_before_any_computation(example_customers):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        bayesclv.CLVModel().predict(dd.from_pandas(example_customers, npartitions=2))


@pytest.mark.parametrize("rule", ["inactivity", "observation_end"])
def test_summarize_on_a_cluster_equals_the_pandas_path(client, transactions, rule):
    kwargs = {"period": "M", "inactivity": 3, "segment_col": "channel"}
    if rule == "observation_end":
        kwargs["observation_end"] = pd.Timestamp(transactions["date"].max()) + pd.Timedelta(
            days=40)
    # The log in an order that spreads each customer's rows over the partitions.
    log = transactions.sample(frac=1.0, random_state=2).reset_index(drop=True)
    lazy = summarize(dd.from_pandas(log, npartitions=6), **kwargs)

    assert isinstance(lazy, dd.DataFrame)
    result = lazy.compute().sort_values("customer_id").reset_index(drop=True)
    expected = summarize(log, **kwargs)
    pd.testing.assert_frame_equal(result, expected, check_like=False)


def test_summarize_on_dask_reports_bad_rows_when_computed(client, transactions):
    log = transactions.copy()
    log.loc[log.index[-7], "amount"] = -5.0

    # Raised when computed (or earlier, if the row is among those that set the column
    # types), with the column and the row as in the pandas path.
    with pytest.raises(DataValidationError, match=r"'amount'.*1 row\(s\)"):
        summarize(dd.from_pandas(log, npartitions=3), inactivity=3).compute()


def test_summarize_on_dask_names_a_missing_column(transactions):
    with pytest.raises(ValueError, match="'when'"):
        summarize(dd.from_pandas(transactions, npartitions=2), date_col="when", inactivity=3)


def test_risk_set_from_a_dask_table_equals_the_pandas_cells(client, example_customers):
    segments = sorted(example_customers["segment"].unique())
    data = bayesclv.data.validate_customers(example_customers)
    expected = risk_set_table(segment_codes(data.segment, segments), data.entry, data.tenure,
                              data.churned, len(segments))

    from_dask = risk_set_from_table(dd.from_pandas(example_customers, npartitions=7), segments)

    pd.testing.assert_frame_equal(from_dask, expected)
    pd.testing.assert_frame_equal(risk_set_from_table(example_customers, segments), expected)


def test_risk_set_from_table_rejects_unknown_segments(example_customers):
    with pytest.raises(DataValidationError, match="not among the segments given"):
        risk_set_from_table(example_customers, ["organic"])


def test_estimators_travel_without_their_training_table(fitted, example_customers):
    """Copies sent to workers drop the weak reference to the fitted table, nothing else."""
    copy = pickle.loads(pickle.dumps(fitted))

    assert not hasattr(copy, "_training_table")
    assert hasattr(fitted, "_training_table")
    np.testing.assert_array_equal(copy.predict(example_customers)["clv_mean"],
                                  fitted.predict(example_customers)["clv_mean"])
