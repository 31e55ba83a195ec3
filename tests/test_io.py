"""Saving and loading: bitwise round trips, and files that must be refused."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import bayesclv
from bayesclv import io
from bayesclv.exceptions import ModelFormatError, NotFittedError

FORMATS = ["model.nc", "model.zarr"]


@pytest.fixture(scope="module")
def customers(small_customers):
    return small_customers[0]


@pytest.fixture(scope="module")
def few_customers(customers):
    return customers.iloc[:300].copy()


@pytest.fixture(scope="module")
def nuts_clv(few_customers):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        return bayesclv.CLVModel(draws=10, tune=10, chains=2, horizon=12, random_seed=5,
                                 ).fit(few_customers)


def _fitted_state(model) -> set[str]:
    return {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}


def _assert_same_model(original, loaded, customers):
    assert type(loaded) is type(original)
    assert loaded.get_params() == original.get_params()
    assert _fitted_state(loaded) == _fitted_state(original)
    pd.testing.assert_frame_equal(loaded.predict(customers), original.predict(customers),
                                  check_exact=True)
    xr.testing.assert_identical(loaded.idata_["posterior"].to_dataset(),
                                original.idata_["posterior"].to_dataset())


@pytest.mark.parametrize("name", FORMATS)
def test_clv_map_round_trip_is_bitwise(map_model, customers, tmp_path, name):
    path = map_model.save(tmp_path / name)
    assert path == tmp_path / name
    loaded = bayesclv.load(path)
    _assert_same_model(map_model, loaded, customers)
    for attr in ("retention_model_", "spend_model_"):
        _assert_same_model(getattr(map_model, attr), getattr(loaded, attr), customers)
    assert loaded.valuation_seed_ == map_model.valuation_seed_
    xr.testing.assert_identical(loaded.predict_posterior(customers),
                                map_model.predict_posterior(customers))
    pd.testing.assert_frame_equal(loaded.segment_report(customers),
                                  map_model.segment_report(customers), check_exact=True)
    xr.testing.assert_identical(loaded.retention_curve(12), map_model.retention_curve(12))
    # A segment unseen in training is drawn from the population with the same seed.
    unseen = customers.iloc[:20].assign(segment="brand_new")
    pd.testing.assert_frame_equal(loaded.predict(unseen), map_model.predict(unseen),
                                  check_exact=True)


def test_clv_nuts_round_trip_keeps_draws_and_sample_stats(nuts_clv, few_customers, tmp_path):
    loaded = bayesclv.load(nuts_clv.save(tmp_path / "nuts.nc"))
    _assert_same_model(nuts_clv, loaded, few_customers)
    for name in ("sample_stats_retention", "sample_stats_spend"):
        xr.testing.assert_identical(loaded.idata_[name].to_dataset(),
                                    nuts_clv.idata_[name].to_dataset())
    pd.testing.assert_frame_equal(loaded.diagnostics(), nuts_clv.diagnostics())
    assert loaded.diagnostics().attrs == nuts_clv.diagnostics().attrs


@pytest.mark.parametrize("family", ["geometric", "weibull", "sbg", "bdw"])
def test_retention_round_trip_every_family(family, customers, tmp_path):
    model = bayesclv.RetentionModel(family, method="map", random_seed=2).fit(customers)
    loaded = bayesclv.load(model.save(tmp_path / f"{family}.zarr"))
    _assert_same_model(model, loaded, customers)
    pd.testing.assert_frame_equal(loaded.risk_set_, model.risk_set_, check_exact=True)
    pd.testing.assert_frame_equal(loaded.groups_, model.groups_, check_exact=True)
    pd.testing.assert_frame_equal(loaded.life_table(), model.life_table(), check_exact=True)
    pd.testing.assert_frame_equal(loaded.posterior_predictive_churn(),
                                  model.posterior_predictive_churn(), check_exact=True)
    assert loaded.priors_ == model.priors_


def test_spend_round_trip(customers, tmp_path):
    model = bayesclv.SpendModel(method="map", random_seed=4,
                                priors={"mu": {"log_p": bayesclv.Prior("Normal", mu=1.0,
                                                                       sigma=0.5)}})
    model.fit(customers)
    loaded = bayesclv.load(model.save(tmp_path / "spend.nc"))
    _assert_same_model(model, loaded, customers)
    assert loaded.priors == model.priors and loaded.priors_ == model.priors_


def test_include_data_stores_the_table_and_leaves_it_out_by_default(map_model, customers,
                                                                   tmp_path):
    table = customers.copy()
    table.index = pd.Index([f"row{i}" for i in range(len(table))], name="label")
    table.attrs["period"] = "month"
    for name in FORMATS:
        path = map_model.save(tmp_path / f"with_{name}", include_data=table)
        pd.testing.assert_frame_equal(io.load_data(path), table)
        assert io.load_data(path).attrs == table.attrs
        assert io.load_data(map_model.save(tmp_path / name)) is None
    with pytest.raises(TypeError, match="DataFrame"):
        map_model.save(tmp_path / "x.nc", include_data="yes")
    with pytest.raises(bayesclv.DataValidationError, match="tenure"):
        map_model.save(tmp_path / "x.nc", include_data=table.drop(columns="tenure"))


def test_size_does_not_grow_with_customers(map_model, customers, tmp_path):
    from bayesclv.datasets import simulate_customers

    # Ten times the customers of the session's MAP model, the same segments and window.
    segments = {
        label: {"share": float(np.mean(customers["segment"] == label)), "eta": 20.0,
                "k": 1.0, "p": 4.0, "q": 4.0, "gamma": 40.0}
        for label in sorted(set(customers["segment"]))
    }
    larger, _ = simulate_customers(10 * len(customers), segments, observation_periods=24,
                                   truncation_periods=6, random_seed=1)
    model = bayesclv.CLVModel(method="map", horizon=24, margin=0.5, random_seed=3).fit(larger)
    small = map_model.save(tmp_path / "small.nc").stat().st_size
    large = model.save(tmp_path / "large.nc").stat().st_size
    print(f"\nsaved CLVModel (MAP) sizes: {len(customers):,} customers {small:,} B; "
          f"{len(larger):,} customers {large:,} B")
    assert large < 1.2 * small


# ---------------------------------------------------------------------------------------
# Files that must be refused
# ---------------------------------------------------------------------------------------


class _Payload:
    """Unpickling it would create ``marker`` (stands for any code a pickle can run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _set_attrs(path: Path, **attrs) -> None:
    with h5py.File(path, "r+") as handle:
        for key, value in attrs.items():
            handle.attrs[key] = value


def _config(path: Path) -> tuple[str, str]:
    with h5py.File(path, "r") as handle:
        config, digest = handle.attrs["config"], handle.attrs["config_sha256"]
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in (config, digest))


def _rewrite_config(path: Path, change) -> None:
    config = json.loads(_config(path)[0])
    change(config)
    text = json.dumps(config)
    _set_attrs(path, config=text, config_sha256=hashlib.sha256(text.encode()).hexdigest())


def test_the_payload_is_live(tmp_path):
    # Positive control: unpickling the payload does create the marker.
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()


def test_crafted_file_with_pickle_payload_and_class_path_is_refused(map_model, tmp_path,
                                                                     monkeypatch):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("load() must never unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)

    # 1. A file made from scratch: the config is a pickle, binary and as text.
    crafted = tmp_path / "crafted.nc"
    xr.Dataset({"x": ("row", np.arange(3.0))}).to_netcdf(crafted, engine="h5netcdf")
    _set_attrs(crafted, format=io.FORMAT_NAME, format_version=io.FORMAT_VERSION,
               config=np.void(payload),
               config_sha256=hashlib.sha256(payload).hexdigest())
    with pytest.raises(ModelFormatError):
        bayesclv.load(crafted)
    text = pickle.dumps(_Payload(marker), protocol=0).decode("ascii")  # no NUL bytes
    _set_attrs(crafted, config=text, config_sha256=hashlib.sha256(text.encode()).hexdigest())
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        bayesclv.load(crafted)

    # 2. A real model whose class is an import path, with a matching hash.
    path = map_model.save(tmp_path / "model.nc")
    for name in ("os.system", "builtins.eval", "bayesclv.estimator.clv.CLVModel",
                 "pickle.loads"):
        _rewrite_config(path, lambda c, name=name: c.update(estimator=name))
        with pytest.raises(ModelFormatError, match=r"not one of \['CLVModel'"):
            bayesclv.load(path)

    # 3. The pickle smuggled into a hyper-parameter and into a fitted attribute.
    path = map_model.save(tmp_path / "model.nc")
    _rewrite_config(path, lambda c: c["params"].update(priors=text))
    with pytest.raises(ModelFormatError, match="priors"):
        bayesclv.load(path)
    path = map_model.save(tmp_path / "model.nc")
    _rewrite_config(path, lambda c: c["state"].update(seed_=text))
    with pytest.raises(ModelFormatError, match="seed_"):
        bayesclv.load(path)
    path = map_model.save(tmp_path / "model.nc")
    _rewrite_config(path, lambda c: c["children"]["retention_model_"]["params"].update(
        family="os.system"))
    with pytest.raises(ModelFormatError, match="family"):
        bayesclv.load(path)
    assert not marker.exists()


def test_unknown_format_version_is_refused(map_model, tmp_path):
    path = map_model.save(tmp_path / "model.nc")
    # Version 1 (bayesclv before the spend coordinates became log mean spend, log p,
    # log(q - 1)) would be misread: refused, as any other version is.
    for version in (1, io.FORMAT_VERSION + 1):
        _set_attrs(path, format_version=version)
        with pytest.raises(ModelFormatError,
                           match=rf"format_version {version}.*reads format versions \[2, 3\]"):
            bayesclv.load(path)
    _set_attrs(path, format_version="2")
    with pytest.raises(ModelFormatError, match="format_version"):
        bayesclv.load(path)


def test_tampered_config_is_refused(map_model, customers, tmp_path):
    path = map_model.save(tmp_path / "model.nc")
    text, _ = _config(path)
    assert '"horizon":24' in text
    _set_attrs(path, config=text.replace('"horizon":24', '"horizon":36'))
    with pytest.raises(ModelFormatError, match="config was modified"):
        bayesclv.load(path)


def test_zarr_config_tampering_is_refused(map_model, tmp_path):
    import zarr

    path = map_model.save(tmp_path / "model.zarr")
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["config"] = group.attrs["config"].replace('"margin":0.5', '"margin":5.0')
    with pytest.raises(ModelFormatError, match="config was modified"):
        bayesclv.load(path)


def test_missing_file_and_non_models_are_refused(map_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved model"):
        bayesclv.load(tmp_path / "nothing.nc")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFormatError, match="not a readable Zarr store"):
        bayesclv.load(empty)
    plain = tmp_path / "plain.zarr"
    xr.Dataset({"x": ("row", np.arange(3.0))}).to_zarr(plain, consolidated=False)
    with pytest.raises(ModelFormatError, match="not a saved bayesclv model"):
        bayesclv.load(plain)
    text = tmp_path / "notes.nc"
    text.write_text("not a netCDF file")
    with pytest.raises(ModelFormatError, match="not a readable netCDF file"):
        bayesclv.load(text)
    plain_nc = tmp_path / "plain.nc"
    xr.Dataset({"x": ("row", np.arange(3.0))}).to_netcdf(plain_nc, engine="h5netcdf")
    with pytest.raises(ModelFormatError, match="not a saved bayesclv model"):
        bayesclv.load(plain_nc)


def test_malformed_arrays_are_refused(map_model, tmp_path):
    path = map_model.save(tmp_path / "model.nc")
    with h5py.File(path, "r+") as handle:
        del handle["retention_model/posterior/retention_psi"]
    with pytest.raises(ModelFormatError, match="retention_psi"):
        bayesclv.load(path)


def test_save_refuses_what_it_cannot_save(map_model, small_customers, tmp_path):
    with pytest.raises(NotFittedError):
        bayesclv.CLVModel().save(tmp_path / "unfitted.nc")
    pipe = Pipeline([("scale", StandardScaler()), ("value", map_model)])
    with pytest.raises(TypeError, match="only RFMSegmenter and KMeansSegmenter"):
        io.save(pipe, tmp_path / "pipe.nc")
    with pytest.raises(TypeError, match="Cannot save a StandardScaler"):
        io.save(StandardScaler(), tmp_path / "scaler.nc")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="does not hold a saved bayesclv model"):
        map_model.save(occupied)
    assert (occupied / "keep.txt").read_text() == "precious"
    # A directory that holds a model is replaced.
    store = map_model.save(tmp_path / "again.zarr")
    assert bayesclv.load(map_model.save(store)).seed_ == map_model.seed_


def test_include_data_true_stores_the_training_table_while_it_is_held(tmp_path):
    table = bayesclv.datasets.load_example().head(400)
    model = bayesclv.RetentionModel(method="map", random_seed=0).fit(table)
    path = model.save(tmp_path / "with_training.nc", include_data=True)
    pd.testing.assert_frame_equal(io.load_data(path), table)
    # A loaded model has no training table in memory: True says what to do.
    with pytest.raises(ValueError, match="include_data=customers"):
        bayesclv.load(path).save(tmp_path / "again.nc", include_data=True)
    del table
    with pytest.raises(ValueError, match="no longer in memory"):
        model.save(tmp_path / "gone.nc", include_data=True)


# --- crafted and damaged files ----------------------------------------------------------


def _with_posterior(model, change):
    """A copy of a fitted single model whose posterior is ``change(posterior)``."""
    import copy

    crafted = copy.deepcopy(model)
    posterior = change(crafted.idata_["posterior"].to_dataset())
    crafted.idata_ = xr.DataTree.from_dict({"posterior": posterior})
    return crafted


def test_sub_models_with_different_draws_are_refused(map_model, tmp_path):
    import copy

    crafted = copy.deepcopy(map_model)
    spend = crafted.spend_model_
    posterior = spend.idata_["posterior"].to_dataset()
    doubled = xr.concat([posterior, posterior.assign_coords(draw=[1])], dim="draw")
    spend.idata_ = xr.DataTree.from_dict({"posterior": doubled})
    path = crafted.save(tmp_path / "mismatched.nc")
    with pytest.raises(ModelFormatError, match=r"different \(chain, draw\) sizes"):
        bayesclv.load(path)


def test_zero_draws_and_permuted_labels_are_refused(customers, tmp_path):
    model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    empty = _with_posterior(model, lambda p: p.isel(draw=slice(0, 0)))
    with pytest.raises(ModelFormatError, match="no draws"):
        bayesclv.load(empty.save(tmp_path / "empty.nc"))
    permuted = _with_posterior(model, lambda p: p)
    permuted.segments_ = list(reversed(model.segments_))
    with pytest.raises(ModelFormatError, match="segment labels"):
        bayesclv.load(permuted.save(tmp_path / "permuted.nc"))


def test_a_huge_declared_array_is_refused_before_it_is_read(map_model, tmp_path):
    import zarr

    path = map_model.save(tmp_path / "model.zarr")
    group = zarr.open_group(str(path / "retention_model" / "posterior"), mode="r+")
    group.create_array("huge", shape=(10**6, 10**7), dtype="f8", chunks=(1000, 1000),
                       dimension_names=["big_a", "big_b"])
    with pytest.raises(ModelFormatError, match=r"huge declares the shape \(1000000, 10000000\)"):
        bayesclv.load(path)


def test_modified_arrays_fail_their_checksum(map_model, tmp_path):
    import zarr

    path = map_model.save(tmp_path / "model.zarr")
    array = zarr.open_array(str(path / "spend_model" / "posterior" / "spend_psi"), mode="r+")
    values = array[...]
    values.flat[0] += 1e-9
    array[...] = values
    with pytest.raises(ModelFormatError, match="spend_psi: its values do not match the SHA-256"):
        bayesclv.load(path)
    extra = map_model.save(tmp_path / "extra.zarr")
    group = zarr.open_group(str(extra / "spend_model" / "posterior"), mode="r+")
    group.create_array("smuggled", shape=(2,), dtype="f8", dimension_names=["extra"])
    with pytest.raises(ModelFormatError, match="smuggled is not one of the arrays"):
        bayesclv.load(extra)


def test_version_2_files_are_still_read(map_model, customers, tmp_path):
    path = map_model.save(tmp_path / "model.nc")

    def as_version_2(config):
        del config["checksums"]

    _rewrite_config(path, as_version_2)
    _set_attrs(path, format_version=2)
    loaded = bayesclv.load(path)
    pd.testing.assert_frame_equal(loaded.predict(customers), map_model.predict(customers))
    _set_attrs(path, format_version=3)  # version 3 without checksums: refused
    with pytest.raises(ModelFormatError, match="checksums"):
        bayesclv.load(path)


@pytest.mark.parametrize("name", FORMATS)
def test_an_interrupted_save_leaves_the_old_model(map_model, customers, tmp_path, name,
                                                  monkeypatch):
    path = map_model.save(tmp_path / name)
    before = map_model.predict(customers)
    method = "to_zarr" if name.endswith(".zarr") else "to_netcdf"
    original = getattr(xr.DataTree, method)

    def interrupted(self, target, *args, **kwargs):
        original(self, target, *args, **kwargs)  # the new model is written, then:
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, method, interrupted)
    with pytest.raises(KeyboardInterrupt):
        map_model.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    pd.testing.assert_frame_equal(bayesclv.load(path).predict(customers), before)


def test_a_posterior_of_another_dtype_is_refused_before_it_is_read(customers, tmp_path):
    model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    crafted = _with_posterior(model, lambda p: p.assign(
        retention_psi=p["retention_psi"].astype(np.float32)))
    with pytest.raises(ModelFormatError, match="retention_psi must be float64"):
        bayesclv.load(crafted.save(tmp_path / "float32.nc"))
