"""Saving and loading fitted models as netCDF or Zarr, without pickle (DESIGN §6).

A saved model is an :class:`xarray.DataTree` written with the ``h5netcdf`` engine (a
file) or as a Zarr store (a directory, or a path ending in ``.zarr``):

* ``posterior`` and, for NUTS fits, ``sample_stats``: the fitted draws, as ArviZ groups
  (a :class:`CLVModel` has one subtree per sub-model, ``retention_model/`` and
  ``spend_model/``);
* ``risk_set`` and ``groups`` (retention models): the sufficient statistics that
  :meth:`RetentionModel.life_table` and :meth:`RetentionModel.posterior_predictive_churn`
  read; their size is bounded by segments x periods, not by customers;
* ``data``: the customer table, only when ``include_data`` is given;
* root attributes: ``format`` (``"bayesclv-model"``), ``format_version`` (an int),
  ``library_version``, ``config`` (a JSON string: the estimator's class name, its
  ``get_params()`` and its fitted non-array state) and ``config_sha256`` (the SHA-256 of
  ``config``).

:func:`load` never unpickles, evaluates or imports anything named in a file: it parses
``config`` with :func:`json.loads`, looks the class name up in a fixed table of the three
estimators, checks the format version and the hash, rebuilds the estimator with
``set_params`` (and re-validates its hyper-parameters) and restores the fitted attributes
after checking their types and the shapes of the arrays. See ``docs/security.md``.

Segmenters (:class:`~bayesclv.segmentation.RFMSegmenter`,
:class:`~bayesclv.segmentation.KMeansSegmenter`) and Pipelines cannot be saved yet:
:func:`save` refuses them with a :class:`TypeError` that says what to do instead (save
the final model, and keep the segment column with the customers).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesclv._version import __version__
from bayesclv.covariates import CovariateEncoder
from bayesclv.data import validate_customers
from bayesclv.estimator import CLVModel, RetentionModel, SpendModel
from bayesclv.exceptions import ModelFormatError
from bayesclv.priors import priors_from_dict, priors_to_dict

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "load_data", "save"]

#: Value of the ``format`` attribute of every saved model.
FORMAT_NAME = "bayesclv-model"
#: Version of the layout written by :func:`save`; :func:`load` reads this version only.
#: Version 2: the spend posterior's pooled coordinates are ``(log mean spend, log p,
#: log(q - 1))`` and ``priors_["centered"]`` is a mask per segment and coordinate;
#: version 1 files pooled ``(log p, log(q - 1), log gamma)`` and cannot be read as 2.
FORMAT_VERSION = 2

# The only classes a file may name. A fixed table, never an import path, so that a file
# cannot make load() import or call anything else.
_ESTIMATORS: dict[str, type] = {
    "CLVModel": CLVModel,
    "RetentionModel": RetentionModel,
    "SpendModel": SpendModel,
}
_SUB_MODELS = {"retention_model_": "RetentionModel", "spend_model_": "SpendModel"}
_TABLES = {
    "risk_set_": ("risk_set", {"segment": "int64", "period": "int64", "at_risk": "int64",
                               "churned": "int64"}),
    "groups_": ("groups", {"segment": "int64", "entry": "int64", "tenure": "int64",
                           "churned": "bool", "count": "int64"}),
}
_SAMPLE_GROUPS = ("posterior", "sample_stats")
_TABLE_GROUPS = tuple(group for group, _ in _TABLES.values())


# ---------------------------------------------------------------------------------------
# Type checks of the fitted state read from a file
# ---------------------------------------------------------------------------------------

def _is_count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_labels(value: Any) -> bool:
    return (isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) for v in value)
            and len(set(value)) == len(value))


_STATE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed_": (lambda v: _is_count(v, 0), "a non-negative int"),
    "valuation_seed_": (lambda v: _is_count(v, 0), "a non-negative int"),
    "n_customers_in_": (lambda v: _is_count(v, 1), "a positive int"),
    "period_": (lambda v: isinstance(v, str), "a string"),
    "has_segment_column_": (lambda v: isinstance(v, bool), "a bool"),
    "segments_": (_is_labels, "a non-empty list of distinct strings"),
    "priors_": (lambda v: isinstance(v, dict), "a JSON object"),
    "sampler_": (lambda v: v in ("pymc", "nutpie", "map"), "'pymc', 'nutpie' or 'map'"),
    "sampling_seconds_": (lambda v: isinstance(v, float) and math.isfinite(v) and v >= 0,
                          "a non-negative number of seconds"),
}
_STATE = {
    "RetentionModel": ("seed_", "period_", "has_segment_column_", "segments_",
                       "n_customers_in_", "priors_", "sampler_", "sampling_seconds_"),
    "SpendModel": ("seed_", "period_", "has_segment_column_", "segments_",
                   "n_customers_in_", "priors_", "sampler_", "sampling_seconds_"),
    "CLVModel": ("seed_", "valuation_seed_", "period_", "has_segment_column_", "segments_",
                 "n_customers_in_"),
}


# ---------------------------------------------------------------------------------------
# Save
# ---------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A hyper-parameter or state value as plain JSON data (numpy scalars to Python)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in priors_to_dict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot save the non-finite value {value!r}.")
    return value


def _describe(model: Any, prefix: str, groups: dict[str, xr.Dataset]) -> dict[str, Any]:
    """The JSON config of ``model``; its arrays are added to ``groups`` under ``prefix``."""
    name = type(model).__name__
    if _ESTIMATORS.get(name) is not type(model):
        raise TypeError(f"Only {sorted(_ESTIMATORS)} can be saved; got {name}.")
    config: dict[str, Any] = {
        "estimator": name,
        "params": {k: _plain(v) for k, v in model.get_params(deep=False).items()},
        "state": {k: _plain(getattr(model, k)) for k in _STATE[name]},
    }
    encoder = getattr(model, "covariates_", None)
    if name != "CLVModel" and encoder is not None:
        config["state"]["covariates_"] = _plain(encoder.to_dict())
    if name == "CLVModel":
        config["children"] = {
            attr: _describe(getattr(model, attr), f"{prefix}{attr[:-1]}/", groups)
            for attr in _SUB_MODELS
        }
        return config
    children = model.idata_.children
    for group in _SAMPLE_GROUPS:
        if group in children:
            groups[prefix + group] = model.idata_[group].to_dataset().drop_encoding()
    for attr, (group, columns) in _TABLES.items():
        if hasattr(model, attr):
            table = getattr(model, attr)
            groups[prefix + group] = xr.Dataset(
                {c: ("row", table[c].to_numpy().astype(columns[c])) for c in columns}
            )
    return config


def _data_group(model: Any, customers: pd.DataFrame) -> xr.Dataset:
    """The customer table as a Dataset on a ``row`` dim (index kept, strings checked)."""
    validate_customers(customers, model._columns(),
                       require_retention=not isinstance(model, SpendModel),
                       require_spend=not isinstance(model, RetentionModel))
    variables = {}
    for column in customers.columns:
        if not isinstance(column, str):
            raise ValueError(f"include_data: column names must be strings; got {column!r}.")
        variables[column] = ("row", _storable(customers[column].to_numpy(), column))
    index = customers.index
    attrs = {"columns": json.dumps(list(customers.columns))}
    coords = {}
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        attrs["index"] = "range"
    elif isinstance(index, pd.MultiIndex):
        raise ValueError("include_data: a MultiIndex cannot be saved; reset_index() first.")
    else:
        attrs["index"] = "values"
        attrs["index_name"] = json.dumps(index.name)
        coords["row"] = _storable(index.to_numpy(), "the index")
    try:
        attrs["table_attrs"] = json.dumps(customers.attrs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"include_data: the table's attrs {customers.attrs!r} are not plain JSON data "
            f"({error}); clear or simplify DataFrame.attrs before saving."
        ) from error
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _storable(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype.kind in "biuf":
        return values
    if all(isinstance(v, str) for v in values):
        return values.astype(str)
    raise ValueError(
        f"include_data: {what!r} holds values that are neither numbers, booleans nor "
        "strings (e.g. None or mixed types); convert it to one type before saving."
    )


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or path.is_dir()


def save(model: Any, path: str | os.PathLike, *,
         include_data: bool | pd.DataFrame = False) -> Path:
    """Save a fitted estimator to netCDF (a file) or Zarr (a directory or ``*.zarr``).

    Parameters
    ----------
    model : CLVModel, RetentionModel or SpendModel
        A fitted estimator.
    path : str or os.PathLike
        A file path (netCDF, written with the ``h5netcdf`` engine; an existing file is
        replaced), or a directory / a path ending in ``.zarr`` (Zarr store). An existing
        directory is replaced only if it holds a saved model.
    include_data : bool or pandas.DataFrame, default=False
        ``True`` stores the table the model was fitted on, provided the caller still holds
        it (the model keeps only a weak reference to it, never a copy); a DataFrame stores
        that table. Read back with :func:`load_data`.

    Returns
    -------
    pathlib.Path
        ``path``, so that ``bayesclv.load(model.save(path))`` round-trips.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    TypeError
        If ``model`` is not one of the three estimators (e.g. a Pipeline or a segmenter,
        which cannot be saved yet), or ``include_data`` is neither a bool nor a DataFrame.
    ValueError
        If ``include_data=True`` and the training table is no longer in memory.
    FileExistsError
        If ``path`` is a non-empty directory that does not hold a saved model.
    DataValidationError
        If ``include_data`` fails :func:`bayesclv.data.validate_customers`.

    Notes
    -----
    The file holds the posterior draws, the small sufficient-statistics tables and a JSON
    config, so its size grows with draws x parameters x segments, not with customers
    (unless ``include_data`` is given). Nothing is pickled.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "retention.nc"
    >>> loaded = bayesclv.load(bayesclv.io.save(model, path))
    >>> loaded.predict(customers).equals(model.predict(customers))
    True
    """
    if type(model).__name__ not in _ESTIMATORS or not isinstance(model, tuple(
            _ESTIMATORS.values())):
        raise TypeError(
            f"Cannot save a {type(model).__name__}: only CLVModel, RetentionModel and "
            "SpendModel can be saved. For a Pipeline, save its final model "
            "(pipeline[-1].save(path)) and keep the segment column with your customers "
            "(pipeline[:-1].transform(customers)); segmenters cannot be saved yet."
        )
    check_is_fitted(model, "idata_")
    if include_data is True:
        reference = getattr(model, "_training_table", None)
        include_data = reference() if reference is not None else None
        if include_data is None:
            raise ValueError(
                "include_data=True: the table this model was fitted on is no longer in "
                "memory (the model keeps a weak reference, never a copy, and a loaded model "
                "has none); pass it explicitly, e.g. model.save(path, include_data=customers)."
            )
    if not (include_data is False or include_data is None
            or isinstance(include_data, pd.DataFrame)):
        raise TypeError(
            "include_data must be True, False or the customer table to store (a DataFrame); "
            f"got {type(include_data).__name__}."
        )
    path = Path(os.fspath(path))
    groups: dict[str, xr.Dataset] = {}
    config = _describe(model, "", groups)
    if isinstance(include_data, pd.DataFrame):
        groups["data"] = _data_group(model, include_data)
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "config": text,
        "config_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    if _is_zarr(path):
        if path.is_dir() and any(path.iterdir()) and not _holds_model(path):
            raise FileExistsError(
                f"{path} is a non-empty directory that does not hold a saved bayesclv "
                "model; choose a new path (nothing was written)."
            )
        tree.to_zarr(path, mode="w", consolidated=False)
    else:
        # The statistics tables (integers, sorted by segment) shrink several-fold
        # compressed; Zarr compresses by default.
        encoding = {f"/{name}": {column: {"compression": "gzip"} for column in dataset}
                    for name, dataset in groups.items() if name.endswith(_TABLE_GROUPS)}
        tree.to_netcdf(path, mode="w", engine="h5netcdf", encoding=encoding)
    return path


def _holds_model(path: Path) -> bool:
    try:
        with xr.open_datatree(path, engine="zarr", consolidated=False) as tree:
            return tree.attrs.get("format") == FORMAT_NAME
    except Exception:  # noqa: BLE001 - anything unreadable is "not a model"
        return False


# ---------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------

def _open(path: str | os.PathLike) -> tuple[Path, xr.DataTree]:
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"No saved model at {path}.")
    try:
        if path.is_dir():
            return path, xr.open_datatree(path, engine="zarr", consolidated=False)
        return path, xr.open_datatree(path, engine="h5netcdf")
    except Exception as error:  # noqa: BLE001 - any reader failure means "not a model"
        kind = "Zarr store" if path.is_dir() else "netCDF file"
        raise ModelFormatError(
            f"{path} is not a readable {kind} ({type(error).__name__}: {error}); it is not "
            "a saved bayesclv model."
        ) from error


def _read_config(path: Path, attrs: Mapping[str, Any]) -> dict[str, Any]:
    if attrs.get("format") != FORMAT_NAME:
        raise ModelFormatError(
            f"{path} is not a saved bayesclv model (its 'format' attribute is "
            f"{attrs.get('format')!r}, expected {FORMAT_NAME!r}); save models with "
            "model.save(path)."
        )
    version = attrs.get("format_version")
    if isinstance(version, np.integer):
        version = int(version)
    if not _is_count(version, 0) or version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has format_version {version!r}, but bayesclv {__version__} reads "
            f"format version {FORMAT_VERSION} only (the file was written by bayesclv "
            f"{attrs.get('library_version')!r}); install a bayesclv version that reads it."
        )
    text, digest = attrs.get("config"), attrs.get("config_sha256")
    if not isinstance(text, str) or not isinstance(digest, str):
        raise ModelFormatError(f"{path}: the 'config' and 'config_sha256' attributes must "
                               "be strings; the file is damaged or was not written by save().")
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
        raise ModelFormatError(
            f"{path}: the config was modified after saving (its SHA-256 does not match "
            "config_sha256); refusing to load. Save the model again from the fitted object."
        )
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ModelFormatError(f"{path}: the config is not valid JSON ({error}).") from error
    if not isinstance(config, dict):
        raise ModelFormatError(f"{path}: the config must be a JSON object.")
    return config


def _build(config: Any, tree: xr.DataTree, prefix: str, expected: str | None = None) -> Any:
    """An estimator from its config and its arrays under ``prefix`` in ``tree``."""
    if not isinstance(config, dict):
        raise ModelFormatError(f"config{prefix or ' '}: expected a JSON object.")
    name = config.get("estimator")
    if not isinstance(name, str) or name not in _ESTIMATORS:
        raise ModelFormatError(
            f"The file names the estimator {name!r}, which is not one of "
            f"{sorted(_ESTIMATORS)}; refusing to load (a saved model never names other "
            "classes)."
        )
    if expected is not None and name != expected:
        raise ModelFormatError(f"{prefix!r} must hold a {expected}; the file says {name}.")
    params, state = config.get("params"), config.get("state")
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise ModelFormatError(f"{name}: 'params' and 'state' must be JSON objects.")
    model = _ESTIMATORS[name]()
    params = dict(params)
    if isinstance(params.get("priors"), dict):
        params["priors"] = _priors(params["priors"], name)
    try:
        model.set_params(**params)
        model._validate_params()
    except (TypeError, ValueError) as error:
        raise ModelFormatError(f"{name}: invalid hyper-parameters in the file: {error}"
                               ) from error
    for attr in _STATE[name]:
        check, text = _STATE_CHECKS[attr]
        if attr not in state or not check(state[attr]):
            raise ModelFormatError(
                f"{name}: fitted attribute {attr!r} must be {text}; the file has "
                f"{state.get(attr, '<missing>')!r}."
            )
        value = state[attr]
        setattr(model, attr, _priors(value, name) if attr == "priors_" else value)
    if name != "CLVModel":
        model.covariates_ = _covariates(state.get("covariates_"), name)
    if name == "CLVModel":
        children = config.get("children")
        if not isinstance(children, dict) or set(children) != set(_SUB_MODELS):
            raise ModelFormatError(f"CLVModel: 'children' must name {sorted(_SUB_MODELS)}.")
        for attr, sub_name in _SUB_MODELS.items():
            sub = _build(children[attr], tree, f"{prefix}{attr[:-1]}/", sub_name)
            if sub.segments_ != model.segments_:
                raise ModelFormatError(f"CLVModel: {attr} has segments {sub.segments_}, "
                                       f"the model {model.segments_}.")
            setattr(model, attr, sub)
        _combine_idata(model)
        return model
    _restore_arrays(model, tree, prefix)
    return model


def _covariates(value: Any, name: str) -> CovariateEncoder | None:
    """The covariate encoder of a saved model (absent or null: no covariates)."""
    if value is None:
        return None
    try:
        if not isinstance(value, dict):
            raise TypeError("expected a JSON object")
        return CovariateEncoder.from_dict(value)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ModelFormatError(f"{name}: invalid covariates in the file: {error}") from error


def _priors(value: dict, name: str) -> dict:
    try:
        return priors_from_dict(value)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ModelFormatError(f"{name}: invalid priors in the file: {error}") from error


def _group(tree: xr.DataTree, path: str, required: bool = True) -> xr.Dataset | None:
    try:
        node = tree[path]
    except KeyError:
        if required:
            raise ModelFormatError(f"The group {path!r} is missing from the file.") from None
        return None
    if not isinstance(node, xr.DataTree):
        raise ModelFormatError(f"{path!r} must be a group.")
    dataset = node.to_dataset().load().drop_encoding()
    # Zarr reads strings back as numpy's StringDType: use fixed-width unicode as saved.
    for name in list(dataset.variables):
        if dataset[name].dtype.kind in "OT":
            dataset[name] = dataset[name].astype(str)
    return dataset


def _restore_arrays(model: Any, tree: xr.DataTree, prefix: str) -> None:
    posterior = _group(tree, prefix + "posterior")
    family, segments = model.family_, model.segments_
    coord_dim = f"{model._prefix}_coord"
    required = {
        f"{model._prefix}_psi": ("chain", "draw", "segment", coord_dim),
        f"{model._prefix}_mu": ("chain", "draw", coord_dim),
        f"{model._prefix}_chol": ("chain", "draw", coord_dim, f"{coord_dim}_"),
    }
    if model.covariates_ is not None:
        required[f"{model._prefix}_coef"] = ("chain", "draw", f"{model._prefix}_covariate")
    for var, dims in required.items():
        if var not in posterior or set(posterior[var].dims) != set(dims):
            raise ModelFormatError(f"{prefix}posterior: variable {var!r} with dims {dims} is "
                                   "missing or malformed.")
        if not np.isfinite(posterior[var].to_numpy()).all():
            raise ModelFormatError(f"{prefix}posterior: {var!r} has non-finite values.")
    if (posterior.sizes["segment"] != len(segments)
            or list(posterior[coord_dim].to_numpy()) != list(family.coords)):
        raise ModelFormatError(
            f"{prefix}posterior: expected {len(segments)} segments and coordinates "
            f"{list(family.coords)} for the {family.name!r} family."
        )
    children = {"posterior": posterior}
    stats = _group(tree, prefix + "sample_stats", required=False)
    if stats is not None:
        children["sample_stats"] = stats
    model.idata_ = xr.DataTree.from_dict(children)
    for attr, (group, columns) in _TABLES.items():
        if not isinstance(model, RetentionModel):
            continue
        dataset = _group(tree, prefix + group)
        if set(dataset.data_vars) != set(columns) or set(dataset.dims) - {"row"}:
            raise ModelFormatError(f"{prefix}{group}: expected columns {sorted(columns)}.")
        table = pd.DataFrame({c: dataset[c].to_numpy().astype(columns[c]) for c in columns})
        codes = table["segment"].to_numpy()
        if len(codes) and (codes.min() < 0 or codes.max() >= len(segments)):
            raise ModelFormatError(f"{prefix}{group}: segment codes out of range.")
        setattr(model, attr, table)


def _combine_idata(model: CLVModel) -> None:
    """``CLVModel.idata_`` from its sub-models, as :meth:`CLVModel.fit` builds it."""
    children = {"posterior": xr.merge([model.retention_model_.posterior_,
                                       model.spend_model_.posterior_])}
    for name, sub in (("retention", model.retention_model_), ("spend", model.spend_model_)):
        if "sample_stats" in sub.idata_.children:
            children[f"sample_stats_{name}"] = sub.idata_["sample_stats"].to_dataset()
    model.idata_ = xr.DataTree.from_dict(children)


def load(path: str | os.PathLike) -> Any:
    """Load a model written by :func:`save` (or an estimator's ``save`` method).

    Nothing in the file is executed: the config is parsed with :func:`json.loads`, the
    estimator class is looked up in a fixed table of ``CLVModel``, ``RetentionModel`` and
    ``SpendModel``, the hyper-parameters go through ``set_params`` and the estimator's
    own checks, and the fitted attributes are type-checked before they are set.

    Parameters
    ----------
    path : str or os.PathLike
        A netCDF file or a Zarr directory.

    Returns
    -------
    CLVModel, RetentionModel or SpendModel
        The fitted estimator; ``predict`` gives bitwise the same output as the saved one.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ModelFormatError
        If the file is not a saved model, has an unknown ``format_version``, its config
        was modified (hash mismatch), names a class outside the allow-list, or holds
        invalid hyper-parameters, fitted attributes or arrays.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "spend.zarr"
    >>> loaded = bayesclv.load(model.save(path))
    >>> type(loaded).__name__, loaded.segments_ == model.segments_
    ('SpendModel', True)
    """
    path, tree = _open(path)
    with tree:
        config = _read_config(path, tree.attrs)
        return _build(config, tree, "")


def load_data(path: str | os.PathLike) -> pd.DataFrame | None:
    """The customer table stored with ``save(..., include_data=table)``, or None.

    Parameters
    ----------
    path : str or os.PathLike
        A netCDF file or a Zarr directory written by :func:`save`.

    Returns
    -------
    pandas.DataFrame or None
        The table with its columns, index and ``attrs``; None if none was stored.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ModelFormatError
        As :func:`load`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import bayesclv
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
    >>> path = model.save(pathlib.Path(tempfile.mkdtemp()) / "m.nc", include_data=customers)
    >>> bayesclv.io.load_data(path).equals(customers)
    True
    """
    path, tree = _open(path)
    with tree:
        _read_config(path, tree.attrs)
        data = _group(tree, "data", required=False)
    if data is None:
        return None
    try:
        columns = json.loads(data.attrs["columns"])
        table_attrs = json.loads(data.attrs["table_attrs"])
        if data.attrs["index"] == "range":
            index = pd.RangeIndex(data.sizes.get("row", 0))
        else:
            index = pd.Index(data["row"].to_numpy(), name=json.loads(data.attrs["index_name"]))
        table = pd.DataFrame({c: data[c].to_numpy() for c in columns}, index=index)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFormatError(f"{path}: the stored customer table is malformed ({error})."
                               ) from error
    table.attrs.update(table_attrs)
    return table
