"""The MAP point of a PyMC model, by L-BFGS-B on C callbacks cached on disk.

What :func:`pymc.find_MAP` computes (the mode of the posterior density of the parameters
on their own scale, found by scipy's L-BFGS-B in the unconstrained space from the
model's initial point) on the callbacks of :func:`bayesclv._flat.flat_model`: a warm
process builds the model without compiling or rewriting any graph, where PyMC's
``find_MAP`` rewrites and compiles three functions each time, seconds for a model that
is optimised in milliseconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import xarray as xr
from scipy import optimize

from bayesclv._flat import flat_model

__all__ = ["find_map"]


def find_map(model: pm.Model) -> xr.DataTree:
    """The MAP point of ``model`` as a posterior of one chain and one draw.

    The tree also holds the optimiser's report (``optimizer_result``: its message,
    iterations, evaluations and the log density reached). A run that stops without
    scipy's convergence criterion warns, as :func:`pymc.find_MAP` does, and so does one
    that ends where the density is not finite.
    """
    # Without the transforms' Jacobians: the mode on the parameters' own scale.
    flat = flat_model(model, jacobian=False, jitter=False)
    start = flat.initial_point(0)
    value, _ = flat.logp(start)
    if not np.isfinite(value):
        model.check_start_vals(model.initial_point())  # names the variable at fault
        raise ValueError(f"the log density is {value} at the model's initial point")

    def negative_logp(point: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = flat.logp(point)
        return -value, -gradient

    result = optimize.minimize(negative_logp, start, jac=True, method="L-BFGS-B")
    # scipy calls a run that ended at an infinite density converged: it is not.
    converged = bool(result.success) and bool(np.isfinite(result.fun))
    if not converged:
        warnings.warn(f"The optimizer did not converge: {result.message} (log density "
                      f"{-float(result.fun)}); the MAP point "
                      "may not be the posterior's mode (method='nuts' samples the "
                      "whole posterior)", UserWarning, stacklevel=2)
    posterior = flat.posterior(result.x)
    posterior.attrs["method"] = "map"
    report = xr.Dataset({
        "message": str(result.message), "success": converged,
        "nit": int(result.nit), "nfev": int(result.nfev), "logp": -float(result.fun),
    })
    return xr.DataTree.from_dict({"posterior": posterior, "optimizer_result": report})
