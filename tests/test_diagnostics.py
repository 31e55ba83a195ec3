import re
import warnings

import numpy as np
import pytest

import bayesclv
from bayesclv.diagnostics import ESS_MIN, RHAT_MAX, convergence_problems


@pytest.fixture(scope="module")
def under_sampled(small_customers):
    """Negative control: 2 chains x 20 draws after 20 tuning steps cannot have converged."""
    customers, _ = small_customers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = bayesclv.RetentionModel(draws=20, tune=20, chains=2, random_seed=1).fit(customers)
    messages = [str(w.message) for w in caught
                if issubclass(w.category, bayesclv.ConvergenceWarning)]
    return model, messages


def test_under_sampled_fit_raises_a_convergence_warning(under_sampled):
    model, messages = under_sampled
    assert len(messages) == 1
    assert re.search(r"(?s)retention posterior.*ESS < 400", messages[0])
    problems = convergence_problems(model.idata_, ["retention_mu", "eta", "k"])
    assert any("ESS" in p for p in problems)


def test_the_warning_names_parameters_and_says_what_to_do(under_sampled):
    _, (message,) = under_sampled
    # Names a parameter with its coordinate, e.g. "eta[a]" or "retention_mu[log_k]".
    assert re.search(r"\b(retention_mu|retention_sigma|eta|k)\[[^\]]+\]", message), message
    assert "run more draws" in message
    assert "model.diagnostics()" in message


def test_diagnostics_table_of_the_under_sampled_fit(under_sampled):
    model, _ = under_sampled
    table = model.diagnostics()
    assert table.index.name == "parameter"
    assert {"mean", "sd", "ess_bulk", "ess_tail", "r_hat"} <= set(table.columns)
    assert all(np.issubdtype(dtype, np.floating) for dtype in table.dtypes)
    assert "eta[a]" in table.index and "retention_mu[log_k]" in table.index
    assert ((table["ess_bulk"] < ESS_MIN) | (table["r_hat"] > RHAT_MAX)).any()
    assert table.attrs["chains"] == 2 and table.attrs["draws"] == 20
    assert isinstance(table.attrs["divergences"], int)
    steps = model.idata_["sample_stats"]["n_steps"].to_numpy()
    assert table.attrs["steps_per_draw"] == pytest.approx(steps.mean())
    assert table.attrs["steps_per_draw"] >= 1


def test_clv_diagnostics_has_both_sub_models(nuts_model):
    table = nuts_model.diagnostics()
    assert table.index.names == ["model", "parameter"]
    assert set(table.index.get_level_values("model")) == {"retention", "spend"}
    assert ("spend", "p[a]") in table.index
    by_model = table.attrs["divergences_by_model"]
    assert table.attrs["divergences"] == by_model["retention"] + by_model["spend"]
    steps = table.attrs["steps_per_draw_by_model"]
    assert steps["spend"] == nuts_model.spend_model_.diagnostics().attrs["steps_per_draw"]
    assert "steps_per_draw" not in table.attrs


def test_map_fit_is_not_checked_for_convergence(small_customers, recwarn):
    customers, _ = small_customers
    model = bayesclv.RetentionModel(method="map", random_seed=1).fit(customers)
    assert not [w for w in recwarn if issubclass(w.category, bayesclv.ConvergenceWarning)]
    table = model.diagnostics()
    assert table["r_hat"].isna().all() and np.isfinite(table["mean"]).all()
    assert np.isnan(table.attrs["steps_per_draw"])
