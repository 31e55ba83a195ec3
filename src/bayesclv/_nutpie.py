"""NUTS by nutpie on PyMC models whose compiled code comes from PyTensor's on-disk cache.

``nutpie.compile_pymc_model`` wraps the model's numba functions in C callbacks that numba
cannot cache (they close over the data pointers), so every process spends 10-20 s per
model compiling them again, far longer than these sufficient-statistic posteriors take
to sample. Here the log density, its gradient and the trace variables are compiled by
PyTensor's numba backend, whose functions *are* cached on disk by graph structure (the
data enter as shared variables), and handed to nutpie as Python callables through its
public ``from_pyfunc``. A warm process then builds a model in about two seconds. The
chains run in threads that take turns at the GIL for each gradient, so with as many
cores as chains PyMC's NUTS (one process per chain) is faster, and it stays the default.

The functions are deterministic and each chain's random stream comes from the seed, so
one seed gives the same draws, bit for bit, in any process.
"""

from __future__ import annotations

import importlib.util
import threading
from math import prod
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.initial_point import make_initial_point_fn
from pymc.pytensorf import compile as compile_pymc
from pytensor.graph import clone_replace

__all__ = ["nutpie_available", "sample_nutpie"]

MIN_VERSION = (0, 16)


def nutpie_available() -> bool:
    """Whether a nutpie recent enough for :func:`sample_nutpie` is installed."""
    if importlib.util.find_spec("nutpie") is None:
        return False
    import nutpie

    try:
        version = tuple(int(part) for part in nutpie.__version__.split(".")[:2])
    except ValueError:
        return False
    return version >= MIN_VERSION


def _flat_layout(model: pm.Model, point: dict[str, np.ndarray]
                 ) -> tuple[list[str], list[tuple[int, ...]], list[slice]]:
    """Names, shapes and slices of the free (unconstrained) variables in one flat vector."""
    names, shapes, slices, start = [], [], [], 0
    for rv in model.free_RVs:
        name = model.rvs_to_values[rv].name
        shape = tuple(int(n) for n in np.shape(point[name]))
        names.append(name)
        shapes.append(shape)
        slices.append(slice(start, start + prod(shape)))
        start += prod(shape)
    return names, shapes, slices


def _compile(model: pm.Model) -> Any:
    """The model as a nutpie ``PyFuncModel`` whose callables run PyTensor's numba code."""
    from nutpie.compiled_pyfunc import from_pyfunc

    # Jittered per chain from the seed nutpie passes, as PyMC's own "jitter+adapt_diag".
    initial_point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                          return_transformed=True)
    start = initial_point(0)
    names, shapes, slices = _flat_layout(model, start)
    n_dim = slices[-1].stop
    point = pt.TensorType("float64", shape=(n_dim,))(name="unconstrained_point")
    replacements = {
        model.rvs_to_values[rv]: point[where].reshape(shape).astype(rv.dtype)
        for rv, shape, where in zip(model.free_RVs, shapes, slices, strict=True)
    }
    logp = model.logp()
    gradient = pt.concatenate(
        [pt.as_tensor(g).ravel() for g in pt.grad(logp, list(replacements))]
    )
    logp, gradient = clone_replace([logp, gradient], replacements)
    # The trace holds what PyMC's own sampler stores: every free variable on its own
    # (constrained) scale and every deterministic, not the unconstrained coordinates.
    transformed = {model.rvs_to_values[rv].name for rv in model.free_RVs
                   if model.rvs_to_transforms.get(rv) is not None}
    kept = [v for v in model.unobserved_value_vars if v.name not in transformed]
    with model:
        logp_fn = compile_pymc([point], [logp, gradient], mode="NUMBA")
        expand_fn = compile_pymc([point], kept, givens=list(replacements.items()),
                                 mode="NUMBA")
    kept_start = expand_fn(np.concatenate([np.ravel(start[name]) for name in names])
                           .astype("float64"))
    kept_shapes = [np.shape(value) for value in kept_start]
    kept_dtypes = [np.asarray(value).dtype for value in kept_start]
    logp_fn.trust_input = True  # the sampler always passes a float64 vector of n_dim
    expand_fn.trust_input = True

    # nutpie calls these from one thread per chain. A PyTensor function keeps its inputs
    # and outputs in storage cells shared by all callers, and the GIL may pass between
    # threads inside a call, so one lock serialises them (numba holds the GIL while it
    # computes anyway: the lock costs no parallelism).
    lock = threading.Lock()

    def make_logp_fn():
        def logp_and_gradient(x):
            with lock:
                value, grad = logp_fn(x)
                return float(value), np.array(grad)

        return logp_and_gradient

    kept_names = [v.name for v in kept]

    def make_expand_fn(seed1, seed2, chain):
        def expand(x):
            with lock:
                return {name: np.array(value).reshape(shape)
                        for name, value, shape in zip(kept_names, expand_fn(x),
                                                      kept_shapes, strict=True)}

        return expand

    def make_initial_point(seed):
        with lock:
            values = initial_point(seed)
        return np.concatenate([np.ravel(values[name]) for name in names]).astype("float64")

    coords = {name: pd.Index(values) if values is not None else
              pd.RangeIndex(int(model.dim_lengths[name].eval()))
              for name, values in model.coords.items()}
    dims = {name: tuple(model.named_vars_to_dims[name]) for name in kept_names
            if name in model.named_vars_to_dims}
    return from_pyfunc(
        n_dim, make_logp_fn, make_expand_fn,
        expanded_dtypes=kept_dtypes,
        expanded_shapes=kept_shapes, expanded_names=kept_names,
        coords=coords, dims=dims, make_initial_point_fn=make_initial_point,
    )


def sample_nutpie(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int,
                  random_seed: int, target_accept: float, progressbar: bool) -> xr.DataTree:
    """Sample ``model`` by nutpie; a DataTree with ``posterior`` and ``sample_stats``."""
    import nutpie

    compiled = _compile(model)
    return nutpie.sample(
        compiled, draws=draws, tune=max(tune, 1), chains=chains, cores=cores,
        seed=random_seed, target_accept=target_accept, progress_bar=progressbar,
        save_warmup=False,
    )
