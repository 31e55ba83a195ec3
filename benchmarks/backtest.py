"""Time a backtest as the customer base grows, and print what it scores.

Usage::

    python benchmarks/backtest.py --sizes 25000 --horizon 6

For each size, a subscription log simulated from known Weibull retention and gamma-gamma
spend (:func:`bayesclv.datasets.simulate_transactions`, 30 months, every subscriber paying
every month) is backtested at one cutoff with the library's defaults (NUTS, 4 chains x
1,000 draws). Prints a table: the time of the whole :func:`bayesclv.backtest`, of its
parts measured apart (splitting the log, fitting the model on the training table) and
the process's peak resident memory so far, then the headline figures of the model and
the naive Berger–Nasr baseline it scores beside it.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import pandas as pd

import bayesclv
from bayesclv.backtesting import split_log
from bayesclv.datasets import simulate_transactions

CUTOFF = "2023-12-31"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000])
    parser.add_argument("--horizon", type=int, default=6)
    parser.add_argument("--predictive-draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)

    timings, figures = [], []
    for size in args.sizes:
        log, _ = simulate_transactions(size, n_periods=30, random_seed=args.seed,
                                       active_probability=1.0)
        options = {"end_col": "end_date", "segment_col": "channel"}
        start = time.perf_counter()
        split = split_log(log, CUTOFF, args.horizon, **options)
        split_seconds = time.perf_counter() - start
        start = time.perf_counter()
        bayesclv.CLVModel(random_seed=args.seed).fit(split.training)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = bayesclv.backtest(log, CUTOFF, args.horizon, **options,
                                   model=bayesclv.CLVModel(random_seed=args.seed),
                                   predictive_draws=args.predictive_draws)
        total = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
        timings.append({
            "customers simulated": size, "log rows": len(log),
            "customers in the fit": len(split.training),
            "backtest s": total, "of which split s": split_seconds,
            "of which fit s": fit_seconds,
            "forecasts, intervals, baseline s": total - split_seconds - fit_seconds,
            "peak RSS MiB": peak,
        })
        print(timings[-1], flush=True)
        summary = result.summary()
        for metric in summary.index:
            figures.append({"customers": size, "metric": metric,
                            "nominal": summary.at[metric, "nominal"],
                            "bayesclv": summary.at[metric, "bayesclv"],
                            "95% low": summary.at[metric, "bayesclv_low"],
                            "95% high": summary.at[metric, "bayesclv_high"],
                            "naive": summary.at[metric, "baseline"]})
    print()
    print(pd.DataFrame(timings).to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    print()
    print(pd.DataFrame(figures).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
