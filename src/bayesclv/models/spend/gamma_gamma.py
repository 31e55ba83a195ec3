"""The gamma-gamma spend family: revenue per active period, pooled across segments.

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

When the table also has ``mean_log_spend`` (``ybar``, the mean over active periods of the
log of the period's revenue), the likelihood is the density of every period's revenue,
not of their mean alone::

    log f(s_1..s_x) = (p - 1) x ybar - x lgamma(p) + lgamma(p x + q) - lgamma(q)
                      + q log gamma - (p x + q) log(gamma + x z)

The spread of a customer's revenue around its own mean then informs ``p`` as well; the
posterior of ``nu_i`` is unchanged. This is the density :func:`bayesclv.compare` needs
to set gamma-gamma against the lognormal family on the same data.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: using iso-value
   curves for customer base analysis. Journal of Marketing Research 42(4).
.. [2] Fader, P. S. and Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numba
import numpy as np

from bayesclv._math import NP, sum_log1p_ratio
from bayesclv._streams import fill_gamma
from bayesclv.data import spend_statistics
from bayesclv.models.spend.base import SPEND_DRAWS, SPEND_MEANS, SpendFamily, _get
from bayesclv.priors import Prior, hierarchy_options

__all__ = ["GammaGammaSpend"]


@numba.njit(SPEND_DRAWS, cache=True)
def _draw_spend(params, inputs, key, out):  # pragma: no cover - compiled
    """``p / nu`` with ``nu ~ Gamma(p x + q, rate = gamma + x z)``, one per sample."""
    x, z = inputs[0], inputs[1]
    p, q, gamma = params[0], params[1], params[2]
    for g in range(len(out)):
        out[g] = p[g] * x + q[g]
    fill_gamma(out, key, out)
    rate_data = x * z
    for g in range(len(out)):
        out[g] = p[g] * (gamma[g] + rate_data) / out[g]


@numba.njit(SPEND_MEANS, cache=True)
def _mean_spend(params, inputs, out):  # pragma: no cover - compiled
    """``E[p / nu | x, z] = p (gamma + x z) / (p x + q - 1)``, one per sample."""
    x, z = inputs[0], inputs[1]
    p, q, gamma = params[0], params[1], params[2]
    for g in range(len(out)):
        out[g] = p[g] * (gamma[g] + x * z) / (p[g] * x + q[g] - 1.0)


class GammaGammaSpend(SpendFamily):
    """The gamma-gamma spend family, with ``(log mean spend, log p, log(q - 1))`` pooled."""

    name: ClassVar[str] = "gamma_gamma"
    coords: ClassVar[tuple[str, ...]] = ("log_mean_spend", "log_p", "log_q_minus_1")
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    #: Covariates shift the log mean spend ``log(p gamma / (q - 1))`` (through ``gamma``),
    #: so a coefficient is the log of the factor by which they multiply the mean spend.
    covariate_coord: ClassVar[str] = "log_mean_spend"
    covariate_sign: ClassVar[float] = 1.0
    inputs: ClassVar[tuple[str, ...]] = ("n_periods_active", "mean_spend")
    draw_kernel: ClassVar[Any] = staticmethod(_draw_spend)
    mean_kernel: ClassVar[Any] = staticmethod(_mean_spend)

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:
        """``p``, ``q`` and ``gamma`` from ``psi`` (coordinates on the last axis).

        ``gamma = mean (q - 1) / p``, i.e. ``log gamma = log mean + log(q - 1) - log p``.
        """
        return {
            "p": xp.exp(psi[..., 1]),
            "q": 1.0 + xp.exp(psi[..., 2]),
            "gamma": xp.exp(psi[..., 0] + psi[..., 2] - psi[..., 1]),
        }

    def statistics(self, segment_code: np.ndarray, data: Any, n_segments: int
                   ) -> dict[str, Any]:
        """:func:`bayesclv.data.spend_statistics`; with ``mean_log_spend``, its sums too."""
        return spend_statistics(segment_code, data.n_periods_active, data.mean_spend,
                                n_segments, mean_log_spend=getattr(data, "mean_log_spend", None))

    def training_statistics(self, statistics: Any) -> dict[str, Any]:
        """The statistics of :meth:`statistics` from a Dask table's reduction."""
        return statistics.spend

    def observed(self, data: Any) -> str:
        """What :meth:`customer_loglik` is the density of, for this table."""
        if _get(data, "mean_log_spend") is not None:
            return "each active period's revenue"
        return "mean revenue per active period"

    def customer_loglik(self, psi: np.ndarray, data: Mapping[str, np.ndarray] | Any
                        ) -> np.ndarray:
        """Log density of each customer's spend data (see :meth:`observed`).

        ``data`` holds ``n_periods_active``, ``mean_spend`` and optionally
        ``mean_log_spend`` (a mapping or a :class:`bayesclv.data.CustomerData`).
        """
        x, z, ybar = _columns(data)
        par = self.natural(psi)
        p, q, gamma = par["p"], par["q"], par["gamma"]
        px = p * x
        shared = (NP.gammaln(px + q) - NP.gammaln(q) + q * np.log(gamma)
                  - (px + q) * np.log(gamma + x * z))
        if ybar is None:
            return shared - NP.gammaln(px) + (px - 1.0) * np.log(z) + px * np.log(x)
        return shared + (p - 1.0) * x * ybar - x * NP.gammaln(p)

    def loglik_terms(self, psi: Any, stats: Mapping[str, np.ndarray], xp: Any = NP
                     ) -> tuple[Any, Any]:
        """The log-likelihood from :meth:`statistics`, per (code, x) pair and per code.

        Terms in ``x`` alone are evaluated once per unique (segment, x); everything else
        per segment: ``(p x + q) log(gamma + x z)`` is split into ``(p x + q) log(x z)``
        (sums of the data) and ``(p x + q) log1p(gamma / (x z))``, whose sums over a
        segment come from the tabulated Laplace transform of its ``x z``
        (:func:`bayesclv._math.sum_log1p_ratio`), or customer by customer when the
        statistics say so (fewer customers than segments times nodes). The cost of an
        evaluation does not grow with the number of customers; it equals the sum of
        :meth:`customer_loglik` to about 1e-14 relative.
        """
        par = self.natural(psi, xp)
        p, q, gamma = par["p"], par["q"], par["gamma"]
        p_pair, q_pair = p[stats["x_seg"]], q[stats["x_seg"]]
        px_pair = p_pair * stats["x_value"]
        per_periods = "sum_x_mean_log" in stats
        per_x = xp.gammaln(px_pair + q_pair)
        if not per_periods:
            per_x = per_x - xp.gammaln(px_pair) + px_pair * xp.log(stats["x_value"])
        n = stats["n_per_segment"]
        if "customer_w" in stats:  # small groups: customer by customer (spend_statistics)
            group = stats["customer_segment"]
            ratio = xp.log1p(gamma[..., group] / stats["customer_w"])
            log1p_x = xp.group_sum(stats["customer_x"] * ratio, group, gamma)
            log1p_one = xp.group_sum(ratio, group, gamma)
        else:
            nodes, step = stats["laplace_nodes"], float(stats["laplace_step"])
            log1p_x = sum_log1p_ratio(gamma, stats["laplace_x"], stats["sum_x"], nodes,
                                      step, xp)
            log1p_one = sum_log1p_ratio(gamma, stats["laplace_one"], n, nodes, step, xp)
        per_segment = -n * xp.gammaln(q) + n * q * xp.log(gamma)
        if per_periods:
            per_segment = (per_segment + (p - 1.0) * stats["sum_x_mean_log"]
                           - stats["sum_x"] * xp.gammaln(p))
        else:
            per_segment = per_segment + p * stats["sum_x_log_z"] - stats["sum_log_z"]
        per_segment = (per_segment - p * (stats["sum_x_log_w"] + log1p_x)
                       - q * (stats["sum_log_w"] + log1p_one))
        return per_x * stats["x_count"], per_segment

    def expected_customer_spend(self, params: Mapping[str, np.ndarray],
                                inputs: np.ndarray) -> np.ndarray:
        """``E[p / nu_i | x, z]`` under each parameter draw.

        ``params`` holds the natural parameters (see :meth:`natural`), broadcastable
        against the customers of ``inputs`` (columns ``n_periods_active``, ``mean_spend``).
        """
        p, q, gamma = params["p"], params["q"], params["gamma"]
        x, z = inputs[:, 0], inputs[:, 1]
        return p * (gamma + x * z) / (p * x + q - 1.0)

    def sample_customer_latent(self, params: Mapping[str, np.ndarray], inputs: np.ndarray,
                               rng: np.random.Generator, shape: tuple[int, ...]
                               ) -> np.ndarray:
        """The rate ``nu_i ~ Gamma(p x + q, rate = gamma + x z)`` given each draw."""
        p, q, gamma = params["p"], params["q"], params["gamma"]
        x, z = inputs[:, 0], inputs[:, 1]
        return rng.standard_gamma(np.broadcast_to(p * x + q, shape)) / (gamma + x * z)

    def mean_given_latent(self, params: Mapping[str, np.ndarray], latent: np.ndarray
                          ) -> np.ndarray:
        """``p / nu_i``."""
        return params["p"] / latent

    def period_spend_variance(self, params: Mapping[str, np.ndarray], latent: np.ndarray
                              ) -> np.ndarray:
        """``p / nu_i^2``: the variance of ``Gamma(p, rate = nu_i)``."""
        return params["p"] / latent**2

    def sample_period_spend(self, params: Mapping[str, np.ndarray], latent: np.ndarray,
                            rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """``Gamma(p, rate = nu_i)``."""
        return rng.standard_gamma(np.broadcast_to(params["p"], shape)) / latent

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


def _columns(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ybar = _get(data, "mean_log_spend")
    return (np.asarray(_get(data, "n_periods_active"), dtype=np.float64),
            np.asarray(_get(data, "mean_spend"), dtype=np.float64),
            None if ybar is None else np.asarray(ybar, dtype=np.float64))
