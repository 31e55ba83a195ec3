import pytest

import bayesclv
from bayesclv.diagnostics import convergence_problems


def test_under_sampled_fit_raises_a_convergence_warning(small_customers):
    customers, _ = small_customers
    with pytest.warns(bayesclv.ConvergenceWarning, match=r"(?s)retention posterior.*ESS < 400"):
        model = bayesclv.RetentionModel(draws=20, tune=20, chains=2, random_seed=1).fit(customers)
    problems = convergence_problems(model.idata_, ["retention_mu", "eta", "k"])
    assert any("ESS" in p for p in problems)


def test_map_fit_is_not_checked_for_convergence(small_customers, recwarn):
    customers, _ = small_customers
    bayesclv.RetentionModel(method="map", random_seed=1).fit(customers)
    assert not [w for w in recwarn if issubclass(w.category, bayesclv.ConvergenceWarning)]
