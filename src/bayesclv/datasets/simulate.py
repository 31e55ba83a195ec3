"""Simulators with known truth, shared by tests, benchmarks and tutorials.

The data-generating process follows the models exactly: discrete Weibull (or geometric)
lifetimes per segment, or beta-discrete-Weibull ones (a churn probability per customer
drawn from a beta distribution, with duration dependence ``c``), staggered acquisition,
right censoring at the end of observation, optional left truncation, and gamma-gamma
or lognormal spend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SEGMENTS", "SimulationTruth", "simulate_customers", "simulate_realised_value",
           "true_log_survival", "true_residual_value"]

#: Segment parameters of the bundled example (acquisition channels, monthly periods).
DEFAULT_SEGMENTS: dict[str, dict[str, float]] = {
    "referral": {"share": 0.20, "eta": 60.0, "k": 0.7, "p": 6.0, "q": 4.0, "gamma": 60.0},
    "paid_search": {"share": 0.35, "eta": 14.0, "k": 0.8, "p": 4.0, "q": 3.0, "gamma": 25.0},
    "organic": {"share": 0.30, "eta": 30.0, "k": 1.0, "p": 5.0, "q": 5.0, "gamma": 50.0},
    "partner": {"share": 0.15, "eta": 24.0, "k": 1.4, "p": 3.0, "q": 6.0, "gamma": 150.0},
}


@dataclass(frozen=True)
class SimulationTruth:
    """The parameters a simulated table was drawn from.

    Attributes
    ----------
    segments : pandas.DataFrame
        One row per segment: ``share``, retention parameters (``eta``, ``k``) and spend
        parameters (``p``, ``q``, ``gamma``, or ``mu``, ``sigma``, ``tau`` for lognormal
        spend).
    customers : pandas.DataFrame
        Same index as the table: ``true_mean_spend`` (``p / nu_i``, or
        ``exp(mu + u_i + sigma^2 / 2)``) and ``lifetime`` (the period of churn, possibly
        after the end of observation).
    """

    segments: pd.DataFrame
    customers: pd.DataFrame


_MAX_LIFETIME = 10**9


def _lifetimes(table: pd.DataFrame, seg: np.ndarray, rng: np.random.Generator,
               shift: np.ndarray | None = None) -> np.ndarray:
    """Discrete lifetimes ``L`` with ``P(L > t) = S(t)``, one per customer.

    Weibull segments: ``L = floor(eta (-log U)^(1/k)) + 1``. Beta-discrete-Weibull ones:
    customer ``i`` churns with ``theta_i ~ Beta(alpha, beta)`` and
    ``P(L > t | theta) = (1 - theta)^(t^c)``, so ``L = floor((log U / log(1 - theta))^(1/c)) + 1``.
    ``shift`` (covariate effects) multiplies ``eta``, or ``beta``, by ``exp(shift)``.
    """
    shift = np.zeros(seg.shape) if shift is None else shift
    u = rng.uniform(size=seg.shape)
    mixture = _is_beta_mixture(table)[seg]

    def column(name: str) -> np.ndarray:
        if name not in table.columns:
            return np.ones(seg.shape)
        values = table[name].to_numpy(np.float64)[seg]
        return np.where(np.isfinite(values), values, 1.0)

    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = column("eta") * np.exp(shift) * (-np.log(u)) ** (1.0 / column("k"))
    if mixture.any():
        beta = column("beta")[mixture] * np.exp(shift[mixture])
        theta = np.clip(rng.beta(column("alpha")[mixture], beta),
                        1e-12, 1.0 - 1e-12)
        scaled[mixture] = (np.log(u[mixture]) / np.log1p(-theta)) ** (1.0 / column("c")[mixture])
    return np.floor(np.minimum(scaled, _MAX_LIFETIME)).astype(np.int64) + 1


def _is_beta_mixture(table: pd.DataFrame) -> np.ndarray:
    if "alpha" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return np.isfinite(table["alpha"].to_numpy(np.float64))


def true_log_survival(table: pd.DataFrame, segment: np.ndarray, t: np.ndarray,
                      shift: np.ndarray | None = None) -> np.ndarray:
    """``log S(t)`` under the simulation's parameters.

    Parameters
    ----------
    table : pandas.DataFrame
        ``SimulationTruth.segments``.
    segment : numpy.ndarray, shape (n,)
        Segment label per row.
    t : numpy.ndarray, shape (n, m)
        Periods per row.
    shift : numpy.ndarray, shape (n,), optional
        Covariate effect per row: ``eta`` (or ``beta``) is multiplied by ``exp(shift)``.

    Returns
    -------
    numpy.ndarray, shape (n, m)
        Weibull segments: ``-(t/eta)^k``; beta-discrete-Weibull ones:
        ``log B(alpha, beta + t^c) - log B(alpha, beta)``.
    """
    from scipy.special import betaln

    params = table.loc[np.asarray(segment)]
    t = np.asarray(t, dtype=np.float64)
    mixture = _is_beta_mixture(params)[:, None]

    def column(name: str, default: float = np.nan) -> np.ndarray:
        if name not in params.columns:
            return np.full((len(params), 1), default)
        values = params[name].to_numpy(np.float64)[:, None]
        return np.where(np.isfinite(values), values, default)

    scale = np.ones((len(params), 1)) if shift is None else np.exp(np.asarray(shift))[:, None]
    with np.errstate(invalid="ignore"):
        weibull = -((t / (column("eta", 1.0) * scale)) ** column("k", 1.0))
        alpha, beta = column("alpha", 1.0), column("beta", 1.0) * scale
        bdw = betaln(alpha, beta + t ** column("c", 1.0)) - betaln(alpha, beta)
    return np.where(mixture, bdw, weibull)


def simulate_customers(
    n_customers: int = 5000,
    segments: Mapping[str, Mapping[str, float]] | None = None,
    *,
    observation_periods: int = 36,
    acquisition_periods: int | None = None,
    truncation_periods: int = 0,
    active_probability: float = 0.7,
    covariates: Mapping[str, Mapping[str, object]] | None = None,
    log_spend: bool | None = None,
    random_seed: int | None = None,
) -> tuple[pd.DataFrame, SimulationTruth]:
    """Simulate a customer table (DESIGN §3) with known segment parameters.

    Customers are acquired uniformly over ``acquisition_periods`` calendar periods before
    the end of observation. Observation covers the last ``observation_periods`` periods;
    customers acquired earlier enter the table only if they survived to its start, with
    ``entry`` the periods they had already completed (left truncation). Each customer is
    active (spends) in each observed period after the first with ``active_probability``.

    Parameters
    ----------
    n_customers : int, default=5000
    segments : mapping, optional
        ``{label: {"share", "eta", "k", "p", "q", "gamma"}}``; shares are normalised.
        Defaults to :data:`DEFAULT_SEGMENTS`. ``k = 1`` gives constant retention. A segment
        given ``alpha``, ``beta`` (and optionally ``c``, default 1) instead of ``eta``,
        ``k`` has beta-discrete-Weibull lifetimes (``c = 1``: shifted-beta-geometric).
        A segment given ``mu``, ``sigma``, ``tau`` instead of ``p``, ``q``, ``gamma`` has
        lognormal spend: log revenue in an active period is
        ``Normal(mu + u_i, sigma)`` with ``u_i ~ Normal(0, tau)``.
    observation_periods : int, default=36
    acquisition_periods : int, optional
        Defaults to ``observation_periods + truncation_periods``.
    truncation_periods : int, default=0
        How many periods before the start of observation customers may have joined.
    active_probability : float, default=0.7
    covariates : mapping, optional
        Customer covariates with known effects, ``{name: spec}``. A numeric covariate:
        ``{"mean": m, "sd": s, "retention": b_r, "spend": b_s}``, drawn
        ``Normal(m, s)``; a categorical one: ``{"levels": [...], "probs": [...],
        "retention": {level: b_r}, "spend": {level: b_s}}`` (levels left out have effect
        0). A customer's retention scale (``eta``, or ``beta`` for beta-mixture segments)
        is multiplied by ``exp(sum b_r (x - m))`` (numeric) and ``exp(b_r)`` (its level),
        and its ``gamma`` likewise with the ``spend`` effects, so the segment parameters
        are those of a customer at the covariates' means and at levels without effect.
        (Lognormal spend: ``mu`` is shifted by the ``spend`` effects.)
    log_spend : bool, optional
        Also write ``mean_log_spend`` and ``sd_log_spend`` (mean and ``ddof=0`` sd of
        the log of each active period's revenue, as :func:`bayesclv.data.summarize`
        does), from every period's revenue drawn one by one. Defaults to whether any
        segment has lognormal spend. Gamma-gamma revenue is then drawn period by period,
        so the same seed gives other numbers than with ``log_spend=False``.
    random_seed : int, optional

    Returns
    -------
    customers : pandas.DataFrame
        ``customer_id``, ``segment``, ``tenure``, ``churned``, ``entry``,
        ``n_periods_active``, ``mean_spend`` (and ``mean_log_spend``, ``sd_log_spend``),
        and one column per covariate.
    truth : SimulationTruth
    """
    segments = dict(segments or DEFAULT_SEGMENTS)
    labels = list(segments)
    table = pd.DataFrame(segments).T.loc[labels].astype(float)
    table.index.name = "segment"
    shares = table["share"].to_numpy() / table["share"].sum()
    acquisition_periods = acquisition_periods or observation_periods + truncation_periods
    rng = np.random.default_rng(random_seed)
    end = observation_periods + truncation_periods  # calendar end of observation
    start = truncation_periods  # calendar start of observation

    kept: list[pd.DataFrame] = []
    n_kept = 0
    while n_kept < n_customers:
        batch = 2 * (n_customers - n_kept) + 100
        seg = rng.choice(len(labels), size=batch, p=shares)
        acquired = rng.integers(end - acquisition_periods, end, size=batch)
        values, retention_shift, spend_shift = _draw_covariates(covariates or {}, batch, rng)
        lifetime = _lifetimes(table, seg, rng, retention_shift)
        entry = np.maximum(start - acquired, 0)
        observed = lifetime > entry  # left truncation: must survive to observation start
        window = end - acquired[observed]
        kept.append(pd.DataFrame({
            "seg": seg[observed], "tenure": np.minimum(lifetime[observed], window),
            "churned": lifetime[observed] <= window, "entry": entry[observed],
            "lifetime": lifetime[observed], "retention_shift": retention_shift[observed],
            "spend_shift": spend_shift[observed],
            **{name: column[observed] for name, column in values.items()},
        }))
        n_kept += int(observed.sum())
    frame = pd.concat(kept, ignore_index=True).iloc[:n_customers].copy()

    seg = frame["seg"].to_numpy()
    lognormal = _has_lognormal_spend(table)[seg]
    if log_spend is None:
        log_spend = bool(lognormal.any())
    if not log_spend and _has_lognormal_spend(table).any():
        raise ValueError("Lognormal spend is drawn period by period: log_spend=False cannot "
                         "be combined with segments given mu, sigma, tau.")
    shift = frame["spend_shift"].to_numpy()
    p, q, gamma, mu, sigma, tau = (
        table[c].to_numpy()[seg] if c in table else np.full(len(seg), np.nan)
        for c in ("p", "q", "gamma", "mu", "sigma", "tau"))
    with np.errstate(invalid="ignore"):
        nu = rng.gamma(np.where(lognormal, 1.0, q),
                       1.0 / np.where(lognormal, 1.0, gamma * np.exp(shift)))
    level = np.full(len(seg), np.nan)
    if lognormal.any():  # no extra draws for gamma-gamma tables: their seeds keep their data
        level = np.where(lognormal, np.nan_to_num(mu) + shift
                         + np.nan_to_num(tau) * rng.standard_normal(len(seg)), np.nan)
    true_mean = np.where(lognormal, np.exp(level + 0.5 * np.nan_to_num(sigma) ** 2), p / nu)
    observed_periods = (frame["tenure"] - frame["entry"]).to_numpy()
    x = 1 + rng.binomial(observed_periods - 1, active_probability)
    log_columns = {}
    if log_spend:
        mean_spend, log_columns = _period_spends(x, lognormal, p, nu, level, sigma, rng)
    else:
        mean_spend = rng.gamma(p * x, 1.0 / nu) / x

    customers = pd.DataFrame({
        "customer_id": [f"C{i:07d}" for i in range(n_customers)],
        "segment": np.asarray(labels, dtype=object)[seg],
        "tenure": frame["tenure"].to_numpy(np.int64),
        "churned": frame["churned"].to_numpy(bool),
        "entry": frame["entry"].to_numpy(np.int64),
        "n_periods_active": x.astype(np.int64),
        "mean_spend": mean_spend,
        **log_columns,
        **{name: frame[name].to_numpy() for name in (covariates or {})},
    })
    customers.attrs["period"] = "period"
    truth_customers = pd.DataFrame(
        {"true_mean_spend": true_mean, "lifetime": frame["lifetime"].to_numpy(),
         "retention_shift": frame["retention_shift"].to_numpy(),
         "spend_shift": frame["spend_shift"].to_numpy()},
        index=customers.index,
    )
    return customers, SimulationTruth(segments=table, customers=truth_customers)


def _has_lognormal_spend(table: pd.DataFrame) -> np.ndarray:
    """Per segment: whether its spend is lognormal (``mu`` given) rather than gamma-gamma."""
    if "mu" not in table:
        return np.zeros(len(table), dtype=bool)
    return table["mu"].notna().to_numpy()


def _period_spends(x: np.ndarray, lognormal: np.ndarray, p: np.ndarray, nu: np.ndarray,
                   level: np.ndarray, sigma: np.ndarray, rng: np.random.Generator
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every active period's revenue, summarised: mean, mean and sd of the log."""
    owner = np.repeat(np.arange(len(x)), x)
    with np.errstate(invalid="ignore"):
        gamma_draws = rng.gamma(np.where(lognormal, 1.0, p)[owner], 1.0)
        normal_draws = rng.standard_normal(len(owner))
    revenue = np.where(lognormal[owner],
                       np.exp(np.nan_to_num(level)[owner]
                              + np.nan_to_num(sigma)[owner] * normal_draws),
                       gamma_draws / np.where(lognormal, 1.0, nu)[owner])
    counts = x.astype(np.float64)
    log_revenue = np.log(revenue)
    mean_log = np.bincount(owner, weights=log_revenue, minlength=len(x)) / counts
    deviation = log_revenue - mean_log[owner]
    sd_log = np.sqrt(np.bincount(owner, weights=deviation * deviation, minlength=len(x))
                     / counts)
    mean = np.bincount(owner, weights=revenue, minlength=len(x)) / counts
    return mean, {"mean_log_spend": mean_log, "sd_log_spend": sd_log}


def _draw_covariates(specs: Mapping[str, Mapping[str, object]], size: int,
                     rng: np.random.Generator
                     ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Covariate values and the log-scale shifts they cause (see :func:`simulate_customers`)."""
    values: dict[str, np.ndarray] = {}
    shifts = {"retention": np.zeros(size), "spend": np.zeros(size)}
    for name, spec in specs.items():
        if "levels" in spec:
            levels = list(spec["levels"])
            codes = rng.choice(len(levels), size=size, p=spec.get("probs"))
            values[name] = np.asarray(levels, dtype=object)[codes]
            for part in shifts:
                effects = dict(spec.get(part, {}))
                shifts[part] += np.array([float(effects.get(v, 0.0)) for v in levels])[codes]
        else:
            mean, sd = float(spec["mean"]), float(spec["sd"])
            drawn = rng.normal(mean, sd, size=size)
            values[name] = drawn
            for part in shifts:
                shifts[part] += float(spec.get(part, 0.0)) * (drawn - mean)
    return values, shifts["retention"], shifts["spend"]


def true_residual_value(
    customers: pd.DataFrame, truth: SimulationTruth, *, discount_rate: float, horizon: int,
    margin: float = 1.0, cost_per_period: float = 0.0,
) -> np.ndarray:
    """Each customer's true expected residual value under the simulation's parameters.

    ``sum_{j=1}^{H} [margin * true_mean_spend - cost] S(tau+j)/S(tau) / (1+d)^j`` with the
    true ``S`` (computed directly, independently of :mod:`bayesclv.valuation`); 0 for
    churned customers.
    """
    segment = customers["segment"].to_numpy()
    tau = customers["tenure"].to_numpy(np.float64)[:, None]
    j = np.arange(1, horizon + 1, dtype=np.float64)[None, :]
    shift = truth.customers.get("retention_shift")
    shift = None if shift is None else shift.to_numpy()
    ratio = np.exp(true_log_survival(truth.segments, segment, tau + j, shift)
                   - true_log_survival(truth.segments, segment, tau, shift))
    annuity = (ratio / (1.0 + discount_rate) ** j).sum(axis=1)
    value = (margin * truth.customers["true_mean_spend"].to_numpy() - cost_per_period) * annuity
    return np.where(customers["churned"].to_numpy(bool), 0.0, value)


def simulate_realised_value(
    customers: pd.DataFrame, truth: SimulationTruth, *, discount_rate: float, horizon: int,
    margin: float = 1.0, cost_per_period: float = 0.0, random_seed: int | None = None,
) -> np.ndarray:
    """The value each customer goes on to realise, simulated from its true future.

    The counterpart of :func:`true_residual_value` for one possible future rather than its
    expectation: customer ``i`` stays in future period ``tenure + j`` while its simulated
    churn period ``truth.customers["lifetime"]`` is later (lifetimes were drawn before
    censoring, so the future of each customer is already fixed), and spends
    ``Gamma(p, rate = nu_i)`` in each period it stays, with its own true ``nu_i =
    p / true_mean_spend`` (lognormal spend: ``exp(log true_mean_spend - sigma^2/2 +
    sigma eps)``). Realised value is
    ``sum_{j=1}^{H} 1{lifetime > tenure + j} [margin * spend_ij - cost] / (1+d)^j``;
    0 for churned customers. Use it to check the calibration of
    :meth:`bayesclv.CLVModel.distribution_customer_value`.

    Parameters
    ----------
    customers : pandas.DataFrame
        A table from :func:`simulate_customers` (or rows of it, same index).
    truth : SimulationTruth
        Its truth.
    discount_rate : float
    horizon : int
    margin : float, default=1.0
    cost_per_period : float, default=0.0
    random_seed : int, optional
        Seeds the spend draws.

    Returns
    -------
    numpy.ndarray, shape (n_customers,)

    Examples
    --------
    >>> from bayesclv.datasets import simulate_customers, simulate_realised_value
    >>> customers, truth = simulate_customers(500, random_seed=0)
    >>> value = simulate_realised_value(customers, truth, discount_rate=0.01, horizon=12,
    ...                                 random_seed=1)
    >>> bool((value[customers["churned"].to_numpy()] == 0).all())
    True
    """
    rng = np.random.default_rng(random_seed)
    future = truth.customers.loc[customers.index]
    position = truth.segments.index.get_indexer(customers["segment"])
    p = (truth.segments["p"].to_numpy(np.float64)[position] if "p" in truth.segments
         else np.full(len(position), np.nan))
    lognormal = _has_lognormal_spend(truth.segments)[position]
    sigma = (truth.segments["sigma"].to_numpy(np.float64)[position] if lognormal.any()
             else np.zeros(len(position)))
    mean_spend = future["true_mean_spend"].to_numpy(np.float64)
    tenure = customers["tenure"].to_numpy(np.int64)
    periods_stayed = np.clip(future["lifetime"].to_numpy(np.int64) - tenure - 1, 0, int(horizon))
    periods_stayed[customers["churned"].to_numpy(bool)] = 0
    value = np.zeros(len(customers))
    for j in range(1, int(horizon) + 1):
        if lognormal.any():
            with np.errstate(invalid="ignore", divide="ignore"):
                gamma_draws = rng.gamma(np.where(lognormal, 1.0, p),
                                        np.where(lognormal, 1.0, mean_spend / p))
            spend = np.where(lognormal, np.exp(np.log(mean_spend) - 0.5 * sigma ** 2
                                               + sigma * rng.standard_normal(len(p))),
                             gamma_draws)
        else:
            spend = rng.gamma(p, mean_spend / p)
        stays = j <= periods_stayed
        value += stays * (margin * spend - cost_per_period) / (1.0 + discount_rate) ** j
    return value
