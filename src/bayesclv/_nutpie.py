"""NUTS by nutpie on PyMC models, through C callbacks cached on disk.

``nutpie.compile_pymc_model`` wraps the model's numba functions in C callbacks that close
over the data pointers, so numba cannot cache them and every process spends 10-20 s per
model compiling them again, far longer than these sufficient-statistic posteriors take
to sample. Here the model is handed to nutpie as the callbacks of
:func:`bayesclv._flat.flat_model`, which read the model data through pointers and are
cached by structure. nutpie's Rust sampler calls them without the GIL, so its chains run
in parallel threads, with no Python between two gradients.

:func:`start_nutpie` returns as soon as the chains are started, so the process can build
its next model while they sample; :meth:`NutpieRun.result` waits for them. nutpie stores
the unconstrained points; the trace variables are computed from them once sampling is
done (:meth:`bayesclv._flat.FlatModel.posterior`). The callbacks are
deterministic and each chain's random stream comes from the seed, so one seed gives the
same draws, bit for bit, in any process.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pymc as pm
import xarray as xr

from bayesclv._flat import FlatModel, flat_model

__all__ = ["NutpieRun", "nutpie_available", "nutpie_model", "start_nutpie"]

# The callbacks are handed to nutpie's CompiledPyMCModel, whose fields are not a stable
# interface across its minor releases: the supported range is pinned in the fast extra.
MIN_VERSION = (0, 16)
MAX_VERSION = (0, 16)


def nutpie_available() -> bool:
    """Whether a nutpie that :func:`start_nutpie` supports is installed."""
    if importlib.util.find_spec("nutpie") is None:
        return False
    import nutpie

    try:
        version = tuple(int(part) for part in nutpie.__version__.split(".")[:2])
    except ValueError:
        return False
    return MIN_VERSION <= version <= MAX_VERSION


# The one variable nutpie stores: the unconstrained point of each draw.
_POINT = "unconstrained_point"


def _compile(flat: FlatModel) -> Any:
    """The flat model as a nutpie ``CompiledPyMCModel`` storing the unconstrained points."""
    from nutpie.compile_pymc import CompiledPyMCModel

    callbacks = flat.callbacks
    return CompiledPyMCModel(
        _n_dim=flat.n_dim, dims={}, _coords={}, _shapes={_POINT: (flat.n_dim,)},
        compiled_logp_func=callbacks.logp, compiled_expand_func=callbacks.expand,
        initial_point_func=flat.initial_point,
        # Kept alive with the model: the callbacks read them through ``user_data``.
        shared_data={f"{i}": array for i, array in enumerate(callbacks.arrays)},
        shared_var_keys={}, user_data=callbacks.meta, n_expanded=flat.n_dim,
        shape_info=([_POINT], [slice(0, flat.n_dim)], [(flat.n_dim,)]),
        logp_func=None, expand_func=None, reparameterized_names=[],
    )


def nutpie_model(model: pm.Model) -> FlatModel:
    """``model`` as nutpie samples it: its log density compiled, or loaded from the cache."""
    # Jittered per chain from the seed nutpie passes, as PyMC's own "jitter+adapt_diag".
    return flat_model(model, jitter=True)


class NutpieRun:
    """Sampling under way in nutpie's threads; :meth:`result` waits for it and converts it.

    nutpie's chains run in Rust threads that hold no Python lock, so the process can do
    other Python work (build and compile another model, say) while they sample.
    """

    def __init__(self, flat: FlatModel, sampler: Any) -> None:
        self._flat, self._sampler = flat, sampler

    def result(self) -> xr.DataTree:
        """The posterior and sample statistics, once every chain has finished."""
        try:
            tree = self._sampler.wait()
        except BaseException:  # an interrupt, say: the chains stop with it
            self.cancel()
            raise
        stored = tree["posterior"].to_dataset()
        posterior = self._flat.posterior(stored[_POINT].values).assign_coords(
            chain=stored["chain"].values, draw=stored["draw"].values)
        posterior.attrs = stored.attrs
        # Divergence messages are Python strings (or None) per draw: no numeric array to
        # save or check. Where each divergence happened stays (``divergence_draw``, energy).
        stats = tree["sample_stats"].to_dataset()
        text = [name for name, values in stats.data_vars.items() if values.dtype == object]
        return tree.assign(posterior=xr.DataTree(posterior),
                           sample_stats=xr.DataTree(stats.drop_vars(text)))

    def cancel(self) -> None:
        """Stop the chains and discard what they drew."""
        self._sampler.cancel()


def start_nutpie(model: pm.Model, *, draws: int, tune: int, chains: int, cores: int,
                 random_seed: int, target_accept: float, progressbar: bool) -> NutpieRun:
    """Compile (or load) ``model`` and start sampling it by nutpie; returns at once."""
    import nutpie

    flat = nutpie_model(model)
    sampler = nutpie.sample(
        _compile(flat), draws=draws, tune=max(tune, 1), chains=chains, cores=cores,
        seed=random_seed, target_accept=target_accept, progress_bar=progressbar,
        save_warmup=False, blocking=False,
    )
    return NutpieRun(flat, sampler)

