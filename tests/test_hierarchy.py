import numpy as np
import pymc as pm
import pytest
from _structures import structure_of

from bayesclv._base import resolve_sampler, sample_posterior
from bayesclv._hierarchy import (
    centring_mask,
    draw_new_segments,
    segment_effects,
)
from bayesclv._laplace import SegmentLaplace, segment_laplace
from bayesclv._population import population_prior
from bayesclv.priors import Prior


def _priors(mask):
    return {
        "mu": {"a": Prior("Normal", mu=1.0, sigma=2.0), "b": Prior("Normal", mu=-1.0, sigma=2.0),
               "c": Prior("Normal", mu=0.0, sigma=2.0)},
        "sigma": {c: Prior("HalfNormal", sigma=1.0) for c in "abc"},
        "lkj_eta": 2.0, "correlated": True, "centered": mask, "pooled": True,
    }


def _model(priors, laplace):
    coords = {"segment": list("wxyz"), "x_coord": list("abc"), "x_coord_": list("abc")}
    with pm.Model(coords=coords) as model:
        segment_effects("x", list("abc"), priors, laplace)
    return model


def _at_random_point(model, names, seed=0):
    """The named variables at a random point of the model's values, and the point."""
    outputs = model.replace_rvs_by_values([model[name] for name in names])
    # PyTensor's Python implementations: the hierarchy's math is under test, not a backend.
    values = model.compile_fn(outputs, inputs=model.value_vars, point_fn=True,
                              on_unused_input="ignore", mode="FAST_COMPILE")
    rng = np.random.default_rng(seed)
    point = {name: value + rng.normal(0.0, 0.7, np.shape(value))
             for name, value in model.initial_point().items()}
    return values(point), point


def _hierarchy_at_random_point(priors, laplace, seed=0):
    """psi, mu, chol, the hierarchy's log density and the offsets at a random point."""
    values, point = _at_random_point(_model(priors, laplace),
                                     ["x_psi", "x_mu", "x_chol", "x_hierarchy"], seed)
    return (*values, point["x_offset"])


_MODE = np.arange(12.0).reshape(4, 3) / 10.0
_SD = np.linspace(0.01, 2.0, 12).reshape(4, 3)


def _independent(sd):
    """A Laplace fit whose coordinates are uncorrelated, with these standard deviations."""
    covariance = np.where(np.isfinite(sd), sd**2, np.nan)[:, :, None] * np.eye(sd.shape[1])
    return SegmentLaplace(_MODE, covariance)


@pytest.mark.parametrize("correlated", [True, False])
def test_forced_parametrisation_has_the_multivariate_normal_density(correlated):
    """Each element sampled as psi (centred) or z (non-centred); the density is N(psi | mu, LL')."""
    mask = [[True, False, True], [False, False, False], [True, True, True], [False, True, False]]
    priors = {**_priors(mask), "correlated": correlated}
    psi, mu, chol, density, offset = _hierarchy_at_random_point(priors, _independent(_SD))
    centred = np.array(mask)
    np.testing.assert_allclose(psi[centred], (_MODE + _SD * offset)[centred], rtol=1e-12)
    z = np.linalg.solve(chol, (psi - mu).T).T
    np.testing.assert_allclose(z[~centred], offset[~centred], rtol=1e-10, atol=1e-12)
    # log N(psi | mu, chol chol') up to its constant, in the sampled offsets: the z's, and
    # for each centred element the Jacobians d psi / d offset = sd and d z / d psi = 1/chol.
    expected = (-0.5 * (z**2).sum()
                + (centred * (np.log(_SD) - np.log(np.diag(chol)))).sum())
    assert density == pytest.approx(expected, rel=1e-10)
    if not correlated:
        np.testing.assert_allclose(chol, np.diag(np.diag(chol)))


@pytest.mark.parametrize("correlated", [True, False])
def test_auto_parametrisation_is_the_conditional_posterior_of_a_gaussian_likelihood(correlated):
    """psi = m + sqrt(v) offset: the prior N(b, c^2) and the data N(x, sd^2), given psi_<j."""
    sd = _SD.copy()
    correlation = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    covariance = sd[:, :, None] * correlation * sd[:, None, :]
    covariance[1] = np.nan  # a segment whose data say too little: non-centred
    laplace = SegmentLaplace(_MODE, covariance)
    sd[1] = np.inf
    np.testing.assert_array_equal(laplace.sd, sd)
    priors = {**_priors("auto"), "correlated": correlated}
    psi, mu, chol, density, offset = _hierarchy_at_random_point(priors, laplace)
    z = np.linalg.solve(chol, (psi - mu).T).T
    c = np.diag(chol)
    before = psi - z * c  # each element's prior mean given the earlier ones
    variance = np.empty_like(psi)
    for s in range(4):
        for j in range(3):
            if s == 1:
                precision, data_mode = 0.0, 0.0
            else:
                earlier, across = covariance[s, :j, :j], covariance[s, j, :j]
                slope = np.linalg.solve(earlier, across) if j else np.zeros(0)
                precision = 1.0 / (covariance[s, j, j] - across @ slope)
                data_mode = _MODE[s, j] + slope @ (psi[s, :j] - _MODE[s, :j])
            variance[s, j] = 1.0 / (1.0 / c[j] ** 2 + precision)
            centre = variance[s, j] * (before[s, j] / c[j] ** 2 + precision * data_mode)
            assert psi[s, j] == pytest.approx(centre + np.sqrt(variance[s, j]) * offset[s, j],
                                              rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(z[1], offset[1], rtol=1e-10)
    # The density of psi, N(psi | mu, chol chol'), times the Jacobian prod sqrt(v).
    expected = -0.5 * (z**2).sum() - 4 * np.log(c).sum() + 0.5 * np.log(variance).sum()
    assert density == pytest.approx(expected, rel=1e-10)
    # Negative control: the centred Jacobian (log sd) in place of sqrt(v) is another density.
    centred_jacobian = np.log(np.where(np.isfinite(sd), sd, c)).sum()
    assert density != pytest.approx(-0.5 * (z**2).sum() - 4 * np.log(c).sum()
                                    + centred_jacobian, rel=1e-6)


def test_auto_parametrisation_tends_to_the_centred_and_non_centred_forms():
    """Sharp data: psi = mode + sd * offset; no data: psi = mu + chol z, z = offset."""
    sharp = np.full((4, 3), 1e-7)
    priors = {**_priors("auto"), "correlated": False}
    psi, _, _, _, offset = _hierarchy_at_random_point(priors, _independent(sharp))
    np.testing.assert_allclose(psi, _MODE + sharp * offset, atol=1e-12)
    psi, mu, chol, _, offset = _hierarchy_at_random_point(
        priors, _independent(np.full((4, 3), np.inf)))
    np.testing.assert_allclose(psi, mu + offset * np.diag(chol), rtol=1e-12)
    # Without a Laplace fit, "auto" is the non-centred form (DESIGN's default).
    psi, mu, chol, _, offset = _hierarchy_at_random_point(priors, None)
    np.testing.assert_allclose(psi, mu + offset * np.diag(chol), rtol=1e-12)


def test_centring_mask_from_bool_or_nested_list():
    assert centring_mask("auto", 2, 3) is None
    np.testing.assert_array_equal(centring_mask(True, 2, 3), np.ones((2, 3), bool))
    np.testing.assert_array_equal(centring_mask([[True], [False]], 2, 1), [[True], [False]])
    with pytest.raises(ValueError, match=r"shape \(1, 1\); the model has 2 segments"):
        centring_mask([[True]], 2, 1)


def test_segment_laplace_recovers_mode_and_sd_of_a_gaussian_likelihood():
    centre = np.array([[3.0, -2.0], [0.5, 4.0], [1.0, 1.0]])
    variance = np.array([[0.01, 0.04], [0.25, 1.0], [np.inf, 0.5]])  # inf: no information

    def loglik(psi):
        return np.sum(np.where(np.isinf(variance), 0.0, -0.5 * (psi - centre) ** 2 / variance),
                      axis=-1)

    mu_priors = {"u": Prior("Normal", mu=0.0, sigma=2.0), "v": Prior("Normal", mu=1.0, sigma=3.0)}
    laplace = segment_laplace(loglik, 3, ["u", "v"], mu_priors)
    prior_mean, prior_var = np.array([0.0, 1.0]), np.array([4.0, 9.0])
    precision = 1.0 / variance + 1.0 / prior_var
    np.testing.assert_allclose(laplace.sd, 1.0 / np.sqrt(precision), rtol=1e-3)
    mode = (np.where(np.isinf(variance), 0.0, centre / variance) + prior_mean / prior_var)
    np.testing.assert_allclose(laplace.mode, mode / precision, atol=1e-4)


def test_segment_laplace_evaluations_do_not_grow_with_segments():
    # Each finite difference moves all segments at once and reads each one's change.
    rng = np.random.default_rng(4)
    mu_priors = {"u": Prior("Normal", mu=0.0, sigma=2.0), "v": Prior("Normal", mu=1.0, sigma=3.0)}
    calls = {}
    for n in (3, 40):
        centre = rng.normal(size=(n, 2))
        calls[n] = 0

        def loglik(psi, centre=centre, n=n):
            calls[n] += 1
            return -0.5 * np.sum((psi - centre) ** 2 / 0.01, axis=-1)

        laplace = segment_laplace(loglik, n, ["u", "v"], mu_priors)
        precision = 1.0 / 0.01 + 1.0 / np.array([4.0, 9.0])
        np.testing.assert_allclose(laplace.sd, np.broadcast_to(precision ** -0.5, (n, 2)),
                                   rtol=1e-3)
    assert calls[40] < 2 * calls[3]


def _normal_logpdf(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2.0 * np.pi)


@pytest.mark.parametrize("correlated", [True, False])
def test_sampled_population_mean_is_its_gaussian_conditional_with_the_jacobian(correlated):
    """mu = m + R^-T u: the Gaussian conditional of mu given the spread and the Laplace fits.

    Without correlation, with the diagonal of each Laplace covariance.

    Its potential is the prior's log density at mu plus log |d mu / d u| = -sum log diag R,
    so the posterior is the one of the model with mu as the variable.
    """
    correlation = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    covariance = _SD[:, :, None] * correlation * _SD[:, None, :]
    covariance[2] = np.nan  # no Laplace fit: the segment weighs nothing
    priors = {**_priors("auto"), "correlated": correlated}
    model = _model(priors, SegmentLaplace(_MODE, covariance))
    assert {"x_mu_offset", "x_sigma"} <= set(model.named_vars)
    assert ("x_corr_offset" in model.named_vars) == correlated
    (mu, chol, potential), point = _at_random_point(model, ["x_mu", "x_chol", "x_population"])
    spread = chol @ chol.T
    known = [0, 1, 3]
    prior_mean, prior_sd = np.array([1.0, -1.0, 0.0]), np.full(3, 2.0)
    # Independent coordinates are standardised one by one, with the data's variances.
    data = covariance if correlated else covariance * np.eye(3)
    weights = [np.linalg.inv(spread + data[s]) for s in known]
    precision = np.diag(prior_sd**-2.0) + sum(weights)
    weighted = prior_mean / prior_sd**2 + sum(weight @ _MODE[s]
                                               for weight, s in zip(weights, known, strict=True))
    root = np.linalg.cholesky(precision)
    expected = np.linalg.solve(precision, weighted) + np.linalg.solve(root.T,
                                                                      point["x_mu_offset"])
    np.testing.assert_allclose(mu, expected, rtol=1e-10)
    assert potential == pytest.approx(
        _normal_logpdf(mu, prior_mean, prior_sd).sum() - np.log(np.diag(root)).sum(), rel=1e-10)
    # Negative control: without the Jacobian it is another density.
    assert potential != pytest.approx(_normal_logpdf(mu, prior_mean, prior_sd).sum(), rel=1e-6)


def test_without_a_laplace_fit_the_population_is_its_own_variables():
    """A MAP fit optimises the density of mu and the packed Cholesky factor themselves."""
    model = _model(_priors("auto"), None)
    names = set(model.named_vars)
    assert {"x_mu_a", "x_mu_b", "x_mu_c", "x_lkj"} <= names
    assert not names & {"x_mu_offset", "x_corr_offset", "x_population", "x_correlation"}


@pytest.mark.usefixtures("python_implementations")
@pytest.mark.parametrize("eta", [1.0, 2.0, 5.0])
def test_sampled_correlation_has_lkj_corr_density_and_transform(eta):
    """The written-out correlation factor: LKJCorr's log density plus its transform's Jacobian."""
    from pymc.distributions.transforms import CholeskyCorrTransform

    coords = {"segment": list("wxyz"), "x_coord": list("abc"), "x_coord_": list("abc")}
    with pm.Model(coords=coords) as model:
        segment_effects("x", list("abc"), {**_priors("auto"), "lkj_eta": eta},
                        _independent(_SD))
    assert "x_corr_chol" not in model.named_vars
    (chol, sigma, potential), point = _at_random_point(
        model, ["x_chol", "x_sigma", "x_correlation"], seed=3)
    low = chol / sigma[:, None]
    np.testing.assert_allclose(np.linalg.norm(low, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.triu(low, 1), 0.0)
    transform = CholeskyCorrTransform(n=3, upper=False)
    unconstrained = transform.forward(low)
    expected = (pm.logp(pm.LKJCorr.dist(n=3, eta=eta), low)
                + transform.log_jac_det(unconstrained)).eval(mode="FAST_COMPILE")
    assert potential == pytest.approx(float(expected), rel=1e-10)
    # The same reals, in another order: the offsets are the rows of L over their diagonal.
    np.testing.assert_allclose(np.sort(point["x_corr_offset"]),
                               np.sort(unconstrained.eval(mode="FAST_COMPILE")), rtol=1e-10)
    # Negative control: LKJCorr at another concentration is another density.
    other = pm.logp(pm.LKJCorr.dist(n=3, eta=eta + 1.0), low).eval(mode="FAST_COMPILE")
    jacobian = transform.log_jac_det(unconstrained).eval(mode="FAST_COMPILE")
    assert potential != pytest.approx(float(other + jacobian), rel=1e-6)


def test_population_prior_draws_mu_and_chol_from_the_priors():
    prior = population_prior("x", list("abc"), _priors("auto"), 3000, 0)
    assert prior["x_mu"].dims == ("chain", "draw", "x_coord")
    assert prior["x_chol"].dims == ("chain", "draw", "x_coord", "x_coord_")
    mu = prior["x_mu"].to_numpy().reshape(-1, 3)
    np.testing.assert_allclose(mu.mean(axis=0), [1.0, -1.0, 0.0], atol=0.15)
    np.testing.assert_allclose(mu.std(axis=0), 2.0, rtol=0.06)
    np.testing.assert_array_equal(np.triu(prior["x_chol"].to_numpy(), 1), 0.0)
    # Unpooled: the mu priors' location and scale, in every draw.
    unpooled = population_prior("x", list("abc"), {**_priors("auto"), "pooled": False}, 5, 0)
    np.testing.assert_array_equal(unpooled["x_mu"].to_numpy()[0, 3], [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(unpooled["x_chol"].to_numpy()[0, 3], np.diag([2.0] * 3))


def _quantiles(values):
    return np.quantile(np.asarray(values).reshape(-1), [0.1, 0.5, 0.9])


@pytest.mark.slow
def test_nuts_on_the_sampled_form_without_data_draws_the_prior():
    """The change of variables end to end: NUTS on the hierarchy alone samples its prior.

    With a Laplace fit (so every reparametrisation is at work: the population mean's
    offset, the written-out correlation, the data-weighted segments) and no likelihood,
    the posterior is the prior; its draws must match forward draws of the population
    (``population_prior``) and of a segment from it (``draw_new_segments``).
    """
    coords = ["a", "b"]
    priors = {"mu": {"a": Prior("Normal", mu=1.0, sigma=2.0),
                     "b": Prior("Normal", mu=-1.0, sigma=2.0)},
              "sigma": {c: Prior("HalfNormal", sigma=1.0) for c in coords},
              "lkj_eta": 2.0, "correlated": True, "centered": "auto", "pooled": True}
    covariance = np.array([[[0.5, 0.2], [0.2, 0.8]]] * 3 + [[[np.nan] * 2] * 2])
    laplace = SegmentLaplace(np.array([[0.5, -0.5], [1.5, 0.0], [1.0, -2.0], [0.0, 0.0]]),
                             covariance)
    model_coords = {"segment": list("wxyz"), "x_coord": coords, "x_coord_": coords}
    with pm.Model(coords=model_coords) as model:
        segment_effects("x", coords, priors, laplace)
    # The library's own NUTS (nutpie's where installed, as an estimator's fit samples).
    posterior = sample_posterior(model, method="nuts", sampler=resolve_sampler("auto"),
                                 draws=2000, tune=1000, chains=2, target_accept=0.95,
                                 random_seed=5)["posterior"]

    def summaries(mu, chol, psi):
        sigma = np.sqrt(np.sum(chol**2, axis=-1))
        correlation = chol[..., 1, 0] / sigma[..., 1]
        return {"mu_a": mu[..., 0], "mu_b": mu[..., 1], "sigma_a": sigma[..., 0],
                "sigma_b": sigma[..., 1], "correlation": correlation,
                "psi_a": psi[..., 0], "psi_b": psi[..., 1]}

    sampled = summaries(posterior["x_mu"].to_numpy(), posterior["x_chol"].to_numpy(),
                        posterior["x_psi"].to_numpy()[:, :, 0])
    tolerance = {"mu_a": 0.3, "mu_b": 0.3, "sigma_a": 0.12, "sigma_b": 0.12,
                 "correlation": 0.12, "psi_a": 0.35, "psi_b": 0.35}

    def forward(mu_scale):
        wider = {**priors, "mu": {c: Prior("Normal", mu=p.params["mu"], sigma=mu_scale)
                                  for c, p in priors["mu"].items()}}
        prior = population_prior("x", coords, wider, 20000, 7)
        mu, chol = prior["x_mu"].to_numpy(), prior["x_chol"].to_numpy()
        return summaries(mu, chol, draw_new_segments(mu, chol, ["w"], 7, "x")[:, :, 0])

    expected = forward(2.0)
    for name, values in sampled.items():
        np.testing.assert_allclose(_quantiles(values), _quantiles(expected[name]),
                                   atol=tolerance[name], err_msg=name)
    # Negative control: the comparison tells apart a population mean of scale 3, not 2.
    other = forward(3.0)
    assert any(np.any(np.abs(_quantiles(sampled[name]) - _quantiles(other[name]))
                      > tolerance[name]) for name in ("mu_a", "mu_b"))


@pytest.mark.parametrize("make", [
    lambda pooled: __import__("bayesclv").RetentionModel("bdw", priors=pooled),
    lambda pooled: __import__("bayesclv").RetentionModel("weibull", priors=pooled),
    lambda pooled: __import__("bayesclv").SpendModel(priors=pooled),
], ids=["bdw", "weibull", "gamma_gamma"])
def test_pooled_and_unpooled_models_are_one_structure_for_every_table(make, monkeypatch):
    # The default priors follow the table (observation window, median spend): as model
    # data, so that a second table (another size, window and spend level) compiles
    # nothing; an unpooled model once kept them as constants, a structure per table.
    from bayesclv.datasets import DEFAULT_SEGMENTS, simulate_customers

    small, _ = simulate_customers(800, DEFAULT_SEGMENTS, observation_periods=18,
                                  random_seed=1)
    large, _ = simulate_customers(3000, DEFAULT_SEGMENTS, observation_periods=40,
                                  truncation_periods=5, random_seed=2)
    large["mean_spend"] *= 7.0
    def structure(pooled, table):
        return structure_of(lambda: make({"pooled": pooled}).fit(table), monkeypatch)

    keys = {}
    for pooled in (True, False):
        first, second = (structure(pooled, table) for table in (small, large))
        assert first is not None and first == second
        keys[pooled] = first
    assert keys[True] != keys[False]  # the control: another structure, another key
