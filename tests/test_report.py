"""`bayesclv report`: a self-contained HTML report and CSV tables; rendered in a browser."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from _browser import assert_renders
from _simulated import N_SEGMENTS, customer_table, transaction_log

import bayesclv
from bayesclv.cli import main
from bayesclv.segmentation import KMeansSegmenter


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """The report of a simulated transaction log: summarised, K-Means segments, MAP fit."""
    folder = tmp_path_factory.mktemp("report")
    data = folder / "transactions.csv"
    transaction_log().to_csv(data, index=False)
    out = folder / "out"
    code = main(["report", str(data), "--out", str(out), "--end-col", "end_date",
                 "--segmenter", "kmeans", "--n-segments", str(N_SEGMENTS), "--method", "map",
                 "--horizon", "24", "--seed", "0"])
    assert code == 0
    return out


def test_report_writes_html_and_csv_tables(report_dir, capsys):
    assert sorted(p.name for p in report_dir.iterdir()) == [
        "forecast.csv", "predictions.csv", "report.html", "segment_report.csv"]
    customers = customer_table()
    predictions = pd.read_csv(report_dir / "predictions.csv")
    assert list(predictions["customer_id"]) == list(customers["customer_id"])
    assert {"clv_mean", "clv_hdi_low", "clv_hdi_high", "current_value", "quadrant",
            "quadrant_prob", "prob_star"} <= set(predictions.columns)
    segments = pd.read_csv(report_dir / "segment_report.csv", index_col="segment")
    assert len(segments) == N_SEGMENTS
    assert segments["n_customers"].sum() == len(customers)
    assert {"share_mean", "value_rank", "strategy"} <= set(segments.columns)
    forecast = pd.read_csv(report_dir / "forecast.csv")
    assert set(forecast["segment"]) == set(segments.index.astype(str)) | {"all"}
    assert forecast["period"].max() == 12


def test_report_html_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for title in ("Value by segment", "Value matrix", "Most valuable customers", "Retention",
                  "Forecast"):
        assert f"<h2>{title}</h2>" in page
    assert page.count("<table") >= 4
    # No external resource: every src is an embedded PNG, no link, script or remote URL.
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 4
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"https?://|<script|<link|@import|url\(", page)
    # K-Means names describe past RFM levels; the page says the rank comes from the model.
    assert "Segment names describe past behaviour" in page
    # A MAP fit's intervals are draws of the customers' spend at the point, and say so.
    assert "This is a MAP fit: one posterior point" in page


def test_report_from_a_customer_table_csv(tmp_path, capsys):
    # The same customers as the fixture, as a customer table with a given segment column
    # (so the compiled model is reused from the cache).
    table = KMeansSegmenter(n_segments=N_SEGMENTS, random_state=0).fit_transform(
        customer_table())
    data = tmp_path / "customers.csv"
    table.rename(columns={"segment": "tier"}).to_csv(data, index=False)
    out = tmp_path / "out"
    code = main(["report", str(data), "--out", str(out), "--segment-col", "tier",
                 "--period", "M", "--method", "map", "--horizon", "24",
                 "--forecast-periods", "0"])
    assert code == 0
    assert not (out / "forecast.csv").exists()
    printed = capsys.readouterr().out
    assert "column 'tier'" in printed and "strategy" in printed
    assert "Total residual value" in printed
    assert "month" in (out / "report.html").read_text(encoding="utf-8")


def test_report_errors_are_explained(tmp_path, capsys):
    data = tmp_path / "log.csv"
    transaction_log().head(50).to_csv(data, index=False)
    assert main(["report", str(data), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "lacks the customer-table column(s)" in error and "--inactivity" in error
    assert main(["report", str(data), "--out", str(tmp_path / "out"), "--inactivity", "3",
                 "--segmenter", "column"]) == 2
    assert "--segmenter column needs a segment column" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- rendering in a real browser ---------------------------------------------------------------

@pytest.mark.browser
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    assert_renders(report_dir / "report.html", tmp_path)


def test_a_repeated_index_gives_one_row_per_customer_in_order(tmp_path):
    from bayesclv.report import write_report

    customers = bayesclv.datasets.load_example().head(300)
    customers.index = np.repeat(np.arange(100), 3)  # every label three times
    model = bayesclv.CLVModel(method="map", random_seed=0, horizon=12).fit(customers)
    predictions = model.predict(customers)
    assert len(predictions) == len(customers)
    assert (predictions.index == customers.index).all()
    assert (predictions["customer_id"].to_numpy() == customers["customer_id"].to_numpy()).all()
    paths = write_report(model, customers, tmp_path)
    table = pd.read_csv(paths["predictions"])
    assert len(table) == len(customers)
    assert (table["customer_id"].to_numpy() == customers["customer_id"].to_numpy()).all()
    np.testing.assert_allclose(table["clv_mean"], predictions["clv_mean"], rtol=1e-12)


def test_programmes_are_ranked_in_the_report_and_the_segment_report(tmp_path):
    from bayesclv.report import write_report

    customers = bayesclv.datasets.load_example().head(600)
    model = bayesclv.CLVModel(method="map", random_seed=0, horizon=12).fit(customers)
    scenarios = {
        "call partners": model.scenario(customers, churn_reduction={"partner": 0.3},
                                        cost=100.0),
        "discount partners": model.scenario(customers, churn_reduction={"partner": 0.1},
                                            cost=1000.0),
    }
    report = model.segment_report(customers, programmes=scenarios)
    assert report.loc["partner", "best_programme"] == "call partners"
    assert report["best_programme"].drop("partner").isna().all()
    paths = write_report(model, customers, tmp_path, scenarios=scenarios, forecast_periods=None)
    assert "forecast" not in paths
    page = paths["html"].read_text(encoding="utf-8")
    assert "<h2>Programmes</h2>" in page and "<h2>Forecast</h2>" not in page
    assert page.index("call partners") < page.index("discount partners")
