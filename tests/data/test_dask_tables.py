"""Dask DataFrames in, Dask DataFrames out, on a ``dask.distributed`` cluster of 2 workers.

Every result is compared with the pandas path on the same data: the Dask paths must give
the same rows in the same order, with values equal up to floating-point rounding, and a
fit on a Dask table the very same posterior draws.
"""

from __future__ import annotations

import dataclasses
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


def test_predict_refuses_ids_repeated_across_partitions(fitted, example_customers):
    head = example_customers.head(300)
    repeated = pd.concat([head, head.iloc[:3]], ignore_index=True)
    table = dd.from_pandas(repeated, npartitions=2, sort=False)
    assert table.npartitions == 2
    with pytest.raises(DataValidationError, match="duplicate customer ids across the table"):
        fitted.predict(table)


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


# --------------------------------------------------------------------------------------
# Fitting on a Dask table: sufficient statistics reduced on the workers
# --------------------------------------------------------------------------------------

def _assert_same_statistics(expected, actual):
    assert actual.segments == expected.segments
    np.testing.assert_array_equal(actual.segment_sizes, expected.segment_sizes)
    assert actual.max_tenure == expected.max_tenure
    assert actual.median_spend == expected.median_spend
    pd.testing.assert_frame_equal(actual.risk_set, expected.risk_set)
    pd.testing.assert_frame_equal(actual.groups, expected.groups)
    assert set(actual.spend) == set(expected.spend)
    for key, value in expected.spend.items():
        # Compensated sums: the same doubles whatever the partitioning.
        np.testing.assert_array_equal(np.asarray(actual.spend[key]), np.asarray(value),
                                      err_msg=key)


@pytest.mark.parametrize("npartitions", [1, 3, 11])
def test_training_statistics_of_a_dask_table_equal_the_pandas_ones(client, example_customers,
                                                                   npartitions):
    from bayesclv.data import training_statistics

    expected = training_statistics(example_customers)
    shuffled = example_customers.sample(frac=1.0, random_state=npartitions)
    actual = training_statistics(dd.from_pandas(shuffled, npartitions=npartitions,
                                                sort=False))
    _assert_same_statistics(expected, actual)
    assert actual.n_customers == len(example_customers)


def test_a_partition_of_new_customers_without_spend_adds_nothing(client, example_customers):
    from bayesclv.data import training_statistics

    new = pd.DataFrame({"customer_id": [f"new{i}" for i in range(50)],
                        "segment": example_customers["segment"].to_numpy()[:50],
                        "tenure": 0, "churned": False, "entry": 0,
                        "n_periods_active": 0, "mean_spend": np.nan})
    # The last partition holds new customers only.
    actual = training_statistics(dd.concat([dd.from_pandas(example_customers, npartitions=2),
                                            dd.from_pandas(new, npartitions=1)]))
    expected = training_statistics(example_customers)
    np.testing.assert_array_equal(
        actual.segment_sizes - expected.segment_sizes,
        new["segment"].value_counts().reindex(expected.segments, fill_value=0).to_numpy())
    _assert_same_statistics(dataclasses.replace(expected, segment_sizes=actual.segment_sizes),
                            actual)


def test_training_statistics_match_what_the_estimators_fit(example_customers):
    from bayesclv.data import spend_statistics, training_statistics

    statistics = training_statistics(example_customers)
    retention = bayesclv.RetentionModel(method="map", random_seed=0).fit(example_customers)
    pd.testing.assert_frame_equal(statistics.risk_set, retention.risk_set_)
    pd.testing.assert_frame_equal(statistics.groups, retention.groups_)
    codes = segment_codes(example_customers["segment"].astype(str).to_numpy(),
                          statistics.segments)
    direct = spend_statistics(codes, example_customers["n_periods_active"].to_numpy(),
                              example_customers["mean_spend"].to_numpy(),
                              len(statistics.segments))
    for key, value in direct.items():
        np.testing.assert_array_equal(np.asarray(statistics.spend[key]), np.asarray(value))
    assert statistics.median_spend == float(np.median(example_customers["mean_spend"]))
    assert statistics.max_tenure == int(example_customers["tenure"].max())


@pytest.mark.parametrize("npartitions", [1, 3])
def test_log_spend_statistics_and_fits_match_the_pandas_path(npartitions):
    from bayesclv.data import log_spend_statistics, spend_statistics, training_statistics
    from bayesclv.datasets import simulate_customers

    segments = {"a": {"share": 0.5, "eta": 20.0, "k": 0.8, "mu": 3.0, "sigma": 0.5, "tau": 0.4},
                "b": {"share": 0.5, "eta": 30.0, "k": 1.2, "mu": 4.0, "sigma": 0.3, "tau": 0.6}}
    customers, _ = simulate_customers(1500, segments, random_seed=3)
    table = dd.from_pandas(customers.sample(frac=1.0, random_state=1),
                           npartitions=npartitions, sort=False)
    statistics = training_statistics(table)
    codes = segment_codes(customers["segment"].to_numpy(), statistics.segments)
    x = customers["n_periods_active"].to_numpy()
    direct = log_spend_statistics(codes, x, customers["mean_log_spend"].to_numpy(),
                                  customers["sd_log_spend"].to_numpy(), len(segments))
    order = np.lexsort((statistics.log_spend["x_value"], statistics.log_spend["x_seg"]))
    for key, value in direct.items():
        np.testing.assert_allclose(np.asarray(statistics.log_spend[key]), value, rtol=1e-12,
                                   atol=1e-10, err_msg=key)
    assert (order == np.arange(len(order))).all()
    gamma_gamma = spend_statistics(codes, x, customers["mean_spend"].to_numpy(),
                                   len(segments),
                                   mean_log_spend=customers["mean_log_spend"].to_numpy())
    np.testing.assert_allclose(statistics.spend["sum_x_mean_log"],
                               gamma_gamma["sum_x_mean_log"], rtol=1e-13)
    for family in ("lognormal", "gamma_gamma"):
        pandas_fit = bayesclv.SpendModel(family, method="map", random_seed=0).fit(customers)
        dask_fit = bayesclv.SpendModel(family, method="map", random_seed=0).fit(table)
        np.testing.assert_allclose(dask_fit.posterior_["spend_psi"],
                                   pandas_fit.posterior_["spend_psi"], rtol=1e-6)
    without = dd.from_pandas(customers.drop(columns=["mean_log_spend", "sd_log_spend"]),
                             npartitions=npartitions)
    with pytest.raises(DataValidationError, match="needs a 'mean_log_spend' column"):
        bayesclv.SpendModel("lognormal", method="map").fit(without)


@pytest.mark.parametrize("values", [
    [5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 2.5],               # odd count
    [5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 2.5, 7.5],          # even count: mean of the middle two
    [3.0] * 9 + [1.0, 8.0, 3.0000000000000004],        # ties and neighbouring doubles
    list(np.round(np.random.default_rng(0).gamma(2.0, 20.0, 1001)) + 1.0),  # many prices
])
def test_median_spend_of_a_dask_table_is_exact(values):
    from bayesclv.data import training_statistics

    n = len(values)
    table = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "tenure": 3,
                          "churned": False, "n_periods_active": 1, "mean_spend": values})
    statistics = training_statistics(dd.from_pandas(table, npartitions=3))
    assert statistics.median_spend == float(np.median(values))


# 60 draws: enough to compare the chains draw for draw, too few to converge.
@pytest.mark.filterwarnings("ignore::bayesclv.exceptions.ConvergenceWarning")
def test_clv_model_fitted_on_a_cluster_has_the_pandas_posterior(client, example_customers):
    """NUTS on statistics reduced from 4 partitions: the very same draws as on pandas."""
    settings = dict(draws=60, tune=60, chains=2, random_seed=3, horizon=24)
    shuffled = example_customers.sample(frac=1.0, random_state=2)
    expected = bayesclv.CLVModel(**settings).fit(shuffled)
    lazy = dd.from_pandas(shuffled, npartitions=4, sort=False)
    model = bayesclv.CLVModel(**settings).fit(lazy)

    for name in ("eta", "k", "p", "q", "gamma"):
        np.testing.assert_array_equal(model.idata_["posterior"][name].to_numpy(),
                                      expected.idata_["posterior"][name].to_numpy(),
                                      err_msg=name)
    assert model.n_customers_in_ == len(example_customers)
    assert model.segments_ == expected.segments_
    assert model.priors_ == expected.priors_
    pd.testing.assert_frame_equal(model.predict(shuffled.head(200)),
                                  expected.predict(shuffled.head(200)))


@pytest.mark.parametrize("family", ["sbg", "bdw"])
def test_grouped_retention_families_fit_on_a_dask_table(example_customers, family):
    expected = bayesclv.RetentionModel(family, method="map", random_seed=0).fit(
        example_customers)
    model = bayesclv.RetentionModel(family, method="map", random_seed=0).fit(
        dd.from_pandas(example_customers, npartitions=3))
    pd.testing.assert_frame_equal(model.groups_, expected.groups_)
    for name in expected.family_.param_names:
        np.testing.assert_array_equal(model.posterior_[name].to_numpy(),
                                      expected.posterior_[name].to_numpy())


def test_spend_model_fits_a_dask_table_without_retention_columns(example_customers):
    spend_only = example_customers[["customer_id", "segment", "n_periods_active",
                                    "mean_spend"]]
    expected = bayesclv.SpendModel(method="map", random_seed=0).fit(spend_only)
    model = bayesclv.SpendModel(method="map", random_seed=0).fit(
        dd.from_pandas(spend_only, npartitions=3))
    np.testing.assert_array_equal(model.posterior_["gamma"].to_numpy(),
                                  expected.posterior_["gamma"].to_numpy())


def test_fit_on_dask_rejects_customers_repeated_across_partitions(example_customers):
    repeated = pd.concat([example_customers, example_customers.iloc[[7, 19]]])
    with pytest.raises(DataValidationError,
                       match=r"'customer_id': duplicate customer ids .*\(2 ids, e\.g\. "):
        bayesclv.CLVModel(method="map").fit(dd.from_pandas(repeated, npartitions=3))


def test_fit_on_dask_names_the_column_and_rows_of_bad_values(example_customers):
    bad = example_customers.copy()
    bad.loc[bad.index[[3000, 3500, 3900]], "mean_spend"] = -1.0
    with pytest.raises(DataValidationError, match=r"'mean_spend'.*3 row"):
        bayesclv.CLVModel(method="map").fit(dd.from_pandas(bad, npartitions=4))


def test_fit_on_dask_refuses_covariates_and_empty_tables(example_customers):
    lazy = dd.from_pandas(example_customers.assign(age=30.0), npartitions=2)
    with pytest.raises(ValueError, match="covariates need a pandas table"):
        bayesclv.CLVModel(method="map", covariates=["age"]).fit(lazy)
    with pytest.raises(DataValidationError, match="empty"):
        bayesclv.RetentionModel(method="map").fit(
            dd.from_pandas(example_customers.iloc[:0], npartitions=1))
