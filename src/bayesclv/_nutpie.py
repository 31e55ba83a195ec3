"""NUTS by nutpie on PyMC models, with compiled callbacks cached on disk.

``nutpie.compile_pymc_model`` wraps the model's numba functions in C callbacks that close
over the data pointers, so numba cannot cache them and every process spends 10-20 s per
model compiling them again, far longer than these sufficient-statistic posteriors take
to sample. Here the log density with its gradient, and the trace variables, are compiled
by PyTensor's numba backend, whose functions are cached on disk by graph structure; the
model data (statistics, prior parameters, dimension lengths) stay inputs, which the C
callbacks read through pointers in nutpie's ``user_data`` record rather than capture.
The callbacks' source then depends only on the graph's structure, so numba caches them
too, keyed by PyTensor's own hash of the graph: a warm process builds a model in about
a second and a half (almost all of it PyTensor's graph rewrites), for any table, number
of segments or periods. nutpie's Rust sampler calls them without the GIL, so its chains
run in parallel threads, without Python between two gradients.

The functions are deterministic and each chain's random stream comes from the seed, so
one seed gives the same draws, bit for bit, in any process.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from math import prod
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from numba.extending import intrinsic
from pymc.initial_point import make_initial_point_fn
from pymc.pytensorf import compile as compile_pymc
from pytensor.graph import clone_replace, rewrite_graph

__all__ = ["nutpie_available", "sample_nutpie"]

# The callbacks are handed to nutpie's CompiledPyMCModel, whose fields are not a stable
# interface across its minor releases: the supported range is pinned in the fast extra.
MIN_VERSION = (0, 16)
MAX_VERSION = (0, 16)

# Bumped whenever the generated callback source changes meaning without changing text.
_CALLBACK_VERSION = "1"


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


def _input_arrays(fn: Any) -> list[np.ndarray]:
    """The values of a compiled function's implicit (shared) inputs, C-contiguous copies."""
    arrays = []
    for shared in fn.get_shared():
        value = shared.get_value(borrow=True)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"model data {shared.name!r} is not an array: {type(value)}")
        arrays.append(np.array(value, order="C", copy=True))
    return arrays


def _unpack_source(arrays: list[np.ndarray], first: int) -> tuple[list[str], int]:
    """Source lines that rebuild ``arrays`` from addresses and shapes in ``meta[first:]``."""
    lines, at = [], first
    for i, array in enumerate(arrays):
        shape = "".join(f"meta[{at + 1 + axis}], " for axis in range(array.ndim))
        lines.append(f"    d{i} = numba.carray(voidptr_at(meta[{at}]), ({shape}), "
                     f"np.{array.dtype.type.__name__})")
        at += 1 + array.ndim
    return lines, at


def _meta(arrays: list[np.ndarray]) -> list[int]:
    return [n for array in arrays for n in (array.ctypes.data, *array.shape)]


@intrinsic
def voidptr_at(typingctx, address):
    """The integer ``address`` as a ``void*`` for ``numba.carray`` (not a captured constant)."""
    from numba.core import cgutils, types

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


_LOGP_SOURCE = """
def logp_callback(dim, x_, gradient_, logp_, user_data_):
    meta = numba.carray(user_data_, ({n_meta},), np.int64)
    if dim != meta[0]:
        return -1
{unpack}
    x = numba.carray(x_, (dim,))
    gradient = numba.carray(gradient_, (dim,))
    value, grad = function(x, {arguments})
    gradient[:] = grad
    logp_[0] = value[()]
    if not np.all(np.isfinite(gradient)):
        return 3
    if not np.isfinite(logp_[0]):
        return 4
    return 0
"""

_EXPAND_SOURCE = """
def expand_callback(dim, expanded, x_, out_, user_data_):
    meta = numba.carray(user_data_, ({n_meta},), np.int64)
    if dim != meta[0] or expanded != meta[1]:
        return -1
{unpack}
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (expanded,))
    values = function(x, {arguments})
    at = 0
{copy}
    return 0
"""


def _copy_source(ndims: list[int]) -> str:
    """Source lines that copy each output of the trace function into the flat ``out``."""
    lines = []
    for i, ndim in enumerate(ndims):
        if ndim == 0:
            lines.append(f"    out[at] = values[{i}][()]\n    at += 1")
        else:
            lines.append(f"    out[at:at + values[{i}].size] = values[{i}].ravel()\n"
                         f"    at += values[{i}].size")
    return "\n".join(lines)


def _callback(template: str, name: str, fn: Any, arrays: list[np.ndarray], first: int,
              n_meta: int, signature: Any, copy: str = "") -> Any:
    """A numba C callback calling ``fn``'s compiled graph, cached by the graph's hash."""
    import numba
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    lines, _ = _unpack_source(arrays, first)
    source = template.format(n_meta=n_meta, unpack="\n".join(lines), copy=copy,
                             arguments=", ".join(f"d{i}" for i in range(len(arrays))))
    function = fn.vm.jit_fn
    graph_key = CACHED_SRC_FUNCTIONS.get(function.py_func)
    cache_key = (None if graph_key is None else hashlib.sha256(
        f"{_CALLBACK_VERSION}\n{graph_key}\n{source}".encode()).hexdigest())
    # A cached function's environment is rebuilt from its module's name on load.
    namespace = {"__name__": __name__, "numba": numba, "np": np, "function": function,
                 "voidptr_at": voidptr_at}
    python = compile_numba_function_src(source, name, namespace, cache_key=cache_key)
    return numba.cfunc(signature, cache=cache_key is not None)(python)


def _compile(model: pm.Model) -> Any:
    """The model as a nutpie ``CompiledPyMCModel`` with callbacks cached on disk."""
    from numba import types
    from nutpie.compile_pymc import CompiledPyMCModel

    # Jittered per chain from the seed nutpie passes, as PyMC's own "jitter+adapt_diag".
    initial_point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                          return_transformed=True)
    start = initial_point(0)
    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    point = pt.vector("unconstrained_point", dtype="float64")
    replacements = _unconstrained_split(model, point)
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
    x0 = np.concatenate([np.ravel(start[name]) for name in value_names]).astype("float64")
    kept_names = [v.name for v in kept]
    kept_shapes = [np.shape(value) for value in expand_fn(x0)]
    n_expanded = sum(prod(shape) for shape in kept_shapes)
    bounds = np.cumsum([0, *(prod(shape) for shape in kept_shapes)])
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    logp_arrays, expand_arrays = _input_arrays(logp_fn), _input_arrays(expand_fn)
    n_dim = x0.size
    meta = np.array([n_dim, n_expanded, *_meta(logp_arrays), *_meta(expand_arrays)],
                    dtype=np.int64)
    _, expand_first = _unpack_source(logp_arrays, 2)
    double = types.CPointer(types.double)
    logp_callback = _callback(
        _LOGP_SOURCE, "logp_callback", logp_fn, logp_arrays, 2, meta.size,
        types.int64(types.uint64, double, double, double, types.voidptr))
    expand_callback = _callback(
        _EXPAND_SOURCE, "expand_callback", expand_fn, expand_arrays, expand_first,
        meta.size, types.int64(types.uint64, types.uint64, double, double, types.voidptr),
        copy=_copy_source([v.ndim for v in kept]))

    # nutpie asks for initial points from the chains' threads; PyTensor functions keep
    # their inputs and outputs in storage cells shared by all callers.
    lock = threading.Lock()

    def make_initial_point(seed):
        with lock:
            values = initial_point(seed)
        return np.concatenate([np.ravel(values[name]) for name in value_names]
                              ).astype("float64")

    coords = {name: pd.Index(values) if values is not None else
              pd.RangeIndex(int(model.dim_lengths[name].eval()))
              for name, values in model.coords.items()}
    dims = {name: tuple(model.named_vars_to_dims[name]) for name in kept_names
            if name in model.named_vars_to_dims}
    data = {f"{i}": array for i, array in enumerate(logp_arrays + expand_arrays)}
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes=dict(zip(kept_names, kept_shapes, strict=True)),
        compiled_logp_func=logp_callback, compiled_expand_func=expand_callback,
        initial_point_func=make_initial_point,
        # Kept alive with the model: the callbacks read them through ``meta``.
        shared_data=data, shared_var_keys={}, user_data=meta,
        n_expanded=n_expanded,
        shape_info=(kept_names, slices, kept_shapes),
        logp_func=logp_fn, expand_func=expand_fn, reparameterized_names=[],
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
