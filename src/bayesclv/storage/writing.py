"""Writing a fitted estimator, a segmenter or a pipeline of them (see :mod:`bayesclv.storage`)."""

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
from bayesclv.priors import priors_to_dict
from bayesclv.storage.layout import (
    _SAMPLE_GROUPS,
    _TABLE_GROUPS,
    _TABLES,
    FORMAT_NAME,
    FORMAT_VERSION,
    SAVED_SEGMENTERS,
    array_digest,
)

__all__ = ["params_json", "save"]



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


def _holds_model(path: Path) -> bool:
    try:
        with xr.open_datatree(path, engine="zarr", consolidated=False) as tree:
            return tree.attrs.get("format") == FORMAT_NAME
    except Exception:  # noqa: BLE001 - anything unreadable is "not a model"
        return False
