"""The user API: scikit-learn style estimators for retention, spend and CLV (DESIGN §5).

Hyper-parameters are stored as given in ``__init__``; ``fit`` validates them, validates
the data at the edge, builds the PyMC model from arrays and samples it; fitted state lives
in attributes ending in ``_``. Every query method first checks that the model is fitted.
One module per model: :mod:`~bayesclv.estimator.retention`,
:mod:`~bayesclv.estimator.spend` and :mod:`~bayesclv.estimator.clv`.
"""

from bayesclv.estimator.clv import CLVModel
from bayesclv.estimator.retention import RetentionModel
from bayesclv.estimator.spend import SpendModel

__all__ = ["CLVModel", "RetentionModel", "SpendModel"]
