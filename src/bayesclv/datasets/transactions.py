"""A raw transaction-log simulator with known retention and spend, for tests and benchmarks.

Each customer is acquired through a channel, lives a discrete-Weibull number of periods
(the channel's ``eta`` and ``k``, as in :data:`~bayesclv.datasets.DEFAULT_SEGMENTS`) and
spends in some of those periods following the gamma-gamma model (the channel's ``p``,
``q`` and ``gamma``). The output looks like a shop's or a subscription service's log: one
row per transaction with a date, a quantity, an amount and the channel.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayesclv.datasets.simulate import DEFAULT_SEGMENTS

__all__ = ["simulate_transactions"]


def simulate_transactions(
    n_customers: int = 1000,
    n_periods: int = 36,
    random_seed: int | None = None,
    *,
    channels: Mapping[str, Mapping[str, float]] | None = None,
    period: str = "M",
    start: str = "2022-01-01",
    acquisition_periods: int | None = None,
    active_probability: float = 0.6,
    extra_transactions: float = 0.5,
    unit_price: float = 12.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate a transaction log from known Weibull retention and gamma-gamma spend.

    The generating process, per customer ``i`` of channel ``c``:

    1. acquisition period ``a_i`` uniform over the first ``acquisition_periods`` calendar
       periods;
    2. lifetime ``L_i`` from the discrete Weibull ``P(L > t) = exp(-(t/eta_c)^k_c)``: the
       customer is alive in their periods ``1..L_i`` and cancels on the **last day** of
       period ``L_i`` (``end_date``; NaT when that is after the simulated window);
    3. active (spending) in period 1 always, in each later alive period with
       ``active_probability``;
    4. gamma-gamma spend: ``nu_i ~ Gamma(q_c, rate=gamma_c)`` and the revenue of an
       active period ``~ Gamma(p_c, rate=nu_i)`` (mean ``p_c / nu_i``);
    5. an active period's revenue is split over ``1 + Poisson(extra_transactions)``
       transactions on uniform random days of the period (Dirichlet shares; amounts
       rounded to cents, at least 0.01), each with a quantity of about
       ``amount / unit_price`` items (decorative: nothing depends on it).

    So :func:`bayesclv.data.summarize` with ``end_col="end_date"`` recovers each
    customer's true tenure and churn flag (censored at the end of the window), and its
    ``mean_spend`` follows the gamma-gamma model.

    Parameters
    ----------
    n_customers : int, default=1000
    n_periods : int, default=36
        Length of the simulated window, in calendar periods.
    random_seed : int, optional
        Seed of the :func:`numpy.random.default_rng` generator.
    channels : mapping, optional
        ``{name: {"share", "eta", "k", "p", "q", "gamma"}}`` with ``eta`` in periods;
        shares are normalised. Defaults to :data:`~bayesclv.datasets.DEFAULT_SEGMENTS`
        (four acquisition channels, monthly parameters).
    period : {"D", "W", "M", "Q", "Y"}, default="M"
        Calendar period of the simulation (pandas period alias).
    start : date-like, default="2022-01-01"
        A day in the first period.
    acquisition_periods : int, optional
        Customers are acquired in the first ``acquisition_periods`` periods; defaults to
        ``n_periods`` (staggered acquisition over the whole window).
    active_probability : float, default=0.6
        Probability of spending in an alive period after the first.
    extra_transactions : float, default=0.5
        Mean number of transactions beyond the first in an active period.
    unit_price : float, default=12.0
        Typical price of an item, used only to make ``quantity``.

    Returns
    -------
    transactions : pandas.DataFrame
        Sorted by date then customer, with a RangeIndex and the columns ``customer_id``
        (str), ``date`` (datetime64), ``quantity`` (int >= 1), ``amount`` (float > 0),
        ``channel`` (str) and ``end_date`` (datetime64, NaT while active, repeated on
        each row of the customer).
    truth : pandas.DataFrame
        Indexed by ``customer_id``: ``channel``, ``acquisition_period`` (pandas Period),
        ``lifetime`` (periods, possibly beyond the window), ``tenure`` and ``churned``
        as observed at the end of the window, ``end_date`` and ``true_mean_spend``
        (``p_c / nu_i``).

    Raises
    ------
    ValueError
        If a size or probability is out of range or ``period`` is not a pandas period
        alias.

    Examples
    --------
    >>> from bayesclv.datasets.transactions import simulate_transactions
    >>> log, truth = simulate_transactions(200, n_periods=12, random_seed=1)
    >>> list(log.columns)
    ['customer_id', 'date', 'quantity', 'amount', 'channel', 'end_date']
    >>> bool((log["amount"] > 0).all()), log["customer_id"].nunique() == len(truth)
    (True, True)
    """
    if n_customers < 1 or n_periods < 1:
        raise ValueError("n_customers and n_periods must be at least 1; got "
                         f"{n_customers!r} and {n_periods!r}.")
    acquisition_periods = n_periods if acquisition_periods is None else acquisition_periods
    if not 1 <= acquisition_periods <= n_periods:
        raise ValueError(f"acquisition_periods must be in [1, n_periods={n_periods}]; got "
                         f"{acquisition_periods!r}.")
    if not 0.0 <= active_probability <= 1.0:
        raise ValueError(f"active_probability must be in [0, 1]; got {active_probability!r}.")
    if extra_transactions < 0 or unit_price <= 0:
        raise ValueError("extra_transactions must be >= 0 and unit_price > 0.")
    table = pd.DataFrame(dict(channels or DEFAULT_SEGMENTS)).T.astype(float)
    labels = np.asarray(table.index, dtype=object)
    shares = table["share"].to_numpy() / table["share"].sum()
    calendar = pd.period_range(start=start, periods=n_periods, freq=period)
    period_start = calendar.start_time.to_numpy().astype("datetime64[D]")
    period_end = calendar.end_time.to_numpy().astype("datetime64[D]")
    period_days = (period_end - period_start).astype(np.int64) + 1
    rng = np.random.default_rng(random_seed)

    # Customers: channel, acquisition, lifetime (alive in periods 1..L, cancel at L's end).
    channel = rng.choice(len(labels), size=n_customers, p=shares)
    acquired = rng.integers(0, acquisition_periods, size=n_customers)
    eta, k, p, q, gamma = (table[c].to_numpy()[channel] for c in ("eta", "k", "p", "q", "gamma"))
    lifetime = np.floor(eta * (-np.log(rng.uniform(size=n_customers))) ** (1.0 / k)
                        ).astype(np.int64) + 1
    window = n_periods - acquired
    churned = lifetime <= window
    tenure = np.minimum(lifetime, window)
    end_index = np.minimum(acquired + lifetime - 1, n_periods - 1)
    end_date = np.where(churned, period_end[end_index], np.datetime64("NaT", "D"))
    nu = rng.gamma(q, 1.0 / gamma)

    # Customer x alive period; active periods; revenue per active period.
    customer = np.repeat(np.arange(n_customers), tenure)
    offset = np.arange(len(customer)) - np.repeat(np.cumsum(tenure) - tenure, tenure)
    active = (offset == 0) | (rng.random(len(customer)) < active_probability)
    customer, offset = customer[active], offset[active]
    revenue = rng.gamma(p[customer], 1.0 / nu[customer])

    # Transactions: split each active period's revenue over 1 + Poisson transactions.
    n_tx = 1 + rng.poisson(extra_transactions, size=len(customer))
    cell = np.repeat(np.arange(len(customer)), n_tx)
    weight = rng.exponential(size=len(cell))
    weight /= np.bincount(cell, weights=weight)[cell]
    amount = np.maximum(np.round(revenue[cell] * weight, 2), 0.01)
    quantity = 1 + rng.poisson(np.maximum(amount / unit_price - 1.0, 0.0))
    calendar_index = acquired[customer[cell]] + offset[cell]
    day = period_start[calendar_index] + rng.integers(0, period_days[calendar_index])
    tx_customer = customer[cell]

    ids = np.array([f"C{i:07d}" for i in range(n_customers)], dtype=object)
    order = np.lexsort((tx_customer, day))
    transactions = pd.DataFrame({
        "customer_id": ids[tx_customer[order]],
        "date": day[order].astype("datetime64[ns]"),
        "quantity": quantity[order].astype(np.int64),
        "amount": amount[order],
        "channel": labels[channel[tx_customer[order]]],
        "end_date": end_date[tx_customer[order]].astype("datetime64[ns]"),
    })
    truth = pd.DataFrame(
        {
            "channel": labels[channel],
            "acquisition_period": calendar[acquired],
            "lifetime": lifetime,
            "tenure": tenure,
            "churned": churned,
            "end_date": end_date.astype("datetime64[ns]"),
            "true_mean_spend": p / nu,
        },
        index=pd.Index(ids, name="customer_id"),
    )
    return transactions, truth
