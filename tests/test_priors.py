import json

import pytest

from bayesclv.priors import Prior, merge_priors, priors_from_dict, priors_to_dict
from bayesclv.retention import WeibullRetention


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
    from bayesclv.priors import default_priors, priors_table

    customers = bayesclv.datasets.load_example()
    priors = default_priors(customers, retention="bdw")
    assert set(priors) == {"retention", "spend"}
    assert set(priors["retention"]["mu"]) == {"log_alpha", "log_beta", "log_c"}
    assert priors["spend"]["mu"]["log_gamma"].params["mu"] == pytest.approx(
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


def test_auto_parametrisation_is_centred_only_for_large_segments_under_nuts():
    import numpy as np

    from bayesclv.priors import CENTERED_MIN_CUSTOMERS, resolve_parametrisation

    defaults = WeibullRetention().default_priors([12])
    assert defaults["centered"] == "auto"
    large = np.array([CENTERED_MIN_CUSTOMERS, 5 * CENTERED_MIN_CUSTOMERS])
    small = np.array([CENTERED_MIN_CUSTOMERS - 1, 5 * CENTERED_MIN_CUSTOMERS])
    assert resolve_parametrisation(defaults, large, method="nuts")["centered"] is True
    assert resolve_parametrisation(defaults, small, method="nuts")["centered"] is False
    assert resolve_parametrisation(defaults, large, method="map")["centered"] is False
    assert resolve_parametrisation(defaults, np.array([], dtype=int),
                                   method="nuts")["centered"] is False
    # An explicit choice is kept whatever the sizes.
    forced = merge_priors(defaults, {"centered": True})
    assert resolve_parametrisation(forced, small, method="nuts")["centered"] is True
    assert resolve_parametrisation(merge_priors(defaults, {"centered": False}), large,
                                   method="nuts")["centered"] is False
    assert defaults["centered"] == "auto"  # not modified in place
    with pytest.raises(ValueError, match="'centered' must be True, False or 'auto'; got 'yes'"):
        resolve_parametrisation(merge_priors(defaults, {"centered": "yes"}), large,
                                method="nuts")
    with pytest.raises(ValueError, match="got 1.5"):
        resolve_parametrisation(merge_priors(defaults, {"centered": 1.5}), large, method="nuts")


# 20 draws: enough to see which variables were sampled, far too few to converge.
@pytest.mark.filterwarnings("ignore::bayesclv.exceptions.ConvergenceWarning")
def test_fitted_models_record_the_parametrisation_they_sampled():
    import bayesclv
    from bayesclv.priors import CENTERED_MIN_CUSTOMERS

    segments = {"a": {"share": 0.5, "eta": 20.0, "k": 0.8, "p": 3.0, "q": 4.0, "gamma": 30.0},
                "b": {"share": 0.5, "eta": 40.0, "k": 1.2, "p": 2.0, "q": 6.0, "gamma": 60.0}}
    customers, _ = bayesclv.datasets.simulate_customers(
        2 * CENTERED_MIN_CUSTOMERS + 2000, segments, observation_periods=12, random_seed=3)
    assert customers["segment"].value_counts().min() >= CENTERED_MIN_CUSTOMERS
    settings = dict(draws=20, tune=20, chains=1, random_seed=0)
    retention = bayesclv.RetentionModel(**settings).fit(customers)
    assert retention.priors_["centered"] is True
    assert "retention_z" not in retention.posterior_
    small = customers.groupby("segment").head(3000)
    retention = bayesclv.RetentionModel(**settings).fit(small)
    assert retention.priors_["centered"] is False
    assert "retention_z" in retention.posterior_
    spend = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    assert spend.priors_["centered"] is False
