"""Fit and predict cost of bayesclv against the tools users would otherwise pick.

Usage::

    make bench-venv                      # once: pymc-marketing, lifelines, lifetimes
    python benchmarks/run.py --sizes 10000 100000 1000000
    python benchmarks/run.py --quick     # small and fast: bayesclv alone unless the
                                         # competitors' environment exists

For each size one customer table is simulated (``--segments`` segments with known Weibull
retention and gamma-gamma spend) and written to a temporary folder; then every tool fits
*that same table* in its own process, so peak memory (RSS, the process and its sampler
children) is its own, and a tool that runs past ``--timeout`` seconds is stopped and
reported as such. The competitors run from ``benchmarks/.venv-anchors`` (see
``benchmarks/anchors.py``: pymc-marketing pins an older PyMC than bayesclv).

bayesclv fits ``CLVModel(retention="weibull", spend="gamma_gamma")`` three ways: NUTS with
the library's default sampler (``bayesclv``: nutpie when the ``fast`` extra is installed,
the reference of the ratios), NUTS with PyMC's sampler (``bayesclv_pymc``) and a MAP point
estimate (``bayesclv_map``: no intervals); by default with the library's default parametrisation
(``auto``: each segment's coordinate sampled in a form weighted between centred and
non-centred by how tightly the segment's data pin it);
``--parametrisation centered`` and ``non-centered`` force one form. Its retention and
spend parts are reported apart (fit seconds each, from the start of the part's fit to its
end: ``CLVModel.fit`` builds each part while the other samples, so the two overlap and
add up to more than the whole fit) so that they compare with the retention
tools (pymc-marketing's shifted-beta-geometric, lifelines' Weibull) and the spend tools
(pymc-marketing's and lifetimes' gamma-gamma). ``ratio`` is the tool's fit time over
bayesclv's for the same part. Columns: build seconds (validation, statistics and the
PyMC model: fit minus sampling), sampling seconds (compiling the sampler's functions, from
the on-disk cache when warm, included), fit seconds, predict seconds (per-customer
predictions for every customer), peak RSS, bulk ESS per sampling second (smallest over the
parameters) and the recovery error against the simulated truth (retention: mean absolute
error of ``S(t)``, t = 1..24, over segments; spend: mean absolute relative error of the
segment mean spend).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ANCHORS_PYTHON = HERE / ".venv-anchors" / "bin" / "python"
#: bayesclv's inference options: (method, sampler).
VARIANTS = {
    "bayesclv": ("nuts", "auto"),
    "bayesclv_pymc": ("nuts", "pymc"),
    "bayesclv_map": ("map", "auto"),
}
COMPETITORS = {
    "pymc_marketing_sbg": "retention",
    "lifelines_weibull": "retention",
    "pymc_marketing_gg": "spend",
    "lifetimes_gg": "spend",
}
HORIZON = 24


def simulated_segments(n_segments: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Segments with Weibull retention and gamma-gamma spend spread over usual ranges."""
    rng = np.random.default_rng(seed)
    return {
        f"segment_{i:02d}": {
            "share": 1.0 / n_segments, "eta": float(rng.uniform(10.0, 60.0)),
            "k": float(rng.uniform(0.6, 1.4)), "p": float(rng.uniform(3.0, 6.0)),
            "q": float(rng.uniform(3.0, 6.0)), "gamma": float(rng.uniform(25.0, 150.0)),
        }
        for i in range(n_segments)
    }


def write_dataset(folder: Path, n_customers: int, n_segments: int, seed: int) -> None:
    from bayesclv.datasets import simulate_customers

    segments = simulated_segments(n_segments, seed)
    customers, _ = simulate_customers(n_customers, segments, random_seed=seed)
    customers.to_csv(folder / "customers.csv", index=False)
    (folder / "truth.json").write_text(json.dumps({"segments": segments, "horizon": HORIZON}))


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory of this process and of its finished children, in MiB."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


PARAMETRISATIONS = {"centered": True, "non-centered": False, "auto": "auto"}


def bayesclv_job(folder: Path, draws: int, chains: int, seed: int, variant: str,
                 centered: bool | str) -> dict:
    """Fit and predict with bayesclv on the table in ``folder`` (run in its own process)."""
    import bayesclv
    from bayesclv.estimator.retention import RetentionModel
    from bayesclv.estimator.spend import SpendModel

    warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
    customers = pd.read_csv(folder / "customers.csv")
    truth = json.loads((folder / "truth.json").read_text())
    part_seconds: dict[str, float] = {}
    part_started: dict[str, float] = {}

    def timed(cls: type, part: str) -> None:
        # From the start of the part's fit to its end; in CLVModel.fit the two parts
        # overlap (one's Python work beside the other's sampling).
        begin, end = cls._begin_fit, cls._end_fit

        def begin_fit(self, *args, **kwargs):
            part_started[part] = time.perf_counter()
            return begin(self, *args, **kwargs)

        def end_fit(self, *args, **kwargs):
            result = end(self, *args, **kwargs)
            part_seconds[part] = time.perf_counter() - part_started[part]
            return result
        cls._begin_fit, cls._end_fit = begin_fit, end_fit

    timed(RetentionModel, "retention")
    timed(SpendModel, "spend")
    method, sampler = VARIANTS[variant]
    model = bayesclv.CLVModel("weibull", "gamma_gamma", draws=draws, tune=draws, chains=chains,
                              method=method, sampler=sampler, random_seed=seed,
                              priors={"retention": {"centered": centered},
                                      "spend": {"centered": centered}})
    start = time.perf_counter()
    model.fit(customers)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(customers)
    predict_s = time.perf_counter() - start

    segments = list(truth["segments"])
    t = np.arange(1, truth["horizon"] + 1)
    survival = model.retention_curve(int(truth["horizon"]), segments).sel(period=t).mean(
        ("chain", "draw")).to_numpy()
    true_survival = np.array([np.exp(-(t / s["eta"]) ** s["k"])
                              for s in truth["segments"].values()])
    params = model.spend_model_.segment_params(segments)
    mean_spend = model.spend_model_.family_.segment_mean_spend(params).mean(axis=0)
    true_spend = np.array([s["p"] * s["gamma"] / (s["q"] - 1.0)
                           for s in truth["segments"].values()])
    diagnostics = model.diagnostics() if method == "nuts" else None
    rows = {}
    for part, error in (("retention", float(np.abs(survival - true_survival).mean())),
                        ("spend", float(np.mean(np.abs(mean_spend - true_spend) / true_spend)))):
        sampling, ess_per_s = np.nan, np.nan
        if diagnostics is not None:
            # Both samplers' seconds, compiling the model's functions included.
            sampling = getattr(model, f"{part}_model_").sampling_seconds_
            ess_per_s = float(diagnostics.xs(part, level="model")["ess_bulk"].min()) / sampling
        rows[part] = {"fit_s": part_seconds[part], "sampling_s": sampling,
                      "compile_s": part_seconds[part] - sampling, "ess_per_s": ess_per_s,
                      "recovery": error}
    self_mib, children_mib = peak_rss_mib()
    return {"tool": variant, "status": "ok", "n_customers": len(customers), "fit_s": fit_s,
            "predict_s": predict_s, "parts": rows, "peak_rss_mib": self_mib,
            "peak_rss_children_mib": children_mib, "bayesclv": bayesclv.__version__}


def run_tool(command: list[str], out: Path, timeout: float) -> dict:
    """Run one tool's process; its JSON, or why there is none."""
    start = time.perf_counter()
    try:
        process = subprocess.run(command, check=False, timeout=timeout, capture_output=True,
                                 text=True)
    except subprocess.TimeoutExpired:
        return {"status": f"stopped after {timeout:.0f} s"}
    if not out.exists():
        return {"status": f"failed after {time.perf_counter() - start:.0f} s",
                "stderr": process.stderr[-3000:]}
    return json.loads(out.read_text())


def table_rows(size: int, results: dict[str, dict]) -> list[dict]:
    ours = results.get("bayesclv", {})
    reference = ours.get("parts") if ours.get("status") == "ok" else None
    rows = []
    for variant in VARIANTS:
        result = results.get(variant)
        if result is None:
            continue
        if result.get("status") != "ok":
            rows.append({"size": size, "tool": variant, "status": result.get("status")})
            continue
        for part in ("retention", "spend"):
            row = result["parts"][part]
            ratio = row["fit_s"] / reference[part]["fit_s"] if reference else np.nan
            rows.append({"size": size, "tool": f"{variant} ({part})",
                         "build s": row["compile_s"], "sampling s": row["sampling_s"],
                         "fit s": row["fit_s"], "predict s": np.nan, "peak RSS MiB": np.nan,
                         "ESS/s": row["ess_per_s"], "recovery": row["recovery"],
                         "ratio": ratio, "status": "ok"})
        rows.append({"size": size, "tool": f"{variant} (CLVModel)", "build s": np.nan,
                     "sampling s": np.nan, "fit s": result["fit_s"],
                     "predict s": result["predict_s"],
                     "peak RSS MiB": result["peak_rss_mib"] + result["peak_rss_children_mib"],
                     "ESS/s": np.nan, "recovery": np.nan, "ratio": np.nan, "status": "ok"})
    for tool, part in COMPETITORS.items():
        result = results.get(tool)
        if result is None:
            continue
        row = {"size": size, "tool": tool, "status": result.get("status")}
        if result.get("status") == "ok":
            recovery = result["recovery"]
            row.update({
                "build s": result.get("compile_s") or np.nan,
                "sampling s": result.get("sampling_s") or np.nan, "fit s": result["fit_s"],
                "predict s": result["predict_s"],
                "peak RSS MiB": result["peak_rss_mib"] + result.get("peak_rss_children_mib", 0),
                "ESS/s": result.get("ess_per_s") or np.nan,
                "recovery": recovery.get("survival_mae", recovery.get("mean_spend_mare")),
            })
            if reference:
                row["ratio"] = result["fit_s"] / reference[part]["fit_s"]
        rows.append(row)
    return rows


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def _markdown(table: pd.DataFrame) -> str:
    """A Markdown table (pandas' to_markdown needs the optional tabulate package)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:,.3g}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds after which a tool's run is stopped")
    parser.add_argument("--tools", nargs="+", default=[*VARIANTS, *COMPETITORS],
                        choices=[*VARIANTS, *COMPETITORS])
    parser.add_argument("--parametrisation", choices=list(PARAMETRISATIONS),
                        default="auto",
                        help="bayesclv's hierarchy: the library default 'auto', or forced "
                             "centred or non-centred")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 customers, 4 segments, 200 draws, 120 s limit")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--job", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.job:
        result = bayesclv_job(args.data, args.draws, args.chains, args.seed, args.job,
                              centered=PARAMETRISATIONS[args.parametrisation])
        args.out.write_text(json.dumps(result))
        return
    if args.quick:
        args.sizes, args.segments, args.draws, args.timeout = [2000], 4, 200, 120.0
    if not ANCHORS_PYTHON.exists():
        missing = [t for t in args.tools if t in COMPETITORS]
        if missing:
            print(f"{ANCHORS_PYTHON} not found (make bench-venv): skipping {missing}")
        args.tools = [t for t in args.tools if t not in COMPETITORS]

    rows, failures = [], []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_dataset(folder, size, args.segments, args.seed)
            results = {}
            for tool in args.tools:
                out = folder / f"{tool}.json"
                if tool in VARIANTS:
                    command = [sys.executable, __file__, "--job", tool]
                    command += ["--parametrisation", args.parametrisation]
                else:
                    command = [str(ANCHORS_PYTHON), str(HERE / "anchors.py"), "--tool", tool]
                command += ["--data", str(folder), "--draws", str(args.draws), "--chains",
                            str(args.chains), "--seed", str(args.seed), "--out", str(out)]
                results[tool] = run_tool(command, out, args.timeout)
                if results[tool].get("status", "").startswith("failed"):
                    failures.append((tool, results[tool]))
                print(f"{size:>9,} {tool}: {results[tool].get('status')}", flush=True)
        rows += table_rows(size, results)
    table = pd.DataFrame(rows)
    text = table.to_string(index=False, na_rep="", float_format=lambda v: f"{v:,.3g}")
    header = (f"{machine()}; {args.segments} segments, {args.chains} chains x {args.draws} "
              f"draws (and as many tuning steps), limit {args.timeout:.0f} s per tool; "
              f"bayesclv parametrisation: {args.parametrisation}")
    print(header)
    print(text)
    if args.markdown:
        args.markdown.write_text(header + "\n\n" + _markdown(table) + "\n")
    # A competitor may fail or be stopped; bayesclv crashing is an error of this project.
    crashed = [(tool, result) for tool, result in failures if tool in VARIANTS]
    for tool, result in crashed:
        print(f"\n{tool} failed:\n{result.get('stderr', '')}", file=sys.stderr)
    if crashed:
        sys.exit(1)


if __name__ == "__main__":
    main()
