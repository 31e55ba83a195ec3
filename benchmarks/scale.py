"""Cost of fitting and predicting as the customer base grows.

Usage::

    python benchmarks/scale.py --fit-sizes 10000 1000000 --predict-size 1000000

Prints a table: ``RetentionModel(family="weibull").fit`` time at each size (same segments
and periods: the likelihood runs on sufficient statistics, so the times should be close),
then ``CLVModel.predict`` and ``CLVModel.forecast`` (``--forecast-periods`` periods,
``--predictive-draws`` simulations of the realised totals) time and peak traced memory on
``--predict-size`` customers with a posterior of ``chains x draws`` samples.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import pandas as pd

import bayesclv
from bayesclv.datasets import DEFAULT_SEGMENTS, simulate_customers

PARAMETRISATIONS = {"auto": "auto", "centered": True, "non-centered": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--predict-size", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--parametrisation", choices=list(PARAMETRISATIONS), default="auto",
                        help="hierarchy of the retention fits: the library default 'auto' "
                             "(weighted per segment by how tightly its data pin it), "
                             "centered or non-centered")
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--forecast-periods", type=int, default=12)
    parser.add_argument("--predictive-draws", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)

    rows = []
    for size in args.fit_sizes:
        customers, _ = simulate_customers(size, DEFAULT_SEGMENTS, random_seed=0)
        model = bayesclv.RetentionModel(draws=args.draws, tune=args.draws, chains=args.chains,
                                        random_seed=0,
                                        priors={"centered": PARAMETRISATIONS[args.parametrisation]})
        start = time.perf_counter()
        model.fit(customers)
        elapsed = time.perf_counter() - start
        rows.append({"step": "RetentionModel.fit (weibull)", "customers": size,
                     "risk-set cells": len(model.risk_set_), "seconds": elapsed,
                     "peak MiB": float("nan")})
        print(rows[-1], flush=True)
    if args.skip_predict:
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        return

    # The posterior used for prediction comes from a smaller table; predict cost depends on
    # samples x customers only.
    train, _ = simulate_customers(20_000, DEFAULT_SEGMENTS, random_seed=1)
    model = bayesclv.CLVModel(horizon=36, draws=args.draws, tune=args.draws, chains=args.chains,
                              random_seed=0).fit(train)
    customers, _ = simulate_customers(args.predict_size, DEFAULT_SEGMENTS, random_seed=2)
    samples = args.chains * args.draws
    steps = [
        (f"CLVModel.predict ({samples} samples)", lambda: model.predict(customers)),
        (f"CLVModel.forecast ({args.forecast_periods} periods, {samples} samples, "
         f"{args.predictive_draws} simulations)",
         lambda: model.forecast(customers, periods=args.forecast_periods,
                                predictive_draws=args.predictive_draws)),
    ]
    for name, step in steps:
        tracemalloc.start()
        start = time.perf_counter()
        step()
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"step": name, "customers": len(customers),
                     "risk-set cells": float("nan"), "seconds": elapsed,
                     "peak MiB": peak / 2**20})
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.1f}"))


if __name__ == "__main__":
    main()
