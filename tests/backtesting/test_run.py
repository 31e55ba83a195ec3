"""bayesclv.backtest: tables, baseline, rolling origins, page and command line (MAP fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _browser import assert_renders
from sklearn.pipeline import Pipeline

import bayesclv
from bayesclv.backtesting import BacktestResult, split_log, write_backtest
from bayesclv.cli import main
from bayesclv.datasets import simulate_transactions
from bayesclv.segmentation import KMeansSegmenter

CUTOFFS = ["2023-03-31", "2023-06-30"]
HORIZON = 6


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    log, _ = simulate_transactions(900, n_periods=24, random_seed=11, active_probability=1.0)
    return log


def _model(**options) -> bayesclv.CLVModel:
    return bayesclv.CLVModel(method="map", random_seed=0, **options)


@pytest.fixture(scope="module")
def result(log) -> BacktestResult:
    return bayesclv.backtest(log, cutoffs=CUTOFFS, horizon=HORIZON, end_col="end_date",
                             segment_col="channel", model=_model(margin=0.25),
                             predictive_draws=300)


def test_the_tables_have_the_documented_columns_and_rows(result, log):
    assert result.cutoffs == CUTOFFS
    for table in (result.periods, result.customers, result.coverage, result.ranking,
                  result.baseline.periods, result.baseline.customers):
        assert table.columns[0] == "cutoff"
    assert list(result.periods.columns[1:12]) == [
        "segment", "period", "calendar_period", "active_actual", "active_mean",
        "active_pi_low", "active_pi_high", "revenue_actual", "revenue_mean",
        "revenue_pi_low", "revenue_pi_high"]
    for name in ("customer_id", "segment", "realised_revenue", "realised_value",
                 "value_mean", "value_pi_low", "value_pi_high", "value_pi50_low",
                 "value_pi80_high", "value_pi90_high"):
        assert name in result.customers.columns
    assert set(result.coverage["nominal"]) == {0.5, 0.8, 0.9}
    assert {"observed", "observed_low", "observed_high", "verdict"} <= set(result.coverage)
    assert list(result.ranking.columns) == ["cutoff", "n_customers", "spearman",
                                            "top_decile_capture"]
    # one row per customer of each cutoff's fit, none acquired after it
    for cutoff in CUTOFFS:
        split = split_log(log, cutoff, HORIZON, end_col="end_date", segment_col="channel")
        rows = result.customers[result.customers["cutoff"] == cutoff]
        assert rows["customer_id"].tolist() == split.training["customer_id"].tolist()
        first = pd.to_datetime(log["date"]).groupby(log["customer_id"]).min()
        assert (first[rows["customer_id"]] <= pd.Timestamp(cutoff)).all()
        assert split.left_out_customers > 0
    assert sum("first bought after the cutoff" in note for note in result.notes) == 2
    segments = ["all", *sorted(log["channel"].unique())]
    assert sorted(result.periods["segment"].unique()) == sorted(segments)
    assert len(result.periods) == len(CUTOFFS) * len(segments) * HORIZON


def test_actuals_add_up_and_the_realised_value_follows_the_model(result, log):
    model = result.models[CUTOFFS[0]]
    split = split_log(log, CUTOFFS[0], HORIZON, end_col="end_date", segment_col="channel")
    rows = result.customers[result.customers["cutoff"] == CUTOFFS[0]]
    discount = (1 + model.discount_rate) ** -np.arange(1, HORIZON + 1)
    value = (0.25 * split.counted_revenue * discount).sum(axis=1)
    np.testing.assert_allclose(rows["realised_value"], value, rtol=1e-12)
    np.testing.assert_allclose(rows["realised_revenue"], split.counted_revenue.sum(axis=1))
    periods = result.periods[(result.periods["cutoff"] == CUTOFFS[0])
                             & (result.periods["segment"] == "all")]
    np.testing.assert_allclose(periods["revenue_actual"], split.counted_revenue.sum(axis=0))
    np.testing.assert_array_equal(periods["active_actual"], split.active.sum(axis=0))
    np.testing.assert_allclose(periods["revenue_uncounted"],
                               split.uncounted_revenue.sum(axis=0))
    by_segment = result.periods[(result.periods["cutoff"] == CUTOFFS[0])
                                & (result.periods["segment"] != "all")]
    np.testing.assert_allclose(by_segment.groupby("period")["revenue_actual"].sum(),
                               periods["revenue_actual"])
    # the predictions are the fitted model's own
    forecast = model.forecast(split.training, periods=HORIZON, predictive_draws=300)
    np.testing.assert_allclose(
        result.periods[result.periods["cutoff"] == CUTOFFS[0]]["revenue_mean"],
        forecast["revenue_mean"], rtol=1e-12)
    intervals = model.predict_interval(split.training, horizon=HORIZON,
                                       predictive_draws=300)
    np.testing.assert_allclose(rows["value_pi80_low"], intervals["value_pi80_low"])
    np.testing.assert_allclose(rows["value_pi_high"], intervals["value_pi90_high"])
    assert result.model is result.models[CUTOFFS[-1]]
    assert result.models[CUTOFFS[0]] is not result.models[CUTOFFS[1]]


def test_the_baseline_is_berger_nasr_on_the_same_table(result, log):
    split = split_log(log, CUTOFFS[0], HORIZON, end_col="end_date", segment_col="channel")
    naive = result.baseline.models[CUTOFFS[0]]
    table = split.training
    for s, label in enumerate(naive.segments):
        part = table[table["segment"] == label]
        rate = 1 - part["churned"].sum() / part["tenure"].sum()
        assert naive.retention[s] == pytest.approx(rate, rel=1e-12)
    rows = result.baseline.customers[result.baseline.customers["cutoff"] == CUTOFFS[0]]
    alive = ~table["churned"].to_numpy()
    r = naive.retention[naive.codes(table["segment"].to_numpy())]
    j = np.arange(1, HORIZON + 1)
    expected = 0.25 * table["mean_spend"].to_numpy() * (
        (r[:, None] / 1.01) ** j).sum(axis=1)
    np.testing.assert_allclose(rows["value_mean"], np.where(alive, expected, 0.0),
                               rtol=1e-12)
    # the naive intervals leave out spend and parameter uncertainty: far too narrow
    ours = result.pooled_coverage().set_index("nominal")["observed"]
    theirs = result.baseline.pooled_coverage().set_index("nominal")["observed"]
    assert (theirs < ours - 0.1).all()


def test_summary_plot_and_lift(result):
    summary = result.summary()
    assert list(summary.columns) == ["nominal", "bayesclv", "bayesclv_low",
                                     "bayesclv_high", "baseline", "baseline_low",
                                     "baseline_high"]
    coverage = summary.loc["coverage of 90% intervals"]
    assert coverage["nominal"] == 0.9
    assert coverage["bayesclv_low"] <= coverage["bayesclv"] <= coverage["bayesclv_high"]
    assert 0.5 < summary.loc["Spearman rank correlation", "bayesclv"] <= 1
    assert 0.1 < summary.loc["top-decile capture", "bayesclv"] < 1
    lift = result.lift()
    assert len(lift) == 10 * len(CUTOFFS)
    figure = result.plot()
    assert len(figure.axes) == 4
    with pytest.raises(ValueError, match="No segment 'nope'"):
        result.plot(segment="nope")
    import matplotlib.pyplot as plt

    plt.close("all")
    assert "BacktestResult('bayesclv'" in repr(result)


@pytest.mark.filterwarnings("ignore:Only one segment")
def test_a_segmenter_or_a_pipeline_is_refitted_at_each_cutoff(log):
    segmenter = KMeansSegmenter(n_segments=3, random_state=0)
    given = bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date", segmenter=segmenter,
                              model=_model(), predictive_draws=100)
    assert isinstance(given.model, Pipeline)
    assert not hasattr(segmenter, "centres_")  # the object given is left unfitted
    assert given.customers["segment"].nunique() == 3
    pipeline = Pipeline([("segments", KMeansSegmenter(n_segments=3, random_state=0)),
                         ("clv", _model())])
    piped = bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date", model=pipeline,
                              predictive_draws=100)
    pd.testing.assert_frame_equal(piped.customers, given.customers)
    assert list(piped.model.named_steps) == ["segments", "clv"]
    # one segment: the base is listed once
    single = bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date", model=_model(),
                               predictive_draws=100)
    assert single.periods["segment"].unique().tolist() == ["all"]
    assert single.coverage["segment"].unique().tolist() == ["all"]


def test_an_inactivity_log_is_backtested():
    # a shop's customers skip months: some labelled churned come back
    shop, _ = simulate_transactions(900, n_periods=24, random_seed=12,
                                    active_probability=0.5)
    shop = shop.drop(columns="end_date")
    result = bayesclv.backtest(shop, "2023-09-30", 3, inactivity=2, segment_col="channel",
                               model=_model(), predictive_draws=100)
    assert (result.periods["revenue_uncounted"] == 0).all()
    assert any("without a purchase" in note for note in result.notes)
    # customers labelled churned at the cutoff who buy again are counted apart
    split = split_log(shop, "2023-09-30", 3, inactivity=2, segment_col="channel")
    churned = split.training["churned"].to_numpy()
    base = result.periods[result.periods["segment"] == "all"]
    np.testing.assert_array_equal(base["active_returned"],
                                  split.active[churned].sum(axis=0))
    np.testing.assert_array_equal(base["active_actual"], split.active[~churned].sum(axis=0))
    np.testing.assert_allclose(base["revenue_returned"], split.revenue[churned].sum(axis=0))
    assert base["active_returned"].sum() > 0


def test_nothing_after_the_cutoff_reaches_the_segmenter_or_the_model(log):
    """Later rows shuffled, their amounts changed and later contract ends erased: the
    fitted segmenter and model, and so every prediction, are bit-identical."""
    cutoff = pd.Timestamp("2023-06-30")
    changed = log.copy()
    changed.loc[changed["end_date"] > cutoff, "end_date"] = pd.NaT
    later = np.flatnonzero(pd.to_datetime(changed["date"]) > cutoff)
    rng = np.random.default_rng(1)
    changed.loc[later, "date"] = changed.loc[rng.permutation(later), "date"].to_numpy()
    changed.loc[later, "amount"] = changed.loc[later, "amount"].to_numpy()[::-1] + 1.0
    runs = [bayesclv.backtest(frame, cutoff, 3, end_col="end_date",
                              segmenter=KMeansSegmenter(n_segments=3, random_state=0),
                              model=_model(), predictive_draws=100)
            for frame in (log, changed)]
    first, second = (run.model for run in runs)
    np.testing.assert_array_equal(first[0].centres_, second[0].centres_)
    for name in ("retention_model_", "spend_model_"):
        a, b = (getattr(m[-1], name).posterior_ for m in (first, second))
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].to_numpy(), b[var].to_numpy())
    predicted = ["customer_id", "segment", "value_mean", "value_pi_low", "value_pi_high"]
    pd.testing.assert_frame_equal(runs[0].customers[predicted], runs[1].customers[predicted])
    assert not np.array_equal(runs[0].customers["realised_value"],
                              runs[1].customers["realised_value"])


def test_every_cutoff_is_checked_before_any_fit(log, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the cutoffs")

    monkeypatch.setattr(bayesclv.CLVModel, "fit", no_fit)
    with pytest.raises(ValueError, match="before the last holdout month"):
        bayesclv.backtest(log, cutoffs=["2023-03-31", "2023-12-31"], horizon=6,
                          end_col="end_date", model=_model())


def test_bad_arguments_are_refused(log):
    with pytest.raises(ValueError, match="not both"):
        bayesclv.backtest(log, "2023-09-30", 3, cutoffs=["2023-06-30"], end_col="end_date")
    with pytest.raises(ValueError, match="not neither"):
        bayesclv.backtest(log, horizon=3, end_col="end_date")
    with pytest.raises(ValueError, match="horizon is required"):
        bayesclv.backtest(log, "2023-09-30", end_col="end_date")
    with pytest.raises(ValueError, match="must be a bayesclv.CLVModel"):
        bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date",
                          model=bayesclv.RetentionModel())
    with pytest.raises(ValueError, match="levels must be numbers in"):
        bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date", levels=[0.5, 1.0])
    with pytest.raises(ValueError, match="repeat a day"):
        bayesclv.backtest(log, cutoffs=["2023-09-30", "2023-09-30 12:00"], horizon=3,
                          end_col="end_date")
    with pytest.raises(ValueError, match="cutoff must be a date"):
        bayesclv.backtest(log, cutoffs=["2023-09-30", "soon"], horizon=3,
                          end_col="end_date")
    with pytest.raises(ValueError, match=r"column options at their defaults.*segment_col"):
        bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date", segment_col="channel",
                          model=bayesclv.CLVModel(segment_col="channel"))
    with pytest.raises(ValueError, match="predictive_draws"):
        bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date", predictive_draws=0)
    with pytest.raises(ValueError, match="segmenter inside the Pipeline"):
        bayesclv.backtest(log, "2023-09-30", 3, end_col="end_date",
                          segmenter=KMeansSegmenter(),
                          model=Pipeline([("clv", _model())]))


@pytest.fixture(scope="module")
def page_dir(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("backtest")
    write_backtest(result, out, source="simulated log")
    return out


def test_the_page_and_tables_are_written(result, page_dir):
    names = {p.name for p in page_dir.iterdir()}
    assert names == {"backtest.html", "summary.csv", "periods.csv", "customers.csv",
                     "coverage.csv", "ranking.csv", "baseline_periods.csv",
                     "baseline_customers.csv", "baseline_coverage.csv",
                     "baseline_ranking.csv"}
    page = (page_dir / "backtest.html").read_text()
    assert "data:image/png;base64," in page and "naive (Berger-Nasr)" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    customers = pd.read_csv(page_dir / "customers.csv")
    np.testing.assert_allclose(customers["value_mean"], result.customers["value_mean"])
    summary = pd.read_csv(page_dir / "summary.csv", index_col="metric")
    assert summary.loc["coverage of 50% intervals", "nominal"] == 0.5


@pytest.mark.browser
def test_the_page_renders_in_headless_chromium(page_dir, tmp_path):
    assert_renders(page_dir / "backtest.html", tmp_path)


def test_the_command_line_writes_the_backtest(log, tmp_path, capsys):
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main(["backtest", str(path), "--cutoff", "2023-09-30", "--horizon", "3",
                 "--out", str(out), "--end-col", "end_date", "--segment-col", "channel",
                 "--method", "map"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "coverage of 90% intervals" in printed and "backtest.html" in printed
    assert (out / "backtest.html").exists() and (out / "coverage.csv").exists()
    code = main(["backtest", str(path), "--cutoff", "2023-09-15", "--horizon", "3",
                 "--out", str(tmp_path / "bad"), "--end-col", "end_date", "--method", "map"])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("bayesclv backtest: error: cutoff 2023-09-15 is not the last "
                            "day of a month") and error.count("\n") == 1
    assert not (tmp_path / "bad").exists()
    code = main(["backtest", str(path), "--cutoff", "2023-09-30", "--horizon", "3",
                 "--out", str(tmp_path / "both"), "--end-col", "end_date",
                 "--segment-col", "channel", "--segmenter", "kmeans", "--method", "map"])
    assert code == 2 and "both make the segments" in capsys.readouterr().err
