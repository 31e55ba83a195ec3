"""The ``bayesclv`` MLflow model flavour: a fitted model in a registry, never pickled.

A model saved by this flavour is an MLflow model directory whose ``data/bayesclv/``
folder holds the library's own saved-model file (``model.nc``, :func:`bayesclv.io.save`)
and the model card (``card.md``). Loading goes through :func:`bayesclv.load`, which reads
JSON and arrays only, so neither :func:`load_model` nor ``mlflow.pyfunc.load_model``
unpickles anything. The ``python_function`` flavour is declared with ``loader_module``
(this module), which is MLflow's way of loading a model without cloudpickle. MLflow's
own loader follows whatever the ``MLmodel`` file names, so a directory from an untrusted
source is read safely only by :func:`load_model`, which reads the ``bayesclv`` flavour
alone and nothing outside the model's directory.

* :func:`save_model` writes the directory; :func:`log_model` logs it to the active run
  (starting one if none is active), logs the fit's settings and priors as the logged
  model's params and its convergence diagnostics as metrics, and optionally registers
  a model version.
* :func:`load_model` gives back the estimator (or Pipeline);
  ``mlflow.pyfunc.load_model(uri).predict(customers)`` gives the ``predict`` table.
* :func:`model_signature` builds the signature from the customer-table contract
  (DESIGN §3): the columns the model reads, with their types, and the columns
  ``predict`` returns.

Needs the ``mlflow`` extra (``pip install "bayesclv[mlflow]"``: ``mlflow-skinny`` and,
for a local ``sqlite:///`` tracking store, SQLAlchemy and Alembic).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from bayesclv._version import __version__
from bayesclv.diagnostics import ESS_MIN, RHAT_MAX
from bayesclv.estimator import CLVModel, RetentionModel, SpendModel
from bayesclv.io import load, save
from bayesclv.priors import priors_table
from bayesclv.storage import SAVED_SEGMENTERS

__all__ = ["CARD_FILE", "FLAVOR_NAME", "MODEL_FILE", "BatchScorer", "fit_metrics", "fit_params",
           "get_default_pip_requirements", "load_model", "log_model", "model_signature",
           "save_model"]

FLAVOR_NAME = "bayesclv"
#: The saved model (:func:`bayesclv.io.save`) and its card, inside the model's ``data/``.
MODEL_FILE = "model.nc"
CARD_FILE = "card.md"
_DATA_DIR = "bayesclv"

_ESTIMATORS = (CLVModel, RetentionModel, SpendModel)


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "bayesclv.mlflow needs MLflow: pip install \"bayesclv[mlflow]\" (mlflow-skinny, "
            "plus SQLAlchemy and Alembic for a local sqlite:/// tracking store)."
        ) from error
    return mlflow


def _final_model(model: Any) -> Any:
    """The fitted estimator that values customers: ``model`` or a Pipeline's last step."""
    final = model[-1] if isinstance(model, Pipeline) else model
    steps = list(model[:-1]) if isinstance(model, Pipeline) else []
    if not isinstance(final, _ESTIMATORS) or not all(isinstance(step, SAVED_SEGMENTERS)
                                                      for step in steps):
        raise TypeError(
            "bayesclv.mlflow saves a CLVModel, RetentionModel or SpendModel, or a Pipeline "
            f"of segmenters ending in one; got {type(model).__name__}"
            + (f" of {[type(step).__name__ for step in model]}" if final is not model
               else "") + "."
        )
    check_is_fitted(final, "idata_")
    return final


# ---------------------------------------------------------------------------------------
# Signature, params and metrics
# ---------------------------------------------------------------------------------------

def _input_columns(model: Any, example: pd.DataFrame | None) -> list[Any]:
    """ColSpecs of the customer table ``model`` reads (DESIGN §3).

    The contract gives the columns and their types; a column of ``example`` keeps the
    example's type instead (counts held as floats, spend held as integers), since MLflow
    refuses any conversion it deems unsafe, integer to float included.
    """
    from mlflow.types.schema import AnyType, ColSpec

    final = _final_model(model)
    columns = final._columns()
    needs = final._requirements
    specs: dict[str, Any] = {}
    # The id may be a column or the index: the column is optional in the schema.
    specs[columns.customer] = ColSpec(AnyType(), columns.customer, required=False)
    written = set()
    if isinstance(model, Pipeline):
        for step in model[:-1]:
            # Recency and frequency in periods, as summarize() writes them; monetary value.
            for name, kind in zip(step._columns(), ("long", "long", "double"), strict=True):
                specs[name] = ColSpec(kind, name)
            written.add(step.segment_col)
    if columns.segment is not None and final.has_segment_column_ \
            and columns.segment not in written:
        specs[columns.segment] = ColSpec("string", columns.segment)
    if needs.get("require_retention", True):
        specs[columns.tenure] = ColSpec("long", columns.tenure)
        specs[columns.churned] = ColSpec("boolean", columns.churned)
        if columns.entry is not None:
            specs[columns.entry] = ColSpec("long", columns.entry, required=False)
    if needs.get("require_spend", True):
        specs[columns.n_periods_active] = ColSpec("long", columns.n_periods_active)
        specs[columns.mean_spend] = ColSpec("double", columns.mean_spend)
        for name in (columns.mean_log_spend, columns.sd_log_spend):
            specs[name] = ColSpec("double", name, required=False)
    for sub in _fitted_parts(final):
        encoder = getattr(sub, "covariates_", None)
        if encoder is not None:
            # Numbers may be held as ints or floats, levels as strings, bools or
            # categories: any type passes here, and the model validates them itself.
            for name in encoder.columns:
                specs.setdefault(name, ColSpec(AnyType(), name))
    if example is not None:
        for name, spec in specs.items():
            if name in example.columns:
                specs[name] = ColSpec(_column_type(example[name]), name,
                                      required=spec.required)
    return list(specs.values())


def _fitted_parts(model: Any) -> list[Any]:
    """The fitted sub-models of a CLVModel, or the model itself."""
    if isinstance(model, CLVModel):
        return [model.retention_model_, model.spend_model_]
    return [model]


def model_signature(model: Any, input_example: pd.DataFrame | None = None) -> Any:
    """The MLflow signature of a fitted model, from the customer-table contract.

    Parameters
    ----------
    model : CLVModel, RetentionModel, SpendModel or Pipeline
        Fitted. A Pipeline's inputs are its segmenters' columns (recency, frequency,
        monetary) and its final model's columns but the segment, which the segmenter
        writes.
    input_example : pandas.DataFrame, optional
        A few customers, typed as the tables to score will be: each contract column it
        has takes its type (the id's too; without it, any id type is accepted), and
        ``predict`` on them gives the output schema.

    Returns
    -------
    mlflow.models.ModelSignature
        Inputs: the id (optional: it may be the index), the segment (when the model was
        fitted with one), ``tenure`` (long), ``churned`` (boolean), ``entry`` (long,
        optional), ``n_periods_active`` (long), ``mean_spend`` (double), the optional
        log-spend columns and the covariates, as the model needs them. Outputs: the
        columns of ``predict`` (when ``input_example`` is given).

    Notes
    -----
    MLflow checks a scored table against the inputs: columns missing or of another
    type are refused (without an example, an integer ``mean_spend`` column must be cast
    to float first), and columns not in the signature are dropped before ``predict``
    sees them.
    """
    mlflow = _mlflow()
    from mlflow.types.schema import Schema

    outputs = None
    if input_example is not None:
        outputs = mlflow.models.infer_signature(model_output=model.predict(input_example)
                                                ).outputs
    return mlflow.models.ModelSignature(inputs=Schema(_input_columns(model, input_example)),
                                        outputs=outputs)


def _column_type(values: pd.Series) -> str:
    kind = values.dtype.kind
    return {"i": "long", "u": "long", "f": "double", "b": "boolean"}.get(kind, "string")


def fit_params(model: Any) -> dict[str, str]:
    """The settings of a fitted model, as MLflow params (strings).

    Parameters
    ----------
    model : CLVModel, RetentionModel, SpendModel or Pipeline
        Fitted.

    Returns
    -------
    dict of str to str
        ``estimator``, the hyper-parameters that change the fit or the valuation
        (families, method, sampler, draws, tune, chains, target_accept, seed, horizon,
        discount rate, margin, HDI probability), ``seed`` (the one used), ``sampled_by``
        (the sampler that ran), ``period``, ``n_customers``, ``n_segments``,
        ``segmenter`` (for a Pipeline), ``thinned_from_draws`` (a thinned copy),
        ``bayesclv_version`` and one ``prior.<key>`` per prior (long values shortened;
        the model card has them whole).
    """
    final = _final_model(model)
    params: dict[str, Any] = {"estimator": type(final).__name__,
                              "bayesclv_version": __version__}
    if isinstance(model, Pipeline):
        params["segmenter"] = " > ".join(type(step).__name__ for step in model[:-1])
    settings = final.get_params(deep=False)
    for name in ("retention", "spend", "family", "method", "sampler", "draws", "tune",
                 "chains", "target_accept", "random_seed", "horizon", "discount_rate",
                 "margin", "cost_per_period", "hdi_prob", "covariates"):
        if name in settings:
            params[name] = settings[name]
    params["seed"] = getattr(final, "seed_", None)
    params["period"] = getattr(final, "period_", None)
    params["n_customers"] = getattr(final, "n_customers_in_", None) or getattr(
        _fitted_parts(final)[0], "n_customers_in_", None)
    params["n_segments"] = len(final.segments_)
    params["sampled_by"] = getattr(_fitted_parts(final)[0], "sampler_", None)
    thinned = _fitted_parts(final)[0].posterior_.attrs.get("thinned_from_draws")
    if thinned is not None:
        params["thinned_from_draws"] = thinned
    for row in priors_table(final.priors_).itertuples(index=False):
        detail = row.params if hasattr(row, "params") else getattr(row, "value", "")
        text = str(f"{row.distribution}{detail}" if getattr(row, "distribution", "")
                   else detail)
        # MLflow caps a param at 6,000 characters; per-segment settings (the centred
        # mask) grow with segments: the card holds them in full.
        params[f"prior.{row.key}"] = text if len(text) <= 500 else (
            f"{text[:450]} ... ({len(text):,} characters: see the model card)")
    return {key: str(value) for key, value in params.items() if value is not None}


def fit_metrics(model: Any) -> dict[str, float]:
    """Convergence diagnostics of a fitted model, as MLflow metrics.

    Parameters
    ----------
    model : CLVModel, RetentionModel, SpendModel or Pipeline
        Fitted.

    Returns
    -------
    dict of str to float
        ``r_hat_max`` (with more than one chain), ``ess_bulk_min``, ``ess_tail_min``,
        ``divergences``, ``converged`` (1.0 when no parameter has R-hat above 1.01 or
        bulk ESS below 400 and no transition diverged: the rule of the library's
        :class:`~bayesclv.ConvergenceWarning`), ``steps_per_draw.<part>`` (``retention``
        and ``spend`` for a CLVModel, ``model`` otherwise) and ``sampling_seconds`` (the
        parts' ``sampling_seconds_`` added up: each from the start of the part's fit to
        its posterior; a CLVModel builds one part while the other samples, so they
        overlap); empty for a ``method="map"`` fit, which has none. A thinned copy
        (:meth:`~bayesclv.CLVModel.thin`) describes its kept draws only: log the full
        fit to record its convergence.
    """
    final = _final_model(model)
    if final.get_params(deep=False).get("method", "nuts") == "map":
        return {}
    table = final.diagnostics()
    metrics = {"r_hat_max": float(table["r_hat"].max()),
               "ess_bulk_min": float(table["ess_bulk"].min()),
               "ess_tail_min": float(table["ess_tail"].min()),
               "divergences": float(table.attrs.get("divergences", 0))}
    several_chains = int(table.attrs.get("chains", 1)) > 1
    metrics["converged"] = float((not several_chains or metrics["r_hat_max"] <= RHAT_MAX)
                                 and metrics["ess_bulk_min"] >= ESS_MIN
                                 and metrics["divergences"] == 0)
    steps = table.attrs.get("steps_per_draw_by_model") or {
        "model": table.attrs.get("steps_per_draw")}
    metrics.update({f"steps_per_draw.{name}": float(value) for name, value in steps.items()
                    if value is not None})
    seconds = [getattr(part, "sampling_seconds_", None) for part in _fitted_parts(final)]
    if all(isinstance(s, float) for s in seconds):
        metrics["sampling_seconds"] = float(sum(seconds))
    return {key: value for key, value in metrics.items() if np.isfinite(value)}


def _card(model: Any) -> str:
    final = _final_model(model)
    if isinstance(model, Pipeline):
        return final.card(segments=" > ".join(type(s).__name__ for s in model[:-1]))
    return final.card()


# ---------------------------------------------------------------------------------------
# Save, log, load
# ---------------------------------------------------------------------------------------

def get_default_pip_requirements() -> list[str]:
    """The pip requirements of a saved model: this bayesclv version, pinned.

    Returns
    -------
    list of str
        ``["bayesclv==<version>"]``; bayesclv's own requirements follow from it.
    """
    return [f"bayesclv=={__version__}"]


def save_model(model: Any, path: str | os.PathLike, *, mlflow_model: Any = None,
               signature: Any = None, input_example: pd.DataFrame | None = None,
               pip_requirements: Sequence[str] | None = None,
               extra_pip_requirements: Sequence[str] | None = None,
               metadata: Mapping[str, Any] | None = None, card: str | None = None) -> Path:
    """Save a fitted model as an MLflow model directory (the library's file, no pickle).

    Parameters
    ----------
    model : CLVModel, RetentionModel, SpendModel or Pipeline
        Fitted; a Pipeline's steps before the last must be bayesclv segmenters.
    path : str or os.PathLike
        A directory that does not exist yet.
    mlflow_model : mlflow.models.Model, optional
        The model description to add the flavours to (:func:`log_model` passes one).
    signature : mlflow.models.ModelSignature, optional
        Default: :func:`model_signature` of ``model`` and ``input_example``.
    input_example : pandas.DataFrame, optional
        A few customers, saved with the model (MLflow shows them and checks that the
        model scores them).
    pip_requirements, extra_pip_requirements : sequence of str, optional
        As in MLflow; the default pins this bayesclv version.
    metadata : mapping, optional
        Free-form metadata for the ``MLmodel`` file.
    card : str, optional
        The model card (Markdown) to save as ``card.md``; default ``model.card()``. Pass
        ``model.card(backtest=result, source=...)`` to record a backtest and the data.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        For a model this flavour cannot save.
    sklearn.exceptions.NotFittedError
        If the model is not fitted.
    """
    mlflow = _mlflow()
    final = _final_model(model)
    path = Path(os.fspath(path))
    if mlflow_model is None:
        mlflow_model = mlflow.models.Model()
    if signature is None:
        signature = model_signature(model, input_example)
    with tempfile.TemporaryDirectory() as staging:
        data = Path(staging) / _DATA_DIR
        data.mkdir()
        save(model, data / MODEL_FILE)
        (data / CARD_FILE).write_text(card if card is not None else _card(model),
                                      encoding="utf-8")
        mlflow_model.add_flavor(
            FLAVOR_NAME, bayesclv_version=__version__,
            estimator=type(model).__name__ if isinstance(model, Pipeline)
            else type(final).__name__,
            data=f"data/{_DATA_DIR}", model_file=MODEL_FILE, card_file=CARD_FILE)
        mlflow.pyfunc.save_model(
            path, loader_module=__name__, data_path=str(data), mlflow_model=mlflow_model,
            signature=signature, input_example=input_example,
            pip_requirements=_requirements(pip_requirements, extra_pip_requirements),
            metadata=dict(metadata) if metadata is not None else None)
    return path


def _requirements(pip_requirements: Sequence[str] | None,
                  extra_pip_requirements: Sequence[str] | None) -> list[str]:
    """The model's pip requirements: given, or this bayesclv version plus the extra ones.

    MLflow takes only one of the two arguments, so the extra ones are added here.
    """
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise ValueError("Give pip_requirements or extra_pip_requirements, not both.")
    if pip_requirements is not None:
        return list(pip_requirements)
    return get_default_pip_requirements() + list(extra_pip_requirements or ())


@contextlib.contextmanager
def _active_run(mlflow: Any) -> Iterator[Any]:
    """The active run, or a new one for the duration (as MLflow's autologging does)."""
    run = mlflow.active_run()
    if run is not None:
        yield run
        return
    with mlflow.start_run() as run:
        yield run


def log_model(model: Any, name: str = "model", *, input_example: pd.DataFrame | None = None,
              signature: Any = None, registered_model_name: str | None = None,
              await_registration_for: int = 300,
              pip_requirements: Sequence[str] | None = None,
              extra_pip_requirements: Sequence[str] | None = None,
              metadata: Mapping[str, Any] | None = None, card: str | None = None,
              params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None) -> Any:
    """Log a fitted model to the active MLflow run, with its diagnostics and card.

    Parameters
    ----------
    model : CLVModel, RetentionModel, SpendModel or Pipeline
        Fitted.
    name : str, default="model"
        Name of the logged model.
    input_example, signature, pip_requirements, extra_pip_requirements, metadata, card
        As in :func:`save_model`.
    registered_model_name : str, optional
        Register the logged model as a new version of this registered model (created if
        need be).
    await_registration_for : int, default=300
        Seconds to wait for the version to be ready.
    params, tags : mapping, optional
        More params and tags of the logged model; ``params`` adds to (and may override)
        :func:`fit_params`. MLflow also copies the run's own params onto the logged
        model, and those win over both: do not log run params named like ours.

    Returns
    -------
    mlflow.models.model.ModelInfo
        Its ``model_uri`` loads the model back; ``registered_model_version`` is set when
        registered.

    Notes
    -----
    The logged model's params are :func:`fit_params` (settings and priors); the
    metrics :func:`fit_metrics` (R-hat, ESS, divergences, leapfrog steps) are logged to
    the run as ``<name>.<metric>`` (e.g. ``clv.r_hat_max``), so that several models
    logged in one run keep theirs apart, and linked to the logged model. With no active
    run, one is started and ended. The model card is also logged to the run as
    ``<name>_card.md``.
    """
    mlflow = _mlflow()
    _final_model(model)
    card = card if card is not None else _card(model)  # one card for the files and the run
    with _active_run(mlflow) as run:
        info = mlflow.models.Model.log(
            artifact_path=None, name=name, flavor=sys.modules[__name__],
            registered_model_name=registered_model_name,
            await_registration_for=await_registration_for,
            params={**fit_params(model), **dict(params or {})},
            tags=dict(tags) if tags is not None else None,
            model=model, input_example=input_example, signature=signature,
            pip_requirements=pip_requirements, extra_pip_requirements=extra_pip_requirements,
            metadata=metadata, card=card)
        metrics = {f"{name}.{key}": value for key, value in fit_metrics(model).items()}
        if metrics:
            mlflow.log_metrics(metrics, run_id=run.info.run_id, model_id=info.model_id)
        mlflow.log_text(card, f"{name}_card.md", run_id=run.info.run_id)
    return info


def _model_dir(model_uri: str | os.PathLike, dst_path: str | None) -> Path:
    from mlflow.artifacts import download_artifacts

    return Path(download_artifacts(artifact_uri=str(model_uri), dst_path=dst_path))


def load_model(model_uri: str | os.PathLike, dst_path: str | None = None) -> Any:
    """Load a model saved or logged by this flavour, as the fitted estimator.

    Parameters
    ----------
    model_uri : str or os.PathLike
        Any MLflow model URI: a local path, ``runs:/<run>/<name>``,
        ``models:/<model id>``, ``models:/<registered name>/<version>``, ...
    dst_path : str, optional
        Where to download the artifacts (default: a temporary directory).

    Returns
    -------
    CLVModel, RetentionModel, SpendModel or Pipeline
        Read by :func:`bayesclv.load`: nothing is unpickled.
    """
    _mlflow()
    from mlflow.models import Model

    local = _model_dir(model_uri, dst_path)
    description = Model.load(local)
    if FLAVOR_NAME not in description.flavors:
        raise ValueError(f"{model_uri} was not saved by the bayesclv flavour (its flavours: "
                         f"{sorted(description.flavors)}).")
    flavor = description.flavors[FLAVOR_NAME]
    path = (local / str(flavor.get("data")) / str(flavor.get("model_file"))).resolve()
    if not path.is_relative_to(local.resolve()):
        raise ValueError(f"{model_uri}: the bayesclv flavour names the file {path}, outside "
                         "the model's directory; refusing to read it.")
    return load(path)


class _PyFuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict`` is the model's ``predict``."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None
                ) -> pd.DataFrame:
        if params:
            raise ValueError(f"bayesclv models take no inference params; got {sorted(params)}.")
        if not isinstance(model_input, pd.DataFrame):
            raise TypeError("bayesclv models score a customer table (a pandas DataFrame); "
                            f"got {type(model_input).__name__}.")
        return self.model.predict(model_input)

    def get_raw_model(self) -> Any:
        """The estimator (or Pipeline) itself."""
        return self.model


def _load_pyfunc(path: str, model_config: Any = None) -> _PyFuncModel:
    """Called by ``mlflow.pyfunc.load_model`` with the model's ``data/bayesclv`` folder.

    ``model_config`` (MLflow's inference config) is not used: scoring has no options.
    """
    return _PyFuncModel(load(Path(path) / MODEL_FILE))


class BatchScorer:
    """Scores customer tables batch by batch with a model from an MLflow URI.

    Made for engines that run a Python function on each partition of a table on other
    machines: only the URI travels with the function, and each process loads the model
    (through :func:`load_model`, no pickle) on its first batch and keeps it.

    * Spark: ``spark_frame.mapInPandas(BatchScorer(uri), schema=...)`` (the scorer takes
      an iterator of pandas DataFrames and yields one ``predict`` table per batch);
    * Dask: ``dask_frame.map_partitions(BatchScorer(uri).predict, meta=...)``, or simply
      ``load_model(uri).predict(dask_frame)``;
    * pandas: ``table.groupby(np.arange(len(table)) // 100_000, group_keys=False)
      .apply(BatchScorer(uri).predict)`` (group by an array: pandas 3 leaves grouping
      columns out of the groups, and ``predict`` needs them).

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI of a model logged by this flavour, e.g.
        ``"models:/customer-value/3"`` or ``"models:/customer-value@champion"``,
        resolved where the scorer is made, with the tracking store in use there.

    Attributes
    ----------
    artifact_uri : str
        Where the model's files are (the artifact store's URI, e.g. ``s3://...``, or a
        path): what the workers read, so they need access to the artifact store but
        not to the tracking server.

    Notes
    -----
    A customer's row depends only on that customer's inputs, so any split of the table
    into batches gives the rows of a whole-table ``predict`` (equal up to floating-point
    rounding in vectorised sums, below 1e-12 relative). Customer ids must be unique
    across batches, which no single batch can check.
    """

    def __init__(self, model_uri: str) -> None:
        mlflow = _mlflow()
        self.model_uri = str(model_uri)
        # Resolved once, here: the workers need no tracking server (theirs may be another
        # or none), and an alias moved during the job cannot split it between versions.
        location = mlflow.models.Model.load(self.model_uri).artifact_path
        self.artifact_uri = str(location) if location else self.model_uri

    @property
    def model(self) -> Any:
        """The model, loaded once per process (a worker's tasks share it)."""
        with _LOADING:
            if self.artifact_uri not in _LOADED:
                _LOADED[self.artifact_uri] = load_model(self.artifact_uri)
            return _LOADED[self.artifact_uri]

    def predict(self, batch: pd.DataFrame) -> pd.DataFrame:
        """The ``predict`` table of one batch of customers."""
        return self.model.predict(batch)

    def __call__(self, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """One ``predict`` table per batch (Spark's ``mapInPandas`` calls it so)."""
        for batch in batches:
            yield self.predict(batch)


_LOADED: dict[str, Any] = {}
_LOADING = threading.Lock()  # a worker's threads wait for one load, not one each
