"""The saved-model format: writing a fitted estimator and reading its parts, without pickle.

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

A segmenter (``RFMSegmenter``, ``KMeansSegmenter``) has no arrays: its config holds its
fitted state as plain JSON. A :class:`~sklearn.pipeline.Pipeline` of segmenters ending in
an estimator has the config ``{"estimator": "Pipeline", "params": {"verbose": ...},
"steps": [[name, step config], ...]}`` and the estimator's groups under ``steps/<i>/``
(``i`` its position, not its name).

This module knows no estimator class: each estimator declares what it saves
(``_saved_state``, ``_saved_children``, ``_requirements``), each segmenter gives its
fitted state (``_fitted_state``), and :func:`bayesclv.io.load`, above the estimators,
looks the class a file names up in a fixed table and rebuilds it. Nothing in a file is
unpickled, evaluated or imported. See ``docs/security.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from bayesclv._version import __version__
from bayesclv.data import validate_customers
from bayesclv.exceptions import ModelFormatError
from bayesclv.priors import priors_to_dict
from bayesclv.segmentation import KMeansSegmenter, RFMSegmenter

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MAX_ELEMENTS", "READABLE_VERSIONS",
           "SAVED_SEGMENTERS", "load_data", "params_json", "save"]

FORMAT_NAME = "bayesclv-model"
#: Version of the layout written by :func:`save`.
#: Version 3: the config holds a SHA-256 of every saved array (``checksums``), checked on
#: load. Version 2: the spend posterior's pooled coordinates are ``(log mean spend,
#: log p, log(q - 1))`` and ``priors_["centered"]`` is ``"auto"`` or a mask per segment and
#: coordinate;
#: version 1 files pooled ``(log p, log(q - 1), log gamma)`` and cannot be read as 2.
FORMAT_VERSION = 3
#: The versions :func:`load` reads: 3, and 2 (the same layout without checksums).
READABLE_VERSIONS = (2, 3)
#: The most elements one saved array may declare (4 GB of float64). Shapes are checked
#: against it before anything is read, so a small file cannot make ``load`` allocate a
#: huge array.
MAX_ELEMENTS = 500_000_000

_TABLES = {
    "risk_set_": ("risk_set", {"segment": "int64", "period": "int64", "at_risk": "int64",
                               "churned": "int64"}),
    "groups_": ("groups", {"segment": "int64", "entry": "int64", "tenure": "int64",
                           "churned": "bool", "count": "int64"}),
}
_SAMPLE_GROUPS = ("posterior", "sample_stats")
#: The segmenters that can be saved, alone or as the steps of a Pipeline before its model.
SAVED_SEGMENTERS = (RFMSegmenter, KMeansSegmenter)
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


def params_json(model: Any) -> dict[str, Any]:
    """An estimator's hyper-parameters as plain JSON data (priors as plain dicts).

    :func:`bayesclv.priors.priors_from_dict` turns ``"priors"`` back into prior objects.
    """
    return {k: _plain(v) for k, v in model.get_params(deep=False).items()}


def _describe(model: Any, prefix: str, groups: dict[str, xr.Dataset]) -> dict[str, Any]:
    """The JSON config of ``model``; its arrays are added to ``groups`` under ``prefix``."""
    kind = type(model)
    if kind in SAVED_SEGMENTERS:  # no arrays: the fitted state is plain JSON
        check_is_fitted(model)
        params = model.get_params(deep=False)
        if isinstance(params.get("groups"), Mapping):  # rules in order: JSON sorts keys
            params["groups"] = list(params["groups"].items())
        return {"estimator": kind.__name__, "state": model._fitted_state(),
                "params": {k: _plain(v) for k, v in params.items()}}
    config: dict[str, Any] = {
        "estimator": kind.__name__,
        "params": params_json(model),
        "state": {k: _plain(getattr(model, k)) for k in kind._saved_state},
    }
    if kind._saved_children:
        config["children"] = {
            attr: _describe(getattr(model, attr), f"{prefix}{attr[:-1]}/", groups)
            for attr in kind._saved_children
        }
        return config
    encoder = getattr(model, "covariates_", None)
    if encoder is not None:
        config["state"]["covariates_"] = _plain(encoder.to_dict())
    if getattr(model, "observed_", None) is not None:
        config["state"]["observed_"] = str(model.observed_)
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


def _kind(step: Any) -> str:
    return repr(step) if step is None or isinstance(step, str) else f"a {type(step).__name__}"


def _describe_pipeline(pipeline: Pipeline, groups: dict[str, xr.Dataset]) -> dict[str, Any]:
    """The JSON config of a fitted Pipeline: segmenters, then one estimator.

    The arrays of the estimator, the step at position ``i``, go under ``steps/<i>/``.
    """
    steps = list(pipeline.steps)
    *transforms, (last_name, last) = steps
    for name, step in transforms:
        if type(step) not in SAVED_SEGMENTERS:
            raise TypeError(f"Cannot save the Pipeline: its step {name!r} is {_kind(step)}, "
                            "but only RFMSegmenter and KMeansSegmenter can come before the "
                            "model. Save the final model (pipeline[-1].save(path)) alone.")
    if not getattr(type(last), "_saved_state", ()):
        raise TypeError(f"Cannot save the Pipeline: its last step {last_name!r} is "
                        f"{_kind(last)}, not a CLVModel, RetentionModel or SpendModel.")
    check_is_fitted(last, "idata_")
    described = [[name, _describe(step, f"steps/{index}/", groups)]
                 for index, (name, step) in enumerate(steps)]
    return {"estimator": "Pipeline", "params": {"verbose": bool(pipeline.verbose)},
            "steps": described}


def _data_group(model: Any, customers: pd.DataFrame) -> xr.Dataset:
    """The customer table as a Dataset on a ``row`` dim (index kept, strings checked)."""
    if isinstance(model, Pipeline):  # the raw table: what the Pipeline is given
        segmented = customers
        for _, step in model.steps[:-1]:
            segmented = step.transform(segmented)
        final = model.steps[-1][1]
        validate_customers(segmented, final._columns(), **type(final)._requirements)
    elif type(model) in SAVED_SEGMENTERS:
        model.transform(customers)
    else:
        validate_customers(customers, model._columns(), **type(model)._requirements)
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
    """Save a fitted estimator, segmenter or Pipeline to netCDF (a file) or Zarr.

    Parameters
    ----------
    model : CLVModel, RetentionModel, SpendModel, segmenter or sklearn.pipeline.Pipeline
        A fitted estimator (it declares what it saves: ``_saved_state``,
        ``_saved_children``, ``_requirements``), a fitted ``RFMSegmenter`` or
        ``KMeansSegmenter``, or a fitted Pipeline of segmenters ending in an estimator.
    path : str or os.PathLike
        A file path (netCDF, written with the ``h5netcdf`` engine; an existing file is
        replaced), or a directory / a path ending in ``.zarr`` (Zarr store). An existing
        directory is replaced only if it holds a saved model.
    include_data : bool or pandas.DataFrame, default=False
        ``True`` stores the table the model was fitted on, provided the caller still holds
        it (the model keeps only a weak reference to it, never a copy); a DataFrame stores
        that table. Read back with :func:`load_data`. A Pipeline or a segmenter stores
        the table it is given (before segmentation; ``True`` is refused), checked by
        transforming it and validating the result for the final model.

    Returns
    -------
    pathlib.Path
        ``path``, so that ``bayesclv.load(model.save(path))`` round-trips.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model``, or a step of the Pipeline, is not fitted.
    TypeError
        If ``model`` is none of the above (e.g. a Pipeline with a scaler or
        ``"passthrough"`` step), or ``include_data`` is neither a bool nor a DataFrame.
    ValueError
        If ``include_data=True`` and the training table is no longer in memory, or
        ``model`` is a Pipeline or a segmenter.
    FileExistsError
        If ``path`` is a non-empty directory that does not hold a saved model.
    DataValidationError
        If ``include_data`` fails :func:`bayesclv.data.validate_customers`.

    Notes
    -----
    The file holds the posterior draws, the small sufficient-statistics tables and a JSON
    config, so its size grows with draws x parameters x segments, not with customers
    (unless ``include_data`` is given); a segmenter adds a few numbers to the config.
    Nothing is pickled. A Pipeline's ``memory`` is not saved; RFM ``groups`` given as a
    mapping are read back as a tuple of ``(name, conditions)`` rules, in the same order.

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

    A Pipeline of a segmenter and a model (Pipelines have no ``save`` method):

    >>> from sklearn.pipeline import Pipeline
    >>> from bayesclv.segmentation import RFMSegmenter
    >>> log, _ = bayesclv.datasets.simulate_transactions(300, n_periods=18, random_seed=5)
    >>> table = bayesclv.data.summarize(log, end_col="end_date")  # with recency etc.
    >>> model = bayesclv.CLVModel(method="map", random_seed=0)
    >>> pipe = Pipeline([("rfm", RFMSegmenter()), ("value", model)]).fit(table)
    >>> loaded = bayesclv.load(bayesclv.io.save(pipe, path.with_name("pipe.zarr")))
    >>> loaded.predict(table).equals(pipe.predict(table))
    True
    """
    single = not isinstance(model, Pipeline) and type(model) not in SAVED_SEGMENTERS
    if single and not getattr(type(model), "_saved_state", ()):
        raise TypeError(
            f"Cannot save a {type(model).__name__}: only CLVModel, RetentionModel, "
            "SpendModel, RFMSegmenter, KMeansSegmenter and Pipelines of segmenters ending "
            "in one of those models can be saved."
        )
    if single:
        check_is_fitted(model, "idata_")
    if include_data is True:
        if not single:
            raise ValueError(
                f"include_data=True: a {type(model).__name__} keeps no reference to the "
                "table it was fitted on; pass it explicitly, e.g. "
                "bayesclv.io.save(pipeline, path, include_data=customers)."
            )
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
    config = (_describe_pipeline(model, groups) if isinstance(model, Pipeline)
              else _describe(model, "", groups))
    if isinstance(include_data, pd.DataFrame):
        groups["data"] = _data_group(model, include_data)
    config["checksums"] = {f"{group}/{name}": array_digest(dataset[name].to_numpy())
                           for group, dataset in groups.items()
                           for name in dataset.variables}
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
        _replace_atomically(path, lambda staged: tree.to_zarr(staged, mode="w-",
                                                               consolidated=False))
    else:
        # The statistics tables (integers, sorted by segment) shrink several-fold
        # compressed; Zarr compresses by default.
        encoding = {f"/{name}": {column: {"compression": "gzip"} for column in dataset}
                    for name, dataset in groups.items() if name.endswith(_TABLE_GROUPS)}
        _replace_atomically(path, lambda staged: tree.to_netcdf(
            staged, mode="w", engine="h5netcdf", encoding=encoding))
    return path


def _replace_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write to a temporary sibling of ``path``, then move it into place.

    An interrupted save leaves the old model (if any) as it was: the new one replaces it
    only once it is complete. A file is replaced in one ``os.replace``; a Zarr directory
    is first renamed aside, then the new one renamed into place, then the old one removed.
    """
    staged = path.with_name(f".{path.name}.{os.getpid()}.partial")
    aside = path.with_name(f".{path.name}.{os.getpid()}.old")
    try:
        write(staged)
        if staged.is_dir() and path.exists():
            os.replace(path, aside)
        os.replace(staged, path)
    finally:
        for leftover in (staged, aside):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.exists():
                leftover.unlink()


def array_digest(values: np.ndarray) -> str:
    """SHA-256 of an array's values, shape and kind, the same after a save and a load.

    Values are put in one canonical form first (little-endian int64, float64 or uint8,
    UTF-8 text), because a reader may give back another width or string type than was
    written.
    """
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind in "OUST":
        data = "\x1f".join(str(v) for v in values.ravel()).encode("utf-8")
        kind = "text"
    elif kind == "b":
        data = np.ascontiguousarray(values, dtype=np.uint8).tobytes()
    elif kind in "iu":
        data = np.ascontiguousarray(values, dtype="<i8").tobytes()
        kind = "int"
    elif kind == "f":
        data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    elif kind in "mM":
        data = np.ascontiguousarray(values.astype(f"{values.dtype.str[1:2]}8[ns]")
                                    .view("<i8")).tobytes()
    else:
        raise ValueError(f"cannot save an array of dtype {values.dtype}.")
    header = f"{kind}:{values.shape}:".encode()
    return hashlib.sha256(header + data).hexdigest()


def _holds_model(path: Path) -> bool:
    try:
        with xr.open_datatree(path, engine="zarr", consolidated=False) as tree:
            return tree.attrs.get("format") == FORMAT_NAME
    except Exception:  # noqa: BLE001 - anything unreadable is "not a model"
        return False


# ---------------------------------------------------------------------------------------
# Reading
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
    if not _is_count(version, 0) or version not in READABLE_VERSIONS:
        raise ModelFormatError(
            f"{path} has format_version {version!r}, but bayesclv {__version__} reads "
            f"format versions {list(READABLE_VERSIONS)} only (the file was written by "
            f"bayesclv {attrs.get('library_version')!r}); install a bayesclv version that "
            "reads it."
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
    checksums = config.get("checksums")
    if version >= 3 and not (isinstance(checksums, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in checksums.items())):
        raise ModelFormatError(f"{path}: format version {version} needs the arrays' "
                               "'checksums' in its config.")
    return config


def _group(tree: xr.DataTree, path: str, required: bool = True,
           checksums: Mapping[str, str] | None = None,
           float_data: bool = False) -> xr.Dataset | None:
    """A group read into memory, once its declared shapes and its checksums are checked.

    ``checksums`` (format version 3): every variable of the group must have one, and its
    values must match it. ``float_data``: every data variable must be declared float64
    (checked before reading).
    """
    try:
        node = tree[path]
    except KeyError:
        if required:
            raise ModelFormatError(f"The group {path!r} is missing from the file.") from None
        return None
    if not isinstance(node, xr.DataTree):
        raise ModelFormatError(f"{path!r} must be a group.")
    lazy = node.to_dataset()
    for name, variable in lazy.variables.items():
        size = math.prod(int(n) for n in variable.shape)
        if size > MAX_ELEMENTS:
            raise ModelFormatError(
                f"{path}/{name} declares the shape {tuple(variable.shape)} ({size:.3g} "
                f"elements), more than the {MAX_ELEMENTS:,} a saved model's array may "
                "hold; refusing to read it."
            )
        if float_data and name in lazy.data_vars and variable.dtype != np.float64:
            raise ModelFormatError(f"{path}/{name} must be float64; the file declares "
                                   f"{variable.dtype}.")
        if checksums is not None and f"{path}/{name}" not in checksums:
            raise ModelFormatError(f"{path}/{name} is not one of the arrays the file's "
                                   "config lists; refusing to read it.")
    dataset = lazy.load().drop_encoding()
    # Zarr reads strings back as numpy's StringDType: use fixed-width unicode as saved.
    for name in list(dataset.variables):
        if dataset[name].dtype.kind in "OT":
            dataset[name] = dataset[name].astype(str)
    if checksums is not None:
        for name in dataset.variables:
            if array_digest(dataset[name].to_numpy()) != checksums[f"{path}/{name}"]:
                raise ModelFormatError(
                    f"{path}/{name}: its values do not match the SHA-256 saved with the "
                    "model; the file was modified or damaged. Refusing to load."
                )
    return dataset


def checksums_of(config: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The arrays' checksums of a config read by :func:`_read_config` (None: version 2)."""
    return config.get("checksums")


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
        config = _read_config(path, tree.attrs)
        data = _group(tree, "data", required=False, checksums=checksums_of(config))
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
