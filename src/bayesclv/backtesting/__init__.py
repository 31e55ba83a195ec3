"""Backtests: fit before a cutoff, score what happened after it (DESIGN §4.3).

* :func:`backtest`: one or several cutoffs of a transaction log, model and naive
  baseline scored side by side, in a :class:`BacktestResult`;
* :func:`write_backtest`: its tables as CSV files and a self-contained HTML page;
* :class:`BergerNasr`: the naive baseline (constant retention, historical spend);
* :func:`split_log`: the split itself (training table and holdout outcomes).
"""

from bayesclv.backtesting.baseline import BergerNasr
from bayesclv.backtesting.page import write_backtest
from bayesclv.backtesting.result import BacktestResult
from bayesclv.backtesting.run import backtest
from bayesclv.backtesting.split import HoldoutSplit, split_log

__all__ = ["BacktestResult", "BergerNasr", "HoldoutSplit", "backtest", "split_log",
           "write_backtest"]
