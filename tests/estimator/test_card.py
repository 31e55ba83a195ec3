"""The model card: what a fitted model is, how well it converged, what it cannot do."""

from __future__ import annotations

import pandas as pd
import pytest

import bayesclv


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return bayesclv.datasets.load_example().head(1500)


@pytest.fixture(scope="module")
def model(customers):
    return bayesclv.CLVModel(method="map", horizon=12, random_seed=0).fit(customers)


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
