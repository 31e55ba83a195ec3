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
