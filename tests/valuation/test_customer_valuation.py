import numpy as np
import pytest

from bayesclv.models.retention import GeometricRetention, WeibullRetention
from bayesclv.models.spend import GammaGammaSpend
from bayesclv.valuation.customers import BLOCK, CustomerValuation
from bayesclv.valuation.survival import residual_survival_sums

WEIBULL = WeibullRetention()
GEOMETRIC = GeometricRetention()


def brute_force_sums(eta, k, tau, horizon, d):
    j = np.arange(1, horizon + 1)
    ratio = np.exp((tau / eta) ** k - ((tau + j) / eta) ** k)
    return (ratio / (1 + d) ** j).sum(), ratio.sum(), ratio[0]


def test_residual_sums_match_brute_force(rng):
    eta = rng.uniform(5, 50, size=(7, 1))
    k = rng.uniform(0.3, 2.5, size=(7, 1))
    tenure = np.array([1, 4, 13, 40])
    psi = np.stack([np.log(eta) * np.ones((7, 4)), np.log(k) * np.ones((7, 4))], axis=-1)
    sums = residual_survival_sums(WEIBULL, psi, tenure, horizon=250, discount_rate=0.02)
    for s in range(7):
        for p, tau in enumerate(tenure):
            disc, life, nxt = brute_force_sums(eta[s, 0], k[s, 0], tau, 250, 0.02)
            assert np.isclose(sums["discounted"][s, p], disc, rtol=1e-10)
            assert np.isclose(sums["lifetime"][s, p], life, rtol=1e-10)
            assert np.isclose(sums["retention_next"][s, p], nxt, rtol=1e-12)


@pytest.mark.parametrize("eta,k", [(20.0, 0.7), (2.0, 1.6), (0.2, 0.9)],
                         ids=["slow-churn", "fast-churn", "hazards-in-the-hundreds"])
@pytest.mark.parametrize("horizon", [5, 130, None])
def test_tenures_of_one_profile_match_brute_force(eta, k, horizon):
    # Many tenures share one profile's periods, as customers of a segment do: their sums
    # come from suffix sums over the block, or pair by pair where the block's cumulative
    # hazard leaves the double range (eta=0.2: H(320) is about 760). A short last window
    # (horizon 5, 130) under a tail of 200 periods of tenure loses no digits either.
    tenure = np.array([0, 1, 2, 7, 36, 40, 200])
    psi = np.tile([np.log(eta), np.log(k)], (3, 1, 1))
    sums = residual_survival_sums(WEIBULL, psi, tenure, horizon, discount_rate=0.01,
                                  pair_profile=np.zeros(len(tenure), dtype=np.int64))
    for p, tau in enumerate(tenure):
        disc, life, nxt = brute_force_sums(eta, k, tau, horizon or 20_000, 0.01)
        rtol = 1e-10 if horizon else 1e-6  # horizon=None stops within 1e-6 of the value
        np.testing.assert_allclose(sums["discounted"][:, p], disc, rtol=rtol, atol=1e-300)
        if horizon:  # (the undiscounted sum stops where the value does)
            np.testing.assert_allclose(sums["lifetime"][:, p], life, rtol=rtol, atol=1e-300)
        np.testing.assert_allclose(sums["retention_next"][:, p], nxt, rtol=1e-12)


def test_geometric_collapses_to_berger_nasr():
    theta, d, horizon = 0.05, 0.01, 36
    psi = np.full((1, 3, 1), np.log(theta / (1 - theta)))
    sums = residual_survival_sums(GEOMETRIC, psi, np.array([1, 10, 100]), horizon, d)
    ratio = (1 - theta) / (1 + d)
    berger_nasr = ratio * (1 - ratio**horizon) / (1 - ratio)
    np.testing.assert_allclose(sums["discounted"], berger_nasr, rtol=1e-12)


def test_horizon_none_converges_to_long_horizon():
    psi = np.array([[[np.log(20.0), np.log(0.8)]]])
    unlimited = residual_survival_sums(WEIBULL, psi, np.array([6]), None, 0.01)
    long = residual_survival_sums(WEIBULL, psi, np.array([6]), 5000, 0.01)
    np.testing.assert_allclose(unlimited["discounted"], long["discounted"], rtol=1e-5)


def test_duration_dependence_makes_loyal_customers_worth_more():
    psi = np.array([[[np.log(20.0), np.log(0.6)]] * 2]).reshape(1, 2, 2)
    sums = residual_survival_sums(WEIBULL, psi, np.array([1, 60]), 36, 0.01)
    assert sums["discounted"][0, 1] > sums["discounted"][0, 0]
    assert sums["retention_next"][0, 1] > sums["retention_next"][0, 0]


def make_valuation(n_customers, n_samples=50, seed=0):
    rng = np.random.default_rng(1)
    spend = GammaGammaSpend()
    n_segments = 3
    psi = np.stack([np.log(rng.uniform(1, 5, (n_samples, n_segments))),
                    np.log(rng.uniform(1, 4, (n_samples, n_segments))),
                    np.log(rng.uniform(10, 90, (n_samples, n_segments)))], axis=-1)
    return CustomerValuation(
        sums={"discounted": rng.uniform(5, 30, (n_samples, 10)),
              "lifetime": rng.uniform(5, 30, (n_samples, 10)),
              "retention_next": rng.uniform(0.8, 1, (n_samples, 10))},
        pair=rng.integers(0, 10, n_customers), segment=rng.integers(0, n_segments, n_customers),
        active=rng.uniform(size=n_customers) < 0.7, spend_family=spend,
        spend_params=spend.natural(psi),
        inputs=np.c_[rng.integers(1, 10, n_customers).astype(float),
                     rng.gamma(2.0, 20.0, n_customers)], margin=0.3, cost_per_period=1.0, seed=seed,
    )


def test_values_do_not_depend_on_chunk_size(monkeypatch):
    valuation = make_valuation(3 * BLOCK + 17)
    full = np.concatenate([v for _, v in valuation.iter_values()], axis=1)
    monkeypatch.setattr(CustomerValuation, "chunk_size", lambda self: BLOCK)
    chunked = np.concatenate([v for _, v in valuation.iter_values()], axis=1)
    np.testing.assert_array_equal(full, chunked)


def test_summaries_agree_with_full_draws():
    valuation = make_valuation(2500)
    full = np.concatenate([v for _, v in valuation.iter_values()], axis=1)
    summary = valuation.summarize(0.9, 3)
    # The mean integrates the customer's spend out exactly; the draws agree up to MC noise.
    mc_error = full.std(axis=0, ddof=1) / np.sqrt(full.shape[0])
    assert np.all(np.abs(summary.mean - full.mean(axis=0)) <= 5 * mc_error + 1e-12)
    np.testing.assert_allclose(summary.sd, full.std(axis=0, ddof=1), rtol=1e-12)
    for s in range(3):
        np.testing.assert_allclose(summary.segment_totals[:, s],
                                   full[:, valuation.segment == s].sum(axis=1), rtol=1e-10)
    assert np.all(summary.hdi_low <= summary.mean + 1e-9)
    assert np.all(summary.hdi_high >= summary.mean - 1e-9)
    churned = ~valuation.active
    assert np.all(full[:, churned] == 0)


def test_different_seed_gives_different_draws():
    a = next(make_valuation(100, seed=0).iter_values())[1]
    b = next(make_valuation(100, seed=1).iter_values())[1]
    active = make_valuation(100).active
    assert not np.allclose(a[:, active], b[:, active])


@pytest.mark.parametrize("margin,cost", [(1.0, 0.0), (0.2, 50.0)])
def test_margin_and_cost_enter_linearly(margin, cost):
    valuation = make_valuation(300)
    valuation.margin, valuation.cost_per_period = margin, cost
    values = next(valuation.iter_values())[1]
    valuation.margin, valuation.cost_per_period = 1.0, 0.0
    revenue = next(valuation.iter_values())[1]
    annuity = valuation.sums["discounted"][:, valuation.pair]
    expected = np.where(valuation.active, margin * revenue - cost * annuity, 0.0)
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-9)
