"""NUTS by nutpie on PyMC models, through C callbacks cached on disk.

``nutpie.compile_pymc_model`` wraps the model's numba functions in C callbacks that close
over the data pointers, so numba cannot cache them and every process spends 10-20 s per
model compiling them again, far longer than these sufficient-statistic posteriors take
to sample. Here the model is handed to nutpie as the callbacks of
:func:`bayesclv._flat.flat_model`, which read the model data through pointers and are
cached by structure. nutpie's Rust sampler calls them without the GIL, so its chains run
in parallel threads, with no Python between two gradients.

The callbacks are deterministic and each chain's random stream comes from the seed, so
one seed gives the same draws, bit for bit, in any process.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pymc as pm
import xarray as xr

from bayesclv._flat import flat_model

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


def _compile(model: pm.Model) -> Any:
    """The model as a nutpie ``CompiledPyMCModel`` with callbacks cached on disk."""
    from nutpie.compile_pymc import CompiledPyMCModel

    # Jittered per chain from the seed nutpie passes, as PyMC's own "jitter+adapt_diag".
    flat = flat_model(model, jitter=True)
    callbacks, slices = flat.callbacks, flat.trace_slices
    return CompiledPyMCModel(
        _n_dim=flat.n_dim, dims=flat.dims, _coords=flat.coords,
        _shapes=dict(zip(flat.trace_names, callbacks.shapes, strict=True)),
        compiled_logp_func=callbacks.logp, compiled_expand_func=callbacks.expand,
        initial_point_func=flat.initial_point,
        # Kept alive with the model: the callbacks read them through ``user_data``.
        shared_data={f"{i}": array for i, array in enumerate(callbacks.arrays)},
        shared_var_keys={}, user_data=callbacks.meta, n_expanded=flat.n_expanded,
        shape_info=(flat.trace_names, slices, list(callbacks.shapes)),
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
