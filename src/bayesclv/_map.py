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
from collections.abc import Callable

import numpy as np
import pymc as pm
import xarray as xr
from scipy import optimize

from bayesclv._flat import flat_model

__all__ = ["find_map"]

# Runs of the optimiser after the first, each after a line search that left the density's
# support.
_RESTARTS = 50


def find_map(model: pm.Model) -> xr.DataTree:
    """The MAP point of ``model`` as a posterior of one chain and one draw.

    The tree also holds the optimiser's report (``optimizer_result``: its message,
    iterations, evaluations and the log density reached). A run that stops without
    scipy's convergence criterion warns, as :func:`pymc.find_MAP` does, and so does one
    that ends where the density is not finite. Where a line search steps outside the
    density's support (a non-finite value), the optimiser is restarted from the last
    point inside; iterations and evaluations are those of all its runs.
    """
    # Without the transforms' Jacobians: the mode on the parameters' own scale.
    flat = flat_model(model, jacobian=False, jitter=False)
    start = flat.initial_point(0)
    value, _ = flat.logp(start)
    if not np.isfinite(value):
        model.check_start_vals(model.initial_point())  # names the variable at fault
        raise ValueError(f"the log density is {value} at the model's initial point")

    outside = [False]

    def negative_logp(point: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = flat.logp(point)
        if np.isnan(value) or value == -np.inf or not np.isfinite(gradient).all():
            # Outside the density's support (NaN where a special function has no value,
            # e.g. a scale's log driven toward -inf), or where its gradient is not finite.
            # scipy would take a NaN for a value, or step along a NaN gradient, and end
            # on that point; +inf ends its line search at the last finite point.
            # (A density of +inf stays: it has no mode, and the run ends with a warning.)
            outside[0] = True
            return np.inf, np.zeros_like(gradient)
        return -value, -gradient

    point, iterations, evaluations = start, 0, 0
    for _ in range(_RESTARTS + 1):
        outside[0] = False
        result = optimize.minimize(negative_logp, point, jac=True, method="L-BFGS-B")
        iterations, evaluations = iterations + result.nit, evaluations + result.nfev
        if not outside[0] or not np.isfinite(result.fun):
            break
        # The run's line search left the support and scipy stopped where it stood,
        # calling it converged: a gradient step, halved until it stays inside and gains,
        # then a fresh run from there.
        point = _step_inside(flat.logp, result.x)
        if point is None:  # not even a short step gains: the run ends unconverged
            break
    # scipy calls a run that ended at an infinite density converged: it is not.
    converged = bool(result.success) and bool(np.isfinite(result.fun)) and not outside[0]
    if not converged:
        why = "its steps left the density's support" if outside[0] else result.message
        warnings.warn(f"The optimizer did not converge: {why} (log density "
                      f"{-float(result.fun)}); the MAP point "
                      "may not be the posterior's mode (method='nuts' samples the "
                      "whole posterior)", UserWarning, stacklevel=2)
    posterior = flat.posterior(result.x)
    posterior.attrs["method"] = "map"
    report = xr.Dataset({
        "message": str(result.message), "success": converged,
        "nit": iterations, "nfev": evaluations, "logp": -float(result.fun),
    })
    return xr.DataTree.from_dict({"posterior": posterior, "optimizer_result": report})


def _step_inside(logp: Callable[[np.ndarray], tuple[float, np.ndarray]], point: np.ndarray
                 ) -> np.ndarray | None:
    """A point up the gradient from ``point`` with a higher density and a finite gradient.

    The step starts at unit length and is halved, 60 times at most; None if none gains.
    """
    value, gradient = logp(point)
    norm = float(np.linalg.norm(gradient))
    if not (np.isfinite(value) and np.isfinite(norm) and norm > 0.0):
        return None
    step = 1.0 / norm
    for _ in range(60):
        trial = point + step * gradient
        trial_value, trial_gradient = logp(trial)
        if (np.isfinite(trial_value) and trial_value > value
                and np.isfinite(trial_gradient).all()):
            return trial
        step /= 2.0
    return None
