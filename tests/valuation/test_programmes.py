"""Retention programmes: closed forms (geometric) and brute-force simulation (Weibull, BdW)."""

from __future__ import annotations

import numpy as np
import pytest

from bayesclv.models.retention import RETENTION_FAMILIES
from bayesclv.models.spend import GammaGammaSpend
from bayesclv.valuation.customers import CustomerValuation
from bayesclv.valuation.programmes import programme_values

SPEND = {"p": 4.0, "q": 3.0, "gamma": 50.0}


def survival_valuation(tenure, n_samples=1):
    """Customers whose value is their discounted survival sum (margin 0, cost -1)."""
    n = len(tenure)
    return CustomerValuation(
        sums={"discounted": np.zeros((n_samples, n))}, pair=np.arange(n),
        segment=np.zeros(n, dtype=np.int64), active=np.ones(n, dtype=bool),
        spend_family=GammaGammaSpend(),
        spend_params={key: np.full((n_samples, 1), value) for key, value in SPEND.items()},
        inputs=np.column_stack([np.ones(n), np.full(n, 30.0)]), margin=0.0,
        cost_per_period=-1.0, seed=0, tenure=np.asarray(tenure))


def per_customer(family, psi, tenure, reduction, from_period, horizon, d):
    valuation = survival_valuation(tenure)
    baseline, programme = programme_values(valuation, family, psi[None, None, :],
                                           np.array([reduction]), np.zeros(1), from_period,
                                           horizon, d, 1)
    return baseline[0, 0] / len(tenure), programme[0, 0] / len(tenure)


@pytest.mark.parametrize(("reduction", "from_period"), [(0.0, 1), (0.3, 1), (0.3, 4),
                                                         (1.0, 2)])
def test_geometric_programme_matches_the_closed_form(reduction, from_period):
    theta, d, horizon = 0.08, 0.01, 36
    family = RETENTION_FAMILIES["geometric"]
    psi = np.array([np.log(theta / (1 - theta))])
    baseline, programme = per_customer(family, psi, [5, 5, 5], reduction, from_period,
                                       horizon, d)
    j = np.arange(1, horizon + 1)
    kept = np.minimum(j, from_period - 1)
    helped = np.maximum(j - from_period + 1, 0)
    expected = ((1 - theta) ** kept * (1 - (1 - reduction) * theta) ** helped
                / (1 + d) ** j).sum()
    assert np.isclose(baseline, ((1 - theta) ** j / (1 + d) ** j).sum(), rtol=1e-12)
    assert np.isclose(programme, expected, rtol=1e-12)


def brute_force(family, psi, tau, reduction, from_period, horizon, d, n=400_000, seed=1):
    """Mean discounted periods survived, simulating each period's churn one by one."""
    rng = np.random.default_rng(seed)
    t = np.arange(tau, tau + horizon + 1)
    survival = family.survival(t.astype(float), psi)
    hazard = 1.0 - survival[1:] / survival[:-1]
    alive = np.ones(n, dtype=bool)
    total = np.zeros(n)
    for j in range(1, horizon + 1):
        h = hazard[j - 1] * ((1.0 - reduction) if j >= from_period else 1.0)
        alive &= rng.random(n) >= h
        total += alive / (1.0 + d) ** j
    return total.mean(), total.std() / np.sqrt(n)


@pytest.mark.parametrize(("name", "psi", "tau"), [
    ("weibull", [np.log(12.0), np.log(0.6)], 3),
    ("weibull", [np.log(20.0), np.log(1.8)], 10),
    ("bdw", [np.log(1.2), np.log(4.0), np.log(0.7)], 2),
])
@pytest.mark.parametrize(("reduction", "from_period"), [(0.25, 1), (0.5, 6)])
def test_programme_matches_brute_force_simulation(name, psi, tau, reduction, from_period):
    family = RETENTION_FAMILIES[name]
    psi = np.asarray(psi, dtype=float)
    _, programme = per_customer(family, psi, [tau], reduction, from_period, 24, 0.01)
    mean, se = brute_force(family, psi, tau, reduction, from_period, 24, 0.01)
    assert abs(programme - mean) < 4 * se, (programme, mean, se)
    # Negative control: the same simulation without the programme is far off.
    plain, plain_se = brute_force(family, psi, tau, 0.0, from_period, 24, 0.01)
    assert abs(programme - plain) > 10 * plain_se


def test_spend_change_scales_the_spend_term_only():
    tenure = np.array([2, 2, 7])
    valuation = survival_valuation(tenure)
    valuation.margin, valuation.cost_per_period = 0.5, 0.0
    family = RETENTION_FAMILIES["weibull"]
    psi = np.array([[[np.log(15.0), np.log(0.8)]]])
    base, more = programme_values(valuation, family, psi, np.zeros(1), np.array([0.1]), 1,
                                  24, 0.01, 1)
    np.testing.assert_allclose(more, 1.1 * base, rtol=1e-12)
    _, later = programme_values(valuation, family, psi, np.zeros(1), np.array([0.1]), 30,
                                24, 0.01, 1)
    np.testing.assert_array_equal(later, base)  # acts only after the horizon


def test_programmes_rank_by_gain_per_unit_cost():
    import pandas as pd

    from bayesclv.valuation.programmes import rank_programmes

    def table(delta, cost):
        return pd.DataFrame({"delta_mean": [delta, 0.0, delta], "delta_hdi_low": [0.0] * 3,
                             "delta_hdi_high": [1.0] * 3, "cost": [cost, 0.0, cost],
                             "prob_exceeds_cost": [0.5, 0.0, 0.5]},
                            index=pd.Index(["x", "y", "all"], name="segment"))

    ranked = rank_programmes({"cheap": table(100.0, 10.0), "big": table(500.0, 100.0),
                              "free": table(50.0, 0.0)})
    x = ranked[ranked["segment"] == "x"]
    assert x["programme"].tolist() == ["cheap", "big", "free"]
    assert x["rank"].tolist() == [1, 2, 3]
    assert "y" not in set(ranked["segment"])  # no programme acts there
    assert ranked["segment"].iloc[-1] == "all"
    with pytest.raises(ValueError, match="not a table of CLVModel.scenario"):
        rank_programmes({"bad": pd.DataFrame({"delta_mean": [1.0]})})


def test_segments_the_programme_leaves_alone_change_by_exactly_nothing():
    tenure = np.array([1, 4, 4, 9, 2, 7])
    valuation = survival_valuation(tenure)
    valuation.margin, valuation.cost_per_period = 0.3, 1.7
    valuation.segment = np.array([0, 0, 1, 1, 1, 0])
    valuation.spend_params = {key: np.full((1, 2), value) for key, value in SPEND.items()}
    family = RETENTION_FAMILIES["weibull"]
    psi = np.array([[[np.log(15.0), np.log(0.8)], [np.log(9.0), np.log(1.3)]]])
    base, programme = programme_values(valuation, family, psi, np.array([0.0, 0.4]),
                                       np.zeros(2), 1, 24, 0.01, 2)
    assert programme[0, 0] == base[0, 0]
    assert programme[0, 1] > base[0, 1]
