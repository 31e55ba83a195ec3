"""The MLflow flavour: a real local tracking store and registry, a fresh process, no pickle.

The tracking store is SQLite in a temporary folder (MLflow's file store is deprecated),
with its artifacts beside it. Predictions after the round trip must be bitwise those of
the fitted model.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_reproducibility import _digest

import bayesclv
from bayesclv.exceptions import ModelFormatError

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")
bayesclv_mlflow = pytest.importorskip("bayesclv.mlflow")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A local tracking store and registry (SQLite), the tracking URI set for the module."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    cwd = os.getcwd()
    os.chdir(folder)  # artifacts of the default experiment go to ./mlruns
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        os.chdir(cwd)


@pytest.fixture(scope="module")
def customers(small_customers):
    return small_customers[0]


@pytest.fixture(scope="module")
def registered(tracking, map_model, customers):
    """``map_model`` logged with an input example and registered as ``clv`` version 1."""
    mlflow.set_experiment("bayesclv-tests")
    with mlflow.start_run():
        info = bayesclv_mlflow.log_model(map_model, "clv", input_example=customers.head(5),
                                         registered_model_name="clv")
    return info


_FRESH = """
import pickle, sys
import cloudpickle

loading = False

def refuse(event, args):
    if loading and event == "pickle.find_class":  # raised by every unpickler, C or Python
        raise RuntimeError(f"unpickling {{args}}")

def no_unpickling(*args, **kwargs):
    raise RuntimeError("pickle.load(s) called")

import mlflow
import pandas as pd
sys.path.insert(0, {tests!r})
from test_reproducibility import _digest

sys.addaudithook(refuse)
saved = {{m: (m.load, m.loads) for m in (pickle, cloudpickle)}}
for module in saved:
    module.load = module.loads = no_unpickling
loading = True
mlflow.set_tracking_uri({uri!r})
model = mlflow.pyfunc.load_model("models:/clv/1")
loading = False
# Scoring runs compiled kernels, whose on-disk compile cache (numba's, not the model)
# keeps its index with pickle: allowed again from here on.
for module, (load, loads) in saved.items():
    module.load, module.loads = load, loads
customers = pd.read_csv({table!r}, dtype={{"customer_id": str, "segment": str}})
print(_digest(model.predict(customers)))
"""


def test_registered_model_loads_in_a_fresh_process_without_unpickling_same_bits(
        registered, tracking, map_model, customers, tmp_path):
    assert registered.registered_model_version == 1
    table = tmp_path / "customers.csv"
    customers.to_csv(table, index=False)
    again = pd.read_csv(table, dtype={"customer_id": str, "segment": str})
    script = _FRESH.format(tests=str(Path(__file__).parent), uri=tracking, table=str(table))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=os.getcwd(), env=os.environ.copy(), check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-1] == _digest(map_model.predict(again))


def test_the_audit_hook_catches_unpickling(tmp_path):
    # Positive control of the fresh-process check: any unpickling of an object trips it.
    script = textwrap.dedent("""
        import pickle, sys, collections
        payload = pickle.dumps(collections.OrderedDict(a=1))
        def refuse(event, args):
            if event == "pickle.find_class":
                raise RuntimeError("unpickling")
        sys.addaudithook(refuse)
        pickle.loads(payload)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False)
    assert run.returncode != 0 and "unpickling" in run.stderr


def test_the_registry_version_loads_as_the_estimator(registered, map_model, customers):
    loaded = bayesclv_mlflow.load_model("models:/clv/1")
    assert isinstance(loaded, bayesclv.CLVModel)
    assert loaded.predict(customers).equals(map_model.predict(customers))
    pyfunc = mlflow.pyfunc.load_model(registered.model_uri)
    assert pyfunc.predict(customers).equals(map_model.predict(customers))
    assert isinstance(pyfunc.get_raw_model(), bayesclv.CLVModel)


def test_logged_model_has_the_files_requirements_and_card(registered, map_model):
    folder = Path(mlflow.artifacts.download_artifacts(registered.model_uri))
    description = yaml.safe_load((folder / "MLmodel").read_text())
    flavour = description["flavors"]["bayesclv"]
    assert flavour["estimator"] == "CLVModel"
    assert description["flavors"]["python_function"]["loader_module"] == "bayesclv.mlflow"
    data = folder / flavour["data"]
    assert sorted(p.name for p in data.iterdir()) == ["card.md", "model.nc"]
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    assert (data / "card.md").read_text().startswith("# Model card: CLVModel")
    assert f"bayesclv=={bayesclv.__version__}" in (folder / "requirements.txt").read_text()
    assert f"bayesclv=={bayesclv.__version__}" in (folder / "conda.yaml").read_text()
    logged = mlflow.get_logged_model(registered.model_id)
    assert logged.params["estimator"] == "CLVModel"
    assert logged.params["method"] == "map"
    assert logged.params["n_segments"] == str(len(map_model.segments_))
    assert any(key.startswith("prior.retention.") for key in logged.params)
    run = mlflow.get_run(logged.source_run_id)
    card = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/clv_card.md")
    assert card.startswith("# Model card")


def test_signature_comes_from_the_customer_contract(registered, customers):
    signature = mlflow.models.get_model_info(registered.model_uri).signature
    inputs = {spec.name: (spec.type.name if hasattr(spec.type, "name") else str(spec.type),
                          spec.required) for spec in signature.inputs.inputs}
    assert inputs["tenure"] == ("long", True)
    assert inputs["churned"] == ("boolean", True)
    assert inputs["segment"] == ("string", True)
    assert inputs["mean_spend"] == ("double", True)
    assert inputs["entry"] == ("long", False)
    assert inputs["customer_id"] == ("string", False)
    assert "clv_mean" in signature.outputs.input_names()
    pyfunc = mlflow.pyfunc.load_model(registered.model_uri)
    with pytest.raises(mlflow.exceptions.MlflowException, match="tenure"):
        pyfunc.predict(customers.drop(columns="tenure"))
    # Columns outside the contract are dropped by MLflow before predict: same result.
    extra = customers.assign(email="x@example.com")
    assert pyfunc.predict(extra).equals(pyfunc.predict(customers))
    # The id may be the index rather than a column.
    indexed = pyfunc.predict(customers.set_index("customer_id"))
    assert indexed["customer_id"].tolist() == customers["customer_id"].tolist()
    assert indexed["clv_mean"].tolist() == pyfunc.predict(customers)["clv_mean"].tolist()


def test_default_signature_without_segments_or_example(customers, tmp_path):
    table = customers.drop(columns="segment")
    model = bayesclv.RetentionModel(method="map", random_seed=0).fit(table)
    path = bayesclv_mlflow.save_model(model, tmp_path / "model",
                                      extra_pip_requirements=["pyarrow>=15"])
    signature = mlflow.models.Model.load(path).signature
    assert "segment" not in signature.inputs.input_names()
    assert signature.outputs is None  # no example: nothing to infer the outputs from
    requirements = (path / "requirements.txt").read_text().split()
    assert f"bayesclv=={bayesclv.__version__}" in requirements and "pyarrow>=15" in requirements
    pyfunc = mlflow.pyfunc.load_model(str(path))
    assert pyfunc.predict(table).equals(model.predict(table))
    with pytest.raises(ValueError, match="not both"):
        bayesclv_mlflow.save_model(model, tmp_path / "other", pip_requirements=["x"],
                                   extra_pip_requirements=["y"])


@pytest.mark.parametrize("kind", ["RetentionModel", "SpendModel"])
def test_sub_models_round_trip_through_a_model_directory(kind, customers, tmp_path):
    model = getattr(bayesclv, kind)(method="map", random_seed=1).fit(customers)
    path = bayesclv_mlflow.save_model(model, tmp_path / "model", input_example=customers.head())
    assert bayesclv_mlflow.load_model(path).predict(customers).equals(model.predict(customers))
    assert mlflow.pyfunc.load_model(str(path)).predict(customers).equals(
        model.predict(customers))
    names = mlflow.models.Model.load(path).signature.inputs.input_names()
    assert ("tenure" in names) == (kind == "RetentionModel")
    assert ("mean_spend" in names) == (kind == "SpendModel")


@pytest.mark.parametrize("segmenter", ["rfm", "kmeans"])
def test_pipeline_with_its_segmenter_round_trips(segmenter, tracking, tmp_path):
    from sklearn.pipeline import Pipeline

    from bayesclv.segmentation import KMeansSegmenter, RFMSegmenter

    log, _ = bayesclv.datasets.simulate_transactions(400, n_periods=18, random_seed=5)
    table = bayesclv.data.summarize(log, end_col="end_date")
    step = RFMSegmenter() if segmenter == "rfm" else KMeansSegmenter(3, random_state=0)
    pipeline = Pipeline([("segments", step),
                         ("value", bayesclv.CLVModel(method="map", random_seed=0))]).fit(table)
    mlflow.set_experiment("bayesclv-tests")
    info = bayesclv_mlflow.log_model(pipeline, f"pipeline-{segmenter}",
                                     input_example=table.head(5),
                                     registered_model_name=f"pipeline-{segmenter}")
    uri = f"models:/pipeline-{segmenter}/1"
    loaded = bayesclv_mlflow.load_model(uri)
    assert isinstance(loaded, Pipeline) and type(loaded[0]) is type(step)
    assert loaded.predict(table).equals(pipeline.predict(table))
    assert mlflow.pyfunc.load_model(uri).predict(table).equals(pipeline.predict(table))
    names = mlflow.models.get_model_info(info.model_uri).signature.inputs.input_names()
    assert {"recency", "frequency", "monetary"} <= set(names)
    assert "segment" not in names  # the segmenter writes it
    assert mlflow.get_logged_model(info.model_id).params["segmenter"] == type(step).__name__


def test_diagnostics_are_logged_as_metrics(tracking, nuts_model, map_model, customers):
    mlflow.set_experiment("bayesclv-tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = bayesclv_mlflow.log_model(nuts_model, "nuts")  # starts and ends a run
    assert mlflow.active_run() is None
    logged = mlflow.get_logged_model(info.model_id)
    run = mlflow.get_run(logged.source_run_id)
    table = nuts_model.diagnostics()
    metrics = run.data.metrics
    assert metrics["nuts.r_hat_max"] == pytest.approx(float(table["r_hat"].max()))
    assert metrics["nuts.ess_bulk_min"] == pytest.approx(float(table["ess_bulk"].min()))
    assert metrics["nuts.divergences"] == table.attrs["divergences"]
    assert metrics["nuts.converged"] == float(not table.attrs["divergences"] and float(
        table["r_hat"].max()) <= 1.01 and float(table["ess_bulk"].min()) >= 400)
    assert {"nuts.steps_per_draw.retention", "nuts.steps_per_draw.spend"} <= set(metrics)
    assert {m.key for m in logged.metrics} == set(metrics)
    assert logged.params["sampled_by"] == nuts_model.retention_model_.sampler_
    # Two models in one run keep their metrics apart.
    with mlflow.start_run() as both, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = bayesclv_mlflow.log_model(nuts_model, "first")
        second = bayesclv_mlflow.log_model(nuts_model.thin(100), "second")
    keys = set(mlflow.get_run(both.info.run_id).data.metrics)
    assert {"first.r_hat_max", "second.r_hat_max"} <= keys
    assert mlflow.get_logged_model(second.model_id).params["thinned_from_draws"] == "100"
    assert "thinned_from_draws" not in mlflow.get_logged_model(first.model_id).params
    assert bayesclv_mlflow.fit_metrics(bayesclv.CLVModel(method="map")
                                       .fit(customers.head(300))) == {}


class _Payload:
    """Unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_model_directories_are_refused_without_unpickling(map_model, tmp_path,
                                                                     monkeypatch):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    path = bayesclv_mlflow.save_model(map_model, tmp_path / "model")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("must never unpickle")

    # 1. The library's file replaced by a pickle: refused as not a saved model.
    (path / "data" / "bayesclv" / "model.nc").write_bytes(payload)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    with pytest.raises(ModelFormatError):
        bayesclv_mlflow.load_model(path)
    with pytest.raises(ModelFormatError):
        mlflow.pyfunc.load_model(str(path))
    # 2. The MLmodel edited to point the bayesclv flavour at a pickle: still our reader.
    (path / "data" / "bayesclv" / "model.pkl").write_bytes(payload)
    description = yaml.safe_load((path / "MLmodel").read_text())
    description["flavors"]["bayesclv"]["model_file"] = "model.pkl"
    (path / "MLmodel").write_text(yaml.safe_dump(description))
    with pytest.raises(ModelFormatError):
        bayesclv_mlflow.load_model(path)
    description["flavors"]["bayesclv"]["model_file"] = "../../../elsewhere.nc"
    (path / "MLmodel").write_text(yaml.safe_dump(description))
    with pytest.raises(ValueError, match="outside the model's directory"):
        bayesclv_mlflow.load_model(path)
    assert not marker.exists()


def test_other_objects_are_refused(tmp_path, customers):
    with pytest.raises(TypeError, match="CLVModel, RetentionModel or SpendModel"):
        bayesclv_mlflow.save_model(bayesclv.segmentation.RFMSegmenter().fit(customers.assign(
            recency=1.0, frequency=1.0, monetary=1.0)), tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(bayesclv.NotFittedError):
        bayesclv_mlflow.save_model(bayesclv.CLVModel(), tmp_path / "m")


def test_batch_scorer_gives_the_whole_table_rows(registered, map_model, customers):
    scorer = bayesclv_mlflow.BatchScorer("models:/clv/1")
    expected = map_model.predict(customers)
    batches = [customers.iloc[i:i + 400] for i in range(0, len(customers), 400)]
    # Spark's mapInPandas: an iterator of batches in, one table per batch out.
    scored = pd.concat(list(scorer(iter(batches))))
    pd.testing.assert_frame_equal(scored, expected, check_exact=False, rtol=1e-12, atol=1e-9)
    # pandas UDF style: groupby().apply scores each group (here, blocks of 500 rows).
    grouped = customers.groupby(np.arange(len(customers)) // 500, group_keys=False).apply(
        scorer.predict)
    pd.testing.assert_frame_equal(grouped.loc[expected.index], expected, check_exact=False,
                                  rtol=1e-12, atol=1e-9)
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy.artifact_uri == scorer.artifact_uri != "models:/clv/1"
    assert Path(scorer.artifact_uri, "data", "bayesclv", "model.nc").exists()


def _use_store(uri):
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def test_registry_model_scores_a_dask_frame_on_a_cluster(registered, tracking, map_model,
                                                          customers):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    expected = map_model.predict(customers)
    frame = dd.from_pandas(customers, npartitions=4, sort=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # Workers whose default store is another one: the scorer carries the one in use.
        client.run(_use_store, "sqlite:///elsewhere.db")
        loaded = bayesclv_mlflow.load_model("models:/clv/1")
        pd.testing.assert_frame_equal(loaded.predict(frame).compute(), expected,
                                      check_exact=False, rtol=1e-12, atol=1e-9)
        scorer = bayesclv_mlflow.BatchScorer("models:/clv/1")
        lazy = frame.map_partitions(scorer.predict, meta=expected.iloc[:0])
        pd.testing.assert_frame_equal(lazy.compute(), expected, check_exact=False,
                                      rtol=1e-12, atol=1e-9)
    assert np.isfinite(expected["clv_mean"]).all()
