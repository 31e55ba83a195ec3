"""Decision quantities over posterior draws: prospects, realised value, comparisons.

Pure functions on arrays, called by thin methods of :class:`bayesclv.CLVModel`
(DESIGN §4.3):

* :func:`prospect_discounted_survival` and :func:`prospect_values`: the value of a
  customer not yet acquired, ``-c + sum_{t=0}^{H-1} [m E spend_s - cost] S_s(t) / (1+d)^t``;
* :func:`acquisition_cost_ceiling`: the largest acquisition cost still covered with a
  given probability;
* :class:`RealisedValuation`: the predictive distribution of *realised* residual value,
  simulating when each customer churns and what it spends each period, and
  :func:`realised_quantiles`, its quantiles per customer streamed chunk by chunk;
* :func:`pairwise_exceedance` and :func:`exceedance_probability`: posterior
  probabilities computed within draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesclv.valuation.customers import BLOCK, TARGET_ELEMENTS
from bayesclv.valuation.kernels import net_value
from bayesclv.valuation.survival import MAX_PERIODS, residual_survival_sums

__all__ = [
    "RealisedValuation",
    "acquisition_cost_ceiling",
    "exceedance_probability",
    "pairwise_exceedance",
    "prospect_discounted_survival",
    "prospect_values",
    "realised_quantiles",
]

_REALISED_STREAM = 2
_NEGLIGIBLE_WEIGHT = 1e-12


def prospect_discounted_survival(
    family: Any, psi: np.ndarray, horizon: int | None, discount_rate: float
) -> np.ndarray:
    """``sum_{t=0}^{H-1} S(t) / (1+d)^t`` per sample and segment, from acquisition.

    Parameters
    ----------
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, segments, coord)
    horizon : int or None
        Number of periods valued, the acquisition period (``t = 0``, ``S(0) = 1``)
        included; ``None`` sums until the remainder is negligible.
    discount_rate : float
        Per period.

    Returns
    -------
    numpy.ndarray, shape (samples, segments)

    Notes
    -----
    :func:`bayesclv.valuation.customers.residual_survival_sums` at tenure 0 gives
    ``sum_{j=1}^{K} S(j) / (1+d)^j``; with ``K = H - 1`` and the ``t = 0`` term (1) added
    this is the sum above. ``H = 1`` is the acquisition period alone.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesclv.models.retention import RETENTION_FAMILIES
    >>> geometric = RETENTION_FAMILIES["geometric"]
    >>> psi = np.zeros((1, 1, 1))  # logit of a churn probability of 0.5
    >>> prospect_discounted_survival(geometric, psi, 3, 0.0)  # 1 + 0.5 + 0.25
    array([[1.75]])
    """
    n_samples, n_segments = psi.shape[0], psi.shape[1]
    if horizon is not None and int(horizon) < 1:
        raise ValueError(f"horizon must be an integer >= 1 or None; got {horizon!r}.")
    if horizon is not None and int(horizon) == 1:
        return np.ones((n_samples, n_segments))
    further = None if horizon is None else int(horizon) - 1
    sums = residual_survival_sums(family, psi, np.zeros(n_segments, dtype=np.int64), further,
                                  float(discount_rate))
    return 1.0 + sums["discounted"]


def prospect_values(
    discounted_survival: np.ndarray, mean_spend: np.ndarray, *, margin: float,
    cost_per_period: float, acquisition_cost: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Value of a prospective customer per sample and segment.

    ``-acquisition_cost + [margin * mean_spend - cost_per_period] * discounted_survival``.

    Parameters
    ----------
    discounted_survival : numpy.ndarray, shape (samples, segments)
        From :func:`prospect_discounted_survival`.
    mean_spend : numpy.ndarray, shape (samples, segments)
        Mean per-period spend of a customer of the segment under each sample.
    margin, cost_per_period : float
    acquisition_cost : float or numpy.ndarray of shape (segments,)

    Returns
    -------
    numpy.ndarray, shape (samples, segments)

    Examples
    --------
    >>> import numpy as np
    >>> prospect_values(np.array([[2.0]]), np.array([[10.0]]), margin=0.5,
    ...                 cost_per_period=1.0, acquisition_cost=3.0)
    array([[5.]])
    """
    per_period = net_value(np.asarray(mean_spend), margin, cost_per_period)
    return per_period * np.asarray(discounted_survival) - np.asarray(acquisition_cost)


def acquisition_cost_ceiling(values: np.ndarray, prob: float) -> np.ndarray:
    """Largest cost ``c`` with ``P(value > c) >= prob``: the ``1 - prob`` quantile.

    Parameters
    ----------
    values : numpy.ndarray, shape (samples, segments)
        Draws of the value before acquisition cost.
    prob : float
        In (0, 1).

    Returns
    -------
    numpy.ndarray, shape (segments,)

    Examples
    --------
    >>> import numpy as np
    >>> draws = np.arange(1.0, 101.0)[:, None]
    >>> float(acquisition_cost_ceiling(draws, 0.9)[0]) < float(draws.mean())
    True
    """
    if not (isinstance(prob, (float, int, np.floating)) and 0.0 < float(prob) < 1.0):
        raise ValueError(f"prob must be a number strictly between 0 and 1; got {prob!r}.")
    # "lower": a draw that is exceeded-or-equalled by at least ``prob`` of the draws.
    return np.quantile(values, 1.0 - float(prob), axis=0, method="lower")


def pairwise_exceedance(draws: np.ndarray) -> np.ndarray:
    """``P(X_a > X_b)`` for every ordered pair of columns, computed within draws.

    Parameters
    ----------
    draws : numpy.ndarray, shape (samples, k)

    Returns
    -------
    numpy.ndarray, shape (k, k)
        Entry ``[a, b]`` is the share of samples in which column ``a`` exceeds column
        ``b`` (ties count for neither; the diagonal is 0).

    Examples
    --------
    >>> import numpy as np
    >>> pairwise_exceedance(np.array([[1.0, 0.0], [2.0, 3.0]]))
    array([[0. , 0.5],
           [0.5, 0. ]])
    """
    draws = np.asarray(draws, dtype=np.float64)
    return (draws[:, :, None] > draws[:, None, :]).mean(axis=0)


def exceedance_probability(draws: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """``P(X_k > threshold_k)`` per column, the share of samples above the threshold.

    Examples
    --------
    >>> import numpy as np
    >>> exceedance_probability(np.array([[1.0, 5.0], [3.0, 6.0]]), 2.0)
    array([0.5, 1. ])
    """
    return (np.asarray(draws) > np.asarray(threshold)).mean(axis=0)


@dataclass
class _Chunk:
    """One chunk of :class:`RealisedValuation`'s customers: levels, uniforms and streams."""

    start: int
    stop: int
    shape: tuple[int, int, int]
    params: dict[str, np.ndarray]
    latent: np.ndarray
    log_u: np.ndarray
    streams: list[tuple[slice, np.random.Generator]]


@dataclass
class RealisedValuation:
    """Simulate each customer's realised residual value, draw by draw and path by path.

    For posterior sample ``g`` and path ``k``, active customer ``i`` (segment ``s``,
    tenure ``tau``) first gets its latent spend level from its conditional posterior
    (``spend_family.sample_customer_latent``; gamma-gamma: the rate
    ``nu_i ~ Gamma(p x_i + q, rate = gamma + x_i z_i)``), and a uniform ``u``; it is still
    a customer in future period ``tau + j`` while ``S_s(tau + j; g) / S_s(tau; g) > u``
    (inverse-CDF sampling of its churn period from the conditional hazards
    ``h_s(tau + j; g)``). Each period it is active it spends a draw of
    ``spend_family.sample_period_spend`` (gamma-gamma: ``Gamma(p, rate = nu_i)``);
    realised value is
    ``sum_j 1{active in tau + j} [margin * spend_ij - cost] / (1+d)^j``, ``j = 1..H``.

    Using the segment's marginal survival ``S_s`` as the customer's churn distribution is
    exact for every family: for ``geometric``/``weibull`` all customers of a segment share
    one hazard, and for ``sbg``/``bdw`` customers are independent given the segment
    parameters, so the churn time of one customer, integrated over its own unobserved
    churn propensity given survival to ``tau``, has survival ``S_s(tau + j) / S_s(tau)``.
    Its expectation over paths is the expected value of :class:`bayesclv.valuation.customers.
    CustomerValuation`.

    Random numbers come from one stream per block of :data:`bayesclv.valuation.customers.BLOCK`
    customers, each drawn in the same order whatever the chunk, so results do not depend
    on the chunk size.

    Attributes
    ----------
    family : RetentionFamily
    psi : numpy.ndarray, shape (samples, segments, coord)
        Retention parameters per sample and valued segment.
    segment, tenure : numpy.ndarray of int, shape (customers,)
    active : numpy.ndarray of bool, shape (customers,)
    spend_family : bayesclv.models.spend.SpendFamily
    spend_params : dict of numpy.ndarray, each (samples, segments)
        The family's natural parameters.
    inputs : numpy.ndarray, shape (customers, inputs)
        Each customer's row of ``spend_family.customer_inputs``.
    margin, cost_per_period, discount_rate : float
    horizon : int or None
        ``None``: simulate until every path has churned or discounting makes the rest
        negligible (at most 10,000 periods).
    n_paths : int
    seed : int
    """

    family: Any
    psi: np.ndarray
    segment: np.ndarray
    tenure: np.ndarray
    active: np.ndarray
    spend_family: Any
    spend_params: Mapping[str, np.ndarray]
    inputs: np.ndarray
    margin: float
    cost_per_period: float
    discount_rate: float
    horizon: int | None
    n_paths: int
    seed: int

    @property
    def n_customers(self) -> int:  # noqa: D102
        return len(self.segment)

    @property
    def n_samples(self) -> int:  # noqa: D102
        return self.psi.shape[0]

    def chunk_size(self) -> int:
        """Customers per chunk: a multiple of BLOCK bounded by memory."""
        blocks = max(1, TARGET_ELEMENTS // (self.n_samples * self.n_paths * BLOCK))
        return blocks * BLOCK

    def iter_values(self, chunk_size: int | None = None
                    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(customers slice, values (samples, paths, chunk))`` in customer order.

        ``chunk_size`` (rounded up to a multiple of BLOCK) overrides the memory-based size.
        """
        size = self.chunk_size() if chunk_size is None else BLOCK * max(
            1, -(-int(chunk_size) // BLOCK))
        for start in range(0, self.n_customers, size):
            stop = min(start + size, self.n_customers)
            yield slice(start, stop), self._simulate(start, stop)

    def _simulate(self, start: int, stop: int) -> np.ndarray:
        values = np.zeros((self.n_samples, self.n_paths, stop - start))
        log_discount = -np.log1p(self.discount_rate)
        for j, alive, spend in self.iter_periods(start, stop):
            weight = np.exp(j * log_discount)
            values += np.where(alive, weight * net_value(spend, self.margin,
                                                         self.cost_per_period), 0.0)
            if self.horizon is None and (not alive.any() or weight < _NEGLIGIBLE_WEIGHT):
                break
        return values

    def iter_periods(self, start: int, stop: int
                     ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(j, alive, spend)`` for future periods ``j = 1, 2, ...`` of some customers.

        ``alive`` (bool) and ``spend`` are (samples, paths, customers ``start:stop``):
        whether the customer is still a customer in period ``tau + j`` (churned ones never
        are), and what it would spend in it. Stops after ``horizon`` periods (with
        ``horizon=None``, the caller stops).
        """
        chunk = self._chunk(start, stop)
        family = self.spend_family
        for j, alive in self._alive(chunk):
            spend = np.empty(chunk.shape)
            for local, rng in chunk.streams:
                spend[..., local] = family.sample_period_spend(
                    {key: value[..., local] for key, value in chunk.params.items()},
                    chunk.latent[..., local], rng, chunk.shape[:2] + (local.stop - local.start,))
            yield j, alive, spend

    def spend_moments(self, start: int, stop: int
                      ) -> tuple[np.ndarray, np.ndarray, Iterator[tuple[int, np.ndarray]]]:
        """Each customer's per-period spend mean and variance given its level, and who stays.

        The same simulation as :meth:`iter_periods` (same levels and churn periods) without
        drawing each period's spend: the mean and variance are (samples, paths,
        customers), the iterator yields ``(j, alive)``.
        """
        chunk = self._chunk(start, stop)
        family = self.spend_family
        mean = family.mean_given_latent(chunk.params, chunk.latent)
        variance = family.period_spend_variance(chunk.params, chunk.latent)
        return mean, variance, self._alive(chunk)

    def _chunk(self, start: int, stop: int) -> _Chunk:
        blocks = [slice(b, min(b + BLOCK, stop)) for b in range(start, stop, BLOCK)]
        rngs = [np.random.default_rng(np.random.SeedSequence(
            self.seed, spawn_key=(_REALISED_STREAM, b.start // BLOCK))) for b in blocks]
        sl = slice(start, stop)
        n, n_s, n_k = stop - start, self.n_samples, self.n_paths
        seg = self.segment[sl]
        family = self.spend_family
        params = {key: value[:, seg][:, None, :] for key, value in self.spend_params.items()}
        inputs = self.inputs[sl]
        shape = (n_s, n_k, n)
        latent = np.empty(shape)
        u = np.empty(shape)
        streams = []
        for b, rng in zip(blocks, rngs, strict=True):
            local = slice(b.start - start, b.stop - start)
            local_shape = (n_s, n_k, local.stop - local.start)
            latent[..., local] = family.sample_customer_latent(
                {key: value[..., local] for key, value in params.items()}, inputs[local],
                rng, local_shape)
            u[..., local] = rng.random(local_shape)
            streams.append((local, rng))
        return _Chunk(start=start, stop=stop, shape=shape, params=params, latent=latent,
                      log_u=np.log(u), streams=streams)

    def _alive(self, chunk: _Chunk) -> Iterator[tuple[int, np.ndarray]]:
        sl = slice(chunk.start, chunk.stop)
        seg = self.segment[sl]
        # unique (segment, tenure) pairs of the chunk: hazards computed once per pair
        tau = self.tenure[sl].astype(np.int64)
        keys = seg.astype(np.int64) * (int(tau.max()) + 1) + tau
        unique_keys, pair = np.unique(keys, return_inverse=True)
        pair_seg = unique_keys // (int(tau.max()) + 1)
        pair_tau = (unique_keys % (int(tau.max()) + 1)).astype(np.float64)
        pair_psi = self.psi[:, pair_seg, :]
        log_surv = np.zeros((self.n_samples, len(unique_keys)))
        active = self.active[sl]
        limit = MAX_PERIODS if self.horizon is None else int(self.horizon)
        for j in range(1, limit + 1):
            log_surv = log_surv - self.family.hazard_increment(pair_tau + j, pair_psi)
            yield j, (chunk.log_u < log_surv[:, None, pair]) & active


def realised_quantiles(realised: RealisedValuation, probs: np.ndarray) -> np.ndarray:
    """Quantiles of each customer's realised residual value, streamed over customer chunks.

    Parameters
    ----------
    realised : RealisedValuation
    probs : numpy.ndarray, shape (k,)
        Probabilities in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (k, customers)
        Quantiles (numpy's default, linear interpolation) over all samples and paths.
        Memory grows as samples x paths x one chunk of customers, never as customers x
        samples. Churned customers have a realised value of 0, so all their quantiles
        are 0.
    """
    probs = np.asarray(probs, dtype=np.float64)
    out = np.zeros((len(probs), realised.n_customers))
    for sl, values in realised.iter_values():
        out[:, sl] = np.quantile(values.reshape(-1, values.shape[-1]), probs, axis=0)
    return out
