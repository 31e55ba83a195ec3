import pandas as pd

from bayesclv.cli import main


def test_demo_prints_segment_report_and_writes_predictions(tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert main(["demo", "--method", "map", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("referral", "paid_search", "CLV/customer", "share", "4,000 rows"):
        assert text in printed
    predictions = pd.read_csv(out)
    assert len(predictions) == 4000
    assert {"clv_mean", "clv_hdi_low", "clv_hdi_high"} <= set(predictions.columns)


def _customer_table(path, **columns):
    table = pd.DataFrame({
        "customer_id": ["007", "010", "011", "012", "013", "014"],
        "segment": ["NA", "NA", "NA", "b", "b", "b"],
        "tenure": [5, 6, 7, 5, 6, 7], "churned": [True, False, False, True, False, False],
        "n_periods_active": [3, 4, 5, 3, 4, 5],
        "mean_spend": [10.0, 12.0, 9.0, 30.0, 25.0, 28.0], **columns})
    table.to_csv(path, index=False)
    return path


def test_report_keeps_ids_and_segment_labels_as_written(tmp_path, capsys):
    data = _customer_table(tmp_path / "customers.csv")
    out = tmp_path / "out"
    assert main(["report", str(data), "--out", str(out), "--method", "map"]) == 0
    predictions = pd.read_csv(out / "predictions.csv", dtype=str, keep_default_na=False)
    assert predictions["customer_id"].tolist()[:2] == ["007", "010"]
    assert set(predictions["segment"]) == {"NA", "b"}


def test_report_failures_are_one_line_with_no_output(tmp_path, capsys):
    data = _customer_table(tmp_path / "customers.csv")
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    assert main(["report", str(data), "--out", str(blocker)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is not a folder" in error and "Traceback" not in error
    assert main(["report", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "missing.csv" in error
    bad = _customer_table(tmp_path / "bad.csv", mean_spend=[10.0, -1.0, 9.0, 30.0, 25.0, 28.0])
    assert main(["report", str(bad), "--out", str(tmp_path / "o"), "--method", "map"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "non-positive spend" in error and "'010'" in error
    assert not (tmp_path / "o").exists()


def test_report_writes_all_files_or_none(tmp_path, monkeypatch):
    import bayesclv.report

    data = _customer_table(tmp_path / "customers.csv")
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("an earlier report")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bayesclv.report, "figure_html", broken)
    assert main(["report", str(data), "--out", str(out), "--method", "map"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv"]
    assert (out / "predictions.csv").read_text() == "an earlier report"


def test_demo_checks_its_output_before_fitting(tmp_path, capsys):
    assert main(["demo", "--method", "map", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a folder" in error and "Traceback" not in error
