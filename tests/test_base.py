"""Estimator machinery shared by the three estimators: slim copies (thin)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesclv


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return bayesclv.datasets.load_example().head(1500)


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


