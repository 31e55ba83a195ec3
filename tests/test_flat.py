"""A PyMC model on one flat point: the log density callback and the trace from points."""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from pytensor.compile.builders import OpFromGraph

from bayesclv._base import reproducible_compilation
from bayesclv._callbacks import fingerprint
from bayesclv._flat import flat_model


@pytest.fixture(scope="module")
def model():
    with pm.Model(coords={"segment": ["a", "b", "c"]}) as model:
        mu = pm.Normal("mu", 0.0, 1.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        effect = pm.Normal("effect", mu, sigma, dims="segment")
        pm.Deterministic("scaled", pm.math.exp(effect) * sigma, dims="segment")
        pm.Deterministic("fixed", pm.math.constant(np.array([1.0, 2.0])))
        # pt.diag is an OpFromGraph: no batched form of its own.
        pm.Deterministic("diagonal", pt.diag(pm.math.exp(effect)))
        pm.Normal("y", effect.sum(), 1.0, observed=[0.3, -0.2])
    return model


def test_trace_matches_pymc_at_every_point(model):
    flat = flat_model(model, jitter=False)
    rng = np.random.default_rng(0)
    # Three full passes of the trace graph: the chunks are joined in order, and no pass
    # overwrites what an earlier one returned.
    points = rng.normal(size=(3, 1024, flat.n_dim))
    posterior = flat.posterior(points)
    reference = model.compile_fn(model.unobserved_value_vars, inputs=model.value_vars,
                                 point_fn=False)
    names = [v.name for v in model.unobserved_value_vars]
    for chain in range(3):
        for draw in range(1024):
            x = points[chain, draw]
            values = dict(zip(names, reference(x[0], x[1], x[2:]), strict=True))
            for name in ("mu", "sigma", "effect", "scaled", "fixed", "diagonal"):
                np.testing.assert_allclose(posterior[name].values[chain, draw],
                                           values[name], rtol=1e-14)
    assert posterior["effect"].dims == ("chain", "draw", "segment")
    assert list(posterior["segment"].values) == ["a", "b", "c"]
    assert posterior["fixed"].dims == ("chain", "draw", "fixed_dim_0")
    assert "sigma_log__" not in posterior  # the unconstrained values are not traced


def test_trace_runs_no_inner_graph_once_per_draw(model, monkeypatch):
    # Vectorised over the draws, an OpFromGraph (or a view) would run in Python once per
    # draw: seconds for a long trace.
    calls = []
    perform = OpFromGraph.perform
    monkeypatch.setattr(OpFromGraph, "perform",
                        lambda self, *args: calls.append(self) or perform(self, *args))
    flat = flat_model(model, jitter=False)
    posterior = flat.posterior(np.random.default_rng(1).normal(size=(2, 50, flat.n_dim)))
    assert calls == []
    np.testing.assert_allclose(posterior["diagonal"].values[1, 7],
                               np.diag(np.exp(posterior["effect"].values[1, 7])), rtol=1e-15)


def test_one_point_is_one_chain_of_one_draw_and_wrong_lengths_are_refused(model):
    flat = flat_model(model, jitter=False)
    point = flat.initial_point(0)
    posterior = flat.posterior(point)
    assert posterior.sizes["chain"] == posterior.sizes["draw"] == 1
    assert posterior["sigma"].item() == pytest.approx(np.exp(point[1]))
    with pytest.raises(ValueError, match="for a model of 5"):
        flat.posterior(np.zeros(4))


def test_logp_callback_matches_pymc(model):
    flat = flat_model(model, jitter=False)
    x = np.array([0.1, -0.3, 0.5, -1.0, 2.0])
    value, gradient = flat.logp(x)
    logp = model.compile_logp(jacobian=True)
    dlogp = model.compile_dlogp(jacobian=True)
    point = {"mu": x[0], "sigma_log__": x[1], "effect": x[2:]}
    assert value == pytest.approx(float(logp(point)), rel=1e-13)
    np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-12)


class _Captured(Exception):
    pass


@pytest.fixture(scope="module")
def library_models(small_customers):
    """The PyMC models a default NUTS fit of each estimator samples (3 segments)."""
    import bayesclv._base
    from bayesclv import RetentionModel, SpendModel

    customers, _ = small_customers
    captured = []

    def capture(model, **kwargs):
        captured.append(model)
        raise _Captured

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bayesclv._base, "start_nutpie", capture)
        for estimator in (RetentionModel, SpendModel):
            with pytest.raises(_Captured):
                estimator(sampler="nutpie", random_seed=0).fit(customers)
    return captured


@pytest.mark.parametrize("jacobian", [True, False], ids=["nuts", "map"])
@pytest.mark.parametrize("which", [0, 1], ids=["retention", "spend"])
def test_library_models_callbacks_match_pymc(library_models, which, jacobian):
    # The compiled density reads arrays of the data alone computed once
    # (bayesclv._callbacks.fold_data): its value and gradient must be PyMC's own.
    # Compiled as a fit compiles it (strict IEEE arithmetic): the callback a fit samples.
    # Without the Jacobians (MAP), the log-Jacobians of a packed Cholesky factor
    # (retention) and of log-transformed scales (spend) are subtracted from it.
    model = library_models[which]
    with reproducible_compilation():
        flat = flat_model(model, jacobian=jacobian)
    assert (flat.log_jacobian is None) == jacobian
    initial = model.initial_point()
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    # PyTensor's Python implementations: nothing compiled for the reference.
    logp = model.compile_logp(jacobian=jacobian, mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(jacobian=jacobian, mode="FAST_COMPILE")
    for seed in range(3):
        x = flat.initial_point(seed)
        point, start = {}, 0
        for name in names:
            size = np.size(initial[name])
            point[name] = x[start:start + size].reshape(np.shape(initial[name]))
            start += size
        value, gradient = flat.logp(x)
        assert value == pytest.approx(float(logp(point)), rel=1e-12)
        np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-9, atol=1e-9)


def test_a_model_compiles_one_structure_with_or_without_the_jacobians(library_models,
                                                                      monkeypatch):
    # The density without the Jacobians is the compiled one less a function of the point
    # alone: a model optimised and sampled compiles (and caches) a single callback.
    import bayesclv._flat

    compiled = []
    original = bayesclv._flat.compile_callbacks

    def spy(point, logp, *args, **kwargs):
        compiled.append(fingerprint(point, [logp]))
        return original(point, logp, *args, **kwargs)

    monkeypatch.setattr(bayesclv._flat, "compile_callbacks", spy)
    # Compiled as a fit compiles it: the structure the tests above have in the cache.
    with reproducible_compilation():
        for jacobian in (True, False):
            flat_model(library_models[0], jacobian=jacobian)
    assert len(compiled) == 2 and compiled[0] is not None and compiled[0] == compiled[1]
