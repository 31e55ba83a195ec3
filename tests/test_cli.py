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
