"""A PyMC model as C callbacks on one flat vector of its unconstrained parameters.

Both ways of fitting a model without PyMC's own machinery start here: nutpie's NUTS
(:mod:`bayesclv._nutpie`) and the MAP optimiser (:mod:`bayesclv._map`). The model's log
density and its gradient are written on one flat unconstrained point whose slices have
symbolic lengths, and compiled by :mod:`bayesclv._callbacks`, which caches them by the
graph's structure: a warm process builds a model without compiling or rewriting, for
any table, number of segments or periods.

Both compile the density NUTS samples, with the Jacobians of the transforms to the
unconstrained space, so one compiled structure serves a model however it is fitted (and
what :mod:`bayesclv.estimator._background` compiles serves a MAP fit). The MAP
optimiser's density, without the Jacobians, is that density less the log-Jacobians, a
few terms of the unconstrained point alone (the log of a scale, the diagonal of a packed
Cholesky factor) computed by PyTensor's Python implementations, which compile nothing.

The trace variables (every free variable on its own scale and every deterministic) are
computed once sampling is done, from the stored points, all draws at once: the graph is
vectorised over the draws and run by PyTensor's Python implementations, without rewrites.
That compiles nothing (a compiled trace took 5-6 s per model with an empty cache) and
costs a tenth of a second for 4,000 draws.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc.initial_point import make_initial_point_fn
from pymc.pytensorf import compile as compile_pymc
from pytensor.compile.builders import OpFromGraph
from pytensor.compile.mode import Mode
from pytensor.compile.ops import ViewOp
from pytensor.compile.rewriting import inline_ofg_node
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph import clone_replace, rewrite_graph
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import graph_replace, vectorize_graph

from bayesclv._callbacks import Callbacks, compile_callbacks

__all__ = ["FlatModel", "flat_model"]

_DOUBLE_P = ctypes.POINTER(ctypes.c_double)


# Points run through the trace graph at a time: bounds its intermediate arrays.
_TRACE_CHUNK = 1024


@dataclass(frozen=True)
class FlatModel:
    """A model's compiled log density and what it takes to read its flat points.

    Attributes
    ----------
    callbacks : Callbacks
        The log density with its gradient as a C function, and the expansion nutpie
        stores (the point itself).
    trace_names : list of str
        The trace variables, in the order ``trace`` returns them.
    trace : callable
        ``trace(points)``: the trace variables at ``points`` of shape (n, n_dim), each
        an array of shape (n, *variable's shape).
    initial_point : callable
        ``initial_point(seed)``: the model's starting point on the flat unconstrained
        scale, jittered from ``seed`` when the model was flattened with ``jitter=True``
        (without jitter, the same point for every seed).
    coords : dict
        The model's coordinates, each a :class:`pandas.Index`.
    dims : dict
        The dimensions of every trace variable that has them.
    log_jacobian : callable or None
        ``log_jacobian(point)``: the log-Jacobians of the transforms at ``point`` and
        their gradient, subtracted from the compiled density by :meth:`logp`; None when
        the density keeps them (the density NUTS samples).
    """

    callbacks: Callbacks
    trace_names: list[str]
    trace: Callable[[np.ndarray], list[np.ndarray]]
    initial_point: Callable[[int], np.ndarray]
    coords: dict[str, pd.Index]
    dims: dict[str, tuple[str, ...]]
    log_jacobian: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None

    @property
    def n_dim(self) -> int:
        """Length of the unconstrained point."""
        return int(self.callbacks.meta[0])

    def logp(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        """The log density and its gradient at ``point`` (non-finite values as they are)."""
        point = np.ascontiguousarray(point, dtype=np.float64)
        gradient, value = np.empty(point.size), np.empty(1)
        code = self.callbacks.logp.ctypes(
            point.size, point.ctypes.data_as(_DOUBLE_P), gradient.ctypes.data_as(_DOUBLE_P),
            value.ctypes.data_as(_DOUBLE_P), self.callbacks.meta.ctypes.data)
        if code not in (0, 3, 4):  # 3, 4: a non-finite gradient or value, returned as is
            raise ValueError(f"a point of length {point.size} for a model of {self.n_dim}")
        if self.log_jacobian is None:
            return float(value[0]), gradient
        jacobian, jacobian_gradient = self.log_jacobian(point)
        return float(value[0]) - jacobian, gradient - jacobian_gradient

    def posterior(self, points: np.ndarray) -> xr.Dataset:
        """The trace variables at ``points`` (chain, draw, n_dim), as a posterior.

        A single point of shape (n_dim,) gives a posterior of one chain and one draw.
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1:
            points = points[None, None]
        if points.ndim != 3 or points.shape[2] != self.n_dim:
            raise ValueError(f"points of shape {points.shape} for a model of {self.n_dim}")
        n_chains, n_draws = points.shape[:2]
        values = self.trace(points.reshape(n_chains * n_draws, self.n_dim))
        variables = {}
        coords = {"chain": np.arange(n_chains), "draw": np.arange(n_draws)}
        for name, value in zip(self.trace_names, values, strict=True):
            shape = value.shape[1:]
            dims = self.dims.get(name) or tuple(f"{name}_dim_{i}" for i in range(len(shape)))
            for dim, length in zip(dims, shape, strict=True):
                # Labels as numpy arrays, as PyMC stores them (not pandas' string dtype).
                coords.setdefault(dim, np.array(list(self.coords[dim])) if dim in self.coords
                                  else np.arange(length))
            variables[name] = (("chain", "draw", *dims), value.reshape(n_chains, n_draws,
                                                                        *shape))
        return xr.Dataset(variables, coords=coords)


def _trace_function(point: pt.TensorVariable, kept: list[pt.TensorVariable]
                    ) -> Callable[[np.ndarray], list[np.ndarray]]:
    """The values of ``kept`` at many points at once: (n, n_dim) -> each (n, *shape)."""
    points = pt.matrix("unconstrained_points", dtype="float64")
    outputs = vectorize_graph(_batchable(kept), {point: points})
    # PyTensor's Python implementations without rewrites: nothing to compile, and numpy
    # over all draws at once is fast enough for the few small arrays a trace holds.
    # Without a C compiler: a Blockwise node (a vectorised solve, say) compiles its core
    # function when the function is made, and PyTensor's C backend would probe the
    # compiler and its flags in a subprocess the first time in a process (~0.3 s).
    with pytensor.config.change_flags(cxx=""):
        function = pytensor.function([points], outputs, mode=Mode(linker="py", optimizer=None),
                                     on_unused_input="ignore")

    def trace(values: np.ndarray) -> list[np.ndarray]:
        parts = [function(values[start:start + _TRACE_CHUNK])
                 for start in range(0, len(values), _TRACE_CHUNK)] or [function(values)]
        out = []
        for i, var in enumerate(kept):
            chunks = [np.asarray(part[i]) for part in parts]
            if outputs[i].ndim == var.ndim:  # does not depend on the point
                chunks = [np.broadcast_to(chunk, (len(values), *chunk.shape))
                          for chunk in chunks[:1]]
            out.append(np.concatenate(chunks) if len(chunks) > 1 else np.array(chunks[0]))
        return out

    return trace


def _batchable(outputs: list[pt.TensorVariable]) -> list[pt.TensorVariable]:
    """``outputs`` without the nodes that have no batched form, in terms of what they compute.

    Vectorised over the draws, a node with no batched form runs once per draw in Python:
    PyMC's views around deterministics are replaced by what they view, and a graph
    wrapped as one ``OpFromGraph`` (``pt.diag`` of the population's scales, say) by its
    inner graph.
    """
    graph = FunctionGraph(outputs=outputs, clone=True, copy_inputs=False)
    while True:  # again after each replacement: an inner graph may hold more of them
        node = next((node for node in graph.toposort()
                     if type(node.op) is ViewOp or isinstance(node.op, OpFromGraph)), None)
        if node is None:
            return list(graph.outputs)
        if type(node.op) is ViewOp:
            graph.replace_all(zip(node.outputs, node.inputs, strict=True))
        else:
            graph.replace_all(zip(node.outputs, inline_ofg_node(node), strict=True))


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


def _log_jacobian_function(model: pm.Model, point: pt.TensorVariable,
                           replacements: dict[pt.TensorVariable, pt.TensorVariable]
                           ) -> Callable[[np.ndarray], tuple[float, np.ndarray]] | None:
    """The sum of the transforms' log-Jacobians at a flat point, and its gradient.

    What ``model.logp(jacobian=True)`` adds to ``model.logp(jacobian=False)``: each
    transformed free variable's ``log_jac_det`` at its value, summed (PyMC adds the same
    terms, element by element, to the variable's log density). None when no free
    variable is transformed.
    """
    terms = []
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            value = model.rvs_to_values[rv]
            terms.append(pt.sum(transform.log_jac_det(value, *rv.owner.inputs)))
    if not terms:
        return None
    total = graph_replace(model.replace_rvs_by_values([sum(terms)])[0], replacements,
                          strict=False)
    gradient = pytensor.grad(total, point)
    # A few small terms: PyTensor's Python implementations, without rewrites, compile
    # nothing; an evaluation costs under a millisecond, seconds less than compiling.
    with pytensor.config.change_flags(cxx=""):
        function = pytensor.function([point], [total, gradient],
                                     mode=Mode(linker="py", optimizer=None),
                                     on_unused_input="ignore")

    def log_jacobian(values: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = function(values)
        return float(value), np.asarray(gradient, dtype=np.float64)

    return log_jacobian


def _dim_length(model: pm.Model, dim: str) -> int:
    length = model.dim_lengths[dim]
    return int(length.get_value() if isinstance(length, SharedVariable) else length.eval())


def flat_model(model: pm.Model, *, jacobian: bool = True, jitter: bool = True) -> FlatModel:
    """``model``'s log density as a C callback on its flat unconstrained point, and its trace.

    The callback is cached by the graph's structure; the trace function compiles nothing.

    Parameters
    ----------
    model : pymc.Model
    jacobian : bool, default=True
        Whether the log density includes the Jacobians of the transforms to the
        unconstrained space: the density NUTS samples. Without them, its maximum is the
        mode of the posterior density of the parameters on their own scale (MAP); the
        compiled density is the same either way, the log-Jacobians are subtracted.
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
    # to be the variables the gradient is taken with respect to. Always with the
    # Jacobians: one compiled structure for NUTS and MAP (see the module's docstring).
    logp = graph_replace(model.logp(jacobian=True), replacements, strict=False)

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

    # The gradient is taken with respect to each variable's slice of the point.
    callbacks = compile_callbacks(point, logp, list(replacements.values()), x0.size,
                                  compile_numba)
    log_jacobian = None if jacobian else _log_jacobian_function(model, point, replacements)
    coords = {name: pd.Index(values) if values is not None else
              pd.RangeIndex(_dim_length(model, name))
              for name, values in model.coords.items()}
    dims = {name: tuple(model.named_vars_to_dims[name]) for name in kept_names
            if name in model.named_vars_to_dims}
    return FlatModel(callbacks, kept_names, _trace_function(point, kept), flat_initial_point,
                     coords, dims, log_jacobian)
