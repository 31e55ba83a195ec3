"""The lognormal spend family: log revenue per active period, customer effects pooled.

For subscription-like revenue, whose spread is multiplicative: the log of customer i's
revenue in an active period is ``Normal(mu_s + u_i, sigma_s)``, with the customer's level
``u_i ~ Normal(0, tau_s)`` shrunk to its segment ``s``. A customer's mean per-period
revenue is ``exp(mu_s + u_i + sigma_s^2 / 2)``; over the segment's customers it averages
``exp(mu_s + (sigma_s^2 + tau_s^2) / 2)``.

Data. The family reads, per customer, ``n_periods_active`` (``x``) and
``mean_log_spend`` (``ybar``: the mean over active periods of the log of the period's
revenue) and, if present, ``sd_log_spend`` (their standard deviation with ``ddof=0``,
so ``0`` for one active period); :func:`bayesclv.data.summarize` with
``log_spend=True`` writes both from a transaction log. ``mean_spend`` is still read: it
sets the priors' scale.

Likelihood. Integrating ``u_i`` out, with ``V_x = tau^2 + sigma^2 / x`` and the
within-customer sum of squares ``SS = x sd_log_spend^2``, the density of the customer's
period revenues ``s_1..s_x`` is::

    log f = -(x - 1)/2 log(2 pi sigma^2) - log(x)/2 - SS / (2 sigma^2)
            - log(2 pi V_x)/2 - (ybar - mu)^2 / (2 V_x) - x ybar

(the last term is the Jacobian from log revenue to revenue). Without ``sd_log_spend``
it is the density of ``ybar`` alone, ``-log(2 pi V_x)/2 - (ybar - mu)^2 / (2 V_x)``: then
``sigma`` and ``tau`` are told apart only by how the spread of customers' ``ybar``
shrinks with ``x``, and their posteriors are wide. Sufficient statistics: per unique
(segment, x) the count, mean and within-group sum of squares of ``ybar``; per segment
``sum(x - 1)``, ``sum(SS)`` and the constant.

Customer posterior. Given the segment's parameters, ``u_i | data ~ Normal(m_i, v_i)``
with ``v_i = tau^2 sigma^2 / (sigma^2 + x tau^2)`` and
``m_i = x tau^2 (ybar - mu) / (sigma^2 + x tau^2)``, so the customer's expected mean
spend is ``exp(mu + sigma^2/2 + m_i + v_i/2)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numba
import numpy as np

from bayesclv._math import NP
from bayesclv._streams import fill_normal
from bayesclv.data import log_spend_statistics
from bayesclv.models.spend.base import SPEND_DRAWS, SPEND_MEANS, SpendFamily, _get
from bayesclv.priors import Prior, hierarchy_options

__all__ = ["LognormalSpend"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@numba.njit(cache=True, inline="always")
def _customer_posterior(mu, sigma, tau, x, ybar):
    """Mean and variance of ``u_i`` given the customer's ``x`` and ``ybar``."""
    s2, t2 = sigma * sigma, tau * tau
    denominator = s2 + x * t2
    return x * t2 * (ybar - mu) / denominator, t2 * s2 / denominator


@numba.njit(SPEND_DRAWS, cache=True)
def _draw_spend(params, inputs, key, out):  # pragma: no cover - compiled
    """``exp(mu + sigma^2/2 + u)`` with ``u ~ Normal(m_i, v_i)``, one per sample."""
    x, ybar = inputs[0], inputs[1]
    fill_normal(key, out)
    for g in range(len(out)):
        mu, sigma = params[0, g], params[1, g]
        m, v = _customer_posterior(mu, sigma, params[2, g], x, ybar)
        out[g] = np.exp(mu + 0.5 * sigma * sigma + m + np.sqrt(v) * out[g])


@numba.njit(SPEND_MEANS, cache=True)
def _mean_spend(params, inputs, out):  # pragma: no cover - compiled
    """``exp(mu + sigma^2/2 + m_i + v_i/2)``, one per sample."""
    x, ybar = inputs[0], inputs[1]
    for g in range(len(out)):
        mu, sigma = params[0, g], params[1, g]
        m, v = _customer_posterior(mu, sigma, params[2, g], x, ybar)
        out[g] = np.exp(mu + 0.5 * sigma * sigma + m + 0.5 * v)


class LognormalSpend(SpendFamily):
    """The lognormal spend family, with ``(mu, log sigma, log tau)`` pooled."""

    name: ClassVar[str] = "lognormal"
    coords: ClassVar[tuple[str, ...]] = ("mu_log_spend", "log_sigma", "log_tau")
    param_names: ClassVar[tuple[str, ...]] = ("mu", "sigma", "tau")
    #: Covariates shift ``mu``: a coefficient is the log of the factor by which they
    #: multiply the mean spend.
    covariate_coord: ClassVar[str] = "mu_log_spend"
    covariate_sign: ClassVar[float] = 1.0
    inputs: ClassVar[tuple[str, ...]] = ("n_periods_active", "mean_log_spend")
    draw_kernel: ClassVar[Any] = staticmethod(_draw_spend)
    mean_kernel: ClassVar[Any] = staticmethod(_mean_spend)

    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:
        """``mu``, ``sigma`` and ``tau`` from ``psi`` (coordinates on the last axis)."""
        return {"mu": psi[..., 0], "sigma": xp.exp(psi[..., 1]),
                "tau": xp.exp(psi[..., 2])}

    def statistics(self, segment_code: np.ndarray, data: Any, n_segments: int
                   ) -> dict[str, Any]:
        """:func:`bayesclv.data.log_spend_statistics`: per (segment, x) and per segment."""
        self.check_columns(data)
        return log_spend_statistics(segment_code, data.n_periods_active, data.mean_log_spend,
                                    getattr(data, "sd_log_spend", None), n_segments)

    def training_statistics(self, statistics: Any) -> dict[str, Any]:
        """The statistics of :meth:`statistics` from a Dask table's reduction."""
        if statistics.log_spend is None:
            raise self.missing_column("mean_log_spend")
        return statistics.log_spend

    def observed(self, data: Any) -> str:
        """What :meth:`customer_loglik` is the density of, for this table."""
        if _get(data, "sd_log_spend") is not None:
            return "each active period's revenue"
        return "mean log revenue per active period"

    def customer_loglik(self, psi: np.ndarray, data: Mapping[str, np.ndarray] | Any
                        ) -> np.ndarray:
        """Log density of each customer's spend data (see :meth:`observed`)."""
        x = np.asarray(_get(data, "n_periods_active"), dtype=np.float64)
        ybar = np.asarray(_get(data, "mean_log_spend"), dtype=np.float64)
        par = self.natural(psi)
        mu, sigma, tau = par["mu"], par["sigma"], par["tau"]
        variance = tau ** 2 + sigma ** 2 / x
        out = -0.5 * (_LOG_2PI + np.log(variance)) - 0.5 * (ybar - mu) ** 2 / variance
        sd = _get(data, "sd_log_spend")
        if sd is not None:
            squares = x * np.asarray(sd, dtype=np.float64) ** 2
            out = (out - 0.5 * (x - 1.0) * (_LOG_2PI + 2.0 * np.log(sigma))
                   - 0.5 * np.log(x) - squares / (2.0 * sigma ** 2) - x * ybar)
        return out

    def loglik_terms(self, psi: Any, stats: Mapping[str, np.ndarray], xp: Any = NP
                     ) -> tuple[Any, Any]:
        """The log-likelihood from :meth:`statistics`, per (code, x) pair and per code."""
        par = self.natural(psi, xp)
        mu, sigma, tau = par["mu"], par["sigma"], par["tau"]
        seg = stats["x_seg"]
        variance = tau[seg] ** 2 + sigma[seg] ** 2 / stats["x_value"]
        count = stats["x_count"]
        per_x = (-0.5 * count * (_LOG_2PI + xp.log(variance))
                 - 0.5 * (stats["x_within"] + count * (stats["x_mean"] - mu[seg]) ** 2)
                 / variance)
        per_segment = (-0.5 * stats["sum_x_minus_1"] * (_LOG_2PI + 2.0 * xp.log(sigma))
                       - stats["sum_squares"] / (2.0 * sigma ** 2) + stats["constant"])
        return per_x, per_segment

    def expected_customer_spend(self, params: Mapping[str, np.ndarray],
                                inputs: np.ndarray) -> np.ndarray:
        """``exp(mu + sigma^2/2 + m_i + v_i/2)`` under each parameter draw."""
        mu, sigma = params["mu"], params["sigma"]
        m, v = _posterior(params, inputs)
        return np.exp(mu + 0.5 * sigma ** 2 + m + 0.5 * v)

    def sample_customer_latent(self, params: Mapping[str, np.ndarray], inputs: np.ndarray,
                               rng: np.random.Generator, shape: tuple[int, ...]
                               ) -> np.ndarray:
        """The customer's level ``u_i ~ Normal(m_i, v_i)`` given each draw."""
        m, v = _posterior(params, inputs)
        return m + np.sqrt(v) * rng.standard_normal(shape)

    def mean_given_latent(self, params: Mapping[str, np.ndarray], latent: np.ndarray
                          ) -> np.ndarray:
        """``exp(mu + u_i + sigma^2/2)``."""
        return np.exp(params["mu"] + latent + 0.5 * params["sigma"] ** 2)

    def period_spend_variance(self, params: Mapping[str, np.ndarray], latent: np.ndarray
                              ) -> np.ndarray:
        """``(exp(sigma^2) - 1) mean^2``: the variance of ``exp(mu + u_i + sigma eps)``."""
        return np.expm1(params["sigma"] ** 2) * self.mean_given_latent(params, latent) ** 2

    def sample_period_spend(self, params: Mapping[str, np.ndarray], latent: np.ndarray,
                            rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """``exp(mu + u_i + sigma eps)``, ``eps ~ Normal(0, 1)``."""
        return np.exp(params["mu"] + latent + params["sigma"] * rng.standard_normal(shape))

    def segment_mean_spend(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """``exp(mu + (sigma^2 + tau^2) / 2)``: the segment's mean per-period spend."""
        return np.exp(params["mu"] + 0.5 * (params["sigma"] ** 2 + params["tau"] ** 2))

    def default_priors(self, mean_spend: np.ndarray) -> dict[str, Any]:
        """Weakly informative priors, ``mu`` centred on the log of the median spend."""
        scale = float(np.median(mean_spend))
        return {
            "mu": {
                # Typical per-period spend within a factor ~50 of the median (95%).
                "mu_log_spend": Prior("Normal", mu=np.log(scale), sigma=2.0),
                # Within-customer sd of log spend between 0.07 and 3.5 (95%).
                "log_sigma": Prior("Normal", mu=np.log(0.5), sigma=1.0),
                # Between-customer sd of typical log spend, likewise.
                "log_tau": Prior("Normal", mu=np.log(0.5), sigma=1.0),
            },
            "sigma": {
                "mu_log_spend": Prior("HalfNormal", sigma=0.5),
                "log_sigma": Prior("HalfNormal", sigma=0.5),
                "log_tau": Prior("HalfNormal", sigma=0.5),
            },
            **hierarchy_options(correlated=False),
        }


def _posterior(params: Mapping[str, np.ndarray], inputs: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each customer's level ``u_i`` under each parameter draw."""
    mu, sigma, tau = params["mu"], params["sigma"], params["tau"]
    x, ybar = inputs[:, 0], inputs[:, 1]
    s2, t2 = sigma ** 2, tau ** 2
    denominator = s2 + x * t2
    return x * t2 * (ybar - mu) / denominator, t2 * s2 / denominator
