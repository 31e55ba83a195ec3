"""How long a new user waits: fit and predict with the library's defaults, each in a fresh process.

Usage::

    python benchmarks/speed.py                 # warm compile cache (.cache/pytensor)
    python benchmarks/speed.py --cold          # also: the first fit with an empty cache
    python benchmarks/speed.py --quick         # the bundled example only

Every case runs in its own Python process, as a script or a notebook would: imports,
validation, model building, compilation (from PyTensor's on-disk cache when warm) and
sampling all count. ``CLVModel()`` with default arguments (4 chains x 1,000 draws after
1,000 tuning iterations, NUTS, the default sampler and parametrisation) on:

* ``example``: ``bayesclv.datasets.load_example()`` (4,000 customers, 4 segments);
* ``other size``: 6,000 customers simulated with the example's segments;
* ``3-segment subset``: the example without its largest segment;
* ``25k pipeline``: 25,000 customers from ``simulate_transactions``, ``summarize``,
  ``KMeansSegmenter(4)``, then ``CLVModel`` fit and predict;
* ``bdw, left-truncated``: ``CLVModel(retention="bdw")`` on 6,000 simulated
  beta-discrete-Weibull customers in 4 segments, observed for 24 periods, those acquired up
  to 6 periods before observation started entering it that old (left truncation; this
  family's likelihood is on ``(segment, entry, tenure, churned)`` rows, not risk sets).

Columns: seconds to import the library and make the table (for the pipeline: simulate,
``summarize`` and segment), fit seconds (retention and spend apart), predict seconds, mean
leapfrog steps per draw (each step is one gradient), the smallest bulk ESS of the spend
parameters per second of spend fit, and divergences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CASES = ("example", "other size", "3-segment subset", "25k pipeline", "bdw, left-truncated")

# Beta-discrete-Weibull truth of the left-truncated case: churn falling and rising with tenure.
BDW_SEGMENTS = {
    "a": {"share": 0.3, "alpha": 0.8, "beta": 3.0, "c": 0.7, "p": 5, "q": 4, "gamma": 40},
    "b": {"share": 0.3, "alpha": 1.0, "beta": 4.0, "c": 0.8, "p": 4, "q": 5, "gamma": 60},
    "c": {"share": 0.2, "alpha": 0.7, "beta": 2.5, "c": 0.6, "p": 6, "q": 3, "gamma": 20},
    "d": {"share": 0.2, "alpha": 1.2, "beta": 5.0, "c": 1.3, "p": 5, "q": 4, "gamma": 40},
}


def _table(case: str):
    import bayesclv

    if case == "example":
        return bayesclv.datasets.load_example()
    if case == "3-segment subset":
        customers = bayesclv.datasets.load_example()
        largest = customers["segment"].value_counts().idxmax()
        return customers[customers["segment"] != largest].reset_index(drop=True)
    if case == "other size":
        customers, _ = bayesclv.datasets.simulate_customers(6000, random_seed=11)
        customers.attrs["period"] = "month"
        return customers
    if case == "25k pipeline":
        from bayesclv.segmentation import KMeansSegmenter

        transactions, _ = bayesclv.datasets.simulate_transactions(25_000, 36, random_seed=0)
        customers = bayesclv.data.summarize(transactions, "customer_id", "date", "amount",
                                            period="M", end_col="end_date")
        return KMeansSegmenter(n_segments=4, random_state=0).fit_transform(customers)
    if case == "bdw, left-truncated":
        customers, _ = bayesclv.datasets.simulate_customers(
            6000, BDW_SEGMENTS, observation_periods=24, truncation_periods=6, random_seed=11)
        customers.attrs["period"] = "month"
        return customers
    raise ValueError(case)


def run_case(case: str) -> dict:
    """One case, in this process (the parent starts a fresh one per case)."""
    import warnings

    start = time.perf_counter()
    import bayesclv

    customers = _table(case)
    prepared = time.perf_counter()
    retention = "bdw" if case.startswith("bdw") else "weibull"
    model = bayesclv.CLVModel(retention, random_seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(customers)
    fitted = time.perf_counter()
    model.predict(customers)
    predicted = time.perf_counter()
    retention, spend = model.retention_model_, model.spend_model_
    spend_table = spend.diagnostics()
    return {
        "case": case,
        "customers": len(customers),
        "prepare_s": prepared - start,
        "fit_s": fitted - prepared,
        "retention_sampling_s": retention.sampling_seconds_,
        "spend_sampling_s": spend.sampling_seconds_,
        "predict_s": predicted - fitted,
        "retention_steps": retention.diagnostics().attrs["steps_per_draw"],
        "spend_steps": spend_table.attrs["steps_per_draw"],
        "spend_ess_per_s": float(spend_table["ess_bulk"].min()) / spend.sampling_seconds_,
        "divergences": (retention.diagnostics().attrs["divergences"]
                        + spend_table.attrs["divergences"]),
        "convergence_warnings": sum(w.category.__name__ == "ConvergenceWarning"
                                    for w in caught),
        "sampler": f"{retention.sampler_}/{spend.sampler_}",
    }


def _in_fresh_process(case: str, compiledir: str, numba_dir: str | None = None) -> dict:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir},blas__ldflags="
    if numba_dir is not None:
        env["NUMBA_CACHE_DIR"] = numba_dir
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, __file__, "--case", case, "--out", out.name],
                       check=True, env=env, cwd=ROOT)
        return json.loads(Path(out.name).read_text())


def _print(rows: list[dict]) -> None:
    header = ("| case | customers | cache | table s | fit s (retention + spend: compile and "
              "sample) | predict s | steps/draw (retention / spend) | spend ESS/s | divergences "
              "| sampler |")
    print(header)
    print("|---" * 10 + "|")
    for r in rows:
        print(f"| {r['case']} | {r['customers']:,} | {r['cache']} | {r['prepare_s']:.1f} | "
              f"{r['fit_s']:.1f} "
              f"({r['retention_sampling_s']:.1f} + {r['spend_sampling_s']:.1f}) | "
              f"{r['predict_s']:.1f} | "
              f"{r['retention_steps']:.1f} / {r['spend_steps']:.1f} | "
              f"{r['spend_ess_per_s']:.0f} | {r['divergences']} | {r['sampler']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true",
                        help="also fit the example once with empty compile caches")
    parser.add_argument("--quick", action="store_true", help="the bundled example only")
    args = parser.parse_args()
    if args.case:
        Path(args.out).write_text(json.dumps(run_case(args.case)))
        return
    warm = str(ROOT / ".cache" / "pytensor")
    rows = []
    if args.cold:
        # Both compile caches empty: PyTensor's (models) and numba's (valuation kernels).
        # The fit's second compiling process may still be writing kernels there.
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as empty, \
                tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as numba:
            rows.append({**_in_fresh_process("example", empty, numba), "cache": "cold"})
    _in_fresh_process("example", warm)  # fills the cache, if it was empty
    for case in CASES[:1] if args.quick else CASES:
        rows.append({**_in_fresh_process(case, warm), "cache": "warm"})
    _print(rows)


if __name__ == "__main__":
    main()
