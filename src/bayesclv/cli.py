"""The ``bayesclv`` command.

``bayesclv demo`` values the bundled example customers; ``bayesclv report DATA --out DIR``
fits a CLV model to a customer table or a transaction log and writes a self-contained
HTML report with the per-customer and per-segment tables as CSV files;
``bayesclv backtest LOG --cutoff DATE --horizon H --out DIR`` fits on the log up to the
cutoff and scores the forecasts on what came after; ``bayesclv fit DATA --out model.nc``
fits and saves a model (with a model card) and ``bayesclv score MODEL DATA --out OUT``
predicts it over a CSV or Parquet table in chunks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bayesclv.data import PERIOD_UNITS, summarize
from bayesclv.datasets import load_example
from bayesclv.estimator import CLVModel
from bayesclv.exceptions import DataValidationError
from bayesclv.families import RETENTION_FAMILIES, SPEND_FAMILIES

__all__ = ["main"]

# The commands fit with the library's own sampling defaults (4 chains x 1,000 draws).
_SAMPLING = {key: value for key, value in CLVModel().get_params().items()
             if key in ("draws", "tune", "chains")}


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
    if "strategy" in report.columns:
        table["strategy"] = report["strategy"]
    return table.to_string()


def _demo(args: argparse.Namespace) -> int:
    if args.out:
        _check_out_file(args.out)
    customers = load_example()
    print(f"Example data: {len(customers):,} customers, {customers['segment'].nunique()} "
          f"segments, periods of one {customers.attrs['period']}.")
    model = CLVModel(
        retention=args.retention, spend=args.spend, discount_rate=args.discount_rate,
        horizon=args.horizon, margin=args.margin, method=args.method, draws=args.draws,
        tune=args.tune, chains=args.chains, random_seed=args.seed,
    )
    start = time.perf_counter()
    model.fit(customers)
    fitted = time.perf_counter()
    predictions = model.predict(customers)
    report = model.segment_report(customers)
    done = time.perf_counter()
    print(f"Fitted {args.retention} retention + {args.spend} spend ({args.method}, "
          f"{args.chains} chains x {args.draws} draws) in {fitted - start:.1f} s; "
          f"valued customers in {done - fitted:.1f} s.")
    horizon = "until negligible" if args.horizon is None else f"{args.horizon} months"
    print(f"Residual CLV at margin {args.margin:g}, discount {args.discount_rate:g}/month, "
          f"horizon {horizon}; intervals are {model.hdi_prob:.0%} HDIs.\n")
    print(_format_report(report))
    family = model.retention_model_.family_
    retention = model.retention_model_.posterior_[list(family.param_names)].mean(
        ("chain", "draw"))
    note = "; k < 1: retention rises with tenure" if args.retention == "weibull" else ""
    print(f"\n{args.retention} retention per segment (posterior means{note}):")
    print(retention.to_dataframe().round(2).to_string())
    if args.out:
        predictions.to_csv(args.out, index=False)
        print(f"\nPer-customer predictions ({len(predictions):,} rows) written to {args.out}")
    return 0


_RFM_COLUMNS = ("recency", "frequency", "monetary")


#: The strings pandas reads as missing by default; kept for the numeric columns only.
_MISSING = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
            "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def _read_csv(path: str, text_columns: Sequence[str | None]) -> pd.DataFrame:
    """A CSV with its id and segment columns read as text, exactly as written.

    An id ``007`` stays ``"007"`` and a segment named ``NA`` stays ``"NA"``; the other
    columns are read as usual (numbers inferred, the usual markers of missing values).
    """
    header = pd.read_csv(path, nrows=0).columns
    text = [c for c in text_columns if c is not None and c in header]
    return pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False,
                       na_values={c: _MISSING for c in header if c not in text})


def _check_out_dir(out: str) -> None:
    """Fail before fitting if the report folder cannot be written (nothing is created)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--out {out!r} exists and is not a folder.")
    existing = path if path.exists() else next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"--out {out!r}: {str(existing)!r} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out!r}: {str(existing)!r} is not writable.")


def _check_out_file(out: str) -> None:
    """Fail before fitting if the predictions file cannot be written."""
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(f"--out {out!r} is a folder; give a file name.")
    _check_out_dir(str(path.parent))


def _load_customers(args: argparse.Namespace, *, auto_kmeans: bool = True
                    ) -> tuple[pd.DataFrame, str, str, str]:
    """The customer table, its segment column, how segments were made, and the source.

    ``auto_kmeans=False``: ``--segmenter auto`` never picks K-Means (for a saved model,
    whose segments must come from a column the scored tables also have).
    """
    transactions = args.inactivity is not None or args.end_col is not None
    raw = _read_csv(args.data, [args.customer_col,
                                args.segment_col or ("segment" if not transactions else None)])
    if transactions:
        table = summarize(
            raw, customer_col=args.customer_col, date_col=args.date_col,
            amount_col=args.amount_col, period=args.period or "M", end_col=args.end_col,
            inactivity=args.inactivity, segment_col=args.segment_col, refunds=args.refunds,
            date_format=args.date_format,
            # A family that conditions on log spend gets it from the log.
            log_spend="mean_log_spend" in SPEND_FAMILIES[
                getattr(args, "spend", "gamma_gamma")].inputs,
        )
        given_segment = "segment" if args.segment_col else None
        source = f"{args.data} (transaction log, {len(raw):,} rows, summarised by " \
                 f"{table.attrs['period']})"
    else:
        needed = [args.customer_col, "tenure", "churned", "n_periods_active", "mean_spend"]
        missing = [c for c in needed if c not in raw.columns]
        if missing:
            raise DataValidationError(
                f"{args.data} lacks the customer-table column(s) {missing} (it has "
                f"{list(raw.columns)}). For a transaction log, say how churn is observed "
                "with --inactivity K or --end-col COLUMN so that it is summarised first."
            )
        table = raw
        period = args.period or "period"
        table.attrs["period"] = PERIOD_UNITS.get(period.upper(), period)
        segment_col = args.segment_col or "segment"
        given_segment = segment_col if segment_col in table.columns else None
        source = f"{args.data} (customer table)"

    segmenter = args.segmenter
    if segmenter == "auto":
        if given_segment is not None:
            segmenter = "column"
        elif auto_kmeans and all(c in table.columns for c in _RFM_COLUMNS):
            segmenter = "kmeans"
        else:
            segmenter = "none"
    if segmenter == "column":
        if given_segment is None:
            raise DataValidationError(
                "--segmenter column needs a segment column: name it with --segment-col "
                f"(columns: {list(raw.columns)}), or use --segmenter kmeans, rfm or none."
            )
        return table, given_segment, f"column {args.segment_col or 'segment'!r}", source
    if segmenter == "kmeans":
        from bayesclv.segmentation import KMeansSegmenter

        n_segments = args.n_segments if args.n_segments == "auto" else int(args.n_segments)
        segmented = KMeansSegmenter(n_segments=n_segments, random_state=args.seed,
                                    segment_col="segment").fit_transform(table)
        how = f"K-Means on RFM, {segmented['segment'].nunique()} segments"
        return segmented, "segment", how, source
    if segmenter == "rfm":
        from bayesclv.segmentation import RFMSegmenter

        segmented = RFMSegmenter(segment_col="segment").fit_transform(table)
        return segmented, "segment", "RFM groups", source
    return table.drop(columns=["segment"], errors="ignore"), "segment", "one segment", source


def _report(args: argparse.Namespace) -> int:
    from bayesclv.report import write_report

    try:
        _check_out_dir(args.out)
        customers, segment_col, how, source = _load_customers(args)
        model = _clv_model(args, horizon=args.horizon, segment_col=segment_col,
                           customer_col=args.customer_col)
        start = time.perf_counter()
        model.fit(customers)
        fitted = time.perf_counter()
        paths = write_report(model, customers, args.out, title=args.title,
                             source=source, segmenter=how,
                             forecast_periods=args.forecast_periods or None)
    except (ValueError, OSError, ImportError, pd.errors.ParserError) as error:
        # One line, no traceback: bad input, unreadable files, a missing optional package.
        print(f"bayesclv report: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    done = time.perf_counter()
    report = pd.read_csv(paths["segment_report"], index_col="segment")
    print(f"{len(customers):,} customers, segments: {how}; fitted in {fitted - start:.1f} s "
          f"({args.method}), report in {done - fitted:.1f} s.\n")
    print(_format_report(report))
    print(f"\nTotal residual value: {report['total_mean'].sum():,.0f}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _clv_model(args: argparse.Namespace, **options: Any) -> CLVModel:
    """A CLVModel with the options of :func:`_add_model_options`, plus ``options``."""
    return CLVModel(
        retention=args.retention, spend=args.spend, discount_rate=args.discount_rate,
        margin=args.margin, cost_per_period=args.cost_per_period, method=args.method,
        draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
        **options)


def _add_model_options(parser: Any) -> None:
    """The CLV model's options, shared by the commands that fit one."""
    parser.add_argument("--retention", default="weibull", choices=sorted(RETENTION_FAMILIES))
    parser.add_argument("--spend", default="gamma_gamma", choices=sorted(SPEND_FAMILIES))
    parser.add_argument("--method", default="nuts", choices=["nuts", "map"])
    parser.add_argument("--draws", type=int, default=_SAMPLING["draws"])
    parser.add_argument("--tune", type=int, default=_SAMPLING["tune"])
    parser.add_argument("--chains", type=int, default=_SAMPLING["chains"])
    parser.add_argument("--discount-rate", type=float, default=0.01)
    parser.add_argument("--margin", type=float, default=0.3)
    parser.add_argument("--cost-per-period", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)


def _backtest(args: argparse.Namespace) -> int:
    from bayesclv.backtesting import backtest, write_backtest

    _check_out_dir(args.out)
    if args.segment_col and args.segmenter != "none":
        raise ValueError(f"--segment-col {args.segment_col} and --segmenter "
                         f"{args.segmenter} both make the segments: give one.")
    log = _read_csv(args.log, [args.customer_col, args.segment_col])
    model = _clv_model(args)
    segmenter = None
    how = f"column {args.segment_col!r}" if args.segment_col else "one segment"
    if args.segmenter == "kmeans":
        from bayesclv.segmentation import KMeansSegmenter

        n_segments = args.n_segments if args.n_segments == "auto" else int(args.n_segments)
        segmenter = KMeansSegmenter(n_segments=n_segments, random_state=args.seed,
                                    segment_col="segment")
        how = f"K-Means on RFM ({args.n_segments} segments), refitted at each cutoff"
    elif args.segmenter == "rfm":
        from bayesclv.segmentation import RFMSegmenter

        segmenter = RFMSegmenter(segment_col="segment")
        how = "RFM groups, refitted at each cutoff"
    start = time.perf_counter()
    result = backtest(
        log, cutoffs=args.cutoff, horizon=args.horizon, period=args.period,
        customer_col=args.customer_col, date_col=args.date_col, amount_col=args.amount_col,
        end_col=args.end_col, inactivity=args.inactivity, segment_col=args.segment_col,
        segmenter=segmenter, model=model, refunds=args.refunds, date_format=args.date_format,
    )
    done = time.perf_counter()
    paths = write_backtest(result, args.out, title=args.title,
                           source=f"{args.log} ({len(log):,} rows)",
                           meta={"segments": how,
                                 "model": f"{args.retention} retention + {args.spend} "
                                          f"spend ({args.method})"})
    summary = result.summary()
    print(f"Backtest of {args.log}: {len(result.cutoffs)} cutoff(s), {args.horizon} "
          f"{result.unit}s each, in {done - start:.1f} s.")
    for note in result.notes:
        print(note)
    print()
    print(summary[["nominal", "bayesclv", "bayesclv_low", "bayesclv_high", "baseline"]]
          .round(3).to_string())
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _add_backtest_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "backtest", help="fit before a cutoff and score the forecasts after it",
        description="Summarise the transaction log LOG up to each cutoff, fit a CLV model, "
                    "and compare its forecasts for the HORIZON periods after the cutoff "
                    "with what happened, beside a naive Berger-Nasr model. Writes "
                    "DIR/backtest.html (self-contained) and the tables as CSV files.")
    parser.add_argument("log", help="CSV transaction log (customer_id, date, amount)")
    parser.add_argument("--cutoff", required=True, action="append",
                        help="last day of the training data, the last day of a period "
                             "(e.g. 2024-06-30); repeat for a rolling-origin backtest")
    parser.add_argument("--horizon", required=True, type=int,
                        help="periods after the cutoff to score")
    parser.add_argument("--out", required=True, help="folder for the page and CSV files")
    churn = parser.add_mutually_exclusive_group(required=True)
    churn.add_argument("--inactivity", type=int, default=None,
                       help="transactional data: no purchase in the last K periods = churned")
    churn.add_argument("--end-col", default=None,
                       help="contractual data: column with each customer's end date")
    parser.add_argument("--period", default="M", help="D, W, M, Q or Y (default M)")
    parser.add_argument("--customer-col", default="customer_id")
    parser.add_argument("--date-col", default="date")
    parser.add_argument("--amount-col", default="amount")
    parser.add_argument("--refunds", default="error", choices=["error", "net"])
    parser.add_argument("--date-format", default=None)
    parser.add_argument("--segment-col", default=None,
                        help="column of the log with each customer's segment")
    parser.add_argument("--segmenter", default="none", choices=["none", "kmeans", "rfm"],
                        help="segment customers at each cutoff: K-Means on RFM or RFM "
                             "groups (default: the --segment-col column, or one segment)")
    parser.add_argument("--n-segments", default="4",
                        help="K-Means clusters (an int, or 'auto')")
    _add_model_options(parser)
    parser.add_argument("--title", default="Backtest of customer lifetime value")


def _fit(args: argparse.Namespace) -> int:
    _check_out_file(args.out)
    customers, segment_col, how, source = _load_customers(args, auto_kmeans=False)
    model = _clv_model(args, horizon=args.horizon, segment_col=segment_col,
                       customer_col=args.customer_col)
    start = time.perf_counter()
    model.fit(customers)
    fitted = time.perf_counter()
    saved = "the whole posterior"
    if args.thin is not None:
        # The card describes the fit (its diagnostics need every draw); the file keeps
        # the slim copy.
        saved = f"a scoring copy thinned to about {args.thin} posterior samples"
    card_text = model.card(source=source, segments=how, notes={"saved file": saved})
    path = (model.thin(args.thin) if args.thin is not None else model).save(args.out)
    card = path.with_name("card.md")
    card.write_text(card_text, encoding="utf-8")
    if not args.quiet:
        size = (sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                if path.is_dir() else path.stat().st_size)
        print(f"{len(customers):,} customers, segments: {how}; fitted in "
              f"{fitted - start:.1f} s ({args.method}).")
        print(f"model: {path} ({size / 2**20:.1f} MiB; {saved})\ncard: {card}")
    return 0


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def _score(args: argparse.Namespace) -> int:
    from bayesclv.io import load
    from bayesclv.scoring import score_file, table_format

    table_format(args.data)
    table_format(args.out)
    _check_out_file(args.out)
    model = load(args.model)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns \
        else None
    bar = None if args.quiet else _Bar()
    start = time.perf_counter()
    completed = False
    try:
        rows = score_file(model, args.data, args.out, chunk_size=args.chunk_size,
                          columns=columns, progress=bar)
        completed = True
    finally:
        if bar is not None:
            bar.close(completed)
    if not args.quiet:
        print(f"Scored {rows:,} customers in {time.perf_counter() - start:.1f} s: "
              f"{args.out}")
    return 0


class _Bar:
    """A tqdm progress bar fed with rows done, shown on a terminal only (none without tqdm).

    Made on the first chunk scored, so an error in the first chunk prints only the error;
    a bar cut short by an error is cleared.
    """

    def __init__(self) -> None:
        self._bar = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is None:
            try:
                from tqdm import tqdm
            except ImportError:  # the bar is a nicety: score without it
                return
            self._bar = tqdm(total=total, unit=" rows", unit_scale=True, file=sys.stderr,
                             disable=None)
        self._bar.update(done - self._bar.n)

    def close(self, completed: bool) -> None:
        if self._bar is not None:
            self._bar.leave = completed
            self._bar.close()


def _add_fit_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "fit", help="fit a CLV model to a CSV and save it (netCDF, no pickle)",
        description="Fit a CLV model to DATA and save it to OUT (netCDF), with a model "
                    "card (card.md) beside it. DATA is a customer table or, with "
                    "--inactivity or --end-col, a transaction log summarised first. "
                    "Segments come from a column (a segmenter fitted here could not be "
                    "applied when scoring).")
    parser.add_argument("data", help="CSV file: a customer table or a transaction log")
    parser.add_argument("--out", required=True, help="model file (e.g. model.nc)")
    _add_data_options(parser, ["auto", "column", "none"])
    _add_model_options(parser)
    parser.add_argument("--horizon", type=int, default=36)
    parser.add_argument("--thin", type=_positive, default=None,
                        help="save a slim scoring copy keeping about this many posterior "
                             "samples (CLVModel.thin; the full fit is not saved, the card "
                             "describes it)")
    parser.add_argument("--quiet", action="store_true", help="no summary")


def _add_score_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "score", help="predict a saved model over a CSV or Parquet table, streamed",
        description="Load MODEL (saved by `bayesclv fit` or model.save) and write its "
                    "predictions for every row of DATA (a customer table, .csv or .parquet) "
                    "to OUT (.csv or .parquet), in input order, reading and predicting "
                    "--chunk-size rows at a time.")
    parser.add_argument("model", help="saved model (.nc or .zarr)")
    parser.add_argument("data", help="customer table, .csv or .parquet")
    parser.add_argument("--out", required=True, help="predictions, .csv or .parquet")
    parser.add_argument("--chunk-size", type=_positive, default=100_000,
                        help="rows per chunk (default 100,000): memory grows with it")
    parser.add_argument("--columns", default=None,
                        help="comma-separated prediction columns to keep (the id is kept)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def _add_data_options(parser: Any, segmenters: list[str]) -> None:
    """How DATA is read: a customer table, or a transaction log summarised first."""
    log = parser.add_argument_group("transaction log (summarised into a customer table)")
    churn = log.add_mutually_exclusive_group()
    churn.add_argument("--inactivity", type=int, default=None,
                       help="transactional data: no purchase in the last K periods = churned")
    churn.add_argument("--end-col", default=None,
                       help="contractual data: column with each customer's end date")
    log.add_argument("--date-col", default="date")
    log.add_argument("--amount-col", default="amount")
    log.add_argument("--refunds", default="error", choices=["error", "net"])
    log.add_argument("--date-format", default=None)
    parser.add_argument("--customer-col", default="customer_id")
    parser.add_argument("--period", default=None,
                        help="period: D, W, M, Q or Y for a transaction log (default M); the "
                             "unit's name for a customer table")
    auto = ("column if there is one, else kmeans if RFM columns exist, else none"
            if "kmeans" in segmenters else "column if there is one, else none")
    named = {"auto": auto, "column": "a given column", "kmeans": "K-Means on RFM",
             "rfm": "RFM groups", "none": "one segment"}
    parser.add_argument("--segmenter", default=segmenters[0], choices=segmenters,
                        help="how customers are segmented: "
                             + "; ".join(f"{k}: {named[k]}" for k in segmenters))
    parser.add_argument("--segment-col", default=None,
                        help="segment column (default 'segment' for a customer table)")
    if "kmeans" in segmenters:
        parser.add_argument("--n-segments", default="4",
                            help="K-Means clusters (an int, or 'auto')")


def _add_report_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="fit a CLV model to a CSV and write an HTML report",
        description="Fit a CLV model to DATA and write DIR/report.html (self-contained), "
                    "DIR/predictions.csv and DIR/segment_report.csv. DATA is a customer "
                    "table (customer_id, tenure, churned, n_periods_active, mean_spend, "
                    "optional segment and entry) or, with --inactivity or --end-col, a "
                    "transaction log (customer_id, date, amount) summarised first.")
    report.add_argument("data", help="CSV file: a customer table or a transaction log")
    report.add_argument("--out", required=True, help="folder for the report and CSV files")
    _add_data_options(report, ["auto", "column", "kmeans", "rfm", "none"])
    _add_model_options(report)
    report.add_argument("--horizon", type=int, default=36)
    report.add_argument("--title", default="Customer lifetime value report")
    report.add_argument("--forecast-periods", type=int, default=12,
                        help="periods of the cash-flow forecast section (0: none)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesclv`` console script."""
    parser = argparse.ArgumentParser(prog="bayesclv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit and value the bundled example customers")
    demo.add_argument("--out", default=None, help="CSV file for per-customer predictions")
    demo.add_argument("--retention", default="weibull", choices=sorted(RETENTION_FAMILIES))
    # The bundled example has no log-spend columns: only the families it can feed.
    demo.add_argument("--spend", default="gamma_gamma", choices=sorted(
        name for name, family in SPEND_FAMILIES.items()
        if set(family.inputs) <= {"n_periods_active", "mean_spend"}))
    demo.add_argument("--method", default="nuts", choices=["nuts", "map"])
    demo.add_argument("--draws", type=int, default=_SAMPLING["draws"])
    demo.add_argument("--tune", type=int, default=_SAMPLING["tune"])
    demo.add_argument("--chains", type=int, default=_SAMPLING["chains"])
    demo.add_argument("--horizon", type=int, default=36)
    demo.add_argument("--discount-rate", type=float, default=0.01)
    demo.add_argument("--margin", type=float, default=0.3)
    demo.add_argument("--seed", type=int, default=0)
    _add_report_parser(commands)
    _add_backtest_parser(commands)
    _add_fit_parser(commands)
    _add_score_parser(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "report":
            return _report(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "fit":
            return _fit(args)
        if args.command == "score":
            return _score(args)
    except (ValueError, OSError, ImportError, pd.errors.ParserError) as error:
        # One line, no traceback: bad input, unwritable files, a missing optional package.
        print(f"bayesclv {args.command}: error: {' '.join(str(error).split())}",
              file=sys.stderr)
        return 2
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
