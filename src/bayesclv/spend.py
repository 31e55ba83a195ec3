"""Spend: the hierarchical gamma-gamma model of revenue per active period.

Fader, Hardie & Lee (2005): per-period revenue of customer i is ``Gamma(p, nu_i)``
(shape ``p``, rate ``nu_i``), and ``nu_i ~ Gamma(q, gamma)`` across the customers of a
segment. A customer's mean per-period revenue is ``p / nu_i``; the mean over customers is
``p gamma / (q - 1)``, finite only for ``q > 1``.

The pooled coordinates are ``log`` of that mean, ``log p`` and ``log(q - 1)``, with
``gamma = mean (q - 1) / p`` derived. In ``(log p, log(q - 1), log gamma)`` the data pin
the mean spend, a curved ridge ``log p + log gamma - log(q - 1) = const`` that NUTS
crawls along (hundreds of leapfrog steps per draw); in the new coordinates the
best-determined quantity is one coordinate and the others are nearly independent of it.

Given ``x`` active periods with mean revenue ``z``, the marginal density of ``z`` is closed
form (``nu_i`` integrated out)::

    log f(z | x) = lgamma(p x + q) - lgamma(p x) - lgamma(q) + q log gamma
                   + (p x - 1) log z + p x log x - (p x + q) log(gamma + x z)

and the conditional posterior of the rate is ``nu_i | data ~ Gamma(p x + q, gamma + x z)``,
so ``E[p / nu_i | data] = p (gamma + x z) / (p x + q - 1)``.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: using iso-value
   curves for customer base analysis. Journal of Marketing Research 42(4).
.. [2] Fader, P. S. and Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pymc as pm

from bayesclv._hierarchy import Profiles, profile_effects, segment_effects
from bayesclv._laplace import SegmentLaplace
from bayesclv._math import NP, PT, sum_log1p_ratio
from bayesclv.priors import Prior, hierarchy_options

__all__ = [
    "GammaGammaSpend",
    "SPEND_FAMILIES",
    "build_spend_model",
]


class GammaGammaSpend:
    """The gamma-gamma spend family, with ``(log mean spend, log p, log(q - 1))`` pooled."""

    name: ClassVar[str] = "gamma_gamma"
    coords: ClassVar[tuple[str, ...]] = ("log_mean_spend", "log_p", "log_q_minus_1")
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    #: Covariates shift the log mean spend ``log(p gamma / (q - 1))`` (through ``gamma``),
    #: so a coefficient is the log of the factor by which they multiply the mean spend.
    covariate_coord: ClassVar[str] = "log_mean_spend"
    covariate_sign: ClassVar[float] = 1.0

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:
        """``p``, ``q`` and ``gamma`` from ``psi`` (coordinates on the last axis).

        ``gamma = mean (q - 1) / p``, i.e. ``log gamma = log mean + log(q - 1) - log p``.
        """
        return {
            "p": xp.exp(psi[..., 1]),
            "q": 1.0 + xp.exp(psi[..., 2]),
            "gamma": xp.exp(psi[..., 0] + psi[..., 2] - psi[..., 1]),
        }

    def customer_loglik(self, psi: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Log density of each customer's mean spend ``z`` given ``x`` active periods."""
        par = self.natural(psi)
        p, q, gamma = par["p"], par["q"], par["gamma"]
        px = p * x
        return (
            NP.gammaln(px + q) - NP.gammaln(px) - NP.gammaln(q) + q * np.log(gamma)
            + (px - 1.0) * np.log(z) + px * np.log(x) - (px + q) * np.log(gamma + x * z)
        )

    def aggregated_loglik(self, psi: Any, stats: Mapping[str, np.ndarray], xp: Any = NP) -> Any:
        """Total log-likelihood from :func:`bayesclv.data.spend_statistics`.

        Terms in ``x`` alone are evaluated once per unique (segment, x); everything else
        per segment: ``(p x + q) log(gamma + x z)`` is split into ``(p x + q) log(x z)``
        (sums of the data) and ``(p x + q) log1p(gamma / (x z))``, whose sums over a
        segment come from the tabulated Laplace transform of its ``x z``
        (:func:`bayesclv._math.sum_log1p_ratio`). The cost of an evaluation does not
        depend on the number of customers; it equals the sum of :meth:`customer_loglik`
        to about 1e-14 relative.
        """
        par = self.natural(psi, xp)
        p, q, gamma = par["p"], par["q"], par["gamma"]
        p_pair, q_pair = p[stats["x_seg"]], q[stats["x_seg"]]
        px_pair = p_pair * stats["x_value"]
        per_x = (
            xp.gammaln(px_pair + q_pair) - xp.gammaln(px_pair)
            + px_pair * xp.log(stats["x_value"])
        )
        n = stats["n_per_segment"]
        nodes, step = stats["laplace_nodes"], float(stats["laplace_step"])
        log1p_x = sum_log1p_ratio(gamma, stats["laplace_x"], stats["sum_x"], nodes, step, xp)
        log1p_one = sum_log1p_ratio(gamma, stats["laplace_one"], n, nodes, step, xp)
        per_segment = (
            -n * xp.gammaln(q) + n * q * xp.log(gamma)
            + p * stats["sum_x_log_z"] - stats["sum_log_z"]
            - p * (stats["sum_x_log_w"] + log1p_x) - q * (stats["sum_log_w"] + log1p_one)
        )
        return (per_x * stats["x_count"]).sum() + per_segment.sum()

    def expected_customer_spend(
        self, params: Mapping[str, np.ndarray], x: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """``E[p / nu_i | x, z]`` under each parameter draw.

        ``params`` holds the natural parameters (see :meth:`natural`), broadcastable
        against ``x`` and ``z``.
        """
        p, q, gamma = params["p"], params["q"], params["gamma"]
        return p * (gamma + x * z) / (p * x + q - 1.0)

    def sample_customer_spend(
        self, params: Mapping[str, np.ndarray], x: np.ndarray, z: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Draw each customer's mean per-period spend ``p / nu_i`` from its posterior.

        ``nu_i ~ Gamma(p x + q, rate = gamma + x z)`` given each draw's segment parameters,
        so intervals carry the uncertainty about the customer, not only the segment.
        """
        p, q, gamma = params["p"], params["q"], params["gamma"]
        shape = np.broadcast_shapes(np.shape(p), np.shape(x))
        rate = rng.standard_gamma(np.broadcast_to(p * x + q, shape)) / (gamma + x * z)
        return p / rate

    def segment_mean_spend(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Mean per-period spend of a customer of the segment, ``p gamma / (q - 1)``."""
        return params["p"] * params["gamma"] / (params["q"] - 1.0)

    def default_priors(self, mean_spend: np.ndarray) -> dict[str, Any]:
        """Weakly informative priors; the log mean spend centred on the median spend's log.

        ``mu_log_mean_spend ~ Normal(log(median mean_spend), sqrt(6))`` is exactly the
        prior the population's log mean spend had when ``log p``, ``log(q - 1)`` and
        ``log gamma`` were pooled with ``Normal(log 2, 1)``, ``Normal(log 2, 1)`` and
        ``Normal(log(median), 2)`` priors (``log mean = log p + log gamma - log(q - 1)``,
        variances adding up to 6): the priors on ``p``, ``q`` and on the mean spend are
        unchanged, and ``log gamma`` is now derived.
        """
        scale = float(np.median(mean_spend))
        return {
            "mu": {
                # Mean spend per period within a factor ~120 of the median (95%).
                "log_mean_spend": Prior("Normal", mu=np.log(scale), sigma=np.sqrt(6.0)),
                # p between ~0.3 and ~14 (95%): per-period CV 1/sqrt(p) from 0.27 to 1.8.
                "log_p": Prior("Normal", mu=np.log(2.0), sigma=1.0),
                "log_q_minus_1": Prior("Normal", mu=np.log(2.0), sigma=1.0),
            },
            "sigma": {
                # Segments' mean spends within a factor ~2.7 of each other (95% of sigma).
                "log_mean_spend": Prior("HalfNormal", sigma=0.5),
                "log_p": Prior("HalfNormal", sigma=0.5),
                "log_q_minus_1": Prior("HalfNormal", sigma=0.5),
            },
            # Independent across coordinates: a handful of segments cannot inform three
            # correlations, and with the mean spend centred and log p non-centred (the
            # usual choice, see bayesclv.priors.resolve_parametrisation) an LKJ factor
            # couples the two forms into a geometry NUTS samples poorly (R-hat up to 1.17
            # on the bundled example, against 1.01 without).
            **hierarchy_options(correlated=False),
        }


SPEND_FAMILIES: dict[str, GammaGammaSpend] = {GammaGammaSpend.name: GammaGammaSpend()}


def build_spend_model(
    family: GammaGammaSpend, stats: Mapping[str, np.ndarray], segments: Sequence[str],
    priors: Mapping[str, Any], profiles: Profiles | None = None,
    laplace: SegmentLaplace | None = None,
) -> pm.Model:
    """Build the hierarchical spend model.

    Parameters
    ----------
    family : GammaGammaSpend
    stats : mapping
        Output of :func:`bayesclv.data.spend_statistics`, on segment codes, or on profile
        codes when ``profiles`` is given.
    segments : sequence of str
    priors : mapping
        A resolved prior set.
    profiles : Profiles, optional
        Customer covariates; the coefficients ``spend_coef`` shift the log mean spend.
    laplace : SegmentLaplace, optional
        Each segment's mode and scale given its own data: the origin and unit of its
        centred coordinates (see :func:`bayesclv._hierarchy.segment_effects`).

    Returns
    -------
    pymc.Model
        With deterministics ``spend_psi`` (segment, coord), ``p``, ``q``, ``gamma`` per
        segment and the population ``spend_mu``, ``spend_sigma``, ``spend_chol``.
    """
    coords = {
        "segment": list(segments),
        "spend_coord": list(family.coords),
        "spend_coord_": list(family.coords),
    }
    if profiles is not None:
        coords["spend_covariate"] = list(profiles.names)
    with pm.Model(coords=coords) as model:
        psi = segment_effects("spend", family.coords, priors, laplace)
        for name, value in family.natural(psi, PT).items():
            pm.Deterministic(name, value, dims="segment")
        if profiles is not None:
            psi = profile_effects("spend", psi, profiles, priors,
                                  family.coords.index(family.covariate_coord),
                                  family.covariate_sign)
        # Model data, not constants: the compiled model is the same for every table.
        data = {key: (value if key == "laplace_step"
                      else pm.Data(f"spend_{key}", np.asarray(value)))
                for key, value in stats.items()}
        pm.Potential("spend_loglik", family.aggregated_loglik(psi, data, PT))
    return model
