"""Holdout projection of retention: which family projects survivors best?

Usage::

    python benchmarks/retention_holdout.py --customers 1000 --draws 1000 --chains 2

Simulated cohorts, one per segment, all acquired in period 0 with both heterogeneity
(each customer's churn probability drawn from a beta distribution) and duration
dependence (``c < 1``: each customer's own churn risk falls with tenure), i.e.
beta-discrete-Weibull truth. Every family is fitted on the first ``--train`` periods (7)
and projects the survivors of each cohort for the following ``--holdout`` periods (8-12),
compared with the simulated survivors. Prints per family: the mean absolute percentage
error (MAPE) of projected survivors over the holdout periods and segments, the same for
the last holdout period alone, the PSIS-LOO ELPD on the training data (per customer)
with its difference to the best family, and the fit time.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayesclv
from bayesclv.datasets import simulate_customers

#: Truth per segment: heterogeneity (alpha, beta) and duration dependence (c < 1).
SEGMENTS = {
    "north": {"alpha": 0.7, "beta": 2.0, "c": 0.6},
    "south": {"alpha": 1.1, "beta": 3.5, "c": 0.7},
    "east": {"alpha": 0.5, "beta": 1.6, "c": 0.55},
    "west": {"alpha": 1.4, "beta": 6.0, "c": 0.8},
}
FAMILIES = ("geometric", "weibull", "sbg", "bdw")


def cohorts(n_per_segment: int, train: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customer table censored after ``train`` periods, and true lifetimes."""
    spec = {name: {"share": 1.0, "p": 5.0, "q": 4.0, "gamma": 40.0, **params}
            for name, params in SEGMENTS.items()}
    segment = np.repeat(list(spec), n_per_segment)
    lifetimes = []
    for offset, name in enumerate(spec):
        _, truth = simulate_customers(n_per_segment, {name: spec[name]}, observation_periods=1,
                                      random_seed=seed + offset)
        lifetimes.append(truth.customers["lifetime"].to_numpy())
    lifetime = np.concatenate(lifetimes)
    customers = pd.DataFrame({
        "customer_id": np.arange(len(lifetime)),
        "segment": segment,
        "tenure": np.minimum(lifetime, train),
        "churned": lifetime <= train,
    })
    customers.attrs["period"] = "period"
    return customers, pd.DataFrame({"segment": segment, "lifetime": lifetime})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000, help="per segment (cohort)")
    parser.add_argument("--train", type=int, default=7)
    parser.add_argument("--holdout", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()

    customers, truth = cohorts(args.customers, args.train, args.seed)
    periods = np.arange(args.train + 1, args.train + args.holdout + 1)
    actual = pd.DataFrame(
        {t: truth.groupby("segment", sort=False)["lifetime"].apply(lambda x, t=t: (x > t).sum())
         for t in periods}
    )
    fits, rows = {}, []
    for family in FAMILIES:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
            model = bayesclv.RetentionModel(
                family, draws=args.draws, tune=args.tune, chains=args.chains,
                target_accept=0.95, random_seed=args.seed,
            ).fit(customers)
        seconds = time.perf_counter() - start
        fits[family] = model
        projected = model.project_survivors(args.customers, periods=args.train + args.holdout)
        expected = projected["expected_mean"].unstack("period")[periods].loc[actual.index]
        inside = ((projected["predicted_hdi_low"].unstack("period")[periods].loc[actual.index]
                   <= actual)
                  & (actual <= projected["predicted_hdi_high"].unstack("period")[periods]
                     .loc[actual.index]))
        error = (expected - actual).abs() / actual
        rows.append({
            "family": family,
            "MAPE 8-12": error.to_numpy().mean(),
            f"MAPE t={periods[-1]}": error[periods[-1]].mean(),
            "in 90% interval": inside.to_numpy().mean(),
            "fit s": seconds,
        })
    table = pd.DataFrame(rows).set_index("family")
    comparison = bayesclv.compare(fits, customers)
    table["ELPD"] = comparison["elpd"]
    table["ELPD diff"] = comparison["elpd_diff"]
    table["dse"] = comparison["dse"]
    pd.set_option("display.width", 140)
    print(f"{len(SEGMENTS)} cohorts x {args.customers} customers, trained on periods "
          f"1-{args.train}, projected {periods[0]}-{periods[-1]}; "
          f"{args.chains} chains x {args.draws} draws.")
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))


if __name__ == "__main__":
    main()
