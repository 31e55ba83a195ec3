"""Survival sums against published closed forms, from tenure 0 (a customer acquired now)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import hyp2f1

from bayesclv.models.retention import ShiftedBetaGeometricRetention
from bayesclv.valuation.survival import residual_survival_sums

SBG = ShiftedBetaGeometricRetention()


def fader_hardie_derl(alpha, beta, n, d):
    """Fader & Hardie's discounted expected residual lifetime of a customer after n renewals.

    ``(beta + n) / (alpha + beta + n) 2F1(1, beta + n + 1; alpha + beta + n + 1; 1/(1+d))``
    counts the next payment undiscounted (it is made at the start of the period).
    """
    return ((beta + n) / (alpha + beta + n)
            * hyp2f1(1.0, beta + n + 1.0, alpha + beta + n + 1.0, 1.0 / (1.0 + d)))


@pytest.mark.parametrize(("alpha", "beta", "d"), [
    (0.704, 1.182, 0.10),   # Fader & Hardie (2007), "high end" segment
    (0.668, 3.806, 0.10),   # Fader & Hardie (2007), "regular" segment
    (2.5, 6.0, 0.01),
])
def test_sbg_residual_value_is_the_published_derl_over_one_plus_d(alpha, beta, d):
    tenure = np.arange(11)  # n = 0 (acquired this period) ... 10 renewals
    psi = np.broadcast_to([np.log(alpha), np.log(beta)], (1, len(tenure), 2))

    sums = residual_survival_sums(SBG, psi, tenure, horizon=None, discount_rate=d)

    # Payments at the end of each period: each is discounted once more than in the
    # published convention, so DERL = (1 + d) x ours.
    expected = [fader_hardie_derl(alpha, beta, n, d) for n in tenure]
    np.testing.assert_allclose((1.0 + d) * sums["discounted"][0], expected, rtol=1e-6)
    np.testing.assert_allclose(sums["retention_next"][0],
                               (beta + tenure) / (alpha + beta + tenure), rtol=1e-12)


def test_a_wrong_timing_convention_is_caught():
    # The negative control: ours without the (1 + d) factor is off by d.
    alpha, beta, d = 0.668, 3.806, 0.10
    psi = np.array([[[np.log(alpha), np.log(beta)]]])
    ours = residual_survival_sums(SBG, psi, np.array([0]), horizon=None,
                                  discount_rate=d)["discounted"][0, 0]
    assert not np.isclose(ours, fader_hardie_derl(alpha, beta, 0, d), rtol=1e-3)
