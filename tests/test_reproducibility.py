"""Seeds: the same random_seed gives bitwise the same output, in one process and across
processes; a different seed gives different draws; the global RNGs are never touched."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv._nutpie import nutpie_available
from bayesclv.datasets import simulate_customers

NUTPIE = nutpie_available()
SAMPLERS = [("nuts", "pymc"), *([("nuts_nutpie", "nutpie")] if NUTPIE else [])]


@pytest.fixture(scope="module")
def table():
    customers, _ = simulate_customers(400, observation_periods=24, random_seed=9)
    return customers


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
                          + frame.to_numpy(dtype=str).tobytes()).hexdigest()


def _map(table, seed):
    return bayesclv.CLVModel(method="map", horizon=24, random_seed=seed).fit(table)


def _nuts(table, seed, chains=2, sampler="pymc"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        # The default family: seeds are family-blind, and its compiled structure is the
        # one most tests load.
        return bayesclv.RetentionModel(draws=10, tune=10, chains=chains,
                                       sampler=sampler, random_seed=seed).fit(table)


_SCRIPT = textwrap.dedent("""
    import hashlib, sys, warnings
    import pandas as pd
    import bayesclv
    from bayesclv.datasets import simulate_customers
    sys.path.insert(0, {tests!r})
    from test_reproducibility import NUTPIE, _digest, _map, _nuts
    table, _ = simulate_customers(400, observation_periods=24, random_seed=9)
    print(_digest(_map(table, 3).predict(table)))
    print(_digest(_nuts(table, 3).predict(table)))
    print(_digest(_nuts(table, 3, chains=1).predict(table)))
    if NUTPIE:
        print(_digest(_nuts(table, 3, sampler="nutpie").predict(table)))
""")


@pytest.fixture(scope="module")
def in_process(table):
    return {"map": _map(table, 3), "nuts": _nuts(table, 3),
            "nuts_one_chain": _nuts(table, 3, chains=1),
            **({"nuts_nutpie": _nuts(table, 3, sampler="nutpie")} if NUTPIE else {})}


def test_same_seed_same_output_in_one_process(table, in_process):
    again = _map(table, 3)
    pd.testing.assert_frame_equal(again.predict(table), in_process["map"].predict(table),
                                  check_exact=True)
    np.testing.assert_array_equal(again.predict_posterior(table).to_numpy(),
                                  in_process["map"].predict_posterior(table).to_numpy())
    # Each NUTS implementation: PyMC's, and nutpie's when the fast extra is installed.
    for key, sampler in SAMPLERS:
        nuts = _nuts(table, 3, sampler=sampler)
        for var in ("eta", "k", "retention_mu"):
            np.testing.assert_array_equal(nuts.posterior_[var].to_numpy(),
                                          in_process[key].posterior_[var].to_numpy())
        pd.testing.assert_frame_equal(nuts.predict(table), in_process[key].predict(table),
                                      check_exact=True)


@pytest.mark.parametrize("cache", [pytest.param("cold", marks=pytest.mark.slow), "warm"])
def test_same_seed_same_output_across_processes(table, in_process, cache, tmp_path_factory):
    # A cold compile cache is what a fresh machine or a new library version sees; the
    # functions compiled from scratch must give the numbers the cached ones give.
    env = os.environ.copy()
    if cache == "cold":
        compiledir = tmp_path_factory.mktemp("pytensor")
        flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
                 if f and not f.startswith(("base_compiledir=", "compiledir="))]
        env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={compiledir}"])
    script = _SCRIPT.format(tests=os.path.dirname(__file__))
    # One fresh process suffices: two processes that each match this one match each other.
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    expected = [_digest(in_process["map"].predict(table)),
                _digest(in_process["nuts"].predict(table)),
                _digest(in_process["nuts_one_chain"].predict(table))]
    if NUTPIE:
        expected.append(_digest(in_process["nuts_nutpie"].predict(table)))
    assert run == expected


def test_different_seed_different_draws(table, in_process):
    other = _map(table, 4)
    # The MAP point is deterministic; the valuation draws (customer spend) follow the seed.
    assert not np.array_equal(other.predict_posterior(table).to_numpy(),
                              in_process["map"].predict_posterior(table).to_numpy())
    for key, sampler in SAMPLERS:
        nuts = _nuts(table, 4, sampler=sampler)
        assert not np.array_equal(nuts.posterior_["eta"].to_numpy(),
                                  in_process[key].posterior_["eta"].to_numpy())


def test_fit_and_predict_leave_the_global_rngs_alone(table):
    np.random.seed(123)
    random.seed(123)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    for model in (_map(table, 5), _nuts(table, 5), bayesclv.RetentionModel(
            method="map", random_seed=None).fit(table)):
        model.predict(table)
    after = np.random.get_state()
    assert after[0] == numpy_state[0]
    np.testing.assert_array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]
    assert random.getstate() == python_state
