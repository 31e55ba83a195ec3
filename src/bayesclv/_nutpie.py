"""NUTS by nutpie on PyMC models, through C callbacks cached on disk.

``nutpie.compile_pymc_model`` wraps the model's numba functions in C callbacks that close
over the data pointers, so numba cannot cache them and every process spends 10-20 s per
model compiling them again, far longer than these sufficient-statistic posteriors take
to sample. Here the model's log density, its gradient and its trace variables are
written on one flat unconstrained point whose slices have symbolic lengths, and handed
to :mod:`bayesclv._callbacks`, whose callbacks read the model data through pointers and
are cached by structure: a warm process builds a model without compiling or rewriting,
for any table, number of segments or periods. nutpie's Rust sampler calls them without
the GIL, so its chains run in parallel threads, with no Python between two gradients.

The callbacks are deterministic and each chain's random stream comes from the seed, so
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
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc.initial_point import make_initial_point_fn
from pymc.pytensorf import compile as compile_pymc
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph import clone_replace, rewrite_graph

from bayesclv._callbacks import compile_callbacks

__all__ = ["nutpie_available", "sample_nutpie"]

# The callbacks are handed to nutpie's CompiledPyMCModel, whose fields are not a stable
# interface across its minor releases: the supported range is pinned in the fast extra.
MIN_VERSION = (0, 16)
MAX_VERSION = (0, 16)


def nutpie_available() -> bool:
    """Whether a nutpie that :func:`sample_nutpie` supports is installed."""
    if importlib.util.find_spec("nutpie") is None:
        return False
    import nutpie

    try:
        version = tuple(int(part) for part in nutpie.__version__.split(".")[:2])
    except ValueError:
        return False
    return MIN_VERSION <= version <= MAX_VERSION


def _unconstrained_split(model: pm.Model, point: pt.TensorVariable
                         ) -> dict[pt.TensorVariable, pt.TensorVariable]:
    """Each free variable's value as a symbolic slice of one flat vector ``point``.

    The slices' lengths are symbolic (from the model's dimension lengths), not numbers,
    so the compiled graph is the same for any number of segments or periods.
    """
    replacements, start = {}, pt.constant(0, dtype="int64")
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        shape = (rv.shape if transform is None
                 else transform.forward(rv, *rv.owner.inputs).shape)
        # Infer the shape from the model's dimensions, without the random variable itself
        # (whose generator would otherwise become an input of the compiled functions).
        shape = rewrite_graph(pt.as_tensor(shape), include=("ShapeOpt", "canonicalize"))
        stop = start + pt.prod(shape).astype("int64")
        replacements[value] = point[start:stop].reshape(shape, ndim=value.ndim).astype(
            value.dtype)
        start = stop
    return replacements


def _dim_length(model: pm.Model, dim: str) -> int:
    length = model.dim_lengths[dim]
    return int(length.get_value() if isinstance(length, SharedVariable) else length.eval())


def _trace_shapes(model: pm.Model, kept: list[pt.TensorVariable], names: list[str]
                  ) -> list[tuple[int, ...]] | None:
    """The trace variables' shapes from their dimensions or static types; None if unknown."""
    shapes = []
    for var, name in zip(kept, names, strict=True):
        dims = model.named_vars_to_dims.get(name)
        if dims is not None and None not in dims and len(dims) == var.ndim:
            shapes.append(tuple(_dim_length(model, dim) for dim in dims))
        elif None not in var.type.shape:
            shapes.append(tuple(int(n) for n in var.type.shape))
        else:
            return None
    return shapes


def _compile(model: pm.Model) -> Any:
    """The model as a nutpie ``CompiledPyMCModel`` with callbacks cached on disk."""
    from nutpie.compile_pymc import CompiledPyMCModel

    # Jittered per chain from the seed nutpie passes, as PyMC's own "jitter+adapt_diag".
    # Python thunks: the function runs once per chain, and looking its C code up in
    # PyTensor's compile cache would take longer than that.
    with pytensor.config.change_flags(cxx=""):
        initial_point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                              return_transformed=True)
    start = initial_point(0)
    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    point = pt.vector("unconstrained_point", dtype="float64")
    replacements = _unconstrained_split(model, point)
    model_logp = model.logp()
    logp = clone_replace(model_logp, replacements)

    def gradient() -> pt.TensorVariable:
        # Built only when the structure is not in the callbacks' index: the symbolic
        # gradient is most of the graph, and a second's work in Python to build.
        parts = pt.grad(model_logp, list(replacements))
        return clone_replace(pt.concatenate([pt.as_tensor(g).ravel() for g in parts]),
                             replacements)

    # The trace holds what PyMC's own sampler stores: every free variable on its own
    # (constrained) scale and every deterministic, not the unconstrained coordinates.
    transformed = {model.rvs_to_values[rv].name for rv in model.free_RVs
                   if model.rvs_to_transforms.get(rv) is not None}
    kept = [v for v in model.unobserved_value_vars if v.name not in transformed]
    kept_names = [v.name for v in kept]
    kept = clone_replace(kept, replacements)
    x0 = np.concatenate([np.ravel(start[name]) for name in value_names]).astype("float64")

    def compile_numba(inputs, outputs):
        with model:
            return compile_pymc(inputs, outputs, mode="NUMBA")

    callbacks = compile_callbacks(point, logp, gradient, kept, x0,
                                  _trace_shapes(model, kept, kept_names), compile_numba)
    bounds = np.cumsum([0, *(prod(shape) for shape in callbacks.shapes)])
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    # nutpie asks for initial points from the chains' threads; PyTensor functions keep
    # their inputs and outputs in storage cells shared by all callers.
    lock = threading.Lock()

    def make_initial_point(seed):
        with lock:
            values = initial_point(seed)
        return np.concatenate([np.ravel(values[name]) for name in value_names]
                              ).astype("float64")

    coords = {name: pd.Index(values) if values is not None else
              pd.RangeIndex(_dim_length(model, name))
              for name, values in model.coords.items()}
    dims = {name: tuple(model.named_vars_to_dims[name]) for name in kept_names
            if name in model.named_vars_to_dims}
    return CompiledPyMCModel(
        _n_dim=x0.size, dims=dims, _coords=coords,
        _shapes=dict(zip(kept_names, callbacks.shapes, strict=True)),
        compiled_logp_func=callbacks.logp, compiled_expand_func=callbacks.expand,
        initial_point_func=make_initial_point,
        # Kept alive with the model: the callbacks read them through ``user_data``.
        shared_data={f"{i}": array for i, array in enumerate(callbacks.arrays)},
        shared_var_keys={}, user_data=callbacks.meta, n_expanded=int(bounds[-1]),
        shape_info=(kept_names, slices, list(callbacks.shapes)),
        logp_func=None, expand_func=None, reparameterized_names=[],
    )


def sample_nutpie(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int,
                  random_seed: int, target_accept: float, progressbar: bool) -> xr.DataTree:
    """Sample ``model`` by nutpie; a DataTree with ``posterior`` and ``sample_stats``."""
    import nutpie

    compiled = _compile(model)
    tree = nutpie.sample(
        compiled, draws=draws, tune=max(tune, 1), chains=chains, cores=cores,
        seed=random_seed, target_accept=target_accept, progress_bar=progressbar,
        save_warmup=False,
    )
    # Divergence messages are Python strings (or None) per draw: no numeric array to
    # save or check. Where each divergence happened stays (``divergence_draw``, energy).
    stats = tree["sample_stats"].to_dataset()
    text = [name for name, values in stats.data_vars.items() if values.dtype == object]
    return tree.assign(sample_stats=xr.DataTree(stats.drop_vars(text)))
