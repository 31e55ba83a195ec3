"""Parameter recovery and interval coverage on simulated data with known truth.

Usage::

    python benchmarks/recovery.py --customers 20000 --draws 1000 --chains 2
    python benchmarks/recovery.py --covariates    # with known customer-covariate effects

Prints, for every segment parameter, the truth, the posterior mean and the 94% HDI; then
the share of active customers whose true expected residual value lies inside their 90%
interval, and the fit and predict times. With ``--covariates`` the customers also have an
age and an acquisition channel with known effects on retention and spend, and a table of
the covariate coefficients against the truth is printed too. The fitted segment parameters
then describe the average customer of the data (mean age, the data's mix of channels), so
the true ``eta`` and ``gamma`` they are compared with are shifted to that customer.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from arviz_stats.base import array_stats

import bayesclv
from bayesclv.datasets import DEFAULT_SEGMENTS, simulate_customers, true_residual_value

#: Known covariate effects (per year of age; web against store), on the log lifetime scale
#: (retention) and the log spend scale (spend).
COVARIATES = {
    "age": {"mean": 40.0, "sd": 10.0, "retention": 0.03, "spend": -0.01},
    "channel": {"levels": ["store", "web"], "probs": [0.6, 0.4],
                "retention": {"web": 0.5}, "spend": {"web": 0.4}},
}
COVARIATE_TRUTH = {
    ("retention", "age"): 0.03, ("retention", "channel[web]"): 0.5,
    ("spend", "age"): -0.01, ("spend", "channel[web]"): 0.4,
}


def average_customer_shift(customers: pd.DataFrame, part: str) -> float:
    """Log-scale shift from the simulation's reference customer to the data's average one.

    The simulation's segment parameters are those of a customer at each numeric
    covariate's ``mean`` and at levels without effect; the model's are those of the
    average customer of the data (sample means, sample mix of levels).
    """
    shift = 0.0
    for name, spec in COVARIATES.items():
        if "levels" in spec:
            for level, effect in spec[part].items():
                shift += effect * (customers[name] == level).mean()
        else:
            shift += spec[part] * (customers[name].mean() - spec["mean"])
    return float(shift)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--retention", default="weibull")
    parser.add_argument("--centered", action="store_true",
                        help="force the centred parametrisation (default: the library's "
                             "'auto' form, weighted between centred and non-centred "
                             "by how tightly each segment's data pin it)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--covariates", action="store_true",
                        help="simulate and fit an age and a channel covariate")
    args = parser.parse_args()

    customers, truth = simulate_customers(
        args.customers, DEFAULT_SEGMENTS, observation_periods=36, random_seed=args.seed,
        covariates=COVARIATES if args.covariates else None)
    if args.covariates:
        customers["age"] = customers["age"].round()  # whole years, as usually recorded
    horizon, discount = 36, 0.01
    model = bayesclv.CLVModel(
        retention=args.retention, horizon=horizon, discount_rate=discount, margin=1.0,
        hdi_prob=0.9, draws=args.draws, tune=args.tune, chains=args.chains,
        random_seed=args.seed, covariates=["age", "channel"] if args.covariates else None,
        priors={part: {"centered": True if args.centered else "auto"}
                for part in ("retention", "spend")},
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(customers)
    fit_time = time.perf_counter() - start
    for w in caught:
        if issubclass(w.category, bayesclv.ConvergenceWarning):
            print("WARNING:", w.message)

    posterior = model.idata_["posterior"]
    true_params = truth.segments.copy()
    if args.covariates:
        for part, column in (("retention", "eta"), ("spend", "gamma")):
            true_params[column] *= np.exp(average_customer_shift(customers, part))
    rows = []
    for name in ("eta", "k", "p", "q", "gamma"):
        if name not in posterior:
            continue
        draws = posterior[name].to_numpy()
        for j, segment in enumerate(posterior["segment"].values):
            values = draws[:, :, j].reshape(-1)
            low, high = array_stats.hdi(values, 0.94)
            true = true_params.loc[segment, name]
            rows.append({"parameter": f"{name}[{segment}]", "truth": true,
                         "posterior mean": values.mean(), "hdi94 low": low, "hdi94 high": high,
                         "inside": low <= true <= high})
    table = pd.DataFrame(rows)
    print(f"\n{args.customers:,} customers, {len(DEFAULT_SEGMENTS)} segments, "
          f"{args.chains} chains x {args.draws} draws, fit {fit_time:.1f} s")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"truth inside 94% HDI: {table['inside'].sum()} / {len(table)}")
    if args.covariates:
        effects = pd.concat({"retention": model.retention_model_.covariate_effects(0.94),
                             "spend": model.spend_model_.covariate_effects(0.94)})
        effects.insert(0, "truth", [COVARIATE_TRUTH[key] for key in effects.index])
        effects["inside"] = (effects["hdi_low"] <= effects["truth"]) & (
            effects["truth"] <= effects["hdi_high"])
        print("\ncovariate coefficients (per unit; 94% HDI):")
        print(effects[["truth", "mean", "sd", "hdi_low", "hdi_high", "inside"]].to_string(
            float_format=lambda v: f"{v:.4f}"))

    start = time.perf_counter()
    predictions = model.predict(customers)
    predict_time = time.perf_counter() - start
    true_value = true_residual_value(customers, truth, discount_rate=discount, horizon=horizon)
    active = ~customers["churned"].to_numpy()
    inside = ((predictions["clv_hdi_low"] <= true_value)
              & (true_value <= predictions["clv_hdi_high"])).to_numpy()[active]
    print(f"\npredict: {predict_time:.1f} s")
    print(f"coverage of true expected residual value by 90% HDI: {inside.mean():.3f} "
          f"({inside.sum():,} of {active.sum():,} active customers)")
    by_segment = pd.Series(inside).groupby(customers["segment"].to_numpy()[active]).mean()
    print("coverage by segment:", by_segment.round(3).to_dict())
    print("rank correlation(predicted mean, truth):",
          round(float(pd.Series(predictions["clv_mean"].to_numpy()[active]).corr(
              pd.Series(true_value[active]), method="spearman")), 3))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
