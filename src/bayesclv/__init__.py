"""bayesclv: Bayesian customer lifetime value with hierarchical retention and spend models.

The public API: :class:`CLVModel` (fit / predict / predict_posterior / segment_report /
retention_curve), the stand-alone :class:`RetentionModel` and :class:`SpendModel`,
model comparison (:func:`compare`, :func:`loo`), backtests (:func:`backtest`, in
:mod:`bayesclv.backtesting`), the customer value matrix (:func:`value_matrix`), the edge
functions in
:mod:`bayesclv.data` and the example data in :mod:`bayesclv.datasets`.
"""

# First: arviz_base (imported by the diagnostics) looks for jax and numpyro through
# lazy_loader, whose answer for a missing module inspects the call stack, resolving
# each frame's module against every module loaded so far. With few loaded that takes
# a tenth of what it takes after SciPy, PyMC and scikit-learn (about a second here).
import arviz_base  # noqa: F401, I001

from bayesclv import data, datasets, io, segmentation
from bayesclv._version import __version__
from bayesclv.backtesting import BacktestResult, backtest
from bayesclv.comparison import compare, loo
from bayesclv.estimator import CLVModel, RetentionModel, SpendModel
from bayesclv.exceptions import (
    ConvergenceWarning,
    CovariateRangeWarning,
    DataValidationError,
    ModelFormatError,
    NotFittedError,
    UnseenSegmentWarning,
)
from bayesclv.io import load
from bayesclv.priors import Prior
from bayesclv.segmentation import value_matrix

__all__ = [
    "BacktestResult",
    "CLVModel",
    "ConvergenceWarning",
    "CovariateRangeWarning",
    "DataValidationError",
    "ModelFormatError",
    "NotFittedError",
    "Prior",
    "RetentionModel",
    "SpendModel",
    "UnseenSegmentWarning",
    "__version__",
    "backtest",
    "compare",
    "data",
    "datasets",
    "io",
    "load",
    "loo",
    "segmentation",
    "value_matrix",
]
