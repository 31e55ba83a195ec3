"""A PyMC model as C callbacks on one flat vector of its unconstrained parameters.

Both ways of fitting a model without PyMC's own machinery start here: nutpie's NUTS
(:mod:`bayesclv._nutpie`) and the MAP optimiser (:mod:`bayesclv._map`). The model's log
density, its gradient and its trace variables (every free variable on its own scale and
every deterministic) are written on one flat unconstrained point whose slices have
symbolic lengths, and compiled by :mod:`bayesclv._callbacks`, which caches them by the
graph's structure: a warm process builds a model without compiling or rewriting, for
any table, number of segments or periods.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from math import prod

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
from pytensor.graph.replace import graph_replace

from bayesclv._callbacks import Callbacks, compile_callbacks

__all__ = ["FlatModel", "flat_model"]

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


@dataclass(frozen=True)
class FlatModel:
    """A model's compiled callbacks and what it takes to read their flat vectors.

    Attributes
    ----------
    callbacks : Callbacks
        The log density with its gradient, and the trace, as C functions.
    trace_names : list of str
        The trace variables, in the order of the expanded vector.
    initial_point : callable
        ``initial_point(seed)``: the model's starting point on the flat unconstrained
        scale, jittered from ``seed`` when the model was flattened with ``jitter=True``
        (without jitter, the same point for every seed).
    coords : dict
        The model's coordinates, each a :class:`pandas.Index`.
    dims : dict
        The dimensions of every trace variable that has them.
    """

    callbacks: Callbacks
    trace_names: list[str]
    initial_point: Callable[[int], np.ndarray]
    coords: dict[str, pd.Index]
    dims: dict[str, tuple[str, ...]]

    @property
    def n_dim(self) -> int:
        """Length of the unconstrained point."""
        return int(self.callbacks.meta[0])

    @property
    def n_expanded(self) -> int:
        """Length of the expanded vector: every trace variable, flattened."""
        return int(self.callbacks.meta[1])

    @property
    def trace_slices(self) -> list[slice]:
        """Where each trace variable lies in the expanded vector."""
        bounds = np.cumsum([0, *(prod(shape) for shape in self.callbacks.shapes)])
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def logp(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        """The log density and its gradient at ``point`` (non-finite values as they are)."""
        point = np.ascontiguousarray(point, dtype=np.float64)
        gradient, value = np.empty(point.size), np.empty(1)
        code = self.callbacks.logp.ctypes(
            point.size, point.ctypes.data_as(_DOUBLE_P), gradient.ctypes.data_as(_DOUBLE_P),
            value.ctypes.data_as(_DOUBLE_P), self.callbacks.meta.ctypes.data)
        if code not in (0, 3, 4):  # 3, 4: a non-finite gradient or value, returned as is
            raise ValueError(f"a point of length {point.size} for a model of {self.n_dim}")
        return float(value[0]), gradient

    def posterior(self, point: np.ndarray) -> xr.Dataset:
        """The trace variables at ``point``, as a posterior of one chain and one draw."""
        point = np.ascontiguousarray(point, dtype=np.float64)
        out = np.empty(self.n_expanded)
        code = self.callbacks.expand.ctypes(
            point.size, out.size, point.ctypes.data_as(_DOUBLE_P),
            out.ctypes.data_as(_DOUBLE_P), self.callbacks.meta.ctypes.data)
        if code != 0:
            raise ValueError(f"a point of length {point.size} for a model of {self.n_dim}")
        variables, coords = {}, {"chain": [0], "draw": [0]}
        for name, where, shape in zip(self.trace_names, self.trace_slices,
                                      self.callbacks.shapes, strict=True):
            dims = self.dims.get(name) or tuple(f"{name}_dim_{i}" for i in range(len(shape)))
            for dim, length in zip(dims, shape, strict=True):
                # Labels as numpy arrays, as PyMC stores them (not pandas' string dtype).
                coords.setdefault(dim, np.array(list(self.coords[dim])) if dim in self.coords
                                  else np.arange(length))
            variables[name] = (("chain", "draw", *dims), out[where].reshape(1, 1, *shape))
        return xr.Dataset(variables, coords=coords)


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


def flat_model(model: pm.Model, *, jacobian: bool = True, jitter: bool = True) -> FlatModel:
    """``model`` as C callbacks on its flat unconstrained point, cached by structure.

    Parameters
    ----------
    model : pymc.Model
    jacobian : bool, default=True
        Whether the log density includes the Jacobians of the transforms to the
        unconstrained space: the density NUTS samples. Without them, its maximum is the
        mode of the posterior density of the parameters on their own scale (MAP).
    jitter : bool, default=True
        Whether starting points are jittered from the seed, as PyMC's "jitter+adapt_diag".
    """
    # Python thunks: the function runs once per chain, and looking its C code up in
    # PyTensor's compile cache would take longer than that.
    with pytensor.config.change_flags(cxx=""):
        initial_point = make_initial_point_fn(
            model=model, jitter_rvs=set(model.free_RVs) if jitter else set(),
            return_transformed=True)
    value_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    # nutpie asks for initial points from the chains' threads; PyTensor functions keep
    # their inputs and outputs in storage cells shared by all callers.
    lock = threading.Lock()

    def flat_initial_point(seed: int) -> np.ndarray:
        with lock:
            values = initial_point(seed)
        return np.concatenate([np.ravel(values[name]) for name in value_names]
                              ).astype("float64")

    point = pt.vector("unconstrained_point", dtype="float64")
    replacements = _unconstrained_split(model, point)
    # graph_replace, not clone_replace: the slices must stay in the graph as they are,
    # to be the variables the gradient is taken with respect to.
    logp = graph_replace(model.logp(jacobian=jacobian), replacements, strict=False)

    def gradient() -> pt.TensorVariable:
        # Built only when the structure is not in the callbacks' index: the symbolic
        # gradient is most of the graph, and a second's work in Python to build. Taken
        # with respect to each variable's slice of the point, on the very graph of
        # ``logp``, so that the compiled function evaluates the density once.
        parts = pt.grad(logp, list(replacements.values()))
        return pt.concatenate([pt.as_tensor(g).ravel() for g in parts])

    # The trace holds what PyMC's own sampler stores: every free variable on its own
    # (constrained) scale and every deterministic, not the unconstrained coordinates.
    transformed = {model.rvs_to_values[rv].name for rv in model.free_RVs
                   if model.rvs_to_transforms.get(rv) is not None}
    kept = [v for v in model.unobserved_value_vars if v.name not in transformed]
    kept_names = [v.name for v in kept]
    kept = clone_replace(kept, replacements)
    x0 = flat_initial_point(0)

    def compile_numba(inputs, outputs):
        with model:
            return compile_pymc(inputs, outputs, mode="NUMBA")

    callbacks = compile_callbacks(point, logp, gradient, kept, x0,
                                  _trace_shapes(model, kept, kept_names), compile_numba)
    coords = {name: pd.Index(values) if values is not None else
              pd.RangeIndex(_dim_length(model, name))
              for name, values in model.coords.items()}
    dims = {name: tuple(model.named_vars_to_dims[name]) for name in kept_names
            if name in model.named_vars_to_dims}
    return FlatModel(callbacks, kept_names, flat_initial_point, coords, dims)
