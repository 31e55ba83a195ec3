"""Loading fitted models saved by :func:`save` (see :mod:`bayesclv.storage` for the format).

:func:`load` never unpickles, evaluates or imports anything named in a file: it parses
the config with :func:`json.loads`, looks the class name up in a fixed table (the three
estimators, the two segmenters and ``Pipeline``), checks the format version and the hash,
rebuilds the estimator with ``set_params`` (and re-validates its hyper-parameters) and
restores the fitted attributes after checking their types and the shapes of the arrays.
See ``docs/security.md``. :func:`save` and :func:`load_data` are those of
:mod:`bayesclv.storage`.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.pipeline import Pipeline

from bayesclv.covariates import CovariateEncoder
from bayesclv.estimator import CLVModel, RetentionModel, SpendModel
from bayesclv.estimator.clv import combined_idata
from bayesclv.exceptions import ModelFormatError
from bayesclv.priors import priors_from_dict
from bayesclv.segmentation._common import _validate_params
from bayesclv.segmentation.rfm import _groups_from_json
from bayesclv.storage import FORMAT_NAME, FORMAT_VERSION, SAVED_SEGMENTERS, load_data, save
from bayesclv.storage.layout import _TABLES
from bayesclv.storage.reading import _STATE_CHECKS, _group, _open, _read_config, checksums_of

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "load_data", "save"]

# The only classes a file may name. A fixed table, never an import path, so that a file
# cannot make load() import or call anything else.
_ESTIMATORS: dict[str, type] = {
    "CLVModel": CLVModel,
    "RetentionModel": RetentionModel,
    "SpendModel": SpendModel,
}
_SEGMENTERS: dict[str, type] = {kind.__name__: kind for kind in SAVED_SEGMENTERS}
#: Every class a file may name at its top: the above, and ``Pipeline`` of segmenters
#: ending in an estimator.
_LOADABLE = sorted([*_ESTIMATORS, *_SEGMENTERS, "Pipeline"])
_SUB_MODELS = {"retention_model_": "RetentionModel", "spend_model_": "SpendModel"}


def _build_any(config: Any, tree: xr.DataTree, checksums: Any) -> Any:
    """What a file's config names: an estimator, a segmenter or a Pipeline."""
    name = config.get("estimator") if isinstance(config, dict) else None
    if name == "Pipeline":
        return _build_pipeline(config, tree, checksums)
    if name in _SEGMENTERS:
        return _build_segmenter(config, "")
    if name not in _ESTIMATORS:
        raise ModelFormatError(
            f"The file names the class {name!r}, which is not one of {_LOADABLE}; refusing "
            "to load (a saved model never names other classes)."
        )
    return _build(config, tree, "", checksums=checksums)


def _named_config(config: Any, table: dict[str, type], what: str, where: str
                  ) -> tuple[str, dict, dict]:
    """The class name, hyper-parameters and state of a config naming a class of ``table``.

    ``where`` says where the config is in the file, for the errors.
    """
    if not isinstance(config, dict):
        raise ModelFormatError(f"{where}: expected a JSON object.")
    name = config.get("estimator")
    if not isinstance(name, str) or name not in table:
        raise ModelFormatError(
            f"{where} names the {what} {name!r}, which is not one of {sorted(table)}; "
            "refusing to load (a saved model never names other classes)."
        )
    params, state = config.get("params"), config.get("state")
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise ModelFormatError(f"{name}: 'params' and 'state' must be JSON objects.")
    return name, dict(params), state


def _build_segmenter(config: Any, where: str) -> Any:
    """A fitted segmenter from its config (``where``: its place in the file, for errors)."""
    name, params, state = _named_config(config, _SEGMENTERS, "segmenter",
                                        where or "The file")
    segmenter = _SEGMENTERS[name]()
    if "groups" in params:
        params["groups"] = _groups_from_json(params["groups"])
    try:
        segmenter.set_params(**params)
        _validate_params(segmenter, segmenter._parameter_constraints)
        segmenter._restore_fitted_state(state)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ModelFormatError(f"{where + ': ' if where else ''}{name}: invalid "
                               f"hyper-parameters or fitted state in the file: {error}"
                               ) from error
    return segmenter


def _build_pipeline(config: dict, tree: xr.DataTree, checksums: Any) -> Pipeline:
    """A fitted Pipeline: its segmenters, then its estimator (arrays under ``steps/<i>/``)."""
    params, steps = config.get("params"), config.get("steps")
    if not (isinstance(params, dict) and set(params) == {"verbose"}
            and isinstance(params["verbose"], bool)):
        raise ModelFormatError(f"Pipeline: 'params' must be {{'verbose': a bool}}; the file "
                               f"has {params!r}.")
    if not (isinstance(steps, list) and steps and all(
            isinstance(step, list) and len(step) == 2 and isinstance(step[0], str)
            for step in steps)):
        raise ModelFormatError("Pipeline: 'steps' must be a non-empty list of [name, "
                               "config] pairs.")
    names = [name for name, _ in steps]
    reserved = set(inspect.signature(Pipeline).parameters)
    if len(set(names)) != len(names) or any(
            not name or "__" in name or name in reserved for name in names):
        raise ModelFormatError(f"Pipeline: invalid step names {names} (they must be "
                               "distinct, non-empty, without '__').")
    built = [(name, _build_segmenter(step, f"Pipeline step {index} ({name!r})"))
             for index, (name, step) in enumerate(steps[:-1])]
    name, final = steps[-1]
    if not isinstance(final, dict) or final.get("estimator") not in _ESTIMATORS:
        found = final.get("estimator") if isinstance(final, dict) else final
        raise ModelFormatError(
            f"Pipeline: its last step {name!r} names {found!r}, which is not one of "
            f"{sorted(_ESTIMATORS)}; refusing to load."
        )
    built.append((name, _build(final, tree, f"steps/{len(steps) - 1}/",
                               checksums=checksums)))
    return Pipeline(built, verbose=params["verbose"])


def _build(config: Any, tree: xr.DataTree, prefix: str, expected: str | None = None,
           checksums: Any = None) -> Any:
    """An estimator from its config and its arrays under ``prefix`` in ``tree``."""
    name, params, state = _named_config(config, _ESTIMATORS, "estimator",
                                        f"The file (at {prefix!r})" if prefix else "The file")
    if expected is not None and name != expected:
        raise ModelFormatError(f"{prefix!r} must hold a {expected}; the file says {name}.")
    model = _ESTIMATORS[name]()
    if isinstance(params.get("priors"), dict):
        params["priors"] = _priors(params["priors"], name)
    try:
        model.set_params(**params)
        model._validate_params()
    except (TypeError, ValueError) as error:
        raise ModelFormatError(f"{name}: invalid hyper-parameters in the file: {error}"
                               ) from error
    for attr in _ESTIMATORS[name]._saved_state:
        check, text = _STATE_CHECKS[attr]
        if attr not in state or not check(state[attr]):
            raise ModelFormatError(
                f"{name}: fitted attribute {attr!r} must be {text}; the file has "
                f"{state.get(attr, '<missing>')!r}."
            )
        value = state[attr]
        setattr(model, attr, _priors(value, name) if attr == "priors_" else value)
    sub_models = type(model)._saved_children
    if not sub_models:
        model.covariates_ = _covariates(state.get("covariates_"), name)
        observed = state.get("observed_")
        if observed is not None:
            if not isinstance(observed, str):
                raise ModelFormatError(f"{name}: 'observed_' must be a string; the file has "
                                       f"{observed!r}.")
            model.observed_ = observed
    else:
        children = config.get("children")
        if not isinstance(children, dict) or set(children) != set(sub_models):
            raise ModelFormatError(f"{name}: 'children' must name {sorted(sub_models)}.")
        for attr, sub_name in sub_models.items():
            sub = _build(children[attr], tree, f"{prefix}{attr[:-1]}/", sub_name, checksums)
            if sub.segments_ != model.segments_:
                raise ModelFormatError(f"CLVModel: {attr} has segments {sub.segments_}, "
                                       f"the model {model.segments_}.")
            setattr(model, attr, sub)
        samples = {attr: (getattr(model, attr).posterior_.sizes["chain"],
                          getattr(model, attr).posterior_.sizes["draw"]) for attr in sub_models}
        if len(set(samples.values())) > 1:
            raise ModelFormatError(
                f"CLVModel: its sub-models' posteriors have different (chain, draw) sizes "
                f"{samples}; they must be sampled alike (the valuation pairs their draws)."
            )
        _combine_idata(model)
        return model
    _restore_arrays(model, tree, prefix, checksums)
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


def _restore_arrays(model: Any, tree: xr.DataTree, prefix: str, checksums: Any) -> None:
    posterior = _group(tree, prefix + "posterior", checksums=checksums, float_data=True)
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
        if posterior[var].dtype != np.float64:
            raise ModelFormatError(f"{prefix}posterior: {var!r} must be float64; the file "
                                   f"has {posterior[var].dtype}.")
        if not np.isfinite(posterior[var].to_numpy()).all():
            raise ModelFormatError(f"{prefix}posterior: {var!r} has non-finite values.")
    if posterior.sizes["chain"] < 1 or posterior.sizes["draw"] < 1:
        raise ModelFormatError(f"{prefix}posterior: no draws (chain={posterior.sizes['chain']}"
                               f", draw={posterior.sizes['draw']}).")
    if (posterior.sizes["segment"] != len(segments)
            or list(posterior[coord_dim].to_numpy()) != list(family.coords)):
        raise ModelFormatError(
            f"{prefix}posterior: expected {len(segments)} segments and coordinates "
            f"{list(family.coords)} for the {family.name!r} family."
        )
    if "segment" in posterior.coords and [str(s) for s in posterior["segment"].to_numpy()
                                          ] != list(segments):
        raise ModelFormatError(
            f"{prefix}posterior: its segment labels {list(posterior['segment'].to_numpy())[:5]}"
            f" are not the config's {list(segments)[:5]} (in that order)."
        )
    children = {"posterior": posterior}
    stats = _group(tree, prefix + "sample_stats", required=False, checksums=checksums)
    if stats is not None:
        children["sample_stats"] = stats
    model.idata_ = xr.DataTree.from_dict(children)
    for attr, (group, columns) in _TABLES.items():
        if not isinstance(model, RetentionModel):
            continue
        dataset = _group(tree, prefix + group, checksums=checksums)
        if set(dataset.data_vars) != set(columns) or set(dataset.dims) - {"row"}:
            raise ModelFormatError(f"{prefix}{group}: expected columns {sorted(columns)}.")
        table = pd.DataFrame({c: dataset[c].to_numpy().astype(columns[c]) for c in columns})
        codes = table["segment"].to_numpy()
        if len(codes) and (codes.min() < 0 or codes.max() >= len(segments)):
            raise ModelFormatError(f"{prefix}{group}: segment codes out of range.")
        setattr(model, attr, table)


def _combine_idata(model: CLVModel) -> None:
    """``CLVModel.idata_`` from its sub-models, as :meth:`CLVModel.fit` builds it."""
    model.idata_ = combined_idata(model.retention_model_, model.spend_model_)


def load(path: str | os.PathLike) -> Any:
    """Load a model written by :func:`save` (or an estimator's ``save`` method).

    Nothing in the file is executed: the config is parsed with :func:`json.loads`, the
    class is looked up in a fixed table of ``CLVModel``, ``RetentionModel``,
    ``SpendModel``, ``RFMSegmenter``, ``KMeansSegmenter`` and ``Pipeline``, the
    hyper-parameters go through ``set_params`` and the estimator's own checks, and the
    fitted attributes are type-checked before they are set. A Pipeline is rebuilt as
    ``Pipeline([(name, step), ...], verbose=...)`` from its saved steps.

    Parameters
    ----------
    path : str or os.PathLike
        A netCDF file or a Zarr directory.

    Returns
    -------
    CLVModel, RetentionModel, SpendModel, segmenter or sklearn.pipeline.Pipeline
        The fitted estimator; ``predict`` (``transform`` for a segmenter) gives bitwise
        the same output as the saved one's.

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
        return _build_any(config, tree, checksums_of(config))


