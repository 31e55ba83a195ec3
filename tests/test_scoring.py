"""Batch scoring (`bayesclv score`), `bayesclv fit`, slim models and the model card."""

from __future__ import annotations

import numpy as np
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


def test_thin_keeps_evenly_spaced_draws_per_chain(customers, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        model = bayesclv.CLVModel(draws=100, tune=100, chains=2, random_seed=1,
                                  horizon=12).fit(customers)
    slim = model.thin(50)
    for sub in (slim.retention_model_, slim.spend_model_):
        assert sub.posterior_.sizes["chain"] == 2 and sub.posterior_.sizes["draw"] == 25
        # relabelled like a fresh fit's draws, so outputs of the copy align
        np.testing.assert_array_equal(sub.posterior_["draw"], np.arange(25))
        kept = np.linspace(0, 99, 25).round().astype(int)
        full = (model.retention_model_ if sub is slim.retention_model_
                else model.spend_model_).posterior_
        name = next(iter(sub.posterior_.data_vars))
        np.testing.assert_array_equal(sub.posterior_[name].to_numpy(),
                                      full[name].isel(draw=kept).to_numpy())
        assert sub.posterior_.attrs["thinned_from_draws"] == 100
    assert model.retention_model_.posterior_.sizes["draw"] == 100  # the original is kept
    assert slim.idata_["posterior"].sizes["draw"] == 25
    full, thin = model.predict(customers), slim.predict(customers)
    active = ~customers["churned"].to_numpy()
    np.testing.assert_allclose(thin["clv_mean"][active], full["clv_mean"][active], rtol=0.1)
    path = slim.save(tmp_path / "slim.nc")
    assert path.stat().st_size < model.save(tmp_path / "full.nc").stat().st_size
    pd.testing.assert_frame_equal(bayesclv.load(path).predict(customers), thin)
    assert model.thin(10_000).idata_["posterior"].sizes["draw"] == 100
    with pytest.raises(ValueError, match="draws must be an integer"):
        model.thin(0)


def test_the_card_says_what_the_model_is_and_cannot_do(model):
    card = model.card(source="example.csv", segments="column 'segment'")
    for heading in ("## Summary", "## Priors", "## Convergence", "## Backtest",
                    "## Known limits"):
        assert heading in card
    assert "| customers in the fit | 1,500 |" in card
    assert "method='map'" in card and "No backtest recorded" in card
    summary = pd.DataFrame({"nominal": [0.9], "bayesclv": [0.91]},
                           index=pd.Index(["coverage of 90% intervals"], name="metric"))
    with_backtest = model.card(backtest=summary)
    assert "| coverage of 90% intervals | 0.9 | 0.91 |" in with_backtest
    retention = bayesclv.RetentionModel(method="map", random_seed=0).fit(
        bayesclv.datasets.load_example().head(500))
    retention_card = retention.card()
    assert retention_card.startswith("# Model card: RetentionModel")
    assert "spend in every period" not in retention_card  # only the limits that apply
    with pytest.raises(bayesclv.NotFittedError):
        bayesclv.CLVModel().card()
