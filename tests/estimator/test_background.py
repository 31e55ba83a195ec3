"""The spend model compiled in a second process while the retention model compiles."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import bayesclv
from bayesclv import _flat
from bayesclv._base import compile_posterior
from bayesclv._callbacks import fingerprint
from bayesclv._nutpie import nutpie_available
from bayesclv.datasets import simulate_customers
from bayesclv.estimator import _background
from bayesclv.estimator._background import SpendCompilation, _job, _read_table
from bayesclv.priors import Prior, priors_from_dict

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


class _Stop(Exception):
    pass


def _structure(spend, table, monkeypatch):
    """The fingerprint of the log density the spend fit would compile for ``table``."""
    keys = []

    def record(point, logp, gradient, n_dim, compile_fn):
        keys.append(fingerprint(point, [logp]))
        raise _Stop

    monkeypatch.setattr(_flat, "compile_callbacks", record)
    with warnings.catch_warnings(), pytest.raises(_Stop):
        warnings.simplefilter("ignore")
        compile_posterior(spend._prepared_model(table, "month"))
    return keys[0]


def test_the_copy_of_the_table_gives_the_model_the_table_gives(customers, tmp_path,
                                                               monkeypatch):
    # Segment labels that read as numbers, covariates, a user's prior, fewer rows: the
    # second process must still build the structure the fit compiles.
    spend = bayesclv.SpendModel(
        covariates=["age", "channel"], random_seed=1,
        priors={"mu": {"log_p": Prior("Normal", mu=1.0, sigma=0.8)}})
    monkeypatch.setattr(_background, "MAX_ROWS", 250)
    job, copy = _job(spend, customers, "month")
    assert len(copy) <= 250 and set(copy["segment"]) == {"1", "2"}
    assert copy["customer_id"].tolist() == list(range(len(copy)))  # no identifier leaves
    assert set(copy.columns) == {"customer_id", "segment", "tenure", "churned", "entry",
                                 "n_periods_active", "mean_spend", "age", "channel"}
    copy.to_csv(tmp_path / "customers.csv", index=False)
    read = _read_table(tmp_path, job["kinds"])
    assert read["segment"].tolist() == copy["segment"].tolist()
    assert read["churned"].dtype == bool
    params = dict(job["params"])
    params["priors"] = priors_from_dict(params["priors"])
    expected = _structure(spend, customers, monkeypatch)
    assert expected is not None
    assert _structure(bayesclv.SpendModel(**params), read, monkeypatch) == expected
    # The negative control: another structure has another fingerprint.
    other = bayesclv.SpendModel(random_seed=1)
    assert _structure(other, customers, monkeypatch) != expected


def _fake_second_process(monkeypatch, code):
    monkeypatch.setattr(_background, "_command", lambda folder: [sys.executable, "-c", code])
    monkeypatch.setattr(_background, "enabled", lambda: True)
    monkeypatch.setattr(_background, "_samples_by_nutpie", lambda spend: True)


def test_the_spend_fit_waits_for_the_compiled_model_only(customers, monkeypatch):
    _fake_second_process(monkeypatch, "import time; print('compiled', flush=True); "
                                      "time.sleep(60)")
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    compilation.start()  # once only
    process, folder = compilation._process, compilation._folder
    try:
        assert (folder / "job.json").exists() and (folder / "customers.csv").exists()
        compilation.wait()
        assert compilation._ready.is_set() and process.poll() is None
        assert not folder.exists()
        compilation.close()
        # Left to finish the kernels, and referenced until then.
        assert process in _background._RUNNING and process.poll() is None
    finally:
        process.kill()
        process.wait()
        _background._RUNNING.discard(process)


def test_a_failed_fit_stops_the_second_process(customers, monkeypatch):
    _fake_second_process(monkeypatch, "import time; time.sleep(60)")
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    process, folder = compilation._process, compilation._folder
    compilation.close()
    assert process.poll() is not None and process not in _background._RUNNING
    assert not folder.exists()


def test_a_second_process_that_fails_does_not_hold_the_fit(customers, monkeypatch):
    _fake_second_process(monkeypatch, "import sys; sys.exit(1)")
    compilation = SpendCompilation(bayesclv.SpendModel(), customers, "month")
    compilation.start()
    compilation.wait()  # returns when the process has ended without the line
    compilation.close()
    assert compilation._process is None


@pytest.mark.parametrize("case", ["disabled", "one core", "map", "pymc"])
def test_nothing_starts_where_it_cannot_help(case, customers, monkeypatch):
    monkeypatch.setattr(_background, "_command", lambda folder: pytest.fail("started"))
    monkeypatch.setattr(_background, "_usable_cores", lambda: 1 if case == "one core" else 2)
    monkeypatch.setenv("BAYESCLV_COMPILE_IN_BACKGROUND", "0" if case == "disabled" else "1")
    spend = bayesclv.SpendModel(method="map" if case == "map" else "nuts",
                                sampler="pymc" if case == "pymc" else "auto")
    if case != "pymc" and not nutpie_available():
        pytest.skip("needs the fast extra")
    compilation = SpendCompilation(spend, customers, "month")
    compilation.start()
    compilation.wait()
    compilation.close()
    assert compilation._process is None


@needs_nutpie
def test_the_second_process_compiles_what_the_job_says(customers, tmp_path, capsys):
    spend = bayesclv.SpendModel(random_seed=2)
    job, copy = _job(spend, customers, "month")
    copy.to_csv(tmp_path / "customers.csv", index=False)
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert _background.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == "compiled\n"


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
    model = bayesclv.CLVModel(draws=30, tune=30, chains=2, sampler="nutpie", random_seed=4)
    model.fit(table)
    print(len(compiled))
    print(model.spend_model_.posterior_["p"].values.tobytes().hex())
""")


@pytest.mark.slow
@needs_nutpie
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
        warm = bayesclv.CLVModel(draws=30, tune=30, chains=2, sampler="nutpie",
                                 random_seed=4).fit(table)
    np.testing.assert_array_equal(
        np.frombuffer(bytes.fromhex(draws)), warm.spend_model_.posterior_["p"].values.ravel())


def test_the_kernels_compiled_first_are_kernels_predict_calls():
    from bayesclv.valuation import kernels

    assert set(_background.PREDICT_KERNELS) <= set(kernels._COMPILE_ON_FIRST_CALL)
    kernels.compile_kernels(_background.PREDICT_KERNELS)  # from the cache: no error
    with pytest.raises(KeyError):
        kernels.compile_kernels(["no_such_kernel"])
