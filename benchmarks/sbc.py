"""Simulation-based calibration (Talts et al. 2018) of the retention and spend models.

Usage::

    python benchmarks/sbc.py --replications 100 --customers 300

For each model (Weibull retention; gamma-gamma spend), with the default parametrisation
and the default priors (computed once from a reference table and then held fixed, so
that the prior does not depend on the simulated data):

1. draw the segment parameters of two segments from the prior (population, then
   segments, as the model's generative process does);
2. simulate a table of ``--customers`` customers from them;
3. fit by NUTS (2 chains x 400 draws after 400 tuning steps), keep 100 draws (every 8th);
4. record the rank of each true segment parameter among those draws (0..100).

If the posterior is calibrated, each parameter's ranks are uniform. The table gives, per
parameter, the chi-square test of uniformity over 10 bins and its p-value. The negative
control ranks the truth among the same draws shrunk halfway to their mean (an
overconfident posterior): the test must reject it.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import bayesclv
from bayesclv.datasets import simulate_customers

SEGMENTS = ("s0", "s1")
KEPT = 100
THIN = 8


def _reference(n: int) -> pd.DataFrame:
    base = {"share": 0.5, "eta": 20.0, "k": 1.0, "p": 4.0, "q": 3.0, "gamma": 40.0}
    customers, _ = simulate_customers(n, {s: base for s in SEGMENTS}, observation_periods=24,
                                      random_seed=0)
    return customers


def _prior_draws(kind: str, reference: pd.DataFrame, priors: dict, n: int) -> dict:
    estimator = (bayesclv.RetentionModel(priors=priors, random_seed=1) if kind == "retention"
                 else bayesclv.SpendModel(priors=priors, random_seed=1))
    prior = estimator.sample_prior_parameters(reference, draws=n)
    return {name: prior[name].isel(chain=0).to_pandas().reset_index(drop=True)
            for name in prior.data_vars}  # (replication, segment)


def _simulate(kind: str, truth: dict, i: int, n: int, seed: int) -> pd.DataFrame:
    segments = {}
    for s in SEGMENTS:
        params = {"share": 0.5, "eta": 20.0, "k": 1.0, "p": 4.0, "q": 3.0, "gamma": 40.0}
        params.update({name: float(values.loc[i, s]) for name, values in truth.items()})
        segments[s] = params
    customers, _ = simulate_customers(n, segments, observation_periods=24, random_seed=seed)
    return customers


def _ranks(draws: np.ndarray, true: float, shrink: float = 1.0) -> int:
    kept = draws[::THIN][:KEPT]
    if shrink != 1.0:
        kept = kept.mean() + shrink * (kept - kept.mean())
    return int(np.sum(kept < true))


def run(kind: str, replications: int, customers: int) -> pd.DataFrame:  # noqa: D103
    reference = _reference(customers)
    family = "weibull" if kind == "retention" else "gamma_gamma"
    priors = bayesclv.families.default_priors(reference)[kind]
    truth = _prior_draws(kind, reference, priors, replications)
    rows = []
    start = time.perf_counter()
    for i in range(replications):
        table = _simulate(kind, truth, i, customers, seed=1000 + i)
        cls = bayesclv.RetentionModel if kind == "retention" else bayesclv.SpendModel
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls(family, priors=priors, draws=400, tune=400, chains=2,
                        random_seed=i).fit(table)
        posterior = model.posterior_
        for name, values in truth.items():
            for s in SEGMENTS:
                draws = posterior[name].sel(segment=s).stack(
                    sample=("draw", "chain")).to_numpy()
                rows.append({"model": kind, "parameter": f"{name}[{s}]", "replication": i,
                             "rank": _ranks(draws, values.loc[i, s]),
                             "rank_overconfident": _ranks(draws, values.loc[i, s], 0.5)})
    print(f"{kind}: {replications} fits in {time.perf_counter() - start:.0f} s")
    return pd.DataFrame(rows)


def uniformity(ranks: pd.Series, bins: int = 10) -> tuple[float, float]:
    """Chi-square statistic and p-value of ranks 0..KEPT over ``bins`` equal bins."""
    counts = np.histogram(ranks, bins=bins, range=(0, KEPT + 1))[0]
    result = stats.chisquare(counts)
    return float(result.statistic), float(result.pvalue)


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replications", type=int, default=100)
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()
    ranks = pd.concat([run(kind, args.replications, args.customers)
                       for kind in ("retention", "spend")])
    rows = []
    for (model, parameter), group in ranks.groupby(["model", "parameter"], sort=False):
        chi2, p = uniformity(group["rank"])
        chi2_bad, p_bad = uniformity(group["rank_overconfident"])
        rows.append({"model": model, "parameter": parameter, "n": len(group),
                     "chi2": chi2, "p_value": p,
                     "control_chi2": chi2_bad, "control_p_value": p_bad})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160):
        print(table.round(4).to_string(index=False))
    print(f"\nSmallest p-value: {table['p_value'].min():.3g} "
          f"(Bonferroni threshold at 1% over {len(table)} tests: {0.01 / len(table):.2g}); "
          f"overconfident control, largest p-value: {table['control_p_value'].max():.3g}")


if __name__ == "__main__":
    main()
