"""The spend model compiled in a second process while the retention model compiles.

With an empty compile cache, most of a first ``CLVModel.fit`` is numba compiling the two
models' log densities, one after the other, on one core. When the retention model's
structure must be compiled, :class:`SpendCompilation` computes the spend model's inputs
(its sufficient statistics, the spenders' median spend, the segments and covariate
profiles: no customer identifiers, though the statistics are per spender when spenders
are few against profiles) and starts a Python process that builds the spend
model from them, compiles its log density into the on-disk cache, says so, and then
compiles the valuation kernels ``predict`` will use. The spend fit waits for the first
and loads it from the cache.

The cache is keyed by the graph's structure, so the second process compiles exactly what
the fit would have compiled: the posterior is the same, bit for bit; only the time of the
compiling changes. Whatever goes wrong there, the spend fit compiles its model itself, as
it would have anyway. A MAP fit optimises the same compiled density (less the
transforms' log-Jacobians, :mod:`bayesclv._flat`), so the second process serves it too.
Nothing starts with a single usable core, in a frozen application, for a Dask table, for
PyMC's sampler, when the cache cannot keep the result, or with the environment variable
``BAYESCLV_COMPILE_IN_BACKGROUND=0``.

:func:`fit_side_by_side` is how ``CLVModel.fit`` runs the two models on a pandas table:
this compilation, and each model's Python work beside the other's sampling.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytensor
from sklearn.base import clone

from bayesclv._base import resolve_sampler
from bayesclv._callbacks import before_compiling
from bayesclv._hierarchy import Profiles
from bayesclv.data.statistics import median_spend
from bayesclv.storage import params_json

__all__ = ["PREDICT_KERNELS", "SpendCompilation", "enabled", "fit_side_by_side", "main"]

#: Seconds the spend fit waits for the second process at most before compiling itself.
WAIT_SECONDS = 300.0
#: The valuation kernels ``CLVModel.predict`` calls (``bayesclv.valuation.kernels``).
PREDICT_KERNELS = ("window_sums", "summarize_values", "mean_expected_spend", "draw_values")
_READY = "compiled"
_OFF = {"0", "false", "no", "off"}
# The PyTensor setting the compiled structure depends on that a process may change after
# import (the rewrite settings cannot be: the second process inherits them).
_PYTENSOR_SETTINGS = ("floatX",)
# Second processes left compiling valuation kernels: referenced until they end.
_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def enabled() -> bool:
    """Whether compiling in a second process is allowed here (cores and the setting)."""
    setting = os.environ.get("BAYESCLV_COMPILE_IN_BACKGROUND", "1").strip().lower()
    return (setting not in _OFF and _usable_cores() >= 2
            and not getattr(sys, "frozen", False))  # no Python to start in a frozen app


def _fits_compiled_density(spend: Any) -> bool:
    """Whether ``spend``'s fit uses the density the second process compiles (MAP, nutpie)."""
    if spend.method == "map":
        return True
    try:
        return resolve_sampler(spend.sampler) == "nutpie"
    except ImportError:  # the spend fit says so itself
        return False


def _job(spend: Any, X: pd.DataFrame, period: str | None) -> tuple[dict, dict[str, np.ndarray]]:
    """The spend model's inputs from ``X``, computed on a copy of ``spend``: JSON and arrays."""
    copy = clone(spend)
    with warnings.catch_warnings():  # the fit itself warns, once
        warnings.simplefilter("ignore")
        stats, spent, profiles = copy._prepared_inputs(X, period)
    arrays = {f"stats.{name}": np.asarray(value) for name, value in stats.items()}
    # The spend priors' scale; their values are model data, not part of the structure.
    arrays["median_spend"] = np.array([median_spend(spent)])
    if profiles is not None:
        arrays["profile_segment"], arrays["profile_design"] = profiles.segment, profiles.design
    job = {
        "params": params_json(spend), "segments": [str(s) for s in copy.segments_],
        "scalars": [name for name, value in stats.items() if not isinstance(value, np.ndarray)],
        "profile_names": None if profiles is None else list(profiles.names),
        "pytensor": {name: getattr(pytensor.config, name) for name in _PYTENSOR_SETTINGS},
    }
    return job, arrays


def _command(folder: Path) -> list[str]:
    # This interpreter's flags (-s, -E, -I, ...), so that it imports what this process
    # does; -P: nothing from the working directory; and the folder holding this package,
    # where it is not on the path already (as after a sys.path.insert in this process).
    root = str(Path(__file__).resolve().parents[2])
    code = ("import os, sys; root = sys.argv[1]; "
            "any(os.path.realpath(p) == root for p in sys.path) or sys.path.insert(0, root); "
            "from bayesclv.estimator._background import main; sys.exit(main(sys.argv[2:]))")
    return [sys.executable, *subprocess._args_from_interpreter_flags(), "-P", "-c", code,
            root, str(folder)]


class SpendCompilation:
    """The second process compiling ``spend``'s model for the table ``X``, started on demand.

    :meth:`start` is the action for :func:`bayesclv._callbacks.before_compiling` around the
    retention fit; :meth:`wait` comes before the spend fit; :meth:`close` after it, on every
    path.
    """

    def __init__(self, spend: Any, X: pd.DataFrame, period: str | None) -> None:
        self._spend, self._table, self._period = spend, X, period
        self._started = False
        self._process: subprocess.Popen | None = None
        self._folder: Path | None = None
        self._ready = threading.Event()  # the model is compiled, or the process gave up
        self._compiled = False

    def start(self) -> None:
        """Start the second process (once), if it can help; never raises."""
        if self._started:
            return
        self._started = True
        if not enabled() or not _fits_compiled_density(self._spend):
            return
        try:
            job, arrays = _job(self._spend, self._table, self._period)
            self._table = None  # not kept alive by the thread below
            self._folder = Path(tempfile.mkdtemp(prefix="bayesclv-compile-"))
            (self._folder / "job.json").write_text(json.dumps(job))
            np.savez(self._folder / "arrays.npz", **arrays)
            self._process = subprocess.Popen(
                _command(self._folder), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env={**os.environ,
                                                "BAYESCLV_COMPILE_IN_BACKGROUND": "0"},
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
            threading.Thread(target=self._watch, args=(self._process,), daemon=True).start()
        except Exception:  # noqa: BLE001 - whatever it is, the spend fit compiles itself
            self.close()

    def _watch(self, process: subprocess.Popen) -> None:
        try:  # bytes: whatever else a library writes there cannot stop this loop
            for line in process.stdout:
                if line.strip() == _READY.encode():
                    self._compiled = True
                    break
        finally:
            self._ready.set()
        for _ in process.stdout:  # until it exits: a full pipe would block it
            pass

    def wait(self) -> None:
        """Wait until the spend model is compiled, or the second process has given up.

        A process still compiling after ``WAIT_SECONDS`` is stopped: the spend fit compiles.
        """
        if self._process is not None and not self._ready.wait(WAIT_SECONDS):
            self.close()
        self._remove_folder()

    def close(self) -> None:
        """Leave a second process that compiled the model to finish; stop any other."""
        process, self._process = self._process, None
        if process is not None:
            if self._compiled and process.poll() is None:
                # It compiles kernels for a few more seconds, into the cache, and then
                # exits on its own (this interpreter's exit does not wait for it).
                with _RUNNING_LOCK:
                    _RUNNING.difference_update([p for p in _RUNNING if p.poll() is not None])
                    _RUNNING.add(process)
            else:
                process.kill()
                process.wait()
        self._remove_folder()

    def _remove_folder(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def fit_side_by_side(retention: Any, spend: Any, X: pd.DataFrame, period: str | None
                     ) -> tuple[Any, Any]:
    """Fit a CLVModel's retention and spend models to a pandas table, side by side.

    nutpie samples in threads that hold no Python lock: the spend model is validated,
    built and started while the retention chains sample, and the retention posterior is
    converted and checked while the spend chains sample. Each posterior is the one a fit
    on its own gives, draw for draw: only the order of the work changes. With an empty
    compile cache, the spend model compiles in a second process while the retention
    model compiles here (:class:`SpendCompilation`).
    """
    compilation = SpendCompilation(spend, X, period)
    started = []
    try:
        with before_compiling(compilation.start):
            started.append(retention._begin_fit(X, period))
        compilation.wait()
        started.append(spend._begin_fit(X, period))
        fitted = retention._end_fit(started[0]), spend._end_fit(started[1])
        started.clear()
        return fitted
    finally:
        for run in started:  # a step failed: stop whatever still samples
            run.cancel()
        compilation.close()


def _model_from_folder(folder: Path) -> tuple[Any, dict[str, Any]]:
    """The spend model described in ``folder`` and the PyTensor settings to compile it with.

    ``folder`` was written by :class:`SpendCompilation`.

    The folder is deleted once read: nothing of the table stays on disk.
    """
    from bayesclv.estimator.spend import SpendModel
    from bayesclv.priors import priors_from_dict

    job = json.loads((folder / "job.json").read_text())
    with np.load(folder / "arrays.npz", allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    shutil.rmtree(folder, ignore_errors=True)
    prefix = "stats."
    stats = {name[len(prefix):]: value[()] if name[len(prefix):] in job["scalars"] else value
             for name, value in arrays.items() if name.startswith(prefix)}
    profiles = None if job["profile_names"] is None else Profiles(
        arrays["profile_segment"], arrays["profile_design"], tuple(job["profile_names"]))
    params = job["params"]
    if params.get("priors") is not None:
        params["priors"] = priors_from_dict(params["priors"])
    with warnings.catch_warnings(), pytensor.config.change_flags(**job["pytensor"]):
        warnings.simplefilter("ignore")
        model, _ = SpendModel(**params)._model(stats, arrays["median_spend"], job["segments"],
                                               profiles)
    return model, job["pytensor"]


def main(argv: list[str]) -> int:
    """Compile the spend model described in the folder ``argv[0]``, then the kernels."""
    from bayesclv._base import compile_posterior
    from bayesclv.valuation.kernels import compile_kernels

    model, settings = _model_from_folder(Path(argv[0]))
    with pytensor.config.change_flags(**settings):
        compile_posterior(model)
    print(_READY, flush=True)
    compile_kernels(PREDICT_KERNELS)  # those the first predict needs, first
    compile_kernels()
    return 0
