"""The spend model compiled in a second process while the retention model compiles.

With an empty compile cache, most of a first ``CLVModel.fit`` is numba compiling the two
models' log densities, one after the other, on one core. When the retention model's
structure must be compiled, :class:`SpendCompilation` starts a Python process that builds
the spend model from the same table and hyper-parameters, compiles its log density into
the on-disk cache, says so, and then compiles the valuation kernels ``predict`` will use.
The spend fit waits for the first and loads it from the cache.

The cache is keyed by the graph's structure, so the second process compiles exactly what
the fit would have compiled: the posterior is the same, bit for bit; only the time of the
compiling changes. Whatever goes wrong there (a table the copy does not reproduce, a
crash), the spend fit compiles its model itself, as it would have anyway.
Nothing starts with a single usable core, for a Dask table, for MAP or PyMC's sampler,
or with the environment variable ``BAYESCLV_COMPILE_IN_BACKGROUND=0``.
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

from bayesclv._base import resolve_sampler

__all__ = ["SpendCompilation", "main"]

#: Customers copied for the second process at most: the structure does not depend on the
#: number of customers (their statistics are model data), only on the hyper-parameters.
MAX_ROWS = 50_000
#: Seconds the spend fit waits for the second process at most before compiling itself.
WAIT_SECONDS = 900.0
_READY = "compiled"
#: The valuation kernels ``CLVModel.predict`` calls (``bayesclv.valuation.kernels``).
PREDICT_KERNELS = ("window_sums", "summarize_values", "mean_expected_spend", "draw_values")
# Second processes left compiling valuation kernels: referenced until they end.
_RUNNING: set[subprocess.Popen] = set()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def enabled() -> bool:
    """Whether compiling in a second process is allowed here (cores and the setting)."""
    return (os.environ.get("BAYESCLV_COMPILE_IN_BACKGROUND", "1").strip() != "0"
            and _usable_cores() >= 2)


def _environment() -> dict[str, str]:
    """The environment for the second process: ours, with the package and the caches."""
    import numba
    import pytensor

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding this package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    flags = env.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = ",".join(
        f for f in (flags, f"base_compiledir={pytensor.config.base_compiledir}") if f)
    if numba.config.CACHE_DIR:
        env["NUMBA_CACHE_DIR"] = str(numba.config.CACHE_DIR)
    env["BAYESCLV_COMPILE_IN_BACKGROUND"] = "0"
    return env


def _column_kinds(table: pd.DataFrame) -> dict[str, str]:
    """How to read each column back: ``"str"``, ``"bool"`` or ``"number"``."""
    kinds = {}
    for name, dtype in table.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            kinds[name] = "bool"
        elif pd.api.types.is_numeric_dtype(dtype):
            kinds[name] = "number"
        else:
            kinds[name] = "str"
    return kinds


def _job(spend: Any, X: pd.DataFrame, period: str | None) -> tuple[dict, pd.DataFrame]:
    """What the second process needs: hyper-parameters, period, the columns the model reads."""
    from bayesclv.priors import priors_to_dict

    params = spend.get_params(deep=False)
    if params.get("priors") is not None:
        params["priors"] = priors_to_dict(params["priors"])
    params["progressbar"] = False
    columns = [c for c in (*spend._columns().to_dict().values(), *(spend.covariates or ()))
               if c is not None and c in X.columns]
    table = X[list(dict.fromkeys(columns))]
    if len(table) > MAX_ROWS:
        table = table.iloc[:: -(-len(table) // MAX_ROWS)]
    # The structure does not depend on who the customers are: no identifier is copied.
    table = table.assign(**{spend.customer_col: np.arange(len(table))})
    job = {"params": params, "period": period, "kinds": _column_kinds(table)}
    return job, table


def _samples_by_nutpie(spend: Any) -> bool:
    try:
        return resolve_sampler(spend.sampler) == "nutpie"
    except ImportError:  # the spend fit says so itself
        return False


def _command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "bayesclv.estimator._background", str(folder)]


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
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the second process (once), if it can help."""
        if self._started:
            return
        self._started = True
        if not enabled() or self._spend.method != "nuts" or not _samples_by_nutpie(self._spend):
            return
        try:
            job, table = _job(self._spend, self._table, self._period)
            self._folder = Path(tempfile.mkdtemp(prefix="bayesclv-compile-"))
            table.to_csv(self._folder / "customers.csv", index=False)
            (self._folder / "job.json").write_text(json.dumps(job, default=_plain))
            self._process = subprocess.Popen(
                _command(self._folder), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=_environment(), text=True)
        except (OSError, TypeError, ValueError):  # then the spend fit compiles, as always
            self._remove_folder()
            return
        threading.Thread(target=self._watch, args=(self._process,), daemon=True).start()

    def _watch(self, process: subprocess.Popen) -> None:
        # Returns at the line saying the model is compiled, or when the process ends.
        process.stdout.readline()
        self._ready.set()
        process.stdout.read()

    def wait(self) -> None:
        """Wait until the spend model is compiled, or the second process has given up."""
        if self._process is not None:
            self._ready.wait(WAIT_SECONDS)
        self._remove_folder()

    def close(self) -> None:
        """Leave the second process to finish the kernels; stop it if the fit failed."""
        process, self._process = self._process, None
        if process is not None:
            if self._ready.is_set():
                # It compiles kernels for a few more seconds, into the cache, and then
                # exits on its own (this interpreter's exit does not wait for it).
                _RUNNING.difference_update({p for p in _RUNNING if p.poll() is not None})
                _RUNNING.add(process)
            else:
                process.kill()
                process.wait()
        self._remove_folder()

    def _remove_folder(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _read_table(folder: Path, kinds: dict[str, str]) -> pd.DataFrame:
    dtypes = {name: str if kind == "str" else bool for name, kind in kinds.items()
              if kind != "number"}
    return pd.read_csv(folder / "customers.csv", dtype=dtypes, keep_default_na=False,
                       na_values=[""])


def main(argv: list[str] | None = None) -> int:
    """Compile the spend model described in the folder ``argv[0]``, then the kernels."""
    from bayesclv._base import compile_posterior
    from bayesclv.estimator.spend import SpendModel
    from bayesclv.priors import priors_from_dict
    from bayesclv.valuation.kernels import compile_kernels

    folder = Path((sys.argv[1:] if argv is None else argv)[0])
    job = json.loads((folder / "job.json").read_text())
    params = job["params"]
    if params.get("priors") is not None:
        params["priors"] = priors_from_dict(params["priors"])
    table = _read_table(folder, job["kinds"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compile_posterior(SpendModel(**params)._prepared_model(table, job["period"]))
    print(_READY, flush=True)
    compile_kernels(PREDICT_KERNELS)  # those the first predict needs, first
    compile_kernels()
    return 0


if __name__ == "__main__":
    sys.exit(main())
