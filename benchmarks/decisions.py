"""Decision quantities on the bundled example: new-customer values and realised-value spread.

Usage::

    python benchmarks/decisions.py --draws 1000 --tune 1000

Fits ``CLVModel`` on :func:`bayesclv.datasets.load_example`, then prints

* per segment (and for a segment the model has never seen, drawn from the population), the
  posterior mean and 90% HDI of the expected value of a new customer, and the largest
  acquisition cost that still pays off with probability 0.5, 0.9 and 0.99;
* for a few active customers, the 90% HDI of the *expected* residual value (``predict``)
  next to that of the *realised* value (``distribution_customer_value``): same mean, far
  wider spread.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd
from arviz_stats.base import array_stats

import bayesclv

PROBS = (0.5, 0.9, 0.99)


def new_customer_table(model: bayesclv.CLVModel, segments: list[str]) -> pd.DataFrame:
    value = model.expected_new_customer_value(segments)
    draws = value.stack(sample=("chain", "draw")).transpose("sample", "segment").to_numpy()
    band = array_stats.hdi(draws, 0.9, axis=0)
    table = pd.DataFrame({"value_mean": draws.mean(axis=0), "hdi90_low": band[:, 0],
                          "hdi90_high": band[:, 1]},
                         index=pd.Index(value["segment"].to_numpy(), name="segment"))
    for prob in PROBS:
        table[f"max_cost_p{prob:g}"] = model.max_acquisition_cost(
            segments, prob=prob)["max_acquisition_cost"]
    return table


def realised_table(model: bayesclv.CLVModel, customers: pd.DataFrame, n_paths: int
                   ) -> pd.DataFrame:
    expected = model.predict(customers)
    realised = model.distribution_customer_value(customers, n_paths=n_paths)
    draws = realised.stack(sample=("chain", "draw", "path")).transpose(
        "sample", "customer").to_numpy()
    band = array_stats.hdi(draws, 0.9, axis=0)
    return pd.DataFrame({
        "customer": customers["customer_id"].to_numpy(),
        "segment": customers["segment"].to_numpy(),
        "tenure": customers["tenure"].to_numpy(),
        "expected_mean": expected["clv_mean"].to_numpy(),
        "expected_low": expected["clv_hdi_low"].to_numpy(),
        "expected_high": expected["clv_hdi_high"].to_numpy(),
        "realised_mean": draws.mean(axis=0),
        "realised_low": band[:, 0],
        "realised_high": band[:, 1],
        "P(realised = 0)": (draws == 0).mean(axis=0),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--paths", type=int, default=4, help="realised paths per draw")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    customers = bayesclv.datasets.load_example()
    model = bayesclv.CLVModel(horizon=36, discount_rate=0.01, margin=0.3, draws=args.draws,
                              tune=args.tune, chains=args.chains, random_seed=args.seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(customers)
    print(f"{len(customers):,} customers, {args.chains} chains x {args.draws} draws, "
          f"fit {time.perf_counter() - start:.0f} s")
    for w in caught:
        if issubclass(w.category, bayesclv.ConvergenceWarning):
            print("WARNING:", w.message)

    segments = [*model.retention_model_.segments_, "unseen segment"]
    print("\nValue of a new customer (horizon 36, margin 0.3) and the largest acquisition "
          "cost repaid with probability p:")
    print(new_customer_table(model, segments).to_string(float_format=lambda v: f"{v:.1f}"))

    active = customers[~customers["churned"]].groupby("segment").head(2).head(6)
    print("\nExpected vs realised residual value, 90% HDIs:")
    print(realised_table(model, active, args.paths).to_string(
        index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
