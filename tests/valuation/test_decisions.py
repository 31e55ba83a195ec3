"""Decision quantities: prospective customers, realised value, segment comparisons."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.exceptions import NotFittedError

import bayesclv
from bayesclv.data import risk_set_table, segment_codes
from bayesclv.datasets import simulate_customers, simulate_realised_value
from bayesclv.models.retention import RETENTION_FAMILIES
from bayesclv.valuation.customers import BLOCK
from bayesclv.valuation.decisions import (
    acquisition_cost_ceiling,
    exceedance_probability,
    pairwise_exceedance,
    prospect_discounted_survival,
    prospect_values,
)

PSI = {
    "geometric": np.array([[[-2.0]], [[-1.0]]]),
    "weibull": np.array([[[np.log(12.0), np.log(0.8)]], [[np.log(30.0), np.log(1.3)]]]),
    "sbg": np.array([[[np.log(1.5), np.log(6.0)]], [[np.log(0.7), np.log(3.0)]]]),
    "bdw": np.array([[[np.log(1.5), np.log(6.0), np.log(0.8)]],
                     [[np.log(0.7), np.log(3.0), np.log(1.2)]]]),
}


def _direct_sum(family, psi, periods, discount_rate):
    t = np.arange(periods, dtype=np.float64)
    survival = family.survival(t, psi[:, :, None, :])
    return (survival / (1.0 + discount_rate) ** t).sum(axis=-1)


def _n_coords(name):
    return len(RETENTION_FAMILIES[name].coords)


@pytest.mark.parametrize("name", ["geometric", "weibull", "sbg", "bdw"])
@pytest.mark.parametrize("horizon", [1, 2, 7, 36])
def test_prospect_survival_matches_direct_sum(name, horizon):
    family = RETENTION_FAMILIES[name]
    psi = PSI[name]
    assert psi.shape[-1] == _n_coords(name)
    got = prospect_discounted_survival(family, psi, horizon, 0.02)
    np.testing.assert_allclose(got, _direct_sum(family, psi, horizon, 0.02), rtol=1e-10)


@pytest.mark.parametrize("name", ["geometric", "weibull", "sbg"])
def test_prospect_survival_without_horizon_is_the_limit(name):
    family = RETENTION_FAMILIES[name]
    got = prospect_discounted_survival(family, PSI[name], None, 0.05)
    np.testing.assert_allclose(got, _direct_sum(family, PSI[name], 3000, 0.05), rtol=1e-5)


def test_prospect_survival_geometric_closed_form():
    theta = 0.5
    psi = np.zeros((1, 1, 1))  # logit(0.5)
    d = 0.1
    got = prospect_discounted_survival(RETENTION_FAMILIES["geometric"], psi, None, d)
    # sum_t ((1 - theta) / (1 + d))^t
    np.testing.assert_allclose(got, 1.0 / (1.0 - (1.0 - theta) / (1.0 + d)), rtol=1e-5)


def test_prospect_survival_rejects_bad_horizon():
    with pytest.raises(ValueError, match="horizon must be"):
        prospect_discounted_survival(RETENTION_FAMILIES["geometric"], PSI["geometric"], 0, 0.0)


def test_prospect_values_formula():
    got = prospect_values(np.array([[2.0, 3.0]]), np.array([[10.0, 20.0]]), margin=0.5,
                          cost_per_period=1.0, acquisition_cost=np.array([3.0, 4.0]))
    np.testing.assert_allclose(got, [[(5 - 1) * 2 - 3, (10 - 1) * 3 - 4]])


def test_acquisition_cost_ceiling():
    draws = np.random.default_rng(0).normal(100.0, 10.0, size=(4000, 2))
    ceilings = [acquisition_cost_ceiling(draws, p) for p in (0.5, 0.8, 0.9, 0.99)]
    assert all(np.all(a >= b) for a, b in zip(ceilings, ceilings[1:], strict=False))
    for p, c in zip((0.5, 0.8, 0.9, 0.99), ceilings, strict=True):
        assert np.all((draws >= c).mean(axis=0) >= p)
        assert np.all((draws > c).mean(axis=0) <= p + 1e-3)
    for bad in (0.0, 1.0, 1.5, "0.9"):
        with pytest.raises(ValueError, match="prob must be"):
            acquisition_cost_ceiling(draws, bad)


def test_pairwise_and_exceedance():
    draws = np.random.default_rng(1).normal(size=(500, 4))
    table = pairwise_exceedance(draws)
    np.testing.assert_allclose(np.diag(table), 0.0)
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose((table + table.T)[off], 1.0)
    assert table[0, 1] == np.mean(draws[:, 0] > draws[:, 1])
    np.testing.assert_allclose(exceedance_probability(draws, [0, 1, -1, 0]),
                               (draws > [0, 1, -1, 0]).mean(axis=0))


# --- CLVModel: prospective customers ---------------------------------------------------


def _direct_new_value(model, segments, horizon):
    curve = model.retention_curve(periods=horizon - 1, segments=segments)
    t = curve["period"].to_numpy()
    discounted = (curve / (1.0 + model.discount_rate) ** t).sum("period").to_numpy()
    params = model.spend_model_.segment_params(segments)
    mean_spend = (params["p"] * params["gamma"] / (params["q"] - 1.0)).reshape(
        discounted.shape)
    return (model.margin * mean_spend - model.cost_per_period) * discounted


def test_new_customer_value_matches_direct_sum(nuts_model):
    segments = list(nuts_model.segments_)
    value = nuts_model.expected_new_customer_value()
    assert value.dims == ("chain", "draw", "segment")
    assert list(value["segment"].to_numpy()) == segments
    np.testing.assert_allclose(value.to_numpy(), _direct_new_value(nuts_model, segments, 24),
                               rtol=1e-10)
    short = nuts_model.expected_new_customer_value(horizon=5)
    np.testing.assert_allclose(short.to_numpy(), _direct_new_value(nuts_model, segments, 5),
                               rtol=1e-10)
    assert np.all(short.to_numpy() < value.to_numpy())


def test_new_customer_value_acquisition_cost(map_model):
    base = map_model.expected_new_customer_value()
    flat = map_model.expected_new_customer_value(acquisition_cost=50.0)
    np.testing.assert_allclose(flat.to_numpy(), base.to_numpy() - 50.0)
    costs = {"a": 1.0, "b": 2.0, "c": 3.0}
    per = map_model.expected_new_customer_value(["c", "a"], acquisition_cost=costs)
    np.testing.assert_allclose(
        per.to_numpy(), base.sel(segment=["c", "a"]).to_numpy() - np.array([3.0, 1.0]))
    with pytest.raises(ValueError, match="leaves out 2 segment"):
        map_model.expected_new_customer_value(acquisition_cost={"a": 1.0})
    with pytest.raises(TypeError, match="acquisition_cost must be a number"):
        map_model.expected_new_customer_value(acquisition_cost="10")
    with pytest.raises(ValueError, match="must be finite"):
        map_model.expected_new_customer_value(acquisition_cost=np.nan)
    with pytest.raises(ValueError, match="horizon must be"):
        map_model.expected_new_customer_value(horizon=0)


def test_new_customer_value_unseen_segment(nuts_model):
    value = nuts_model.expected_new_customer_value(["a", "never_seen"])
    assert np.all(np.isfinite(value.to_numpy()))
    again = nuts_model.expected_new_customer_value(["never_seen"])
    np.testing.assert_allclose(value.sel(segment=["never_seen"]).to_numpy(), again.to_numpy(),
                               rtol=1e-12)
    draws = value.stack(sample=("chain", "draw"))
    spread = draws.quantile([0.05, 0.95], dim="sample").diff("quantile").squeeze()
    assert float(spread.sel(segment="never_seen")) > float(spread.sel(segment="a"))


def test_new_customer_value_without_horizon(small_customers):
    customers, _ = small_customers
    model = bayesclv.CLVModel(method="map", horizon=None, discount_rate=0.02, margin=0.5,
                              random_seed=3).fit(customers)
    value = model.expected_new_customer_value().to_numpy()
    long = model.expected_new_customer_value(horizon=4000).to_numpy()
    np.testing.assert_allclose(value, long, rtol=1e-5)


def test_max_acquisition_cost(map_model, nuts_model):
    table = map_model.max_acquisition_cost()
    np.testing.assert_allclose(table["max_acquisition_cost"], table["value_mean"])
    np.testing.assert_allclose(
        table["value_mean"],
        map_model.expected_new_customer_value().to_numpy().reshape(-1))
    nuts = {p: nuts_model.max_acquisition_cost(prob=p) for p in (0.5, 0.8, 0.9, 0.95)}
    assert np.all(nuts[0.9]["max_acquisition_cost"] < nuts[0.9]["value_mean"])
    for low, high in ((0.5, 0.8), (0.8, 0.9), (0.9, 0.95)):
        assert np.all(nuts[high]["max_acquisition_cost"] <= nuts[low]["max_acquisition_cost"])
    draws = nuts_model.expected_new_customer_value().stack(sample=("chain", "draw"))
    for seg, ceiling in nuts[0.9]["max_acquisition_cost"].items():
        assert float((draws.sel(segment=seg) >= ceiling).mean()) >= 0.9
    with pytest.raises(ValueError, match="prob must be"):
        nuts_model.max_acquisition_cost(prob=1.0)


def test_unfitted_raises(small_customers):
    customers, _ = small_customers
    model = bayesclv.CLVModel()
    with pytest.raises(NotFittedError):
        model.expected_new_customer_value()
    with pytest.raises(NotFittedError):
        model.max_acquisition_cost()
    with pytest.raises(NotFittedError):
        model.distribution_customer_value(customers)
    with pytest.raises(NotFittedError):
        model.segment_comparison(customers)
    with pytest.raises(NotFittedError):
        model.budget_probability(customers, 0.0)


# --- realised value --------------------------------------------------------------------


def test_realised_mean_matches_expected_value(map_model, small_customers):
    customers, _ = small_customers
    n_paths = 400
    realised = map_model.distribution_customer_value(customers, n_paths=n_paths)
    assert realised.dims == ("chain", "draw", "path", "customer")
    assert realised.attrs["quantity"] == "realised residual value"
    expected = map_model.predict(customers)["clv_mean"].to_numpy()
    values = realised.to_numpy().reshape(n_paths, -1)
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
    active = ~customers["churned"].to_numpy()
    np.testing.assert_array_equal(values[:, ~active], 0.0)
    z = (mean[active] - expected[active]) / (sd[active] / np.sqrt(n_paths))
    assert abs(z.mean()) < 4.0 / np.sqrt(active.sum())
    assert 0.8 < z.std() < 1.2
    assert np.mean(np.abs(z) > 3.5) < 0.01


def test_realised_intervals_wider_than_expected(nuts_model, small_customers):
    customers, _ = small_customers
    subset = customers.iloc[:200]
    realised = nuts_model.distribution_customer_value(subset, n_paths=4)
    expected = nuts_model.predict_posterior(subset)
    active = ~subset["churned"].to_numpy()

    def width(draws, dims):
        q = draws.quantile([0.05, 0.95], dim=dims).to_numpy()
        return q[1] - q[0]

    w_realised = width(realised, ("chain", "draw", "path"))[active]
    w_expected = width(expected, ("chain", "draw"))[active]
    assert np.mean(w_realised > w_expected) > 0.95
    np.testing.assert_allclose(realised.mean(("chain", "draw", "path")).sum(),
                               expected.mean(("chain", "draw")).sum(), rtol=0.05)


def test_realised_reproducible_and_chunk_independent(map_model, small_customers):
    customers, _ = small_customers
    first = map_model.distribution_customer_value(customers, n_paths=3)
    second = map_model.distribution_customer_value(customers, n_paths=3)
    np.testing.assert_array_equal(first.to_numpy(), second.to_numpy())
    realised, _ = map_model._realised(customers, 3)
    assert realised.n_customers > BLOCK
    small = np.concatenate([c for _, c in realised.iter_values(chunk_size=BLOCK)], axis=-1)
    large = np.concatenate([c for _, c in realised.iter_values(chunk_size=4 * BLOCK)],
                           axis=-1)
    np.testing.assert_array_equal(small, large)
    np.testing.assert_array_equal(small, first.to_numpy().reshape(small.shape))
    unbounded = dataclasses.replace(realised, horizon=None, discount_rate=0.05)
    a = np.concatenate([c for _, c in unbounded.iter_values(chunk_size=BLOCK)], axis=-1)
    b = np.concatenate([c for _, c in unbounded.iter_values(chunk_size=2 * BLOCK)], axis=-1)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a))


def test_realised_rejects_bad_paths(map_model, small_customers):
    customers, _ = small_customers
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_paths must be"):
            map_model.distribution_customer_value(customers, n_paths=bad)


@pytest.mark.slow
def test_realised_intervals_cover_simulated_futures():
    """90% realised-value intervals contain about 90% of the values customers go on to realise.

    Each simulated customer's future (churn period, spend) is fixed by the simulation;
    the expected-value interval, which leaves out that randomness, covers far fewer.
    """
    segments = {
        "a": {"share": 0.4, "eta": 20.0, "k": 0.8, "p": 4.0, "q": 4.0, "gamma": 40.0},
        "b": {"share": 0.35, "eta": 12.0, "k": 1.2, "p": 5.0, "q": 3.0, "gamma": 20.0},
        "c": {"share": 0.25, "eta": 35.0, "k": 0.6, "p": 3.0, "q": 5.0, "gamma": 80.0},
    }
    customers, truth = simulate_customers(3000, segments, observation_periods=24,
                                          random_seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        model = bayesclv.CLVModel(draws=300, tune=300, chains=2, horizon=24, margin=0.5,
                                  hdi_prob=0.9, random_seed=5).fit(customers)
    future = simulate_realised_value(customers, truth, discount_rate=model.discount_rate,
                                     horizon=24, margin=0.5, random_seed=9)
    realised = model.distribution_customer_value(customers, n_paths=2)
    low, high = realised.quantile([0.05, 0.95], dim=("chain", "draw", "path")).to_numpy()
    active = ~customers["churned"].to_numpy()
    coverage = np.mean(((future >= low) & (future <= high))[active])
    assert 0.86 <= coverage <= 0.94, coverage  # ~1,550 active customers: sd 0.8 points
    expected = model.predict(customers)
    expected_coverage = np.mean(((future >= expected["clv_hdi_low"].to_numpy())
                                 & (future <= expected["clv_hdi_high"].to_numpy()))[active])
    assert expected_coverage < 0.6, expected_coverage


# --- segment comparisons ---------------------------------------------------------------


def test_segment_comparison(nuts_model, small_customers):
    customers, _ = small_customers
    table = nuts_model.segment_comparison(customers)
    segments = list(table.index)
    assert list(table.columns) == segments
    assert sorted(segments) == ["a", "b", "c"]
    values = table.to_numpy()
    assert np.all((values >= 0) & (values <= 1))
    np.testing.assert_allclose(np.diag(values), 0.0)
    off = ~np.eye(len(segments), dtype=bool)
    np.testing.assert_allclose((values + values.T)[off], 1.0)
    totals = nuts_model.predict_segment_posterior(customers)
    counts = customers["segment"].value_counts()
    per = {s: totals.sel(segment=s).to_numpy().ravel() / counts[s] for s in segments}
    for a in segments:
        for b in segments:
            if a != b:
                assert table.loc[a, b] == np.mean(per[a] > per[b])


def test_budget_probability(nuts_model, small_customers):
    customers, _ = small_customers
    totals = nuts_model.predict_segment_posterior(customers)
    median = totals.median(("chain", "draw"))
    budget = {s: float(median.sel(segment=s)) for s in totals["segment"].to_numpy()}
    probs = nuts_model.budget_probability(customers, budget)
    assert probs.name == "p_total_above_budget"
    assert probs.between(0, 1).all()
    np.testing.assert_allclose(probs, 0.5, atol=0.02)
    assert (nuts_model.budget_probability(customers, -1e12) == 1.0).all()
    assert (nuts_model.budget_probability(customers, 1e12) == 0.0).all()
    seg = next(iter(budget))
    p = nuts_model.budget_probability(customers, 1000.0)[seg]
    assert p == float((totals.sel(segment=seg) > 1000.0).mean())
    with pytest.raises(ValueError, match="budget given per segment leaves out"):
        nuts_model.budget_probability(customers, {seg: 1.0})
    with pytest.raises(TypeError, match="budget must be a number"):
        nuts_model.budget_probability(customers, [1.0, 2.0])


# --- prior retention curves ------------------------------------------------------------


@pytest.mark.parametrize("family", ["weibull", "sbg"])
def test_prior_retention_curve(family, small_customers):
    customers, _ = small_customers
    model = bayesclv.RetentionModel(family, random_seed=5)
    curve = model.prior_retention_curve(customers, periods=12, draws=80)
    assert curve.dims == ("chain", "draw", "segment", "period")
    assert curve.sizes["draw"] == 80 and sorted(curve["segment"].to_numpy()) == ["a", "b", "c"]
    assert curve.attrs["quantity"] == "prior"
    values = curve.to_numpy()
    np.testing.assert_allclose(values[..., 0], 1.0)
    assert np.all(np.diff(values, axis=-1) <= 1e-12) and np.all(values >= 0)
    assert not hasattr(model, "idata_")
    again = model.prior_retention_curve(customers, periods=12, draws=80)
    np.testing.assert_array_equal(values, again.to_numpy())
    # the prior is wide: segments' 12-period survival spreads over much of [0, 1]
    spread = np.quantile(values[..., -1], [0.05, 0.95])
    assert spread[1] - spread[0] > 0.3
    with pytest.raises(ValueError, match="draws must be"):
        model.prior_retention_curve(customers, draws=0)


def test_clv_model_prior_retention_curve(small_customers):
    customers, _ = small_customers
    model = bayesclv.CLVModel("geometric", random_seed=2,
                              priors={"retention": {"centered": True}})
    curve = model.prior_retention_curve(customers, periods=5, draws=30)
    assert curve.sizes["period"] == 6 and curve.sizes["draw"] == 30
    # The retention prior is drawn with the seed fit gives the retention model.
    seed = int(np.random.SeedSequence(2).generate_state(3)[0])
    direct = bayesclv.RetentionModel("geometric", random_seed=seed,
                                     priors={"centered": True}).prior_retention_curve(
        customers, periods=5, draws=30)
    np.testing.assert_array_equal(curve.to_numpy(), direct.to_numpy())


def test_sample_prior_predictive_gives_curves_churn_spend_and_value(small_customers):
    customers, _ = small_customers
    model = bayesclv.CLVModel("weibull", horizon=24, margin=0.5, random_seed=4)
    prior = model.sample_prior_predictive(customers, periods=12, draws=60)
    assert set(prior.data_vars) == {"survival", "churned", "mean_spend",
                                    "new_customer_value"}
    assert prior["survival"].dims == ("chain", "draw", "segment", "period")
    assert prior["churned"].sizes["churn_period"] == customers["tenure"].max()
    # Simulated churners never exceed those at risk in the data.
    codes = {s: i for i, s in enumerate(prior["segment"].to_numpy())}
    cells = risk_set_table(segment_codes(customers["segment"].to_numpy(), list(codes)),
                           customers["entry"].to_numpy(), customers["tenure"].to_numpy(),
                           customers["churned"].to_numpy(), len(codes))
    at_risk = np.zeros((len(codes), int(customers["tenure"].max())))
    at_risk[cells["segment"], cells["period"] - 1] = cells["at_risk"]
    assert (prior["churned"].to_numpy() <= at_risk).all()
    # Value = margin * mean spend * sum_{j=1}^{24} S(j) / 1.01^j, draw by draw; the
    # curves reach period 12 only, so the value is at least the first 12 terms.
    survival = prior["survival"].to_numpy()[..., 1:]
    first_year = (survival / 1.01 ** np.arange(1, 13)).sum(axis=-1)
    value = prior["new_customer_value"].to_numpy()
    assert np.all(value >= 0.5 * prior["mean_spend"].to_numpy() * first_year * (1 - 1e-9))
    again = model.sample_prior_predictive(customers, periods=12, draws=60)
    xr.testing.assert_equal(prior, again)
    assert not hasattr(model, "idata_")
    with pytest.raises(ValueError, match="periods must be"):
        model.sample_prior_predictive(customers, periods=0)
