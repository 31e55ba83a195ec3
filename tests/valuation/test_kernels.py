"""The compiled valuation loops: gamma and normal variates, keyed streams, HDI, deduplication."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from arviz_stats.base import array_stats
from scipy import stats

from bayesclv._streams import _ZIGGURAT_EDGE, _ziggurat_tables, customer_keys, fill_normal
from bayesclv._streams import fill_gamma as _fill_gamma
from bayesclv.models.spend import GammaGammaSpend
from bayesclv.valuation.customers import BLOCK, CustomerValuation
from bayesclv.valuation.kernels import _hdi, _sort_smallest


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 40.0])
def test_gamma_variates_follow_the_gamma_distribution(shape):
    draws = np.full(100_000, shape)
    _fill_gamma(draws.copy(), np.uint64(2024), draws)
    assert stats.kstest(draws, stats.gamma(shape).cdf).pvalue > 1e-3
    assert abs(draws.mean() - shape) < 5 * np.sqrt(shape / len(draws))


def test_normal_variates_follow_the_normal_distribution_in_the_body_and_the_tail():
    draws = np.empty(2_000_000)
    fill_normal(np.uint64(11), draws)
    assert stats.kstest(draws[:400_000], stats.norm.cdf).pvalue > 1e-3
    # Past the base layer's edge every draw comes from the tail's own rejection sampler,
    # and just inside it from the wedges' test: their frequencies against the normal's.
    for beyond in (1.0, 2.5, _ZIGGURAT_EDGE - 0.1, _ZIGGURAT_EDGE, 4.2):
        expected = 2.0 * stats.norm.sf(beyond)
        observed = np.mean(np.abs(draws) > beyond)
        assert abs(observed - expected) < 5.0 * np.sqrt(expected / len(draws)), beyond
    assert abs(np.mean(draws > 0) - 0.5) < 5.0 * np.sqrt(0.25 / len(draws))


def test_ziggurat_layers_have_equal_areas_and_a_wrong_edge_is_caught():
    def top_and_base_areas(edge):
        with np.errstate(invalid="ignore"):
            _, widths, heights = _ziggurat_tables(edge)
        scale = 2.0**52
        # The top layer, from the mode down to x_1, against the base layer (tail included).
        return widths[1] * scale * (1.0 - heights[1]), widths[0] * scale * heights[-1]

    top, base = top_and_base_areas(_ZIGGURAT_EDGE)
    assert top == pytest.approx(base, rel=1e-11)
    for wrong in (3.6, 3.66):
        top, base = top_and_base_areas(wrong)
        assert not top == pytest.approx(base, rel=1e-3)


@pytest.mark.parametrize("n,prob", [(1, 0.9), (2, 0.9), (10, 0.5), (2000, 0.9), (2001, 0.94),
                                    (500, 0.3)])
def test_hdi_matches_arviz(n, prob):
    rng = np.random.default_rng(n)
    for values in (rng.gamma(1.5, 2.0, n), rng.normal(size=n), np.round(rng.normal(size=n))):
        expected = array_stats.hdi(values, prob)
        assert tuple(_hdi(values.copy(), prob)) == tuple(expected)


def test_hdi_matches_arviz_on_sorted_tied_and_reversed_draws():
    rng = np.random.default_rng(5)
    for n in (17, 18, 40, 257, 4000):
        for values in (np.sort(rng.normal(size=n)), np.sort(rng.normal(size=n))[::-1],
                       np.round(rng.normal(size=n), 1), np.zeros(n)):
            for prob in (0.05, 0.5, 0.94, 0.999):
                expected = array_stats.hdi(values, prob)
                assert tuple(_hdi(np.ascontiguousarray(values), prob)) == tuple(expected)


def test_hdi_of_draws_with_a_nan_is_nan():
    for values in (np.array([3.0, np.nan, 1.0, 2.0]), np.r_[np.arange(100.0), np.nan]):
        low, high = _hdi(values, 0.94)
        assert np.isnan(low) and np.isnan(high)


@pytest.mark.parametrize("n", [1, 2, 16, 17, 100, 3001])
def test_sort_smallest_puts_the_k_smallest_first_in_order(n):
    rng = np.random.default_rng(n)
    for values in (rng.normal(size=n), np.round(rng.normal(size=n)), np.arange(n)[::-1] * 1.0):
        for k in sorted({1, n // 3 + 1, n}):
            out = values.copy()
            _sort_smallest(out, k)
            np.testing.assert_array_equal(out[:k], np.sort(values)[:k])
            np.testing.assert_array_equal(np.sort(out), np.sort(values))  # a permutation


def test_keys_depend_on_inputs_and_seed_only():
    names = np.array(["a", "b", "a"])
    tenure, x, z = np.array([3, 3, 3]), np.array([2.0, 2.0, 2.0]), np.array([10.0, 10.0, 10.0])
    keys = customer_keys(7, names, tenure, np.c_[x, z])
    assert keys[0] == keys[2] != keys[1]
    again = customer_keys(7, np.array(["b", "a", "a"]), tenure, np.c_[x, z])
    assert again[0] == keys[1] and again[1] == keys[0]
    assert np.all(customer_keys(8, names, tenure, np.c_[x, z]) != keys)


def _valuation(segment, x, z, pair, n_samples=40, seed=0):
    rng = np.random.default_rng(3)
    spend = GammaGammaSpend()
    psi = np.stack([np.log(rng.uniform(1, 5, (n_samples, 2))),
                    np.log(rng.uniform(1.5, 4, (n_samples, 2))),
                    np.log(rng.uniform(10, 90, (n_samples, 2)))], axis=-1)
    return CustomerValuation(
        sums={"discounted": rng.uniform(5, 30, (n_samples, 6))}, pair=pair, segment=segment,
        active=np.ones(len(pair), dtype=bool), spend_family=spend,
        spend_params=spend.natural(psi), inputs=np.c_[x, z], margin=0.3, cost_per_period=1.0,
        seed=seed, segment_names=["s0", "s1"], tenure=pair * 2,
    )


def _table(n, seed=0):
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, 2, n)
    return (segment, rng.integers(1, 4, n).astype(float), np.round(rng.gamma(2, 10, n)),
            segment * 3 + rng.integers(0, 3, n))


def test_draws_follow_the_customer_not_its_position():
    segment, x, z, pair = _table(300)
    draws = np.concatenate([v for _, v in _valuation(segment, x, z, pair).iter_values()],
                           axis=1)
    order = np.random.default_rng(1).permutation(300)
    # Unique inputs only: a customer's occurrence among its duplicates is positional.
    _, groups, counts = np.unique(np.c_[segment, x, z, pair], axis=0, return_inverse=True,
                                  return_counts=True)
    unique = np.flatnonzero(counts[groups.ravel()] == 1)
    assert len(unique) > 100
    shuffled = _valuation(segment[order], x[order], z[order], pair[order])
    reordered = np.concatenate([v for _, v in shuffled.iter_values()], axis=1)
    position = np.argsort(order)
    np.testing.assert_array_equal(reordered[:, position][:, unique], draws[:, unique])


def test_identical_customers_are_summarised_once_but_drawn_independently():
    # Few distinct inputs, many copies: the case deduplication is for.
    segment, x, z, pair = _table(3 * BLOCK + 5)
    z = np.round(z / 10) * 10
    valuation = _valuation(segment, x, z, pair)
    summary = valuation.summarize(0.9, 2)
    draws = np.concatenate([v for _, v in valuation.iter_values()], axis=1)
    inputs = np.c_[segment, x, z, pair]
    groups = np.unique(inputs, axis=0, return_inverse=True)[1].ravel()
    assert len(np.unique(groups)) < 200
    for g in np.unique(groups)[:20]:
        members = np.flatnonzero(groups == g)
        assert np.all(summary.hdi_low[members] == summary.hdi_low[members[0]])
        assert np.all(summary.sd[members] == summary.sd[members[0]])
        if len(members) > 1:
            assert not np.array_equal(draws[:, members[0]], draws[:, members[1]])
        first = members[0]
        np.testing.assert_allclose(summary.sd[first], draws[:, first].std(ddof=1),
                                   rtol=1e-12)
        assert (summary.hdi_low[first], summary.hdi_high[first]) == tuple(
            array_stats.hdi(draws[:, first], 0.9))
    for s in (0, 1):
        np.testing.assert_allclose(summary.segment_totals[:, s],
                                   draws[:, segment == s].sum(axis=1), rtol=1e-10)


def test_results_do_not_depend_on_the_number_of_threads():
    segment, x, z, pair = _table(2 * BLOCK + 11)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _valuation(segment, x, z, pair).summarize(0.9, 2)
    finally:
        numba.set_num_threads(threads)
    many = _valuation(segment, x, z, pair).summarize(0.9, 2)
    for field in ("mean", "sd", "hdi_low", "hdi_high", "segment_totals"):
        np.testing.assert_array_equal(getattr(one, field), getattr(many, field))
