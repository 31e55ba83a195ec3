"""Estimator machinery shared by the three estimators: slim copies (thin), the paused
garbage collector."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pandas as pd
import pytest

import bayesclv
import bayesclv._base as base
import bayesclv.estimator.retention as retention
from bayesclv._base import collector_paused, graph_building


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return bayesclv.datasets.load_example().head(1500)


def test_thin_keeps_evenly_spaced_draws_per_chain(customers, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        model = bayesclv.CLVModel(draws=100, tune=100, chains=2, random_seed=1,
                                  horizon=12).fit(customers)
    slim = model.thin(50)
    for sub in (slim.retention_model_, slim.spend_model_):
        assert sub.posterior_.sizes["chain"] == 2 and sub.posterior_.sizes["draw"] == 25
        # relabelled like a fresh fit's draws, so outputs of the copy align
        np.testing.assert_array_equal(sub.posterior_["draw"], np.arange(25))
        kept = np.linspace(0, 99, 25).round().astype(int)
        full = (model.retention_model_ if sub is slim.retention_model_
                else model.spend_model_).posterior_
        name = next(iter(sub.posterior_.data_vars))
        np.testing.assert_array_equal(sub.posterior_[name].to_numpy(),
                                      full[name].isel(draw=kept).to_numpy())
        assert sub.posterior_.attrs["thinned_from_draws"] == 100
    assert model.retention_model_.posterior_.sizes["draw"] == 100  # the original is kept
    assert slim.idata_["posterior"].sizes["draw"] == 25
    full, thin = model.predict(customers), slim.predict(customers)
    active = ~customers["churned"].to_numpy()
    np.testing.assert_allclose(thin["clv_mean"][active], full["clv_mean"][active], rtol=0.1)
    path = slim.save(tmp_path / "slim.nc")
    assert path.stat().st_size < model.save(tmp_path / "full.nc").stat().st_size
    pd.testing.assert_frame_equal(bayesclv.load(path).predict(customers), thin)
    assert model.thin(10_000).idata_["posterior"].sizes["draw"] == 100
    with pytest.raises(ValueError, match="draws must be an integer"):
        model.thin(0)


def test_collector_paused_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the outer pause still holds when it ends
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()

    @collector_paused()
    def failing():
        assert not gc.isenabled()
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        failing()
    assert gc.isenabled()

    gc.disable()  # a collector the user turned off stays off
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collector_paused_by_overlapping_threads_resumes_after_the_last():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after_first_left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"after_first_left": False}
    assert gc.isenabled()


def test_a_fit_builds_and_fits_its_model_with_the_collector_paused(customers, monkeypatch):
    seen = []

    def recording(function):
        def call(*args, **kwargs):
            seen.append((function.__name__, gc.isenabled()))
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(retention, "build_retention_model",
                        recording(retention.build_retention_model))
    monkeypatch.setattr(base, "find_map", recording(base.find_map))
    bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    assert seen == [("build_retention_model", False), ("find_map", False)]
    assert gc.isenabled()


def _creation_trace() -> list:
    """Where PyTensor recorded that a new variable was created (empty: not recorded)."""
    import pytensor.tensor as pt

    return pt.exp(pt.vector("x")).tag.trace


def test_graph_building_records_no_creation_tracebacks_and_restores_the_setting():
    import pytensor

    limit = pytensor.config.traceback__limit
    assert _creation_trace()  # the negative control: PyTensor records them by default
    with graph_building():
        assert not gc.isenabled()
        with graph_building():
            assert _creation_trace() == []
        assert _creation_trace() == []
    assert pytensor.config.traceback__limit == limit and gc.isenabled()
    assert _creation_trace()


def test_graph_building_keeps_a_traceback_limit_the_user_set():
    import pytensor

    with pytensor.config.change_flags(traceback__limit=3):
        with graph_building():
            assert pytensor.config.traceback__limit == 3
            assert _creation_trace()
        assert pytensor.config.traceback__limit == 3


def test_a_fit_builds_its_model_without_creation_tracebacks(customers, monkeypatch):
    import pytensor

    seen = []

    def recording(function):
        def call(*args, **kwargs):
            seen.append((function.__name__, pytensor.config.traceback__limit))
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(retention, "build_retention_model",
                        recording(retention.build_retention_model))
    monkeypatch.setattr(base, "find_map", recording(base.find_map))
    limit = pytensor.config.traceback__limit
    bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    assert seen == [("build_retention_model", 0), ("find_map", 0)]
    assert pytensor.config.traceback__limit == limit
