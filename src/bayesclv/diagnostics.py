"""Convergence checks after sampling, turned into warnings that say what to do."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesclv.exceptions import ConvergenceWarning

__all__ = ["ESS_MIN", "RHAT_MAX", "convergence_problems", "diagnostics_table",
           "steps_per_draw", "warn_if_unconverged"]

RHAT_MAX = 1.01
ESS_MIN = 400


def _flagged(values: xr.Dataset, bad: xr.Dataset) -> list[str]:
    names = []
    for var in values.data_vars:
        mask = bad[var]
        if not bool(mask.any()):
            continue
        if mask.ndim == 0:
            names.append(var)
            continue
        stacked = mask.stack(cell=mask.dims)
        for label in stacked["cell"].to_numpy()[stacked.to_numpy()]:
            label = label if isinstance(label, tuple) else (label,)
            names.append(f"{var}[{', '.join(str(x) for x in label)}]")
    return names


def diagnostics_table(idata: xr.DataTree, var_names: Sequence[str]) -> pd.DataFrame:
    """ArviZ summary of ``var_names`` as numbers, with the divergence count in ``attrs``.

    Parameters
    ----------
    idata : xarray.DataTree
        A fitted model's ``idata_`` (``posterior`` and, for NUTS, ``sample_stats``).
    var_names : sequence of str
        Posterior variables to summarise.

    Returns
    -------
    pandas.DataFrame
        One row per scalar parameter (e.g. ``eta[organic]``), index named
        ``parameter``; columns ``mean``, ``sd``, the credible-interval bounds, ``ess_bulk``,
        ``ess_tail``, ``r_hat``, ``mcse_mean``, ``mcse_sd`` as unrounded floats (NaN where
        undefined, e.g. for a MAP fit's single draw). ``attrs`` holds ``divergences``
        (divergent transitions over all chains), ``steps_per_draw`` (mean leapfrog steps
        per draw after tuning, NaN for MAP: the cost of a draw in gradient evaluations, so
        a measure of how well-shaped the posterior is), ``chains``, ``draws`` and the
        thresholds ``rhat_max`` and ``ess_min`` that trigger a :class:`ConvergenceWarning`.

    Examples
    --------
    >>> import bayesclv
    >>> from bayesclv.diagnostics import diagnostics_table
    >>> customers = bayesclv.datasets.load_example()
    >>> model = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    >>> table = diagnostics_table(model.idata_, ["spend_mu", "p"])
    >>> table.index[0], table.attrs["divergences"]
    ('spend_mu[log_mean_spend]', 0)
    """
    posterior = idata["posterior"]
    with _constants_allowed():
        table = pd.DataFrame(az.summary(idata, var_names=list(var_names), round_to="none"))
    table = table.apply(pd.to_numeric)
    table.index.name = "parameter"
    table.attrs.update(
        divergences=_divergences(idata), steps_per_draw=steps_per_draw(idata),
        chains=int(posterior.sizes.get("chain", 1)),
        draws=int(posterior.sizes.get("draw", 1)), rhat_max=RHAT_MAX, ess_min=ESS_MIN,
    )
    return table


def _constants_allowed() -> Any:
    """Silence the warnings of quantities constant over draws.

    Such quantities (an unpooled fit's fixed population parameters, the zeros of a
    Cholesky factor) have no R-hat or ESS: NaN, not a warning, and never flagged as
    unconverged.
    """
    return np.errstate(divide="ignore", invalid="ignore")


def _divergences(idata: xr.DataTree) -> int:
    if "sample_stats" not in idata.children:
        return 0
    stats = idata["sample_stats"].to_dataset()
    for name in ("diverging", "divergences"):
        if name in stats:
            return int(np.asarray(stats[name]).astype(bool).sum())
    return 0


def steps_per_draw(idata: xr.DataTree) -> float:
    """Mean leapfrog steps per draw (PyMC's ``n_steps``, nutpie's ``n_steps`` too); NaN without.

    Each step is one gradient evaluation, so this times the cost of a gradient is the
    cost of a draw; a well-shaped posterior needs 3 to 15.
    """
    if "sample_stats" not in idata.children:
        return float("nan")
    stats = idata["sample_stats"].to_dataset()
    for name in ("n_steps", "tree_size"):
        if name in stats:
            return float(np.asarray(stats[name], dtype=np.float64).mean())
    return float("nan")


def convergence_problems(idata: xr.DataTree, var_names: Sequence[str]) -> list[str]:
    """Describe divergences, R-hat above 1.01 and bulk ESS below 400, naming parameters."""
    posterior = idata["posterior"].to_dataset()[list(var_names)]
    problems = []
    n_div = _divergences(idata)
    if n_div:
        problems.append(
            f"{n_div} divergent transition(s): raise target_accept (e.g. 0.99 or 0.995); "
            "if they persist, force the parametrisation (priors={'centered': True} when "
            "every segment has thousands of customers, False when some have few; the "
            "default 'auto' chooses per segment) or merge segments with very little data."
        )
    if posterior.sizes.get("chain", 1) > 1:
        with _constants_allowed():
            rhat = az.rhat(posterior)
        names = _flagged(rhat, rhat > RHAT_MAX)
        if names:
            problems.append(
                f"R-hat > {RHAT_MAX} for {', '.join(names[:10])}"
                + (" ..." if len(names) > 10 else "")
                + ": the chains disagree; run more tune and draws (e.g. tune=2000, draws=2000)."
            )
    with _constants_allowed():
        ess = az.ess(posterior)
    names = _flagged(ess, ess < ESS_MIN)
    if names:
        problems.append(
            f"bulk ESS < {ESS_MIN} for {', '.join(names[:10])}"
            + (" ..." if len(names) > 10 else "")
            + ": run more draws (and chains) before trusting interval ends."
        )
    return problems


def warn_if_unconverged(idata: xr.DataTree, var_names: Sequence[str], what: str) -> None:
    """Emit one :class:`ConvergenceWarning` listing every problem found, if any."""
    problems = convergence_problems(idata, var_names)
    if problems:
        warnings.warn(
            f"The {what} posterior may not be reliable:\n- " + "\n- ".join(problems)
            + "\nmodel.diagnostics() lists R-hat and ESS of every parameter.",
            ConvergenceWarning,
            stacklevel=3,
        )
