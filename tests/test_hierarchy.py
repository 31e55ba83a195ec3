import numpy as np
import pymc as pm
import pytest

from bayesclv._hierarchy import centring_mask, segment_effects
from bayesclv._laplace import SegmentLaplace, segment_laplace
from bayesclv.priors import Prior


def _priors(mask):
    return {
        "mu": {"a": Prior("Normal", mu=1.0, sigma=2.0), "b": Prior("Normal", mu=-1.0, sigma=2.0),
               "c": Prior("Normal", mu=0.0, sigma=2.0)},
        "sigma": {c: Prior("HalfNormal", sigma=1.0) for c in "abc"},
        "lkj_eta": 2.0, "correlated": True, "centered": mask, "pooled": True,
    }


@pytest.mark.parametrize("correlated", [True, False])
def test_mixed_parametrisation_has_the_multivariate_normal_density(correlated):
    """Each element sampled as psi (centred) or z (non-centred); the density is N(psi | mu, LL')."""
    mask = [[True, False, True], [False, False, False], [True, True, True], [False, True, False]]
    mode = np.arange(12.0).reshape(4, 3) / 10.0
    sd = np.linspace(0.01, 2.0, 12).reshape(4, 3)
    priors = {**_priors(mask), "correlated": correlated}
    coords = {"segment": list("wxyz"), "x_coord": list("abc"), "x_coord_": list("abc")}
    with pm.Model(coords=coords) as model:
        segment_effects("x", list("abc"), priors, SegmentLaplace(mode, sd))
    outputs = model.replace_rvs_by_values([model["x_psi"], model["x_mu"], model["x_chol"],
                                           model["x_hierarchy"]])
    values = model.compile_fn(outputs, inputs=model.value_vars, point_fn=True)
    rng = np.random.default_rng(0)
    point = {name: value + rng.normal(0.0, 0.7, np.shape(value))
             for name, value in model.initial_point().items()}
    psi, mu, chol, density = values(point)
    offset = point["x_offset"]
    centred = np.array(mask)
    np.testing.assert_allclose(psi[centred], (mode + sd * offset)[centred], rtol=1e-12)
    z = np.linalg.solve(chol, (psi - mu).T).T
    np.testing.assert_allclose(z[~centred], offset[~centred], rtol=1e-10, atol=1e-12)
    # log N(psi | mu, chol chol') up to its constant, in the sampled offsets: the z's, and
    # for each centred element the Jacobians d psi / d offset = sd and d z / d psi = 1/chol.
    expected = (-0.5 * (z**2).sum()
                + (centred * (np.log(sd) - np.log(np.diag(chol)))).sum())
    assert density == pytest.approx(expected, rel=1e-10)
    if not correlated:
        np.testing.assert_allclose(chol, np.diag(np.diag(chol)))


def test_centring_mask_from_bool_or_nested_list():
    np.testing.assert_array_equal(centring_mask(True, 2, 3), np.ones((2, 3), bool))
    np.testing.assert_array_equal(centring_mask([[True], [False]], 2, 1), [[True], [False]])
    with pytest.raises(ValueError, match=r"shape \(1, 1\); the model has 2 segments"):
        centring_mask([[True]], 2, 1)


def test_segment_laplace_recovers_mode_and_sd_of_a_gaussian_likelihood():
    centre = np.array([[3.0, -2.0], [0.5, 4.0], [1.0, 1.0]])
    variance = np.array([[0.01, 0.04], [0.25, 1.0], [np.inf, 0.5]])  # inf: no information

    def loglik(psi):
        return float(np.sum(np.where(np.isinf(variance), 0.0,
                                     -0.5 * (psi - centre) ** 2 / variance)))

    mu_priors = {"u": Prior("Normal", mu=0.0, sigma=2.0), "v": Prior("Normal", mu=1.0, sigma=3.0)}
    laplace = segment_laplace(loglik, 3, ["u", "v"], mu_priors)
    prior_mean, prior_var = np.array([0.0, 1.0]), np.array([4.0, 9.0])
    precision = 1.0 / variance + 1.0 / prior_var
    np.testing.assert_allclose(laplace.sd, 1.0 / np.sqrt(precision), rtol=1e-3)
    mode = (np.where(np.isinf(variance), 0.0, centre / variance) + prior_mean / prior_var)
    np.testing.assert_allclose(laplace.mode, mode / precision, atol=1e-4)
