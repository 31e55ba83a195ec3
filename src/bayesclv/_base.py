"""Machinery shared by the estimators: parameter constraints, sampling dispatch, seeds."""

from __future__ import annotations

import contextlib
import copy
import gc
import numbers
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import xarray as xr
from sklearn.base import BaseEstimator

from bayesclv._map import find_map
from bayesclv._nutpie import nutpie_available, nutpie_model, start_nutpie
from bayesclv._params import Check, Interval, Options
from bayesclv.data import CustomerColumns
from bayesclv.diagnostics import warn_if_unconverged
from bayesclv.storage import save

__all__ = ["BayesianEstimator", "FitUnderWay", "PendingPosterior", "collector_paused",
           "compile_posterior", "graph_building", "reproducible_compilation",
           "resolve_sampler", "sample_posterior", "start_posterior"]


@contextlib.contextmanager
def reproducible_compilation() -> Iterator[None]:
    """Compile PyTensor functions so that their floating-point results never vary.

    PyTensor's numba backend compiles with fast-math by default, which lets LLVM
    reassociate sums; a graph compiled fresh and the same graph assembled from the
    on-disk cache then differ in the last bits, and NUTS amplifies that into different
    draws, so one seed would give different posteriors in a cold and a warm process.
    Strict IEEE arithmetic costs no measurable sampling speed on these likelihoods.
    The setting is scoped to the block, so the user's own PyTensor code is unaffected.
    """
    if not hasattr(pytensor.config, "numba__fastmath"):
        yield
        return
    with pytensor.config.change_flags(numba__fastmath=False):
        yield


class _ProcessSetting:
    """A process-wide setting changed while any thread is inside one of its blocks.

    ``change()`` makes the change and returns what it replaced; ``restore(previous)``
    undoes it. Nested and concurrent blocks share one change, made when the first block
    starts and undone when the last one ends, so a thread never restores a setting
    another thread's block still relies on.
    """

    def __init__(self, change: Any, restore: Any) -> None:
        self._change, self._restore = change, restore
        self._lock = threading.Lock()
        self._depth = 0
        self._previous: Any = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._previous = self._change()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._restore(self._previous)


def _pause_collector() -> bool:
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


def _resume_collector(was_enabled: bool) -> None:
    if was_enabled:  # a collector the user had turned off stays off
        gc.enable()


_COLLECTOR = _ProcessSetting(_pause_collector, _resume_collector)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a model is built or fitted.

    Building a PyMC model, its log density and its trace creates about a hundred
    thousand objects (graphs, mostly) that live until the fit ends. Counted as survivors,
    they make the collector run full collections over every object in the process (some
    300,000 once PyMC, PyTensor and numba are loaded), two or three per fit: 0.3 s of a
    2.5 s first fit at 10,000 customers. Held off, the collector meets them once, young,
    when the fit is over. Reference counting frees everything else as usual, so no data
    are held longer. Usable as a context manager or a decorator; nested and concurrent
    pauses end with the outermost one, and a collector the user had turned off stays off.
    """
    with _COLLECTOR.held():
        yield


def _default_traceback_limit() -> Any:
    try:
        return pytensor.config._config_var_dict["traceback__limit"].default
    except (AttributeError, KeyError):  # a PyTensor that keeps its settings otherwise
        return None


# PyTensor's own default, read at import: any other value was the user's choice.
_DEFAULT_TRACEBACK_LIMIT = _default_traceback_limit()


def _drop_tracebacks() -> Any:
    previous = pytensor.config.traceback__limit
    if previous == _DEFAULT_TRACEBACK_LIMIT:
        pytensor.config.traceback__limit = 0
    return previous


def _restore_tracebacks(previous: Any) -> None:
    pytensor.config.traceback__limit = previous


_TRACEBACKS = _ProcessSetting(_drop_tracebacks, _restore_tracebacks)


@contextlib.contextmanager
def graph_building() -> Iterator[None]:
    """What the library's own model building and fitting run under.

    The cyclic garbage collector held off (:func:`collector_paused`), and no creation
    traceback recorded on the graphs' nodes: PyTensor walks the Python stack and reads
    source lines for every node it creates (``traceback__limit``, 8 frames by default),
    some 4,000 nodes for a fit's two models and their traces, 0.2 s of a first fit at
    10,000 customers; tracebacks locate errors in the user's own graphs, not in these.
    A ``traceback__limit`` the user set to anything but PyTensor's default is kept.
    Usable as a context manager or a decorator; nested and concurrent blocks share one
    change, undone when the last ends.
    """
    with _COLLECTOR.held(), _TRACEBACKS.held():
        yield


def _is_seed(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                             and value >= 0)


def _is_priors(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


def _is_covariates(value: Any) -> bool:
    return value is None or (isinstance(value, (list, tuple)) and len(value) > 0
                             and all(isinstance(v, str) for v in value)
                             and len(set(value)) == len(value))


SAMPLING_CONSTRAINTS: dict[str, Any] = {
    "method": Options(("nuts", "map")),
    "sampler": Options(("auto", "nutpie", "pymc")),
    "draws": Interval(int, 1, None),
    "tune": Interval(int, 0, None),
    "chains": Interval(int, 1, None),
    "target_accept": Interval(float, 0.5, 1.0, closed="neither"),
    "random_seed": Check(_is_seed, "a non-negative int or None"),
    "progressbar": Options((True, False)),
    "priors": Check(_is_priors, "a dict or None"),
    "covariates": Check(_is_covariates, "a non-empty list of distinct column names or None"),
}
COLUMN_PARAMS = ("customer_col", "segment_col", "tenure_col", "churned_col", "entry_col",
                 "n_periods_active_col", "mean_spend_col")


def resolve_sampler(sampler: str) -> str:
    """The NUTS implementation ``sampler`` names: ``"auto"`` is nutpie when installed.

    Raises ImportError for ``"nutpie"`` without the ``fast`` extra, rather than quietly
    sampling with something else.
    """
    if sampler == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    if sampler == "nutpie" and not nutpie_available():
        raise ImportError(
            "sampler='nutpie' needs nutpie 0.16: pip install 'bayesclv[fast]' "
            "(or sampler='pymc')."
        )
    return sampler


def compile_posterior(model: pm.Model) -> None:
    """Compile what :func:`sample_posterior` needs to fit ``model`` by nutpie or MAP; fit nothing.

    The log density goes into the on-disk cache (nothing is done when its structure is
    there already), so that a later fit of the same structure, in any process, loads it:
    nutpie samples it, the MAP optimiser uses it less the log-Jacobians
    (:mod:`bayesclv._flat`).
    """
    with reproducible_compilation(), graph_building():
        nutpie_model(model)


class PendingPosterior:
    """A fit whose posterior :meth:`result` returns: at once, or once nutpie's chains end.

    NUTS by nutpie samples in nutpie's own threads, which hold no Python lock, from
    :func:`start_posterior` until :meth:`result`; PyMC's sampler and MAP are done when
    :func:`start_posterior` returns.
    """

    def __init__(self, finished: xr.DataTree | None = None, run: Any = None) -> None:
        self._finished, self._run = finished, run

    def result(self) -> xr.DataTree:
        """The posterior (and sample statistics) as a DataTree."""
        if self._finished is None:
            run, self._run = self._run, None  # a run that fails has stopped its chains
            with graph_building():  # the trace's graphs are computed here
                self._finished = run.result()
        return self._finished

    def cancel(self) -> None:
        """Stop sampling that is under way, discarding it; nothing if it has ended."""
        if self._run is not None:
            self._run.cancel()
            self._run = None


def start_posterior(
    model: pm.Model, *, method: str, sampler: str, draws: int, tune: int, chains: int,
    target_accept: float, random_seed: int, progressbar: bool = False,
) -> PendingPosterior:
    """Start fitting a PyMC model by NUTS (nutpie's or PyMC's) or by MAP.

    ``sampler`` is ``"nutpie"`` or ``"pymc"`` (see :func:`resolve_sampler`). nutpie's
    chains are left sampling in its threads when this returns (see
    :class:`PendingPosterior`), so that the caller can build its next model meanwhile.
    PyMC's NUTS runs its chains in parallel processes and adapts its diagonal mass matrix
    from gradients as well as draws (``init="jitter+adapt_diag_grad"``): on these
    posteriors that takes about a quarter fewer leapfrog steps per draw than adapting
    from draws alone (``benchmarks/RESULTS.md``). A MAP fit
    (:func:`bayesclv._map.find_map`) is returned as a posterior with one chain and one
    draw, so that every downstream computation has the same shape whatever the method.
    """
    if method == "map":
        with reproducible_compilation(), graph_building():
            return PendingPosterior(find_map(model))
    cores = min(chains, os.cpu_count() or 1)
    if sampler == "nutpie":
        with reproducible_compilation(), graph_building():
            return PendingPosterior(run=start_nutpie(
                model, draws=draws, tune=tune, chains=chains, cores=cores,
                random_seed=random_seed, target_accept=target_accept,
                progressbar=progressbar))
    # Creation tracebacks off as in graph_building; the collector runs as usual through
    # PyMC's long sampling.
    with model, reproducible_compilation(), _TRACEBACKS.held():
        idata = pm.sample(
            draws=draws, tune=tune, chains=chains, cores=cores,
            random_seed=random_seed, nuts_sampler="pymc", init="jitter+adapt_diag_grad",
            target_accept=target_accept,
            progressbar=progressbar, compute_convergence_checks=False,
        )
    return PendingPosterior(_without_model_data(idata))


def sample_posterior(
    model: pm.Model, *, method: str, sampler: str, draws: int, tune: int, chains: int,
    target_accept: float, random_seed: int, progressbar: bool = False,
) -> xr.DataTree:
    """Fit a PyMC model by NUTS or MAP, as a DataTree: :func:`start_posterior`, awaited."""
    return start_posterior(
        model, method=method, sampler=sampler, draws=draws, tune=tune, chains=chains,
        target_accept=target_accept, random_seed=random_seed, progressbar=progressbar,
    ).result()


def _without_model_data(idata: xr.DataTree) -> xr.DataTree:
    """Drop the copy of the model data (sufficient statistics, prior parameters) PyMC adds.

    The statistics enter the model as data so that it compiles once for every table; a
    fitted model keeps its posterior, not a second copy of what it was fitted on.
    """
    if "constant_data" in idata.children:
        del idata["constant_data"]
    return idata


def thin_idata(tree: xr.DataTree, draws: int) -> xr.DataTree:
    """Keep about ``draws`` samples in every group with a ``draw`` dimension.

    Every chain keeps ``ceil(draws / chains)`` draws evenly spaced over its run (the first
    and the last included), so chains stay aligned, relabelled ``0..k-1``; the tree is
    copied whole when there are already no more than ``draws`` samples.
    """
    first = next(node for node in tree.children.values() if "draw" in node.dims)
    n_chains, n_draws = first.sizes.get("chain", 1), first.sizes["draw"]
    if n_chains * n_draws <= draws:
        return tree.copy()
    per_chain = -(-draws // n_chains)
    keep = np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))
    children = {}
    for name, node in tree.children.items():
        data = node.to_dataset()
        if "draw" in data.dims:
            # Draws relabelled 0..k-1 like a fresh fit's; which were kept is in attrs.
            data = data.isel(draw=keep).assign_coords(draw=np.arange(len(keep)))
            data.attrs["thinned_from_draws"] = int(n_draws)
        children[name] = data
    return xr.DataTree.from_dict(children)


class FitUnderWay:
    """An estimator's model being fitted: :meth:`result` ends the fit and checks it.

    ``sampling_seconds_`` is then the wall time from the start of the fit of the model
    (building its log density included) to its result, whatever else the process did
    meanwhile.
    """

    def __init__(self, estimator: Any, pending: PendingPosterior, sampler: str,
                 started: float, var_names: list[str], what: str) -> None:
        self.estimator, self._pending, self._sampler = estimator, pending, sampler
        self._started, self._var_names, self._what = started, var_names, what

    def result(self) -> xr.DataTree:
        """The posterior; sets the estimator's ``sampler_`` and ``sampling_seconds_``.

        A NUTS fit warns (:class:`bayesclv.ConvergenceWarning`) of divergences, R-hat
        above 1.01 or bulk ESS below 400 among the monitored parameters.
        """
        idata = self._pending.result()
        self.estimator.sampling_seconds_ = time.perf_counter() - self._started
        self.estimator.sampler_ = self._sampler
        if self.estimator.method == "nuts":
            warn_if_unconverged(idata, self._var_names, self._what)
        return idata

    def cancel(self) -> None:
        """Stop a fit under way (after another step failed), discarding it."""
        self._pending.cancel()


class BayesianEstimator(BaseEstimator):
    """Base of the estimators: constraint checks, column names, sampling and seeds.

    Subclasses list their extra constraints in ``_parameter_constraints`` and call
    :meth:`_validate_params` first thing in ``fit``.
    """

    _parameter_constraints: dict[str, Any] = {}
    #: What :func:`bayesclv.storage.save` writes and :func:`bayesclv.load` restores: the
    #: fitted non-array attributes, the sub-models (attribute: class name), and the
    #: columns the customer table must have (as :func:`bayesclv.data.validate_customers`).
    _saved_state: ClassVar[tuple[str, ...]] = ()
    _saved_children: ClassVar[dict[str, str]] = {}
    _requirements: ClassVar[dict[str, bool]] = {}

    def _validate_params(self) -> None:
        constraints = {**SAMPLING_CONSTRAINTS, **self._parameter_constraints}
        for name, constraint in constraints.items():
            if not hasattr(self, name):
                continue
            value = getattr(self, name)
            if name == "target_accept" and isinstance(value, numbers.Integral):
                value = float(value)
            if not constraint.check(value):
                raise ValueError(
                    f"The {name!r} parameter of {type(self).__name__} must be "
                    f"{constraint.describe()}; got {value!r}."
                )
        for name in COLUMN_PARAMS:
            value = getattr(self, name, "")
            optional = name in ("segment_col", "entry_col")
            if not (isinstance(value, str) or (optional and value is None)):
                raise ValueError(f"The {name!r} parameter must be a column name; got {value!r}.")

    def _columns(self) -> CustomerColumns:
        return CustomerColumns(
            customer=self.customer_col, segment=self.segment_col, tenure=self.tenure_col,
            churned=self.churned_col, entry=self.entry_col,
            n_periods_active=self.n_periods_active_col, mean_spend=self.mean_spend_col,
        )

    def _remember_training_table(self, X: Any) -> None:
        """Keep a weak reference to the table being fitted, for ``save(include_data=True)``.

        Weak, so the estimator never keeps a customer table alive (or copies it); if the
        caller has dropped the table by the time of saving, ``include_data=True`` says so.
        """
        try:
            self._training_table = weakref.ref(X)
        except TypeError:
            self._training_table = None

    def __getstate__(self) -> dict[str, Any]:
        # The weak reference to the training table cannot travel (e.g. to Dask workers);
        # a copy of the estimator never saves that table anyway.
        state = dict(super().__getstate__())  # may be the instance's own __dict__
        state.pop("_training_table", None)
        return state

    def _resolve_seed(self) -> int:
        """The seed every random step of this fit derives from (drawn once if None)."""
        if self.random_seed is None:
            return int(np.random.SeedSequence().generate_state(1)[0])
        return int(self.random_seed)

    def _fit_model(self, model: pm.Model, var_names: list[str], what: str) -> xr.DataTree:
        """Sample (or optimise) ``model``; sets ``sampler_`` and ``sampling_seconds_``."""
        return self._start_sampling(model, var_names, what).result()

    def _start_sampling(self, model: pm.Model, var_names: list[str], what: str
                        ) -> FitUnderWay:
        """Start fitting ``model`` (see :func:`start_posterior`); the fit ends with its result."""
        start = time.perf_counter()
        sampler = "map" if self.method == "map" else resolve_sampler(self.sampler)
        pending = start_posterior(
            model, method=self.method, sampler=sampler, draws=self.draws, tune=self.tune,
            chains=self.chains, target_accept=float(self.target_accept),
            random_seed=self.seed_, progressbar=self.progressbar,
        )
        return FitUnderWay(self, pending, sampler, start, list(var_names), what)

    def thin(self, draws: int = 500) -> Any:
        """A copy of the fitted estimator keeping ``draws`` posterior samples.

        For scoring-only copies: ``predict`` and the other queries cost, and the saved
        file weighs, in proportion to the samples kept. Each chain keeps
        ``ceil(draws / chains)`` evenly spaced draws, so they stay as nearly independent
        as the sampler made them; the estimator itself is left as it is.

        Parameters
        ----------
        draws : int, default=500
            Posterior samples to keep over all chains: each chain keeps
            ``ceil(draws / chains)``. A posterior with no more samples is kept whole.

        Returns
        -------
        estimator
            A new fitted estimator of the same class.

        Notes
        -----
        Thinning adds Monte-Carlo error: a posterior mean estimated from ``n`` effective
        draws has a standard error of ``sd / sqrt(n)``, so keeping 500 of 4,000 nearly
        independent draws multiplies the Monte-Carlo error of every summary (means, HDI
        bounds) by about ``sqrt(4000 / 500) = 2.8``; with 500 draws it is still about 4.5%
        of a posterior sd for a mean. The summaries of ``diagnostics()`` then describe the
        kept draws. Keep the full fit for reporting intervals and for refits.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.RetentionModel(method="map", random_seed=0).fit(customers)
        >>> model.thin(100).posterior_.sizes["draw"]
        1
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "idata_")
        if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
            raise ValueError(f"draws must be an integer >= 1; got {draws!r}.")
        thinned = copy.copy(self)
        thinned.idata_ = thin_idata(self.idata_, int(draws))
        return thinned

    def save(self, path: str | os.PathLike, *, include_data: bool | pd.DataFrame = False
             ) -> Path:
        """Save the fitted estimator to netCDF (a file) or Zarr (a directory or ``*.zarr``).

        No pickle: the posterior, the sufficient statistics and a JSON config with a
        format version and a SHA-256 hash; see :func:`bayesclv.io.save` for the layout and
        :func:`bayesclv.load` to read it back.

        Parameters
        ----------
        path : str or os.PathLike
        include_data : bool or pandas.DataFrame, default=False
            ``True`` stores the table the estimator was fitted on, if the caller still
            holds it (the estimator keeps only a weak reference, never a copy); a
            DataFrame stores that table. Read back with :func:`bayesclv.io.load_data`.

        Returns
        -------
        pathlib.Path
            ``path``, for ``bayesclv.load(model.save(path))``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.RetentionModel("bdw", method="map", random_seed=0).fit(customers)
        >>> loaded = bayesclv.load(model.save(pathlib.Path(tempfile.mkdtemp()) / "m.nc"))
        >>> loaded.predict(customers).equals(model.predict(customers))
        True
        """
        return save(self, path, include_data=include_data)
