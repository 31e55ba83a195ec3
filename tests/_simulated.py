"""One small simulated transaction log shared by the value-matrix, pipeline and report tests.

The same log (and so the same customer table) everywhere means the PyMC model compiled for
the first MAP fit is reused from PyTensor's cache by the others.
"""

from __future__ import annotations

import pandas as pd

from bayesclv.data import summarize
from bayesclv.datasets import simulate_transactions

LOG_ARGS = {"n_customers": 300, "n_periods": 18, "random_seed": 5}
MODEL_ARGS = {"method": "map", "horizon": 24, "margin": 0.3, "random_seed": 0}
N_SEGMENTS = 4


def transaction_log() -> pd.DataFrame:
    log, _ = simulate_transactions(**LOG_ARGS)
    return log


def customer_table() -> pd.DataFrame:
    return summarize(transaction_log(), end_col="end_date")
