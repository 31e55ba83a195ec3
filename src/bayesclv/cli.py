"""The ``bayesclv`` command: ``bayesclv demo`` values the bundled example customers."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import pandas as pd

from bayesclv.datasets import load_example
from bayesclv.estimator import CLVModel

__all__ = ["main"]


def _format_report(report: pd.DataFrame) -> str:
    table = pd.DataFrame(index=report.index)
    table["customers"] = report["n_customers"]
    table["active"] = report["n_active"]
    table["CLV/customer"] = report["clv_per_customer_mean"].map("{:,.0f}".format)
    table["CLV/customer HDI"] = [
        f"[{lo:,.0f}, {hi:,.0f}]"
        for lo, hi in zip(report["clv_per_customer_hdi_low"], report["clv_per_customer_hdi_high"],
                          strict=True)
    ]
    table["segment total"] = report["total_mean"].map("{:,.0f}".format)
    table["total HDI"] = [
        f"[{lo:,.0f}, {hi:,.0f}]"
        for lo, hi in zip(report["total_hdi_low"], report["total_hdi_high"], strict=True)
    ]
    table["share"] = report["share_mean"].map("{:.1%}".format)
    table["share HDI"] = [
        f"[{lo:.1%}, {hi:.1%}]"
        for lo, hi in zip(report["share_hdi_low"], report["share_hdi_high"], strict=True)
    ]
    return table.to_string()


def _demo(args: argparse.Namespace) -> int:
    customers = load_example()
    print(f"Example data: {len(customers):,} customers, {customers['segment'].nunique()} "
          f"segments, periods of one {customers.attrs['period']}.")
    model = CLVModel(
        retention=args.retention, spend="gamma_gamma", discount_rate=args.discount_rate,
        horizon=args.horizon, margin=args.margin, method=args.method, draws=args.draws,
        tune=args.tune, chains=args.chains, random_seed=args.seed,
    )
    start = time.perf_counter()
    model.fit(customers)
    fitted = time.perf_counter()
    predictions = model.predict(customers)
    report = model.segment_report(customers)
    done = time.perf_counter()
    print(f"Fitted {args.retention} retention + gamma-gamma spend ({args.method}, "
          f"{args.chains} chains x {args.draws} draws) in {fitted - start:.1f} s; "
          f"valued customers in {done - fitted:.1f} s.")
    horizon = "until negligible" if args.horizon is None else f"{args.horizon} months"
    print(f"Residual CLV at margin {args.margin:g}, discount {args.discount_rate:g}/month, "
          f"horizon {horizon}; intervals are {model.hdi_prob:.0%} HDIs.\n")
    print(_format_report(report))
    retention = model.retention_model_.posterior_[["eta", "k"]].mean(("chain", "draw"))
    print("\nWeibull retention per segment (posterior means; k < 1: retention rises with "
          "tenure):")
    print(retention.to_dataframe().round(2).to_string())
    if args.out:
        predictions.to_csv(args.out, index=False)
        print(f"\nPer-customer predictions ({len(predictions):,} rows) written to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesclv`` console script."""
    parser = argparse.ArgumentParser(prog="bayesclv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit and value the bundled example customers")
    demo.add_argument("--out", default=None, help="CSV file for per-customer predictions")
    demo.add_argument("--retention", default="weibull", choices=["weibull", "geometric"])
    demo.add_argument("--method", default="nuts", choices=["nuts", "map"])
    demo.add_argument("--draws", type=int, default=500)
    demo.add_argument("--tune", type=int, default=500)
    demo.add_argument("--chains", type=int, default=2)
    demo.add_argument("--horizon", type=int, default=36)
    demo.add_argument("--discount-rate", type=float, default=0.01)
    demo.add_argument("--margin", type=float, default=0.3)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
