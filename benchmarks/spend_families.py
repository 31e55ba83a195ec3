"""Spend families on data simulated from each: recovery, coverage, and which compare() picks.

Usage::

    python benchmarks/spend_families.py --customers 4000 --draws 500 --chains 2 --seeds 3

For each seed and each generating family (gamma-gamma, lognormal; every period's revenue
drawn, so the tables carry ``mean_log_spend`` and ``sd_log_spend``), fits both spend
families by NUTS and prints one row per (seed, truth, fitted family): the largest
relative error of the segment parameters' posterior means (for the generating family),
the share of customers whose true mean spend lies inside their 90% interval, the ELPD
(PSIS-LOO), the family :func:`bayesclv.compare` ranks first, its margin in standard
errors, and the fit time.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayesclv
from bayesclv.datasets import simulate_customers

TRUTH = {
    "lognormal": {
        "a": {"share": 0.3, "eta": 20.0, "k": 0.8, "mu": 3.0, "sigma": 0.5, "tau": 0.4},
        "b": {"share": 0.3, "eta": 14.0, "k": 1.0, "mu": 3.8, "sigma": 0.3, "tau": 0.6},
        "c": {"share": 0.4, "eta": 30.0, "k": 1.2, "mu": 2.5, "sigma": 0.7, "tau": 0.3},
    },
    "gamma_gamma": {
        "a": {"share": 0.3, "eta": 20.0, "k": 0.8, "p": 4.0, "q": 4.0, "gamma": 40.0},
        "b": {"share": 0.3, "eta": 14.0, "k": 1.0, "p": 6.0, "q": 3.0, "gamma": 20.0},
        "c": {"share": 0.4, "eta": 30.0, "k": 1.2, "p": 2.5, "q": 5.0, "gamma": 80.0},
    },
}
PARAMETERS = {"lognormal": ("mu", "sigma", "tau"), "gamma_gamma": ("p", "q", "gamma")}


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for seed in range(args.seeds):
        for truth_family, segments in TRUTH.items():
            customers, truth = simulate_customers(args.customers, segments, log_spend=True,
                                                  random_seed=100 + seed)
            true_spend = truth.customers["true_mean_spend"].to_numpy()
            fits, times = {}, {}
            for family in ("gamma_gamma", "lognormal"):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
                    fits[family] = bayesclv.SpendModel(
                        family, draws=args.draws, tune=args.draws, chains=args.chains,
                        random_seed=seed).fit(customers)
                times[family] = time.perf_counter() - start
            table = bayesclv.compare(fits, customers)
            margin = -table.iloc[1]["elpd_diff"] / table.iloc[1]["dse"]
            for family, model in fits.items():
                predicted = model.predict(customers, hdi_prob=0.9)
                inside = ((predicted["expected_spend_hdi_low"] <= true_spend)
                          & (true_spend <= predicted["expected_spend_hdi_high"]))
                error = np.nan
                if family == truth_family:
                    posterior = model.posterior_.mean(("chain", "draw"))
                    error = max(
                        float(np.max(np.abs(posterior[name].sel(segment=list(segments))
                                            .to_numpy()
                                            / np.array([segments[s][name] for s in segments])
                                            - 1)))
                        for name in PARAMETERS[family])
                rows.append({
                    "seed": seed, "truth": truth_family, "fitted": family,
                    "max_rel_error": error, "coverage_90": float(inside.mean()),
                    "elpd": float(table.loc[family, "elpd"]),
                    "compare_picks": table.index[0], "margin_se": float(margin),
                    "fit_s": times[family],
                })
    out = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(out.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
