"""Cash flows per future period: expected under each draw, and realised (predictive)."""

from __future__ import annotations

import numpy as np
import pytest
from arviz_stats.base import array_stats

from bayesclv.models.retention import WeibullRetention
from bayesclv.models.spend import GammaGammaSpend
from bayesclv.valuation.customers import CustomerValuation
from bayesclv.valuation.decisions import RealisedValuation
from bayesclv.valuation.forecast import expected_cash_flows, realised_cash_flows

WEIBULL = WeibullRetention()
GAMMA_GAMMA = GammaGammaSpend()
TRUTH = {"eta": 14.0, "k": 0.7, "p": 4.0, "q": 3.5, "gamma": 60.0}
PERIODS = 12


def simulate_base(rng, n_customers, periods=PERIODS):
    """A base with known truth, its history and what it actually does next.

    Each customer has a spending rate ``nu ~ Gamma(q, gamma)``, has survived ``tau``
    periods and spent ``Gamma(p, nu)`` in each of them; afterwards it churns with the
    Weibull hazard and spends the same way while it stays.
    """
    nu = rng.gamma(TRUTH["q"], 1.0 / TRUTH["gamma"], n_customers)
    tau = rng.integers(1, 30, n_customers)
    x = tau.astype(np.float64)
    z = rng.gamma(TRUTH["p"] * x, 1.0) / nu / x  # mean of x periods' Gamma(p, nu) spends
    survival = np.exp(-(np.arange(0, 30 + periods + 1) / TRUTH["eta"]) ** TRUTH["k"])
    u = rng.random(n_customers)
    active = np.zeros((periods, n_customers), dtype=bool)
    for j in range(1, periods + 1):
        active[j - 1] = u < survival[tau + j] / survival[tau]
    spend = rng.gamma(TRUTH["p"], 1.0, (periods, n_customers)) / nu
    return tau, np.column_stack([x, z]), active.sum(axis=1), (active * spend).sum(axis=1)


def at_truth(tau, inputs, eta, n_paths, seed, horizon=PERIODS):
    """The simulation of a base of one segment under the truth (``eta`` aside)."""
    n = len(tau)
    psi = np.broadcast_to([np.log(eta), np.log(TRUTH["k"])], (1, 1, 2))
    params = {key: np.full((1, 1), TRUTH[key]) for key in ("p", "q", "gamma")}
    return RealisedValuation(
        family=WEIBULL, psi=np.ascontiguousarray(psi), segment=np.zeros(n, dtype=np.int64),
        tenure=tau, active=np.ones(n, dtype=bool), spend_family=GAMMA_GAMMA,
        spend_params=params, inputs=inputs, margin=1.0, cost_per_period=0.0,
        discount_rate=0.0, horizon=horizon, n_paths=n_paths, seed=seed)


def realised(tau, inputs, eta, n_paths, seed):
    return realised_cash_flows(at_truth(tau, inputs, eta, n_paths, seed),
                               np.zeros(1, dtype=np.int64), 1)


def coverage(eta_used, replicates=60, prob=0.8):
    """Share of (replicate, period) realised totals inside the predictive HDI."""
    rng = np.random.default_rng(2026)
    inside = {"active": [], "revenue": []}
    for r in range(replicates):
        tau, inputs, active, revenue = simulate_base(rng, 300)
        flows = realised(tau, inputs, eta_used, n_paths=300, seed=r)
        for name, actual in (("active", active), ("revenue", revenue)):
            draws = flows[name][0, :, 0, :]  # (paths, periods)
            interval = array_stats.hdi(draws.T, prob, axis=-1)
            inside[name].append((interval[:, 0] <= actual) & (actual <= interval[:, 1]))
    return {name: float(np.mean(values)) for name, values in inside.items()}


def test_realised_totals_cover_what_the_base_does_at_the_nominal_rate():
    observed = coverage(TRUTH["eta"])
    # 720 (replicate, period) cells, correlated within a replicate: 0.8 +- 0.06.
    for name, rate in observed.items():
        assert 0.74 <= rate <= 0.87, (name, rate)


def test_a_wrong_retention_curve_is_caught_by_the_coverage():
    # Negative control: churn as if customers lasted half as long.
    observed = coverage(TRUTH["eta"] / 2.0, replicates=20)
    assert observed["active"] < 0.4
    assert observed["revenue"] < 0.5


def test_expected_flows_are_the_mean_of_the_realised_ones():
    rng = np.random.default_rng(5)
    tau, inputs, _, _ = simulate_base(rng, 400)
    n = len(tau)
    psi = np.broadcast_to([np.log(TRUTH["eta"]), np.log(TRUTH["k"])], (1, 1, 2))
    params = {key: np.full((1, 1), TRUTH[key]) for key in ("p", "q", "gamma")}
    valuation = CustomerValuation(
        sums={"discounted": np.zeros((1, n))}, pair=np.arange(n),
        segment=np.zeros(n, dtype=np.int64), active=np.ones(n, dtype=bool),
        spend_family=GAMMA_GAMMA, spend_params=params, inputs=inputs, margin=1.0,
        cost_per_period=0.0, seed=3, tenure=tau)
    # Expected flows with each customer's spend at many draws: average them.
    many = valuation.repeated(400)
    expected = expected_cash_flows(many, WEIBULL, np.repeat(np.ascontiguousarray(psi), 400, 0),
                                   PERIODS, 1)
    simulated = realised(tau, inputs, TRUTH["eta"], n_paths=2000, seed=1)
    for name in ("active", "revenue"):
        mean_expected = expected[name][:, 0, :].mean(axis=0)
        mean_realised = simulated[name][0, :, 0, :].mean(axis=0)
        np.testing.assert_allclose(mean_realised, mean_expected, rtol=0.02)


def test_churned_customers_and_other_segments_contribute_nothing():
    rng = np.random.default_rng(8)
    tau, inputs, _, _ = simulate_base(rng, 50)
    n = len(tau)
    psi = np.ascontiguousarray(np.broadcast_to([np.log(10.0), 0.0], (2, 2, 2)))
    params = {key: np.full((2, 2), TRUTH[key]) for key in ("p", "q", "gamma")}
    active = np.arange(n) % 3 != 0
    segment = (np.arange(n) % 2).astype(np.int64)
    valuation = CustomerValuation(
        sums={"discounted": np.zeros((2, n))}, pair=np.arange(n), segment=segment,
        active=active, spend_family=GAMMA_GAMMA, spend_params=params, inputs=inputs,
        margin=0.5, cost_per_period=1.0, seed=3, tenure=tau)
    flows = expected_cash_flows(valuation, WEIBULL, psi, 4, 2)
    # Geometric-like check on the first period: the expected actives are sums of S ratios.
    ratio = np.exp((tau / 10.0) - ((tau + 1) / 10.0))
    for s in (0, 1):
        mask = active & (segment == s)
        np.testing.assert_allclose(flows["active"][:, s, 0], ratio[mask].sum(), rtol=1e-12)
    np.testing.assert_allclose(flows["margin"], 0.5 * flows["revenue"] - flows["active"],
                               rtol=1e-12)


@pytest.mark.parametrize("periods", [1, 7])
def test_realised_flows_stop_at_the_horizon(periods):
    rng = np.random.default_rng(1)
    tau, inputs, _, _ = simulate_base(rng, 30, periods=periods)
    valuation = at_truth(tau, inputs, TRUTH["eta"], n_paths=5, seed=0, horizon=periods)
    flows = realised_cash_flows(valuation, np.zeros(1, dtype=np.int64), 1)
    assert flows["active"].shape == (1, 5, 1, periods)
    assert (np.diff(flows["active"], axis=-1) <= 0).all()  # nobody comes back


def active_coverage(eta_used, replicates, prob=0.8):
    from bayesclv.valuation.forecast import TenureGroups, realised_active

    rng = np.random.default_rng(77)
    inside = []
    for r in range(replicates):
        tau, _, active, _ = simulate_base(rng, 300)
        groups = TenureGroups.of(np.zeros(len(tau), dtype=np.int64), tau,
                                 np.ones(len(tau), dtype=bool))
        psi = np.array([[[np.log(eta_used), np.log(TRUTH["k"])]]])
        draws = realised_active(WEIBULL, psi, groups, PERIODS, 400, r, 1)[0, :, 0, :]
        interval = array_stats.hdi(draws.T, prob, axis=-1)
        inside.append((interval[:, 0] <= active) & (active <= interval[:, 1]))
    return float(np.mean(inside))


def test_simulated_active_counts_cover_the_truth_and_catch_a_wrong_curve():
    assert 0.74 <= active_coverage(TRUTH["eta"], 60) <= 0.9
    assert active_coverage(TRUTH["eta"] / 2.0, 20) < 0.4


def test_drawn_revenue_has_the_spread_of_customer_by_customer_simulation():
    # Few customers: where the gamma draw of a period's total is least like a normal.
    rng = np.random.default_rng(12)
    tau, inputs, _, _ = simulate_base(rng, 12)
    valuation = at_truth(tau, inputs, TRUTH["eta"], n_paths=20_000, seed=4, horizon=4)
    drawn = realised_cash_flows(valuation, np.zeros(1, dtype=np.int64), 1)["revenue"][0, :, 0]
    exact = np.zeros((20_000, 4))
    for j, alive, spend in valuation.iter_periods(0, 12):
        exact[:, j - 1] = np.where(alive, spend, 0.0)[0].sum(axis=-1)
    for statistic in (np.mean, np.std):
        np.testing.assert_allclose(statistic(drawn, axis=0), statistic(exact, axis=0),
                                   rtol=0.03)
    np.testing.assert_allclose(np.quantile(drawn, [0.05, 0.95], axis=0),
                               np.quantile(exact, [0.05, 0.95], axis=0), rtol=0.04)
