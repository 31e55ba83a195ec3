"""The spend model compiled in a second process while the retention model compiles."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from _structures import structure_of
from sklearn.base import clone

import bayesclv
from bayesclv import _flat
from bayesclv._base import compile_posterior
from bayesclv._nutpie import nutpie_available
from bayesclv.datasets import simulate_customers
from bayesclv.estimator import _background
from bayesclv.estimator._background import SpendCompilation, _job
from bayesclv.priors import Prior

needs_nutpie = pytest.mark.skipif(not nutpie_available(), reason="needs the fast extra")
SEGMENTS = {
    "1": {"share": 0.6, "eta": 20.0, "k": 0.8, "p": 4.0, "q": 4.0, "gamma": 40.0},
    "2": {"share": 0.4, "eta": 12.0, "k": 1.2, "p": 5.0, "q": 3.0, "gamma": 20.0},
}


@pytest.fixture(scope="module")
def customers():
    table, _ = simulate_customers(
        600, SEGMENTS, observation_periods=24, random_seed=5,
        covariates={"age": {"mean": 40.0, "sd": 10.0, "retention": 0.03, "spend": -0.01},
                    "channel": {"levels": ["store", "web"], "probs": [0.6, 0.4],
                                "retention": {"web": 0.5}, "spend": {"web": 0.4}}})
    return table


def _written(spend, table, folder):
    job, arrays = _job(spend, table, "month")
    (folder / "job.json").write_text(json.dumps(job))
    np.savez(folder / "arrays.npz", **arrays)
    return job, arrays


@pytest.mark.parametrize("case", ["covariates", "example", "lognormal"])
def test_the_second_process_builds_the_structure_the_fit_compiles(case, customers, tmp_path,
                                                                   monkeypatch):
    # Covariates, a user's prior, segment labels that read as numbers; and the example,
    # whose statistics take the other branch (Laplace grid sums): the second process must
    # build the very structure the spend fit compiles.
    if case == "covariates":
        table = customers
        spend = bayesclv.SpendModel(
            covariates=["age", "channel"], random_seed=1,
            priors={"mu": {"log_p": Prior("Normal", mu=1.0, sigma=0.8)}})
    elif case == "example":
        table = bayesclv.datasets.load_example()
        spend = bayesclv.SpendModel(random_seed=1)
    else:
        table, _ = simulate_customers(800, log_spend=True, random_seed=4)
        spend = bayesclv.SpendModel("lognormal", random_seed=1)
    job, arrays = _written(spend, table, tmp_path)
    # Numbers only: no identifier, no label (the statistics are per spender here).
    assert not any(np.asarray(v).dtype.kind in "OUS" for v in arrays.values())
    assert not hasattr(spend, "segments_")  # computed on a copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = spend._prepared_model(table, "month")
    expected = structure_of(lambda: compile_posterior(fitted), monkeypatch)
    model, _ = _background._model_from_folder(tmp_path)
    assert not tmp_path.exists()  # deleted once read
    assert expected is not None
    assert structure_of(lambda: compile_posterior(model), monkeypatch) == expected
    # The negative control: another structure has another fingerprint.
    other = bayesclv.SpendModel(priors={"pooled": False}, random_seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other_model = other._prepared_model(customers, "month")
    assert structure_of(lambda: compile_posterior(other_model), monkeypatch) != expected


def _fake_second_process(monkeypatch, code):
    monkeypatch.setattr(_background, "_command", lambda folder: [sys.executable, "-c", code])
    monkeypatch.setattr(_background, "enabled", lambda: True)
    monkeypatch.setattr(_background, "_fits_compiled_density", lambda spend: True)


def test_the_spend_fit_waits_for_the_compiled_model_only(customers, monkeypatch):
    _fake_second_process(monkeypatch, "import time; print('noise', flush=True); "
                                      "print('compiled', flush=True); time.sleep(60)")
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    compilation.start()  # once only
    process, folder = compilation._process, compilation._folder
    try:
        assert (folder / "job.json").exists() and (folder / "arrays.npz").exists()
        compilation.wait()
        assert compilation._compiled and process.poll() is None
        assert not folder.exists()
        compilation.close()
        # Left to finish the kernels, and referenced until then.
        assert process in _background._RUNNING and process.poll() is None
    finally:
        process.kill()
        process.wait()
        _background._RUNNING.discard(process)


@pytest.mark.parametrize("code", ["import time; time.sleep(60)",
                                  "import time; print('noise', flush=True); time.sleep(60)"])
def test_a_fit_that_fails_first_stops_the_second_process(code, customers, monkeypatch):
    _fake_second_process(monkeypatch, code)
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    process, folder = compilation._process, compilation._folder
    compilation.close()
    assert process.poll() is not None and process not in _background._RUNNING
    assert not folder.exists()


@pytest.mark.parametrize("code", ["import sys; sys.exit(1)",
                                  "print('not the line', flush=True)"])
def test_a_second_process_that_fails_does_not_hold_the_fit(code, customers, monkeypatch):
    _fake_second_process(monkeypatch, code)
    monkeypatch.setattr(_background, "WAIT_SECONDS", 30.0)
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    process = compilation._process
    compilation.wait()  # returns when the process has ended without the line
    assert compilation._ready.is_set() and not compilation._compiled
    compilation.close()
    assert process.poll() is not None and process not in _background._RUNNING


def test_a_table_the_spend_model_refuses_starts_nothing(customers, monkeypatch):
    _fake_second_process(monkeypatch, "raise SystemExit")
    monkeypatch.setattr(_background, "_command", lambda folder: pytest.fail("started"))
    compilation = SpendCompilation(bayesclv.SpendModel(),
                                   customers.drop(columns="mean_spend"), "month")
    compilation.start()  # the spend fit will say what is wrong; this says nothing
    compilation.wait()
    compilation.close()
    assert compilation._process is None and compilation._folder is None


def test_a_second_process_past_its_time_is_stopped(customers, monkeypatch):
    _fake_second_process(monkeypatch, "import time; time.sleep(60)")
    monkeypatch.setattr(_background, "WAIT_SECONDS", 0.5)
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    process = compilation._process
    compilation.wait()
    assert process.poll() is not None and compilation._process is None
    compilation.close()


def test_clv_fit_starts_it_while_retention_compiles_and_waits_before_spend(monkeypatch):
    events = []

    class Recorded:
        def __init__(self, spend, X, period):
            events.append("created")

        def start(self):
            events.append("start")

        def wait(self):
            events.append("wait")

        def close(self):
            events.append("close")

    def compiling(point, logp, gradient, n_dim, compile_fn):
        # As when the structure is missing from the cache: the hook, then the compile.
        _background_action = bayesclv._callbacks._BEFORE_COMPILING.get()
        if _background_action is not None:
            _background_action()
        return original(point, logp, gradient, n_dim, compile_fn)

    def spend_fit(self, *args, **kwargs):
        events.append("spend fit")
        return original_spend_fit(self, *args, **kwargs)

    original, original_spend_fit = _flat.compile_callbacks, bayesclv.SpendModel._begin_fit
    monkeypatch.setattr(_flat, "compile_callbacks", compiling)
    monkeypatch.setattr(_background, "SpendCompilation", Recorded)
    monkeypatch.setattr(bayesclv.SpendModel, "_begin_fit", spend_fit)
    table, _ = simulate_customers(300, observation_periods=12, random_seed=3)
    bayesclv.CLVModel(method="map", random_seed=0).fit(table)
    assert events[:5] == ["created", "start", "wait", "spend fit", "close"]
    # The spend fit's own compile is outside the hook's block.
    assert events.count("start") == 1


@pytest.mark.parametrize("case", ["disabled", "off", "one core", "frozen", "pymc"])
def test_nothing_starts_where_it_cannot_help(case, customers, monkeypatch):
    monkeypatch.setattr(_background, "_command", lambda folder: pytest.fail("started"))
    monkeypatch.setattr(_background, "_usable_cores", lambda: 1 if case == "one core" else 2)
    monkeypatch.setenv("BAYESCLV_COMPILE_IN_BACKGROUND",
                       {"disabled": "0", "off": " Off"}.get(case, "1"))
    if case == "frozen":
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    spend = bayesclv.SpendModel(sampler="pymc" if case == "pymc" else "auto")
    if case != "pymc" and not nutpie_available():
        pytest.skip("needs the fast extra")
    assert _background.enabled() == (case == "pymc")
    compilation = SpendCompilation(spend, customers, "month")
    compilation.start()
    compilation.wait()
    compilation.close()
    assert compilation._process is None


@pytest.mark.parametrize("sampler", ["pymc", "auto"])
def test_a_map_fit_starts_the_second_process_whatever_the_sampler(sampler, customers,
                                                                   monkeypatch):
    # MAP optimises the density nutpie samples: what the second process compiles serves it.
    started = []

    def command(folder):
        started.append(folder)
        return [sys.executable, "-c", f"print({_background._READY!r})"]

    monkeypatch.setattr(_background, "_command", command)
    monkeypatch.setattr(_background, "enabled", lambda: True)
    compilation = SpendCompilation(bayesclv.SpendModel(method="map", sampler=sampler),
                                   customers, "month")
    compilation.start()
    try:
        compilation.wait()
        assert len(started) == 1 and compilation._compiled
    finally:
        compilation.close()


@needs_nutpie
def test_the_second_process_starts_and_says_when_the_model_is_compiled(monkeypatch):
    # The real command, environment and module path, with the model in the cache already
    # (fitted here first): the process loads it, says so, and goes on to the kernels.
    table = bayesclv.datasets.load_example()
    spend = bayesclv.SpendModel(draws=20, tune=20, chains=1, random_seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compile_posterior(clone(spend)._prepared_model(table, "month"))
    monkeypatch.setattr(_background, "enabled", lambda: True)
    compilation = SpendCompilation(spend, table, "month")
    compilation.start()
    process = compilation._process
    try:
        compilation.wait()
        assert compilation._compiled
        compilation.close()
    finally:
        assert process.wait(timeout=120) == 0
        _background._RUNNING.discard(process)


@needs_nutpie
def test_main_compiles_the_model_in_the_folder(customers, tmp_path, capsys):
    _written(bayesclv.SpendModel(random_seed=2), customers, tmp_path)
    assert _background.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == "compiled\n"


def test_the_kernels_compiled_first_are_kernels_predict_calls():
    from bayesclv.valuation import kernels

    assert set(_background.PREDICT_KERNELS) <= set(kernels._COMPILE_ON_FIRST_CALL)
    kernels.compile_kernels(_background.PREDICT_KERNELS)  # from the cache: no error
    with pytest.raises(KeyError):
        kernels.compile_kernels(["no_such_kernel"])


_COLD_FIT = textwrap.dedent("""
    import warnings
    import numpy as np
    import bayesclv
    from bayesclv import _flat
    from bayesclv.datasets import simulate_customers

    compiled = []
    original = _flat.compile_callbacks

    def counted(point, logp, gradient, n_dim, compile_fn):
        def compile_counted(inputs, outputs):
            compiled.append(n_dim)
            return compile_fn(inputs, outputs)
        return original(point, logp, gradient, n_dim, compile_counted)

    _flat.compile_callbacks = counted
    warnings.simplefilter("ignore")
    table, _ = simulate_customers(600, observation_periods=24, random_seed=5)
    model = bayesclv.CLVModel("geometric", draws=30, tune=30, chains=2, sampler="nutpie",
                              random_seed=4)
    model.fit(table)
    print(len(compiled))
    print(model.spend_model_.posterior_["p"].values.tobytes().hex())
""")


@pytest.mark.slow
@needs_nutpie
@pytest.mark.skipif(_background._usable_cores() < 2, reason="needs two cores")
def test_from_empty_caches_the_spend_model_compiles_in_a_second_process(tmp_path):
    # A cold fit: this process compiles the retention model only, the spend model comes
    # from the cache the second process filled, and the draws are those of a warm fit.
    env = os.environ.copy()
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
             if f and not f.startswith(("base_compiledir=", "compiledir="))]
    env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={tmp_path / 'pytensor'}"])
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    env.pop("BAYESCLV_COMPILE_IN_BACKGROUND", None)
    compiled, draws = subprocess.run([sys.executable, "-c", _COLD_FIT], env=env, check=True,
                                     capture_output=True, text=True).stdout.split()
    assert compiled == "1"
    table, _ = simulate_customers(600, observation_periods=24, random_seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = bayesclv.CLVModel("geometric", draws=30, tune=30, chains=2, sampler="nutpie",
                                 random_seed=4).fit(table)
    np.testing.assert_array_equal(
        np.frombuffer(bytes.fromhex(draws)), warm.spend_model_.posterior_["p"].values.ravel())

