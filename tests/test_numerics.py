"""Kernels against 50-digit mpmath references, at the edges of the parameter space.

Every family's survival (through ``H(t) = -log S(t)``), ``dH(t)`` and its log, the row
log-likelihood and the risk-set cell log-likelihood are compared with mpmath evaluated at
the *same* float parameters (so that only the kernel's error is measured), for shapes
``k``/``c`` in [0.1, 5], ``alpha``/``beta`` in [1e-3, 1e3] and ``t`` up to 1e4; then the
PyTensor gradients of the risk-set and grouped log-likelihoods are checked to be finite
there, and the gamma-gamma spend log-likelihood is compared with mpmath.

Tolerance: 1e-8, relative to ``max(1, |reference|)`` for log-scale quantities (``log dH``,
log-likelihoods) and relative for ``H`` itself. The inputs' own rounding (``log t`` and the
exponentials of the parameters, relative error ~1e-15 amplified by ``|k log(t/eta)| < 50``)
accounts for ~1e-13; anything near 1e-8 would be cancellation in the kernel (as the BdW
increment had before it was rewritten as a quadrature of a digamma difference: 3e-6). The
worst errors measured are ~1e-11.
"""

from __future__ import annotations

import functools
import itertools

import mpmath as mp
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

from bayesclv._math import NP, PT, LaplaceGrid, exponential_sums, sum_log1p_ratio
from bayesclv.models.retention import (
    RETENTION_FAMILIES,
    grouped_loglik,
    risk_set_loglik,
    row_loglik,
)
from bayesclv.models.spend import SPEND_FAMILIES

mp.mp.dps = 50

# PyTensor's Python implementations without rewrites: the graphs' math as written, and
# nothing compiled (FAST_COMPILE compiles C code for some ops, seconds on an empty cache).
PYTHON_IMPLEMENTATIONS = Mode(linker="py", optimizer=None)

RTOL = 1e-8
SHAPES = (0.1, 0.5, 1.0, 2.0, 5.0)
BETA_PARAMS = (1e-3, 1e-1, 1.0, 10.0, 1e3)
PERIODS = (1, 2, 3, 10, 100, 1000, 10_000)


def _grid(family: str) -> np.ndarray:
    """Parameter vectors (``psi``, the unconstrained coordinates) spanning the edges."""
    if family == "geometric":
        theta = np.array([1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999])
        return (np.log(theta) - np.log1p(-theta))[:, None]
    if family == "weibull":
        return np.log([(eta, k) for eta, k in itertools.product((0.5, 1.0, 10.0, 1e3, 1e4),
                                                                 SHAPES)])
    if family == "sbg":
        return np.log(list(itertools.product(BETA_PARAMS, BETA_PARAMS)))
    return np.log(list(itertools.product(BETA_PARAMS, BETA_PARAMS, SHAPES)))


def _log_beta(a: mp.mpf, b: mp.mpf) -> mp.mpf:
    return mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)


@functools.cache
def _reference_hazard(family: str, psi: tuple[float, ...], t: int) -> mp.mpf:
    """``H(t) = -log S(t)`` at 50 digits, from the same float ``psi``."""
    if t == 0:
        return mp.mpf(0)
    t_mp = mp.mpf(t)
    p = [mp.mpf(x) for x in psi]
    if family == "geometric":  # S = (1 - theta)^t, theta = logistic(psi)
        return t_mp * mp.log1p(mp.exp(p[0]))
    if family == "weibull":  # S = exp(-(t / eta)^k)
        return (t_mp / mp.exp(p[0])) ** mp.exp(p[1])
    alpha, beta = mp.exp(p[0]), mp.exp(p[1])
    x = t_mp if family == "sbg" else t_mp ** mp.exp(p[2])  # S = B(a, b + x) / B(a, b)
    return _log_beta(alpha, beta) - _log_beta(alpha, beta + x)


def _reference_row(family: str, psi: tuple, entry: int, tenure: int, churned: bool) -> mp.mpf:
    h_before = _reference_hazard(family, psi, tenure - 1)
    h_now = _reference_hazard(family, psi, tenure)
    h_entry = _reference_hazard(family, psi, entry)
    if churned:  # log(S(T-1) - S(T)) - log S(e)
        return -h_before + mp.log(-mp.expm1(-(h_now - h_before))) + h_entry
    return -h_now + h_entry


def _log_error(value: float, reference: mp.mpf) -> float:
    return abs(value - float(reference)) / max(1.0, abs(float(reference)))


@pytest.mark.parametrize("name", sorted(RETENTION_FAMILIES))
def test_cumulative_hazard_and_survival_match_mpmath(name):
    family = RETENTION_FAMILIES[name]
    t = np.array((0,) + PERIODS, dtype=np.float64)
    worst = 0.0
    for psi in _grid(name):
        hazard = family.cumulative_hazard(t, psi[None, :])
        survival = family.survival(t, psi[None, :])
        for j, period in enumerate((0,) + PERIODS):
            reference = _reference_hazard(name, tuple(psi), period)
            if reference == 0:
                assert hazard[j] == 0 and survival[j] == 1
                continue
            error = abs(hazard[j] - float(reference)) / float(reference)
            worst = max(worst, error)
            assert error < RTOL, (name, psi, period, hazard[j], float(reference))
            # S = exp(-H): a relative error in S equals the absolute error in H.
            expected_survival = float(mp.exp(-reference))
            if expected_survival > 1e-300:
                assert abs(survival[j] - expected_survival) <= RTOL * expected_survival
            else:
                assert survival[j] <= 1e-300
    print(f"\n{name}: worst relative error of H(t) = {worst:.1e}")


@pytest.mark.parametrize("name", sorted(RETENTION_FAMILIES))
def test_hazard_increment_and_its_log_match_mpmath(name):
    # dH as the likelihoods use it (the Weibull's a product of its factors, the others'
    # exp(log dH)) to a relative error, as H; log dH to an error relative to max(1, |.|).
    family = RETENTION_FAMILIES[name]
    t = np.array(PERIODS, dtype=np.float64)
    worst_log = worst = 0.0
    for psi in _grid(name):
        logs = family.log_hazard_increment(t, psi[None, :])
        values = family.hazard_increment(t, psi[None, :])
        assert np.isfinite(logs).all()
        for j, period in enumerate(PERIODS):
            increment = (_reference_hazard(name, tuple(psi), period)
                         - _reference_hazard(name, tuple(psi), period - 1))
            error_log = _log_error(logs[j], mp.log(increment))
            error = abs(values[j] - float(increment)) / float(increment)
            worst_log, worst = max(worst_log, error_log), max(worst, error)
            assert error_log < RTOL and error < RTOL, (
                name, np.exp(psi), period, logs[j], values[j], float(increment))
    print(f"\n{name}: worst error of log dH(t) = {worst_log:.1e}, "
          f"relative of dH(t) = {worst:.1e}")


@pytest.mark.parametrize("name", sorted(RETENTION_FAMILIES))
def test_row_and_risk_set_loglik_match_mpmath(name):
    family = RETENTION_FAMILIES[name]
    rows = [(entry, tenure, churned) for tenure in PERIODS
            for entry in sorted({0, tenure // 2, tenure - 1}) for churned in (False, True)]
    entry, tenure, churned = (np.array(col) for col in zip(*rows, strict=True))
    cells_at_risk, cells_churned = np.array([1000, 1000, 1]), np.array([0, 7, 1])
    worst_row = worst_cell = 0.0
    for psi in _grid(name):
        key = tuple(psi)
        values = row_loglik(family, np.repeat(psi[None, :], len(rows), 0), entry, tenure,
                            churned)
        for value, (e, t, c) in zip(values, rows, strict=True):
            error = _log_error(value, _reference_row(name, key, e, t, c))
            worst_row = max(worst_row, error)
            assert error < RTOL, (name, np.exp(psi), e, t, c)
        for period in PERIODS:
            cells = risk_set_loglik(family, np.repeat(psi[None, :], 3, 0),
                                    np.full(3, float(period)), cells_at_risk, cells_churned)
            increment = (_reference_hazard(name, key, period)
                         - _reference_hazard(name, key, period - 1))
            for value, n, d in zip(cells, cells_at_risk, cells_churned, strict=True):
                reference = d * mp.log(-mp.expm1(-increment)) - (n - d) * increment
                error = _log_error(value, reference)
                worst_cell = max(worst_cell, error)
                assert error < RTOL, (name, np.exp(psi), period, n, d)
    print(f"\n{name}: worst error of the row log-likelihood = {worst_row:.1e}, "
          f"of the risk-set cells = {worst_cell:.1e}")


@pytest.mark.parametrize("name", sorted(RETENTION_FAMILIES))
def test_pytensor_kernels_equal_numpy_and_gradients_are_finite(name):
    import pandas as pd

    family = RETENTION_FAMILIES[name]
    grid = _grid(name)
    psi = pt.matrix("psi")
    n_segments = len(grid)
    periods = np.array([1.0, 2.0, 10.0, 9_999.0, 10_000.0])
    # Risk-set cells of every segment and period, with none, some and all churning.
    cell_segment = np.repeat(np.arange(n_segments), len(periods))
    cell_period = np.tile(periods, n_segments)
    at_risk = np.tile([1000, 1000, 1000, 5, 1], n_segments)
    cell_churned = np.tile([0, 7, 1000, 5, 0], n_segments)
    groups = pd.DataFrame({
        "segment": np.repeat(np.arange(n_segments), 6),
        "entry": np.tile([0, 0, 0, 5_000, 9_999, 0], n_segments),
        "tenure": np.tile([1, 1, 10_000, 10_000, 10_000, 2], n_segments),
        "churned": np.tile([True, False, True, False, True, True], n_segments),
        "count": np.ones(6 * n_segments, dtype=np.int64),
    })
    risk = risk_set_loglik(family, psi[cell_segment], cell_period, at_risk, cell_churned, PT)
    rows = grouped_loglik(family, psi, groups, PT, by_period=False)
    total = risk.sum() + rows.sum()
    # PyTensor's Python implementations evaluate the graph: its math is under test (the
    # compiled callbacks are checked against it in tests/test_flat.py).
    increment = family.hazard_increment(cell_period, psi[cell_segment], PT)
    through_log = pt.exp(family.log_hazard_increment(cell_period, psi[cell_segment], PT))
    function = pytensor.function([psi], [risk, rows, pytensor.grad(total, psi),
                                         family.log_hazard_increment(cell_period,
                                                                     psi[cell_segment], PT),
                                         increment, pytensor.grad(increment.sum(), psi),
                                         pytensor.grad(through_log.sum(), psi)],
                                 mode=PYTHON_IMPLEMENTATIONS)
    (risk_value, rows_value, gradient, log_increment, increment_value, increment_gradient,
     through_log_gradient) = function(grid)
    np.testing.assert_allclose(
        risk_value, risk_set_loglik(family, grid[cell_segment], cell_period, at_risk,
                                    cell_churned), rtol=1e-10)
    np.testing.assert_allclose(rows_value, grouped_loglik(family, grid, groups), rtol=1e-8,
                               atol=1e-8)
    np.testing.assert_allclose(
        log_increment, family.log_hazard_increment(cell_period, grid[cell_segment]),
        rtol=1e-10, atol=1e-12)
    # dH and its gradient, however a family computes them, are those of exp(log dH).
    np.testing.assert_allclose(increment_value,
                               family.hazard_increment(cell_period, grid[cell_segment]),
                               rtol=1e-12)
    np.testing.assert_allclose(increment_gradient, through_log_gradient, rtol=1e-9)
    assert np.isfinite(gradient).all(), grid[~np.isfinite(gradient).all(axis=1)]


def test_gamma_gamma_loglik_matches_mpmath():
    family = SPEND_FAMILIES["gamma_gamma"]
    worst = 0.0
    grid = itertools.product((1e-2, 0.5, 1.0, 10.0, 100.0), (1e-3, 1.0, 1e3), (1e-3, 1.0, 1e3))
    x = np.array([1.0, 10.0, 1000.0])[:, None]
    z = np.array([1e-6, 1.0, 1e9])[None, :]
    for p, q_minus_1, gamma in grid:
        # The pooled coordinates: log mean spend, log p, log(q - 1).
        psi = np.log([p * gamma / q_minus_1, p, q_minus_1])
        values = family.customer_loglik(psi, {"n_periods_active": x, "mean_spend": z})
        natural = family.natural(psi)  # gamma derived, as the model derives it
        p_mp, q_mp, g_mp = (mp.mpf(float(natural[name])) for name in ("p", "q", "gamma"))
        for i, j in itertools.product(range(3), range(3)):
            x_mp, z_mp = mp.mpf(x[i, 0]), mp.mpf(z[0, j])
            px = p_mp * x_mp
            reference = (mp.loggamma(px + q_mp) - mp.loggamma(px) - mp.loggamma(q_mp)
                         + q_mp * mp.log(g_mp) + (px - 1) * mp.log(z_mp) + px * mp.log(x_mp)
                         - (px + q_mp) * mp.log(g_mp + x_mp * z_mp))
            error = _log_error(values[i, j], reference)
            worst = max(worst, error)
            assert error < RTOL, (p, q_minus_1, gamma, x[i, 0], z[0, j])
    print(f"\ngamma-gamma: worst error of the log-likelihood = {worst:.1e}")


def test_gamma_gamma_gradient_is_finite_at_the_edges():
    from bayesclv.data import spend_statistics

    family = SPEND_FAMILIES["gamma_gamma"]
    grid = np.log(list(itertools.product((1e-2, 100.0), (1e-3, 1e3), (1e-3, 1e3))))
    n = len(grid)
    codes = np.repeat(np.arange(n), 4)
    x = np.tile([1, 1, 1000, 1000], n)
    z = np.tile([1e-6, 1e9, 1e-6, 1e9], n)
    stats = spend_statistics(codes, x, z, n)
    psi = pt.matrix("psi")
    loglik = family.aggregated_loglik(psi, stats, PT)
    value, gradient = pytensor.function([psi], [loglik, pytensor.grad(loglik, psi)],
                                        mode=PYTHON_IMPLEMENTATIONS)(grid)
    np.testing.assert_allclose(value, family.aggregated_loglik(grid, stats), rtol=1e-10)
    assert np.isfinite(gradient).all()


@pytest.fixture(scope="module")
def spread_out_spend():
    """200,000 customers in 3 groups, ``w = x z`` over ten orders of magnitude."""
    rng = np.random.default_rng(3)
    n = 200_000
    group = rng.integers(0, 3, n)
    x = rng.integers(1, 60, n).astype(np.float64)
    w = x * np.exp(rng.uniform(np.log(1e-4), np.log(1e6), n))
    grid = LaplaceGrid(w)
    one, weighted = exponential_sums(group, x, w, 3, grid)
    return group, x, w, grid, one, weighted


@pytest.mark.parametrize("gamma", [1e-8, 1e-3, 0.7, 25.0, 3e3, 1e6, 1e9, 1e12])
def test_laplace_sums_of_log1p_match_exact_sums(spread_out_spend, gamma):
    """The quadrature is exact to rounding: against ``math.fsum`` of per-customer terms."""
    import math

    group, x, w, grid, one, weighted = spread_out_spend
    totals = np.bincount(group, minlength=3).astype(float)
    x_totals = np.bincount(group, weights=x, minlength=3)
    gammas = np.full(3, gamma)
    value = sum_log1p_ratio(gammas, one, totals, grid.nodes, grid.step, NP)
    value_x = sum_log1p_ratio(gammas, weighted, x_totals, grid.nodes, grid.step, NP)
    gamma_var = pt.vector("gamma")
    symbolic = sum_log1p_ratio(gamma_var, one, totals, grid.nodes, grid.step, PT).sum()
    gradient = pytensor.function([gamma_var], pytensor.grad(symbolic, gamma_var),
                                 mode=PYTHON_IMPLEMENTATIONS)(gammas)
    for g in range(3):
        members = group == g
        exact = math.fsum(np.log1p(gamma / w[members]))
        exact_x = math.fsum(x[members] * np.log1p(gamma / w[members]))
        exact_gradient = math.fsum(1.0 / (gamma + w[members]))
        assert abs(value[g] - exact) <= 1e-12 * exact
        assert abs(value_x[g] - exact_x) <= 1e-12 * exact_x
        assert abs(gradient[g] - exact_gradient) <= 1e-10 * exact_gradient


def test_laplace_sums_do_not_depend_on_threads(spread_out_spend):
    import numba

    group, x, w, grid, one, _ = spread_out_spend
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single, _ = exponential_sums(group, x, w, 3, grid)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(single, one)


def test_laplace_sums_are_correctly_rounded_in_any_order_and_parts(spread_out_spend):
    """Compensated sums: the correctly rounded sum (math.fsum), whatever the partitioning.

    The reference terms use ``math.exp``, the C library's ``exp`` that the compiled kernel
    calls too. numpy's own SIMD ``exp`` (AVX-512 hosts) differs from it in the last bit
    for about one term in ten, which would make a sum of different terms the reference.
    """
    import math

    from bayesclv._math import add_compensated, exponential_sums_compensated, rounded

    group, x, w, grid, one, weighted = spread_out_spend
    nodes = [0, len(grid.nodes) // 3, len(grid.nodes) // 2, len(grid.nodes) - 40]
    for g in range(3):
        members = group == g
        for k in nodes:
            terms = np.array([math.exp(-grid.nodes[k] * value) for value in w[members]])
            assert one[g, k] == math.fsum(terms)
            assert weighted[g, k] == math.fsum(x[members] * terms)
    order = np.random.default_rng(8).permutation(len(w))
    parts = [exponential_sums_compensated(group[idx], x[idx], w[idx], 3, grid)
             for idx in np.array_split(order, 7)]
    np.testing.assert_array_equal(rounded(add_compensated([p[0] for p in parts])), one)
    np.testing.assert_array_equal(rounded(add_compensated([p[1] for p in parts])), weighted)


def test_grouped_sums_are_correctly_rounded_in_any_order_and_parts():
    import math

    from bayesclv._math import add_compensated, grouped_sums, rounded

    rng = np.random.default_rng(11)
    n = 100_000
    group = rng.integers(0, 4, n)
    values = np.column_stack([rng.lognormal(0.0, 3.0, n), rng.normal(5.0, 2.0, n)])
    whole = rounded(grouped_sums(group, values, 4))
    for g in range(4):
        for j in range(2):
            assert whole[g, j] == math.fsum(values[group == g, j])
    order = rng.permutation(n)
    parts = [grouped_sums(group[idx], values[idx], 4) for idx in np.array_split(order, 5)]
    np.testing.assert_array_equal(rounded(add_compensated(parts)), whole)


@pytest.mark.parametrize("y", [1e-3, 0.5, 7.99, 8.0, 19.9, 20.0, 1e3, 1e12])
@pytest.mark.parametrize("a", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("ratio", [1e-6, 1e-3, 0.01, 0.0999, 0.1, 1.0, 1e6])
def test_log_gamma_ratio_increment_matches_mpmath(y, a, ratio):
    delta = ratio * y
    value = NP.log_gamma_ratio_increment(np.array(y), np.array(delta), np.array(a))
    y_mp, a_mp, d_mp = mp.mpf(y), mp.mpf(a), mp.mpf(delta)
    reference = (mp.loggamma(y_mp + d_mp + a_mp) - mp.loggamma(y_mp + d_mp)
                 - mp.loggamma(y_mp + a_mp) + mp.loggamma(y_mp))
    assert abs(value - float(reference)) <= 1e-9 * float(reference)


def test_select_computes_each_branch_only_where_it_is_taken():
    # numpy evaluates each branch of NP.select on its own elements (the digamma recurrence
    # and the quadrature of the log-gamma increments are most of a valuation's time);
    # PyTensor switches between both, computed everywhere. Same values either way.
    x = np.array([[-2.0, 3.0, 0.5], [4.0, -1.0, 9.0]])
    shift = np.array([1.0, 2.0, 3.0])
    seen = []

    def root(x, shift):
        seen.append(x.size)
        return np.sqrt(x) + shift

    def mirrored(x, shift):
        seen.append(x.size)
        return -x * shift

    with np.errstate(invalid="raise"):  # sqrt of the negatives would raise
        out = NP.select(x > 0, root, mirrored, x, shift)
    assert seen == [4, 2]
    expected = np.where(x > 0, np.sqrt(np.abs(x)) + shift, -x * shift)
    np.testing.assert_array_equal(out, expected)
    symbolic = pt.matrix("x")
    function = pytensor.function([symbolic], PT.select(
        symbolic > 0, lambda v, s: pt.sqrt(pt.abs(v)) + s, lambda v, s: -v * s, symbolic,
        shift))
    np.testing.assert_allclose(function(x), expected, rtol=1e-15)


def _scalar_ops(graph_outputs) -> list[str]:
    """Names of the scalar ops computed, inside fused composites too."""
    from pytensor.graph.traversal import applys_between, graph_inputs

    def inner(op):
        scalar = getattr(op, "scalar_op", op)
        graph = getattr(scalar, "fgraph", None) or getattr(op, "fgraph", None)
        if graph is None:
            return [type(scalar).__name__]
        return [name for node in graph.apply_nodes for name in inner(node.op)]

    nodes = applys_between(list(graph_inputs(graph_outputs)), graph_outputs)
    return [name for node in nodes for name in inner(node.op)]


def test_one_minus_exp_has_the_gradient_of_expm1_with_one_exponential():
    from pytensor.compile.mode import get_mode

    x = pt.vector("x")
    value = PT.one_minus_exp(x)
    gradient = pytensor.grad(value.sum(), x)
    points = np.array([-800.0, -40.0, -1.0, -1e-9, 0.0, 1e-9, 0.5, 3.0])
    got_value, got_gradient = pytensor.function([x], [value, gradient],
                                                mode=PYTHON_IMPLEMENTATIONS)(points)
    np.testing.assert_array_equal(got_value, -np.expm1(points))
    np.testing.assert_allclose(got_gradient, -np.exp(points), rtol=1e-15, atol=1e-16)
    # As the callbacks are rewritten: one expm1 per element for value and gradient, where
    # -expm1 differentiated by PyTensor adds an exp.
    rewritten = pytensor.function([x], [value, gradient], mode=Mode(
        linker="py", optimizer=get_mode("NUMBA").optimizer)).maker.fgraph.outputs
    ops = _scalar_ops(rewritten)
    assert ops.count("Expm1") == 1 and "Exp" not in ops, ops
    plain = -pt.expm1(x)
    plain_ops = _scalar_ops(pytensor.function(
        [x], [plain, pytensor.grad(plain.sum(), x)],
        mode=Mode(linker="py", optimizer=get_mode("NUMBA").optimizer)).maker.fgraph.outputs)
    assert plain_ops.count("Expm1") + plain_ops.count("Exp") == 2, plain_ops
