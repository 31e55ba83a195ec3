"""Reading a saved model's parts, every shape and checksum checked first.

See :mod:`bayesclv.storage` for the format; :func:`bayesclv.io.load` rebuilds the
estimator from these parts.
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

from bayesclv._version import __version__
from bayesclv.exceptions import ModelFormatError
from bayesclv.storage.layout import FORMAT_NAME, MAX_ELEMENTS, READABLE_VERSIONS, array_digest

__all__ = ["checksums_of", "load_data"]


# Type checks of the fitted state read from a file.

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
