"""Bundled example data and simulators with known truth."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from bayesclv.datasets.simulate import (
    DEFAULT_SEGMENTS,
    SimulationTruth,
    simulate_customers,
    simulate_realised_value,
    true_residual_value,
)
from bayesclv.datasets.transactions import simulate_transactions

__all__ = [
    "DEFAULT_SEGMENTS",
    "EXAMPLE_SEED",
    "SimulationTruth",
    "load_example",
    "simulate_customers",
    "simulate_realised_value",
    "simulate_transactions",
    "true_residual_value",
]

#: The seed and size :func:`load_example`'s file was generated with (see ``_regenerate``).
EXAMPLE_SEED = 2026
EXAMPLE_SIZE = 4000
_EXAMPLE_FILE = "example_customers.csv"


def load_example() -> pd.DataFrame:
    """Load the bundled example customer table (monthly periods).

    4,000 subscribers of a fictional service acquired through four channels
    (``referral``, ``paid_search``, ``organic``, ``partner``) over 36 months and observed to
    the end of month 36. It was drawn by :func:`simulate_customers` with
    :data:`DEFAULT_SEGMENTS` and seed 2026, so the true parameters are known.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``segment``, ``tenure``, ``churned``, ``entry``,
        ``n_periods_active``, ``mean_spend`` (DESIGN §3); ``attrs["period"] == "month"``.
    """
    with resources.files(__name__).joinpath(_EXAMPLE_FILE).open("r") as handle:
        customers = pd.read_csv(
            handle,
            dtype={"customer_id": str, "segment": str, "tenure": "int64", "churned": bool,
                   "entry": "int64", "n_periods_active": "int64", "mean_spend": "float64"},
        )
    customers.attrs["period"] = "month"
    return customers


def _regenerate(path: str) -> None:
    """Write the example file (kept for transparency; the file in the package is this)."""
    customers, _ = simulate_customers(EXAMPLE_SIZE, random_seed=EXAMPLE_SEED)
    customers["mean_spend"] = customers["mean_spend"].round(2)
    customers.to_csv(path, index=False)
