"""Fit the tools users would otherwise pick on a benchmark customer table; write one JSON.

Usage::

    make bench-venv
    benchmarks/.venv-anchors/bin/python benchmarks/anchors.py --data DIR \\
        --tool pymc_marketing_sbg --draws 1000 --chains 2 --seed 0 --out result.json

The script runs in its own environment, ``benchmarks/.venv-anchors`` (pymc-marketing
pins an older PyMC than bayesclv), and does not import bayesclv: it reads the table the
benchmark driver wrote, fits one tool, and prints the result as JSON, also written to
``--out`` once the run is over (nothing is written if the process is killed).

Input
-----
``DIR/customers.csv``, one row per customer: ``customer_id``, ``segment``, ``tenure``
(periods observed, >= 1), ``churned`` (churned at the end of period ``tenure``: lifetime
``L = tenure``; otherwise ``L > tenure``), ``entry`` (must be 0: none of these tools handles
left truncation), ``n_periods_active`` (periods with a purchase, >= 1) and ``mean_spend``
(average spend per active period, > 0).

``DIR/truth.json``: ``{"segments": {name: {"eta", "k", "p", "q", "gamma"}}, "horizon": H}``.
True survival ``S(t) = P(L > t) = exp(-(t / eta) ** k)``; true mean spend per period
``p * gamma / (q - 1)`` (gamma-gamma: ``z ~ Gamma(p, nu)``, ``nu ~ Gamma(q, rate=gamma)``).

Tools
-----
``pymc_marketing_sbg``
    pymc-marketing's ``ShiftedBetaGeoModel`` (contractual retention, sBG:
    ``S(t) = B(alpha, beta + t) / B(alpha, beta)``), one cohort per segment, fitted by NUTS
    with its default priors. Its data are ``recency`` and ``T`` with ``P(L = recency)`` for
    a churned customer and ``P(L >= T) = S(T - 1)`` for one still active (``recency == T``),
    so a customer churned at ``tenure`` has ``recency = tenure`` and one still active has
    ``recency = tenure + 1``, both with ``T = tenure + 1``. The model insists on one ``T``
    per cohort (customers acquired together), which a segment acquired over many periods
    does not have; its likelihood and predictions already take one ``T`` per customer, so
    a subclass drops only that check. ``S(t)`` per segment is the posterior mean of the
    model's ``expected_probability_alive``; the per-customer prediction is
    ``expected_residual_lifetime`` (discount rate :data:`DISCOUNT_RATE`).
``pymc_marketing_gg``
    pymc-marketing's ``GammaGammaModel`` (``frequency = n_periods_active``,
    ``monetary_value = mean_spend``) with its default priors. It has no segments, so one
    model is fitted per segment and the times are summed. Segment mean spend: posterior
    mean of ``p * v / (q - 1)``; per-customer prediction: ``expected_customer_spend``.
``lifelines_weibull``
    lifelines' ``WeibullFitter`` per segment by maximum likelihood, interval-censored to
    respect discrete time: a customer churned at ``tenure`` has a lifetime in
    ``(tenure - 1, tenure]``, one still active in ``(tenure, inf)``. ``S(t)`` is its
    ``survival_function_at_times`` (``exp(-(t / lambda_) ** rho_)``, so ``lambda_``
    estimates ``eta`` and ``rho_`` estimates ``k``); the per-customer prediction is the
    expected residual lifetime over the horizon, ``sum_j S(tenure + j) / S(tenure)``
    discounted at :data:`DISCOUNT_RATE`.
``lifetimes_gg``
    lifetimes' ``GammaGammaFitter`` per segment by maximum likelihood (same columns as
    ``pymc_marketing_gg``). Segment mean spend ``p * v / (q - 1)``; per-customer prediction:
    ``conditional_expected_average_profit``.

Output
------
``tool``, ``status`` (``"ok"`` or ``"error"`` with ``error``), ``n_customers``, ``fit_s``
(wall time of the fits), ``compile_s`` and ``sampling_s`` (PyMC tools: ``sampling_s`` is
PyMC's own ``sampling_time``, tuning included; ``compile_s`` the rest of the fit call:
graph construction, compilation, initialisation, conversion of the trace), ``predict_s``
(per-customer predictions for all customers), ``peak_rss_mib`` (this process; with
several chains PyMC samples in child processes, reported as ``peak_rss_children_mib``),
``ess_per_s`` (minimum bulk ESS over the free parameters per second of sampling; null for
maximum-likelihood tools), ``recovery`` (``survival_mae``: mean over segments and
``t = 1..H`` of ``|S_hat(t) - S(t)|``, or ``mean_spend_mare``: mean over segments of the
absolute relative error of the mean spend), ``diagnostics`` (PyMC tools: minimum bulk ESS,
maximum R-hat, divergences), ``estimates`` (fitted parameters per segment), ``versions``,
``notes``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Discount rate per period of the per-customer residual-lifetime predictions.
DISCOUNT_RATE = 0.01

CUSTOMER_DTYPES = {"customer_id": str, "segment": str, "tenure": "int64", "churned": bool,
                   "entry": "int64", "n_periods_active": "int64", "mean_spend": "float64"}

#: Packages whose versions are reported, per tool.
PACKAGES = {
    "pymc_marketing_sbg": ("pymc-marketing", "pymc", "pytensor", "arviz"),
    "pymc_marketing_gg": ("pymc-marketing", "pymc", "pytensor", "arviz"),
    "lifelines_weibull": ("lifelines", "autograd", "scipy"),
    "lifetimes_gg": ("lifetimes", "autograd", "scipy"),
}


@dataclass(frozen=True)
class Benchmark:
    """The customer table and the truth it was drawn from.

    Attributes
    ----------
    customers : pandas.DataFrame
        One row per customer (columns of :data:`CUSTOMER_DTYPES`).
    segments : pandas.DataFrame
        Indexed by segment: ``eta``, ``k``, ``p``, ``q``, ``gamma``.
    horizon : int
        Periods ``1..horizon`` over which survival is compared.
    """

    customers: pd.DataFrame
    segments: pd.DataFrame
    horizon: int


@dataclass(frozen=True)
class Sampling:
    """NUTS settings shared by the PyMC tools."""

    draws: int
    tune: int
    chains: int
    seed: int

    def fit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of pymc-marketing's ``fit`` (passed on to ``pm.sample``)."""
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                "cores": min(self.chains, os.cpu_count() or 1), "random_seed": self.seed,
                "progressbar": False, "compute_convergence_checks": False}


def load_benchmark(data_dir: Path) -> Benchmark:
    """Read ``customers.csv`` and ``truth.json`` from ``data_dir``."""
    customers = pd.read_csv(data_dir / "customers.csv", dtype=CUSTOMER_DTYPES)
    if (customers["entry"] > 0).any():
        raise ValueError("customers with entry > 0 (left truncation) are not supported")
    truth = json.loads((data_dir / "truth.json").read_text())
    segments = pd.DataFrame(truth["segments"]).T.astype(float)
    return Benchmark(customers, segments, int(truth["horizon"]))


def true_survival(bench: Benchmark) -> pd.DataFrame:
    """``S(t) = exp(-(t / eta) ** k)``: one row per segment, columns ``t = 1..horizon``."""
    t = np.arange(1, bench.horizon + 1, dtype=float)
    eta = bench.segments["eta"].to_numpy()[:, None]
    k = bench.segments["k"].to_numpy()[:, None]
    return pd.DataFrame(np.exp(-((t / eta) ** k)), index=bench.segments.index, columns=t)


def true_mean_spend(bench: Benchmark) -> pd.Series:
    """Segment mean spend per period, ``p * gamma / (q - 1)``."""
    seg = bench.segments
    return seg["p"] * seg["gamma"] / (seg["q"] - 1.0)


def survival_mae(estimate: pd.DataFrame, bench: Benchmark) -> float:
    """Mean of ``|S_hat(t) - S(t)|`` over the segments of ``estimate`` and ``t = 1..H``."""
    truth = true_survival(bench).loc[estimate.index]
    return float(np.abs(estimate.to_numpy() - truth.to_numpy()).mean())


def mean_spend_mare(estimate: pd.Series, bench: Benchmark) -> float:
    """Mean over segments of ``|m_hat - m| / m``."""
    truth = true_mean_spend(bench).loc[estimate.index]
    return float((np.abs(estimate - truth) / truth).mean())


def by_segment(customers: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The table split by segment, in order of first appearance."""
    return list(customers.groupby("segment", sort=False))


def spend_table(customers: pd.DataFrame) -> pd.DataFrame:
    """Gamma-gamma columns: ``frequency`` (active periods) and ``monetary_value``."""
    return pd.DataFrame({"customer_id": customers["customer_id"].to_numpy(),
                         "frequency": customers["n_periods_active"].to_numpy(),
                         "monetary_value": customers["mean_spend"].to_numpy()})


# --- PyMC (pymc-marketing) ------------------------------------------------------------


def timed_fit(model: Any, data: pd.DataFrame, sampling: Sampling) -> tuple[Any, float, float]:
    """Fit a pymc-marketing model by NUTS.

    Returns
    -------
    idata : xarray.DataTree
    fit_s : float
        Wall time of ``model.fit``.
    sampling_s : float
        PyMC's ``sampling_time`` (tuning and draws).
    """
    start = time.perf_counter()
    idata = model.fit(data, method="mcmc", **sampling.fit_kwargs())
    fit_s = time.perf_counter() - start
    return idata, fit_s, float(idata["sample_stats"].attrs["sampling_time"])


def posterior_diagnostics(model: Any, idata: Any) -> dict[str, float]:
    """Minimum bulk ESS and maximum rank R-hat over the free parameters; divergences."""
    import arviz as az

    names = [rv.name for rv in model.model.free_RVs]
    posterior = idata["posterior"].to_dataset()[names]
    ess = az.ess(posterior, method="bulk")
    rhat = az.rhat(posterior)
    return {
        "min_ess_bulk": float(min(ess[name].min() for name in names)),
        "max_rhat": float(max(rhat[name].max() for name in names)),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
    }


def posterior_mean(values: Any) -> np.ndarray:
    """Mean over chains and draws of an xarray object, as a numpy array."""
    return np.asarray(values.mean(("chain", "draw")))


def sbg_table(customers: pd.DataFrame) -> pd.DataFrame:
    """pymc-marketing's sBG columns: ``customer_id``, ``recency``, ``T``, ``cohort``.

    Churned at ``tenure``: ``recency = tenure < T = tenure + 1`` (``P(L = tenure)``).
    Still active: ``recency = T = tenure + 1`` (``P(L >= tenure + 1) = S(tenure)``).
    """
    tenure = customers["tenure"].to_numpy(np.int64)
    churned = customers["churned"].to_numpy(bool)
    return pd.DataFrame({"customer_id": customers["customer_id"].to_numpy(),
                         "recency": np.where(churned, tenure, tenure + 1),
                         "T": tenure + 1,
                         "cohort": customers["segment"].to_numpy()})


def per_customer_sbg_model() -> Any:
    """A ``ShiftedBetaGeoModel`` that accepts a different ``T`` per customer in a cohort."""
    from pymc_marketing.clv import ShiftedBetaGeoModel

    class PerCustomerShiftedBetaGeoModel(ShiftedBetaGeoModel):
        """``ShiftedBetaGeoModel`` without the check of one ``T`` per cohort.

        The likelihood (``pm.Censored`` with one upper bound per customer) and the
        prediction methods already work per customer.
        """

        def _validate_cohorts(self, data: pd.DataFrame, check_pred_data: bool = False,
                              check_param_dims: Any = None) -> Any:
            if not check_pred_data:
                data = data.assign(T=0)  # the remaining checks still run
            return super()._validate_cohorts(data, check_pred_data, check_param_dims)

    return PerCustomerShiftedBetaGeoModel()


def sbg_survival(model: Any, cohorts: list[str], horizon: int) -> pd.DataFrame:
    """Posterior mean ``S(t)``, ``t = 1..horizon``, per cohort, by ``expected_probability_alive``.

    That method returns ``S(T + future_t)``: one pseudo-customer per cohort and ``t`` with
    ``T = t`` and ``future_t = 0`` gives ``S(t)``.
    """
    t = np.arange(1, horizon + 1)
    grid = pd.DataFrame({"customer_id": [f"{c}|{i}" for c in cohorts for i in t],
                         "T": np.tile(t, len(cohorts)),
                         "cohort": np.repeat(cohorts, horizon)})
    alive = model.expected_probability_alive(grid, future_t=0).mean(("chain", "draw"))
    values = pd.Series(np.asarray(alive), index=np.asarray(alive["customer_id"]))
    matrix = values.loc[grid["customer_id"]].to_numpy().reshape(len(cohorts), horizon)
    return pd.DataFrame(matrix, index=cohorts, columns=t.astype(float))


def run_pymc_marketing_sbg(bench: Benchmark, sampling: Sampling) -> dict[str, Any]:
    """``ShiftedBetaGeoModel``, one cohort per segment (see the module docstring)."""
    data = sbg_table(bench.customers)
    model = per_customer_sbg_model()
    idata, fit_s, sampling_s = timed_fit(model, data, sampling)

    start = time.perf_counter()
    posterior_mean(model.expected_residual_lifetime(data, discount_rate=DISCOUNT_RATE))
    predict_s = time.perf_counter() - start

    cohorts = [str(c) for c in model.cohorts]
    survival = sbg_survival(model, cohorts, bench.horizon)
    diagnostics = posterior_diagnostics(model, idata)
    alpha = posterior_mean(model.fit_result["alpha"].sel(cohort=cohorts))
    beta = posterior_mean(model.fit_result["beta"].sel(cohort=cohorts))
    return {
        "fit_s": fit_s, "compile_s": fit_s - sampling_s, "sampling_s": sampling_s,
        "predict_s": predict_s,
        "ess_per_s": diagnostics["min_ess_bulk"] / sampling_s,
        "recovery": {"survival_mae": survival_mae(survival, bench)},
        "diagnostics": diagnostics,
        "estimates": {c: {"alpha": float(a), "beta": float(b)}
                      for c, a, b in zip(cohorts, alpha, beta, strict=True)},
        "notes": "one cohort per segment, default priors (phi ~ Uniform(0, 1), "
                 "kappa ~ Pareto(1, 1) per cohort); T = tenure + 1 varies within a cohort, "
                 "so the check of one T per cohort is removed in a subclass (likelihood "
                 "and predictions unchanged); S(t) = posterior mean of "
                 "expected_probability_alive; predict_s = expected_residual_lifetime "
                 f"(discount {DISCOUNT_RATE}) for all customers, posterior mean",
    }


def run_pymc_marketing_gg(bench: Benchmark, sampling: Sampling) -> dict[str, Any]:
    """``GammaGammaModel``, one model per segment (see the module docstring)."""
    from pymc_marketing.clv import GammaGammaModel

    fit_s = sampling_s = predict_s = 0.0
    min_ess, max_rhat, divergences = np.inf, 0.0, 0
    estimates: dict[str, dict[str, float]] = {}
    for segment, customers in by_segment(bench.customers):
        data = spend_table(customers)
        model = GammaGammaModel()
        idata, seg_fit_s, seg_sampling_s = timed_fit(model, data, sampling)
        fit_s, sampling_s = fit_s + seg_fit_s, sampling_s + seg_sampling_s

        start = time.perf_counter()
        posterior_mean(model.expected_customer_spend(data))
        predict_s += time.perf_counter() - start

        diagnostics = posterior_diagnostics(model, idata)
        min_ess = min(min_ess, diagnostics["min_ess_bulk"])
        max_rhat = max(max_rhat, diagnostics["max_rhat"])
        divergences += diagnostics["divergences"]
        post = model.fit_result
        estimates[str(segment)] = {
            "p": float(post["p"].mean()), "q": float(post["q"].mean()),
            "v": float(post["v"].mean()),
            "mean_spend": float((post["p"] * post["v"] / (post["q"] - 1.0)).mean()),
        }
    spend = pd.Series({s: e["mean_spend"] for s, e in estimates.items()})
    return {
        "fit_s": fit_s, "compile_s": fit_s - sampling_s, "sampling_s": sampling_s,
        "predict_s": predict_s, "ess_per_s": min_ess / sampling_s,
        "recovery": {"mean_spend_mare": mean_spend_mare(spend, bench)},
        "diagnostics": {"min_ess_bulk": min_ess, "max_rhat": max_rhat,
                        "divergences": divergences},
        "estimates": estimates,
        "notes": "GammaGammaModel has no segments: one model per segment, times summed, "
                 "ess_per_s = minimum ESS over all segments / total sampling time; default "
                 "priors (p, q ~ Weibull(2, 1), v ~ Weibull(2, 10)); mean spend = posterior "
                 "mean of p * v / (q - 1); predict_s = expected_customer_spend for all "
                 "customers, posterior mean",
    }


# --- Maximum likelihood (lifelines, lifetimes) -------------------------------------------


def weibull_residual_lifetime(fitter: Any, tenure: np.ndarray, horizon: int) -> np.ndarray:
    """``sum_{j=1..H} S(tenure + j) / S(tenure) / (1 + d) ** j`` per customer."""
    j = np.arange(1, horizon + 1)
    times = (tenure[:, None] + j[None, :]).ravel()
    ahead = fitter.survival_function_at_times(times).to_numpy().reshape(len(tenure), horizon)
    now = fitter.survival_function_at_times(tenure).to_numpy()
    return (ahead / now[:, None] / (1.0 + DISCOUNT_RATE) ** j).sum(axis=1)


def run_lifelines_weibull(bench: Benchmark, sampling: Sampling) -> dict[str, Any]:
    """``WeibullFitter`` per segment, interval-censored (see the module docstring)."""
    from lifelines import WeibullFitter

    fit_s = predict_s = 0.0
    t = np.arange(1, bench.horizon + 1, dtype=float)
    survival: dict[str, np.ndarray] = {}
    estimates: dict[str, dict[str, float]] = {}
    for segment, customers in by_segment(bench.customers):
        tenure = customers["tenure"].to_numpy(float)
        churned = customers["churned"].to_numpy(bool)
        lower = np.where(churned, tenure - 1.0, tenure)
        upper = np.where(churned, tenure, np.inf)

        start = time.perf_counter()
        fitter = WeibullFitter().fit_interval_censoring(lower, upper)
        fit_s += time.perf_counter() - start

        start = time.perf_counter()
        weibull_residual_lifetime(fitter, tenure, bench.horizon)
        predict_s += time.perf_counter() - start

        survival[str(segment)] = fitter.survival_function_at_times(t).to_numpy()
        estimates[str(segment)] = {"lambda_": float(fitter.lambda_), "rho_": float(fitter.rho_)}
    estimate = pd.DataFrame(survival, index=t).T
    return {
        "fit_s": fit_s, "predict_s": predict_s,
        "recovery": {"survival_mae": survival_mae(estimate, bench)},
        "estimates": estimates,
        "notes": "one WeibullFitter per segment, times summed; churned customers in "
                 "(tenure - 1, tenure], active ones in (tenure, inf); predict_s = "
                 f"residual lifetime over {bench.horizon} periods (discount {DISCOUNT_RATE}) "
                 "from survival_function_at_times for all customers",
    }


def run_lifetimes_gg(bench: Benchmark, sampling: Sampling) -> dict[str, Any]:
    """``GammaGammaFitter`` per segment (see the module docstring)."""
    from lifetimes import GammaGammaFitter

    fit_s = predict_s = 0.0
    estimates: dict[str, dict[str, float]] = {}
    for segment, customers in by_segment(bench.customers):
        frequency = customers["n_periods_active"]
        monetary = customers["mean_spend"]

        start = time.perf_counter()
        fitter = GammaGammaFitter().fit(frequency, monetary)
        fit_s += time.perf_counter() - start

        start = time.perf_counter()
        fitter.conditional_expected_average_profit(frequency, monetary)
        predict_s += time.perf_counter() - start

        p, q, v = (float(fitter.params_[name]) for name in ("p", "q", "v"))
        estimates[str(segment)] = {"p": p, "q": q, "v": v, "mean_spend": p * v / (q - 1.0)}
    spend = pd.Series({s: e["mean_spend"] for s, e in estimates.items()})
    return {
        "fit_s": fit_s, "predict_s": predict_s,
        "recovery": {"mean_spend_mare": mean_spend_mare(spend, bench)},
        "estimates": estimates,
        "notes": "one GammaGammaFitter per segment (no penalizer), times summed; mean spend "
                 "= p * v / (q - 1); predict_s = conditional_expected_average_profit for "
                 "all customers",
    }


TOOLS: dict[str, Callable[[Benchmark, Sampling], dict[str, Any]]] = {
    "pymc_marketing_sbg": run_pymc_marketing_sbg,
    "pymc_marketing_gg": run_pymc_marketing_gg,
    "lifelines_weibull": run_lifelines_weibull,
    "lifetimes_gg": run_lifetimes_gg,
}


# --- Driver ---------------------------------------------------------------------------


def package_versions(tool: str) -> dict[str, str | None]:
    """Installed versions of the tool's packages, numpy, pandas and Python."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in (*PACKAGES[tool], "numpy", "pandas"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def peak_rss_mib(who: int) -> float:
    """Peak resident set size in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss / 1024


def run(tool: str, data_dir: Path, sampling: Sampling) -> dict[str, Any]:
    """Fit ``tool`` and return the result; an exception gives ``status = "error"``."""
    result: dict[str, Any] = {
        "tool": tool, "status": "ok", "n_customers": None, "fit_s": None, "compile_s": None,
        "sampling_s": None, "predict_s": None, "peak_rss_mib": None,
        "peak_rss_children_mib": None, "ess_per_s": None, "recovery": None,
        "diagnostics": None, "estimates": None, "versions": package_versions(tool),
        "draws": sampling.draws, "tune": sampling.tune, "chains": sampling.chains,
        "seed": sampling.seed, "notes": "",
    }
    try:
        bench = load_benchmark(data_dir)
        result["n_customers"] = len(bench.customers)
        result.update(TOOLS[tool](bench, sampling))
    except Exception as error:  # one failing tool still reports
        traceback.print_exc(file=sys.stderr)
        result.update(status="error", error=f"{type(error).__name__}: {error}")
    result["peak_rss_mib"] = peak_rss_mib(resource.RUSAGE_SELF)
    result["peak_rss_children_mib"] = peak_rss_mib(resource.RUSAGE_CHILDREN)
    return result


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write ``result`` to ``path`` through a temporary file, so it is never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with customers.csv and truth.json")
    parser.add_argument("--tool", choices=sorted(TOOLS), required=True)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None, help="defaults to --draws")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sampling = Sampling(draws=args.draws, tune=args.draws if args.tune is None else args.tune,
                        chains=args.chains, seed=args.seed)
    result = run(args.tool, args.data, sampling)
    write_json(result, args.out)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["status"] == "ok" else 1)


if __name__ == "__main__":
    main()
