"""Saving and loading segmenters and Pipelines: bitwise round trips, refused files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from _simulated import MODEL_ARGS, customer_table
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import bayesclv
from bayesclv import io
from bayesclv.exceptions import DataValidationError, ModelFormatError, NotFittedError
from bayesclv.segmentation import DEFAULT_RFM_GROUPS, KMeansSegmenter, RFMSegmenter
from bayesclv.segmentation.kmeans import _nearest_centre

FORMATS = ["model.nc", "model.zarr"]
SEGMENTERS = {
    "rfm": lambda: RFMSegmenter(),
    "kmeans": lambda: KMeansSegmenter(n_segments=3, random_state=0, n_init=3),
    "kmeans-auto": lambda: KMeansSegmenter(n_segments="auto", max_segments=4,
                                           random_state=1, n_init=2),
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return customer_table()


@pytest.fixture(scope="module")
def pipelines(table) -> dict[str, Pipeline]:
    """A Pipeline per segmenter, each ending in a CLVModel fitted by MAP."""
    return {
        name: Pipeline([("segment", SEGMENTERS[name]()),
                        ("value", bayesclv.CLVModel(**MODEL_ARGS))]).fit(table)
        for name in ("rfm", "kmeans")
    }


def _fitted_names(estimator) -> set[str]:
    return {k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")}


def _config(path: Path) -> dict:
    with h5py.File(path, "r") as handle:
        text = handle.attrs["config"]
    return json.loads(text.decode() if isinstance(text, bytes) else str(text))


def _rewrite_config(path: Path, change) -> None:
    config = _config(path)
    change(config)
    text = json.dumps(config)
    with h5py.File(path, "r+") as handle:
        handle.attrs["config"] = text
        handle.attrs["config_sha256"] = hashlib.sha256(text.encode()).hexdigest()


def _assert_same_segmenter(original, loaded, table):
    assert type(loaded) is type(original)
    assert loaded.get_params() == original.get_params()
    assert _fitted_names(loaded) == _fitted_names(original)
    assert loaded._fitted_state() == original._fitted_state()
    assert loaded.transform(table).equals(original.transform(table))
    pd.testing.assert_frame_equal(loaded.transform(table), original.transform(table),
                                  check_exact=True)
    np.testing.assert_array_equal(loaded.feature_names_in_, original.feature_names_in_)
    assert loaded.n_features_in_ == original.n_features_in_


# ---------------------------------------------------------------------------------------
# Segmenters alone
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_rfm_round_trip_keeps_edges_with_minus_infinity(name, tmp_path):
    # 60 % of the customers never bought again: frequency quintile 1 is empty (-inf edge).
    n = 200
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                          "recency": rng.integers(0, 20, n),
                          "frequency": np.where(np.arange(n) < 120, 0, rng.integers(1, 9, n)),
                          "monetary": rng.gamma(2.0, 20.0, n)})
    segmenter = RFMSegmenter().fit(table)
    assert np.isneginf(segmenter.edges_.to_numpy()).any()

    loaded = bayesclv.load(io.save(segmenter, tmp_path / name))

    _assert_same_segmenter(segmenter, loaded, table)
    pd.testing.assert_frame_equal(loaded.edges_, segmenter.edges_, check_exact=True)
    pd.testing.assert_series_equal(loaded.cell_groups_, segmenter.cell_groups_)
    np.testing.assert_array_equal(loaded._group_table, segmenter._group_table)
    assert loaded.group_names_ == segmenter.group_names_
    new = table.iloc[:5].assign(recency=[0, 100, 3, 7, 50], monetary=[1e6, 0.0, 5, 6, 7])
    assert loaded.transform(new).equals(segmenter.transform(new))


@pytest.mark.parametrize("groups", [
    DEFAULT_RFM_GROUPS,
    (("best", {"r": (4, 5), "m": (3, 5)}), ("rest", {})),
    {"recent": {"r": (4, 5)}, "other": {}},
], ids=["default-tuples", "tuples", "mapping"])
def test_rfm_groups_survive_json(groups, table, tmp_path):
    as_json = json.loads(json.dumps(groups))  # lists where there were tuples
    from_json = RFMSegmenter(groups=as_json).fit(table)
    segmenter = RFMSegmenter(groups=groups, segment_col=None).fit(table)
    pd.testing.assert_series_equal(from_json.cell_groups_, segmenter.cell_groups_)

    loaded = bayesclv.load(io.save(segmenter, tmp_path / "rfm.nc"))

    if isinstance(groups, dict):  # read back as rules, in the same order
        assert loaded.groups == tuple(groups.items())
        loaded.set_params(groups=groups)
    assert loaded.groups == groups
    _assert_same_segmenter(segmenter, loaded, table)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("kind", ["kmeans", "kmeans-auto"])
def test_kmeans_round_trip(kind, name, table, tmp_path):
    segmenter = SEGMENTERS[kind]().fit(table)

    loaded = bayesclv.load(io.save(segmenter, tmp_path / name))

    _assert_same_segmenter(segmenter, loaded, table)
    pd.testing.assert_frame_equal(loaded.centres_, segmenter.centres_, check_exact=True)
    assert loaded.centres_["n_customers"].dtype == np.int64
    assert loaded.silhouette_scores_ == segmenter.silhouette_scores_
    if kind == "kmeans-auto":
        assert all(isinstance(k, int) for k in loaded.silhouette_scores_)
    else:
        assert loaded.silhouette_scores_ is None
    np.testing.assert_array_equal(loaded.cluster_rank_, segmenter.cluster_rank_)
    assert loaded.cluster_rank_.dtype == segmenter.cluster_rank_.dtype
    assert (loaded.n_segments_, loaded.segment_names_) == (segmenter.n_segments_,
                                                           segmenter.segment_names_)
    for attr in ("mean_", "var_", "scale_"):
        np.testing.assert_array_equal(getattr(loaded.scaler_, attr),
                                      getattr(segmenter.scaler_, attr))
    assert loaded.scaler_.n_samples_seen_ == segmenter.scaler_.n_samples_seen_
    np.testing.assert_array_equal(loaded.kmeans_.cluster_centers_,
                                  segmenter.kmeans_.cluster_centers_)
    assert loaded.kmeans_.inertia_ == segmenter.kmeans_.inertia_
    assert loaded.kmeans_.n_iter_ == segmenter.kmeans_.n_iter_
    assert not hasattr(loaded.kmeans_, "labels_")
    features = np.log1p(table[["recency", "frequency", "monetary"]].to_numpy(dtype=float))
    np.testing.assert_array_equal(loaded.scaler_.transform(features),
                                  segmenter.scaler_.transform(features))


def test_kmeans_transform_assigns_the_clusters_kmeans_found(table):
    segmenter = SEGMENTERS["kmeans"]().fit(table)
    codes = segmenter.transform(table)["kmeans_segment"].cat.codes.to_numpy()
    np.testing.assert_array_equal(codes, segmenter.cluster_rank_[segmenter.kmeans_.labels_])


def test_nearest_centre_breaks_ties_to_the_first_centre():
    centres = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    z = np.array([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0], [-2.0, 1.0, 1.0]])
    np.testing.assert_array_equal(_nearest_centre(z, centres), [0, 0, 1])
    assert _nearest_centre(np.empty((0, 3)), centres).shape == (0,)


# ---------------------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("kind", ["rfm", "kmeans"])
def test_pipeline_round_trip_predicts_bitwise(kind, name, pipelines, table, tmp_path):
    pipe = pipelines[kind]

    loaded = bayesclv.load(io.save(pipe, tmp_path / name))

    assert isinstance(loaded, Pipeline)
    assert [n for n, _ in loaded.steps] == [n for n, _ in pipe.steps]
    assert loaded.verbose == pipe.verbose
    assert loaded.predict(table).equals(pipe.predict(table))
    pd.testing.assert_frame_equal(loaded.predict(table), pipe.predict(table),
                                  check_exact=True)
    _assert_same_segmenter(pipe[0], loaded[0], table)
    assert loaded[-1].get_params() == pipe[-1].get_params()
    assert io.load_data(tmp_path / name) is None


def test_pipeline_of_two_segmenters_and_a_retention_model(table, tmp_path):
    pipe = Pipeline([
        ("rfm", RFMSegmenter(segment_col=None)),
        ("kmeans", KMeansSegmenter(n_segments=2, random_state=0, n_init=2)),
        ("retention", bayesclv.RetentionModel(method="map", random_seed=0)),
    ], verbose=False).fit(table)
    raw = table.iloc[:120].copy()

    path = io.save(pipe, tmp_path / "retention.zarr", include_data=raw)
    loaded = bayesclv.load(path)

    assert loaded.predict(table).equals(pipe.predict(table))
    assert [type(step).__name__ for _, step in loaded.steps] == [
        "RFMSegmenter", "KMeansSegmenter", "RetentionModel"]
    pd.testing.assert_frame_equal(loaded[-1].risk_set_, pipe[-1].risk_set_, check_exact=True)
    pd.testing.assert_frame_equal(io.load_data(path), raw)  # the table before segmentation
    assert sorted(p.name for p in (path / "steps").iterdir() if p.is_dir()) == ["2"]


def test_a_pipeline_of_the_model_alone(pipelines, table, tmp_path):
    pipe = Pipeline([("value", pipelines["rfm"][-1])])
    segmented = pipelines["rfm"][:-1].transform(table)

    loaded = bayesclv.load(io.save(pipe, tmp_path / "alone.nc"))

    assert loaded.predict(segmented).equals(pipe.predict(segmented))


def test_save_refuses_unfitted_and_unsupported_steps(pipelines, table, tmp_path):
    target = tmp_path / "x.nc"
    for unfitted in (RFMSegmenter(), KMeansSegmenter(),
                     Pipeline([("rfm", RFMSegmenter()), ("value", bayesclv.CLVModel())]),
                     Pipeline([("rfm", RFMSegmenter()), ("value", pipelines["rfm"][-1])])):
        with pytest.raises(NotFittedError):
            io.save(unfitted, target)
    fitted = pipelines["rfm"]
    for step in (StandardScaler(), "passthrough", None):
        pipe = Pipeline([("prepare", step), *fitted.steps])
        with pytest.raises(TypeError, match="step 'prepare' is .*only RFMSegmenter"):
            io.save(pipe, target)
    with pytest.raises(TypeError, match="last step 'rfm' is a RFMSegmenter"):
        io.save(Pipeline([("rfm", fitted[0])]), target)
    with pytest.raises(TypeError, match="Cannot save a StandardScaler"):
        io.save(StandardScaler().fit(np.ones((3, 1))), target)
    with pytest.raises(ValueError, match="include_data=customers"):
        io.save(fitted, target, include_data=True)
    with pytest.raises(DataValidationError, match="recency"):
        io.save(fitted, target, include_data=table.drop(columns="recency"))
    with pytest.raises(DataValidationError, match="tenure"):
        io.save(fitted, target, include_data=table.drop(columns="tenure"))
    assert not target.exists()


# ---------------------------------------------------------------------------------------
# Crafted files
# ---------------------------------------------------------------------------------------


def test_a_pipeline_step_naming_another_class_is_refused(pipelines, tmp_path):
    path = io.save(pipelines["kmeans"], tmp_path / "pipe.nc")
    assert [s[1]["estimator"] for s in _config(path)["steps"]] == ["KMeansSegmenter",
                                                                   "CLVModel"]
    for name in ("os.system", "StandardScaler", "Pipeline", "CLVModel"):
        path = io.save(pipelines["kmeans"], tmp_path / "pipe.nc")
        _rewrite_config(path, lambda c, name=name: c["steps"][0][1].update(estimator=name))
        with pytest.raises(ModelFormatError,
                           match=r"not one of \['KMeansSegmenter', 'RFMSegmenter'\]"):
            bayesclv.load(path)
    for name in ("RFMSegmenter", "Pipeline", "builtins.eval"):
        path = io.save(pipelines["kmeans"], tmp_path / "pipe.nc")
        _rewrite_config(path, lambda c, name=name: c["steps"][1][1].update(estimator=name))
        with pytest.raises(ModelFormatError, match=r"last step 'value' names"):
            bayesclv.load(path)


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(params={"verbose": "yes"}), "'verbose'"),
    (lambda c: c["params"].update(memory="/tmp/cache"), "'verbose'"),
    (lambda c: c.update(steps=[]), "non-empty list"),
    (lambda c: c["steps"][0].__setitem__(0, "value"), "invalid step names"),
    (lambda c: c["steps"][0].__setitem__(0, "a__b"), "invalid step names"),
    (lambda c: c["steps"].__setitem__(0, "RFMSegmenter"), "non-empty list"),
    (lambda c: c["steps"][0][1]["params"].update(n_init=0), "n_init"),
    (lambda c: c["steps"][0][1]["params"].update(code="os.system"), "code"),
    (lambda c: c["steps"][0][1]["state"].update(cluster_rank_=[0, 0, 1]), "permutation"),
    (lambda c: c["steps"][0][1]["state"]["kmeans_"].update(cluster_centers_=[[0.0] * 3]),
     "cluster_centers_"),
    (lambda c: c["steps"][0][1]["state"]["scaler_"].update(scale_=[1.0, 0.0, 1.0]),
     "scale_"),
    (lambda c: c["steps"][0][1]["state"].update(silhouette_scores_={"x": 0.5}),
     "silhouette_scores_"),
    (lambda c: c["steps"][0][1]["state"].pop("centres_"), "centres_"),
    (lambda c: c["steps"][0][1]["state"].update(n_segments_=4), "n_segments"),
    (lambda c: c["steps"][0][1].update(state="cos\nsystem\n"), "'state'"),
], ids=["verbose", "memory", "no-steps", "same-names", "dunder-name", "bare-step",
        "param-value", "unknown-param", "rank", "centres-shape", "zero-scale",
        "silhouette-key", "missing-centres", "k-mismatch", "state-text"])
def test_a_tampered_pipeline_config_is_refused(change, message, pipelines, tmp_path):
    path = io.save(pipelines["kmeans"], tmp_path / "pipe.nc")
    _rewrite_config(path, change)
    with pytest.raises(ModelFormatError, match=message):
        bayesclv.load(path)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.update(edges_=s["edges_"][:2]), "edges_ must be nested lists of shape"),
    (lambda s: s["edges_"][0].pop(), "edges_ must be nested lists of shape"),
    (lambda s: s["edges_"][1].__setitem__(0, "1e308"), "not a finite number"),
    (lambda s: s["edges_"][2].reverse(), "ascending"),
    (lambda s: s.update(group_names_=["a", "b"]), "not the names of the groups"),
    (lambda s: s.update(n_features_in_=True), "n_features_in_"),
    (lambda s: s.update(feature_names_in_=["recency"]), "feature_names_in_"),
    (lambda s: s.pop("edges_"), "no 'edges_'"),
], ids=["rows", "columns", "text", "descending", "names", "bool", "features", "missing"])
def test_a_tampered_rfm_state_is_refused(change, message, table, tmp_path):
    path = io.save(RFMSegmenter().fit(table), tmp_path / "rfm.nc")
    _rewrite_config(path, lambda c: change(c["state"]))
    with pytest.raises(ModelFormatError, match=f"RFMSegmenter: .*{message}"):
        bayesclv.load(path)


def test_invalid_rfm_groups_in_a_file_are_refused(table, tmp_path):
    path = io.save(RFMSegmenter().fit(table), tmp_path / "rfm.nc")
    _rewrite_config(path, lambda c: c["params"].update(groups=[["only", {"r": [4, 5]}]]))
    with pytest.raises(ModelFormatError, match="without a group"):
        bayesclv.load(path)
    _rewrite_config(path, lambda c: c["params"].update(groups="os.system"))
    with pytest.raises(ModelFormatError, match="RFMSegmenter"):
        bayesclv.load(path)

