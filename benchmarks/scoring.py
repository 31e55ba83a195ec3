"""Batch scoring from the command line: time and peak memory of ``bayesclv score``.

Usage::

    python benchmarks/scoring.py --rows 1000000 10000000 --thin 500

Fits ``CLVModel()`` (the defaults: NUTS, 4 chains x 1,000 draws) on the bundled example,
saves it whole and thinned (``model.thin``), writes Parquet customer tables of each size
(customers simulated from the example's segments, a million at a time, so nearly every
row is a distinct customer: the valuation values each distinct input once), then runs
``bayesclv score MODEL TABLE --out OUT.parquet`` in a fresh process for each, and prints
a table: rows, posterior samples in the model, the model file's size, seconds, the
scoring process's peak resident memory, and the output's size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

import bayesclv
from bayesclv.datasets import DEFAULT_SEGMENTS, simulate_customers

#: The command line in a fresh process that prints its own peak RSS (KiB) at the end.
_MEASURED = ("import resource, sys; from bayesclv.cli import main; code = main(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")


def table(rows: int, path: Path) -> None:
    """Write ``rows`` simulated customers to Parquet, a million at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, rows, 1_000_000):
        size = min(1_000_000, rows - start)
        part, _ = simulate_customers(size, DEFAULT_SEGMENTS, random_seed=start)
        part["customer_id"] = [f"C{start + i:09d}" for i in range(size)]
        arrow = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, arrow.schema)
        writer.write_table(arrow)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--thin", type=int, default=500)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
    folder = Path(tempfile.mkdtemp(prefix="bayesclv-scoring-"))
    model = bayesclv.CLVModel(random_seed=0).fit(bayesclv.datasets.load_example())
    models = {"full": model.save(folder / "full.nc"),
              f"thin({args.thin})": model.thin(args.thin).save(folder / "thin.nc")}
    samples = {"full": model.idata_["posterior"].sizes["chain"]
               * model.idata_["posterior"].sizes["draw"],
               f"thin({args.thin})": args.thin}
    results = []
    for rows in args.rows:
        data = folder / f"customers_{rows}.parquet"
        table(rows, data)
        for name, path in models.items():
            if rows > 1_000_000 and name == "full":
                continue  # the whole posterior at 10M rows takes too long for a table
            out = folder / f"scores_{rows}_{name}.parquet"
            command = [sys.executable, "-c", _MEASURED, "score", str(path), str(data),
                       "--out", str(out), "--chunk-size", str(args.chunk_size), "--quiet"]
            start = time.perf_counter()
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            peak = int(done.stdout.split()[-1])
            results.append({
                "rows": rows, "model": name, "samples": samples[name],
                "model MiB": path.stat().st_size / 2**20, "seconds": seconds,
                "rows per second": rows / seconds,
                "peak RSS MiB": peak / 2**10,
                "output MiB": out.stat().st_size / 2**20,
                "input MiB": data.stat().st_size / 2**20,
            })
            print(results[-1], flush=True)
            out.unlink()
        data.unlink()
    print(pd.DataFrame(results).to_string(index=False, float_format=lambda v: f"{v:,.1f}"))


if __name__ == "__main__":
    main()
