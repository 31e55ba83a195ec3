"""Exceptions and warnings raised by bayesclv.

All errors about user input derive from :class:`DataValidationError`, itself a
:class:`ValueError`, so ``except ValueError`` keeps working for callers who do not
import this module.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = [
    "ConvergenceWarning",
    "CovariateRangeWarning",
    "DataValidationError",
    "ModelFormatError",
    "NotFittedError",
    "UnseenSegmentWarning",
]


class DataValidationError(ValueError):
    """A customer table (or another input) breaks the documented contract.

    The message names the column, the first offending row labels and how many rows
    are affected, then suggests a fix.
    """


class ModelFormatError(ValueError):
    """A saved model file cannot be loaded (unknown format, tampered config)."""


class ConvergenceWarning(UserWarning):
    """The sampler's output shows signs that the posterior was not explored well."""


class CovariateRangeWarning(UserWarning):
    """Customers to predict for have covariate values outside the training range."""


class UnseenSegmentWarning(UserWarning):
    """Customers to predict for belong to segments the model was not fitted on.

    They are valued from the population distribution of segments (wider intervals), as
    documented; the warning names the labels, so that a label that drifted (a typo, a
    renamed segment) is not valued as a new segment without anyone noticing.
    """
