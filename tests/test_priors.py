import json

import pytest

from bayesclv.models.retention import WeibullRetention
from bayesclv.priors import Prior, merge_priors, priors_from_dict, priors_to_dict


def test_prior_round_trips_through_json():
    priors = WeibullRetention().default_priors([10, 24])
    text = json.dumps(priors_to_dict(priors))
    assert priors_from_dict(json.loads(text)) == priors


def test_unknown_distribution_is_refused():
    with pytest.raises(ValueError, match="Unknown prior distribution 'os.system'"):
        Prior("os.system", mu=0.0)
    with pytest.raises(ValueError, match="Unknown prior distribution"):
        Prior.from_dict({"distribution": "__import__", "params": {}})


def test_merge_overrides_one_entry_and_keeps_the_rest():
    defaults = WeibullRetention().default_priors([12])
    merged = merge_priors(defaults, {"mu": {"log_k": Prior("Normal", mu=-0.5, sigma=0.2)},
                                     "lkj_eta": 4.0})
    assert merged["mu"]["log_k"] == Prior("Normal", mu=-0.5, sigma=0.2)
    assert merged["mu"]["log_eta"] == defaults["mu"]["log_eta"]
    assert merged["lkj_eta"] == 4.0
    assert defaults["lkj_eta"] == 2.0  # defaults untouched


def test_merge_accepts_dict_form_and_rejects_unknown_keys():
    defaults = WeibullRetention().default_priors([12])
    merged = merge_priors(defaults, {"sigma": {"log_k": {"distribution": "HalfNormal",
                                                          "params": {"sigma": 0.1}}}})
    assert merged["sigma"]["log_k"] == Prior("HalfNormal", sigma=0.1)
    with pytest.raises(ValueError, match="Unknown prior key 'log_theta'"):
        merge_priors(defaults, {"mu": {"log_theta": Prior("Normal", mu=0, sigma=1)}})


def test_default_priors_gather_both_families_centred_on_the_data():
    import numpy as np

    import bayesclv
    from bayesclv.families import default_priors
    from bayesclv.priors import priors_table

    customers = bayesclv.datasets.load_example()
    priors = default_priors(customers, retention="bdw")
    assert set(priors) == {"retention", "spend"}
    assert set(priors["retention"]["mu"]) == {"log_alpha", "log_beta", "log_c"}
    assert priors["spend"]["mu"]["log_mean_spend"].params["mu"] == pytest.approx(
        np.log(customers["mean_spend"].median()))
    assert "spend" not in default_priors(customers, spend=None)
    with pytest.raises(ValueError, match="retention must be one of"):
        default_priors(customers, retention="exponential")
    table = priors_table(priors)
    assert "retention.mu.log_c" in set(table["key"])
    assert table.set_index("key").loc["spend.coef", "distribution"] == "Normal"
    # A fitted CLVModel reports the priors it used, defaults where none were given.
    model = bayesclv.CLVModel(method="map", random_seed=0,
                              priors={"spend": {"coef": {"distribution": "Normal",
                                                         "params": {"sigma": 0.5}}}})
    model.fit(customers)
    assert model.priors_["spend"]["coef"] == Prior("Normal", sigma=0.5)
    assert model.priors_["retention"]["coef"] == Prior("Normal", mu=0.0, sigma=1.0)


def test_parametrisation_stays_auto_for_nuts_and_is_non_centred_for_map():
    from bayesclv.priors import resolve_parametrisation

    defaults = WeibullRetention().default_priors([12])
    assert defaults["centered"] == "auto"
    assert resolve_parametrisation(defaults, 3, 2, method="nuts")["centered"] == "auto"
    assert resolve_parametrisation(defaults, 3, 2, method="map")["centered"] == [[False] * 2] * 3
    # An explicit choice is kept whatever the method, and a fitted model's mask too.
    forced = merge_priors(defaults, {"centered": True})
    assert resolve_parametrisation(forced, 3, 2, method="nuts")["centered"] == [[True] * 2] * 3
    assert resolve_parametrisation(merge_priors(defaults, {"centered": False}), 3, 2,
                                   method="nuts")["centered"] == [[False] * 2] * 3
    mask = [[True, False], [False, False], [True, True]]
    kept = merge_priors(defaults, {"centered": mask})
    assert resolve_parametrisation(kept, 3, 2, method="map")["centered"] == mask
    assert defaults["centered"] == "auto"  # not modified in place
    with pytest.raises(ValueError, match="'centered' must be True, False or 'auto'; got 'yes'"):
        resolve_parametrisation(merge_priors(defaults, {"centered": "yes"}), 3, 2, method="nuts")
    with pytest.raises(ValueError, match=r"shape \(3, 2\); got 1.5"):
        resolve_parametrisation(merge_priors(defaults, {"centered": 1.5}), 3, 2, method="nuts")
    with pytest.raises(ValueError, match="a bool per coordinate"):
        resolve_parametrisation(merge_priors(defaults, {"centered": [[True, False]]}), 3, 2,
                                method="nuts")


# 20 draws: enough to see which variables were sampled, far too few to converge.
@pytest.mark.filterwarnings("ignore::bayesclv.exceptions.ConvergenceWarning")
def test_fitted_models_record_the_parametrisation_they_sampled():
    import numpy as np

    import bayesclv

    segments = {"a": {"share": 0.995, "eta": 20.0, "k": 0.8, "p": 3.0, "q": 4.0, "gamma": 30.0},
                "b": {"share": 0.005, "eta": 40.0, "k": 1.2, "p": 2.0, "q": 6.0, "gamma": 600.0}}
    customers, _ = bayesclv.datasets.simulate_customers(
        4000, segments, observation_periods=12, random_seed=3)
    assert customers["segment"].value_counts()["b"] < 40
    settings = dict(draws=20, tune=20, chains=1, random_seed=0)
    retention = bayesclv.RetentionModel(**settings).fit(customers)
    assert retention.priors_["centered"] == "auto"
    posterior = retention.posterior_
    assert "retention_offset" in posterior and "retention_z" not in posterior
    # A forced mask is recorded as given; where not centred, the sampled offsets are the
    # non-centred z: psi = mu + chol z.
    mask = [[True, True, True], [False, False, False]]
    spend = bayesclv.SpendModel(**settings, priors={"centered": mask}).fit(customers)
    assert spend.priors_["centered"] == mask
    psi = spend.posterior_["spend_psi"].to_numpy()
    offset = spend.posterior_["spend_offset"].to_numpy()
    mu = spend.posterior_["spend_mu"].to_numpy()
    chol = spend.posterior_["spend_chol"].to_numpy()
    expected = mu[..., None, :] + np.einsum("cdij,cdsj->cdsi", chol, offset)
    np.testing.assert_allclose(psi[..., 1, :], expected[..., 1, :], rtol=1e-10)
    map_fit = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    assert map_fit.priors_["centered"] == [[False] * 3] * 2
