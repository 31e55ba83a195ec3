"""The MAP point on the cached callbacks: what PyMC's find_MAP finds, in its shape."""

import warnings

import numpy as np
import pymc as pm
import pytest

from bayesclv._map import find_map


def _model(observed, sigma_prior=1.0):
    """A Normal mean and a HalfNormal scale (a transformed variable), with named dims."""
    with pm.Model(coords={"group": ["a", "b"]}) as model:
        data = pm.Data("y", np.asarray(observed))
        mu = pm.Normal("mu", 0.0, 10.0, dims="group")
        sigma = pm.HalfNormal("sigma", sigma_prior)
        pm.Normal("obs", mu[np.arange(data.shape[0].eval()) % 2], sigma, observed=data)
        pm.Deterministic("spread", pm.math.exp(mu) * sigma, dims="group")
        pm.Deterministic("pair", pm.math.stack([mu.sum(), sigma]))
    return model


def test_map_equals_pymc_find_map_on_the_parameters_own_scale():
    rng = np.random.default_rng(0)
    model = _model(rng.normal([1.0, -2.0] * 20, 0.7))
    tree = find_map(model)
    posterior = tree["posterior"].to_dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        reference = pm.find_MAP(model=model, progressbar=False, return_inferencedata=True,
                                jitter=False)["posterior"].to_dataset()
    for name in ("mu", "sigma", "spread", "pair"):
        np.testing.assert_allclose(posterior[name].to_numpy(), reference[name].to_numpy(),
                                   rtol=1e-5)
    # (With the log transform's Jacobian in the density, sigma would be about 2.5% larger:
    # the mode of log sigma, not of sigma.)
    assert bool(tree["optimizer_result"]["success"])
    assert posterior["mu"].dims == ("chain", "draw", "group")
    assert list(posterior["group"].to_numpy()) == ["a", "b"]
    assert posterior["pair"].dims == ("chain", "draw", "pair_dim_0")
    assert posterior.attrs["method"] == "map"


def test_map_of_another_table_of_the_same_structure_reads_the_new_data():
    first = find_map(_model(np.r_[[1.0, -2.0] * 10]))["posterior"]
    second = find_map(_model(np.r_[[3.0, 5.0] * 30]))["posterior"]
    # Residuals are zero: mu is each group's value shrunk slightly by its Normal(0, 10) prior.
    np.testing.assert_allclose(first["mu"].to_numpy().ravel(), [1.0, -2.0], atol=1e-2)
    np.testing.assert_allclose(second["mu"].to_numpy().ravel(), [3.0, 5.0], atol=1e-2)


def test_a_start_with_no_density_is_refused_with_the_variable_named():
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Potential("wall", pm.math.switch(x < 1.0, -np.inf, 0.0))
    with pytest.raises(Exception, match="wall|x"):
        find_map(model)


def test_an_optimiser_that_stops_short_warns():
    # A density that grows without bound has no mode.
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Potential("runaway", x**4 + x)
    with pytest.warns(UserWarning, match="did not converge"):
        tree = find_map(model)
    assert not bool(tree["optimizer_result"]["success"])


@pytest.mark.parametrize("edge,slope", [(1.5, 5.0), (2.5, 10.0), (3.0, 30.0)])
def test_a_mode_next_to_where_the_density_ends_is_found(edge, slope):
    # Beyond x = edge the density is NaN: scipy's line search steps there, and would end
    # on that point (here near x = slope, where the Normal and the slope balance).
    from scipy import optimize

    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Potential("edge", slope * x + pm.math.log(edge - x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = find_map(model)
    mode = optimize.brentq(lambda v: slope - v - 1.0 / (edge - v), -5.0, edge - 1e-12)
    assert float(tree["posterior"]["x"].squeeze()) == pytest.approx(mode, abs=1e-6)
    assert bool(tree["optimizer_result"]["success"])
