"""Shared fixtures: simulated customer tables with known truth and fitted models."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytensor
import pytest

import bayesclv
from bayesclv.datasets import simulate_customers

# The suite already runs a worker per core: a fit's second compiling process would only
# compete with them and compile what the other worker compiles too. The tests of that
# process (tests/estimator/test_background.py) turn it on where they need it.
os.environ.setdefault("BAYESCLV_COMPILE_IN_BACKGROUND", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="run the slow statistical tests (parameter recovery, coverage)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow statistical test: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# Test files that fit the same rarely used model structures (every retention family,
# the lognormal spend family, a few NUTS settings) form one work unit of the workers.
# A structure takes one to three minutes to compile on an empty cache, and once compiled
# any process loads it; two workers starting files that share it at the same moment
# would both compile it, where in one unit the second file loads it and the other worker
# runs other files meanwhile.
_RUN_TOGETHER = {
    path: "every_family" for path in (
        "tests/test_io.py",
        "tests/data/test_dask_tables.py",
        "tests/estimator/test_retention_model.py",
        "tests/models/spend/test_lognormal.py",
        "tests/test_comparison.py",
        "tests/backtesting/test_split.py",
    )
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Test files per worker as ``--dist loadfile``, the files of ``_RUN_TOGETHER`` as one."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesSharingStructures(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return _RUN_TOGETHER.get(scope, scope)

    return FilesSharingStructures(config, log)


@pytest.fixture
def python_implementations():
    """Functions made in the test run PyTensor's Python implementations: nothing compiled.

    For tests of the models' math rather than of a backend: with a C compiler, even
    FAST_COMPILE and the Python linker compile C code for some ops, seconds apiece on an
    empty cache.
    """
    with pytensor.config.change_flags(cxx=""):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def small_customers():
    """1,500 customers in 3 segments, with left truncation; and the truth."""
    segments = {
        "a": {"share": 0.4, "eta": 20.0, "k": 0.8, "p": 4.0, "q": 4.0, "gamma": 40.0},
        "b": {"share": 0.35, "eta": 12.0, "k": 1.2, "p": 5.0, "q": 3.0, "gamma": 20.0},
        "c": {"share": 0.25, "eta": 35.0, "k": 0.6, "p": 3.0, "q": 5.0, "gamma": 80.0},
    }
    return simulate_customers(1500, segments, observation_periods=24, truncation_periods=6,
                              random_seed=7)


@pytest.fixture(scope="session")
def map_model(small_customers):
    """A CLVModel fitted by MAP: quick, for API tests that need no draws."""
    customers, _ = small_customers
    return bayesclv.CLVModel(method="map", horizon=24, margin=0.5, random_seed=3).fit(customers)


@pytest.fixture(scope="session")
def nuts_model(small_customers):
    """A CLVModel fitted by a short NUTS run: 2 chains x 100 draws."""
    customers, _ = small_customers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        return bayesclv.CLVModel(
            draws=100, tune=150, chains=2, horizon=24, margin=0.5, random_seed=11,
        ).fit(customers)


@pytest.fixture
def assert_forecast_adds_up():
    """A check: a model's mean discounted forecast margins are its segment_report totals.

    The forecast runs over the model's horizon; returns its draws and the report.
    """
    def check(model, customers, **forecast_args):
        draws = model.forecast(customers, periods=int(model.horizon), return_draws=True,
                               **forecast_args)
        discounted = (draws["margin"] / (1.0 + model.discount_rate) ** draws["period"]).sum(
            "period").mean(("chain", "draw"))
        report = model.segment_report(customers)
        np.testing.assert_allclose(discounted.sel(segment=report.index.tolist()).to_numpy(),
                                   report["total_mean"].to_numpy(), rtol=1e-10)
        return draws, report

    return check
