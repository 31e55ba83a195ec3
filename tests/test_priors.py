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
