"""Batch scoring (`bayesclv score`) and `bayesclv fit`."""

from __future__ import annotations

import pandas as pd
import pytest

import bayesclv
from bayesclv.cli import main
from bayesclv.scoring import score_file


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    table = bayesclv.datasets.load_example().head(1500).copy()
    table["customer_id"] = [f"00{i}" for i in range(len(table))]  # ids with leading zeros
    return table


@pytest.fixture(scope="module")
def model(customers):
    return bayesclv.CLVModel(method="map", horizon=12, random_seed=0).fit(customers)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("model") / "model.nc")


@pytest.mark.parametrize("source, target", [("csv", "parquet"), ("parquet", "csv"),
                                            ("parquet", "parquet")])
def test_scoring_in_chunks_gives_predict_row_for_row(model, customers, saved, tmp_path,
                                                     source, target):
    data = tmp_path / f"customers.{source}"
    getattr(customers, f"to_{source}")(data, index=False)
    out = tmp_path / f"scores.{target}"
    seen = []
    rows = score_file(bayesclv.load(saved), data, out, chunk_size=400,
                      progress=lambda done, total: seen.append((done, total)))
    assert rows == len(customers)
    assert [done for done, _ in seen] == [400, 800, 1200, 1500]
    scores = pd.read_parquet(out) if target == "parquet" else pd.read_csv(
        out, dtype={"customer_id": str})
    expected = model.predict(customers).reset_index(drop=True)
    assert scores["customer_id"].tolist() == customers["customer_id"].tolist()
    # chunking changes nothing: each customer's summary depends on its own inputs only
    pd.testing.assert_frame_equal(scores, expected, check_exact=False, rtol=1e-12,
                                  check_dtype=False, check_index_type=False)
    assert not list(tmp_path.glob(".*partial*"))


def test_bad_rows_are_named_by_their_row_in_the_file(saved, customers, tmp_path):
    broken = customers.copy()
    broken.loc[broken.index[[3, 950]], "tenure"] = -1
    data = tmp_path / "broken.parquet"
    broken.to_parquet(data, index=False)
    out = tmp_path / "scores.parquet"
    with pytest.raises(bayesclv.DataValidationError,
                       match=r"broken.parquet, rows 0 to 499 .*'003'"):
        score_file(bayesclv.load(saved), data, out, chunk_size=500)
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_ids_in_the_index_empty_tables_and_ids_repeated_across_chunks(saved, customers,
                                                                      tmp_path):
    model = bayesclv.load(saved)
    indexed = tmp_path / "indexed.parquet"
    customers.set_index("customer_id").to_parquet(indexed)
    out = tmp_path / "scores.parquet"
    assert score_file(model, indexed, out, chunk_size=600) == len(customers)
    assert pd.read_parquet(out)["customer_id"].tolist() == customers["customer_id"].tolist()
    empty = tmp_path / "empty.csv"
    customers.head(0).to_csv(empty, index=False)
    with pytest.raises(bayesclv.DataValidationError, match="has no rows"):
        score_file(model, empty, tmp_path / "none.csv")
    repeated = pd.concat([customers, customers.iloc[[5, 7]]], ignore_index=True)
    data = tmp_path / "repeated.csv"
    repeated.to_csv(data, index=False)
    target = tmp_path / "repeated_scores.csv"
    with pytest.raises(bayesclv.DataValidationError,
                       match=r"2 repeated customer id\(s\).*'005', '007'"):
        score_file(model, data, target, chunk_size=500)  # each chunk alone is fine
    assert not target.exists() and not list(tmp_path.glob(".*partial*"))


def test_the_command_line_fits_and_scores(customers, tmp_path, capsys):
    data = tmp_path / "customers.csv"
    customers.to_csv(data, index=False)
    model_path = tmp_path / "model.nc"
    assert main(["fit", str(data), "--out", str(model_path), "--method", "map",
                 "--horizon", "12"]) == 0
    assert "card.md" in capsys.readouterr().out
    card = (tmp_path / "card.md").read_text()
    assert card.startswith("# Model card: CLVModel") and "## Known limits" in card
    assert "| saved file | the whole posterior |" in card
    with pytest.raises(SystemExit):
        main(["fit", str(data), "--out", str(model_path), "--thin", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err
    table = tmp_path / "customers.parquet"
    customers.to_parquet(table, index=False)
    out = tmp_path / "scores.csv"
    assert main(["score", str(model_path), str(table), "--out", str(out), "--chunk-size",
                 "700", "--columns", "clv_mean,retention_next", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert list(scores.columns) == ["customer_id", "clv_mean", "retention_next"]
    assert len(scores) == len(customers)
    # one clear line and a non-zero exit on bad input
    assert main(["score", str(model_path), str(table), "--out", str(tmp_path / "x.json")]) == 2
    assert "give a .csv or .parquet file" in capsys.readouterr().err
    assert main(["score", str(model_path), str(table), "--out", str(out),
                 "--columns", "nope"]) == 2
    error = capsys.readouterr().err
    assert "are not prediction columns" in error and error.count("\n") == 1


def test_a_saved_pipeline_scores_its_raw_table(tmp_path, capsys):
    from sklearn.pipeline import Pipeline

    from bayesclv.segmentation import KMeansSegmenter

    log, _ = bayesclv.datasets.simulate_transactions(500, n_periods=18, random_seed=2)
    table = bayesclv.data.summarize(log, end_col="end_date")
    pipeline = Pipeline([("segments", KMeansSegmenter(3, random_state=0)),
                         ("value", bayesclv.CLVModel(method="map", random_seed=0))]).fit(table)
    path = bayesclv.io.save(pipeline, tmp_path / "pipeline.nc")
    data = tmp_path / "customers.parquet"
    table.to_parquet(data, index=False)
    out = tmp_path / "scores.parquet"
    assert main(["score", str(path), str(data), "--out", str(out), "--chunk-size", "150",
                 "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out),
                                  pipeline.predict(table).reset_index(drop=True),
                                  check_exact=False, rtol=1e-12, check_dtype=False)
    segmenter = bayesclv.io.save(pipeline[0], tmp_path / "segmenter.nc")
    with pytest.raises(ValueError, match="Cannot score with a KMeansSegmenter"):
        score_file(bayesclv.load(segmenter), data, out)
    assert main(["score", str(segmenter), str(data), "--out", str(out), "--quiet"]) == 2
    assert "Cannot score with a KMeansSegmenter" in capsys.readouterr().err
