"""Segmenting customers: RFM scores, K-Means on RFM, lifecycle stages, the value matrix.

The transformers take the customer table of :func:`bayesclv.data.summarize` (which has
``recency``, ``frequency`` and ``monetary`` columns) and return a copy with the scores
and a ``segment`` column, so that a following :class:`bayesclv.CLVModel` pools its
parameters by the segments found here; both follow scikit-learn's transformer
conventions and fit in a :class:`sklearn.pipeline.Pipeline`.

One module per method: :mod:`~bayesclv.segmentation.rfm` (:class:`RFMSegmenter`),
:mod:`~bayesclv.segmentation.kmeans` (:class:`KMeansSegmenter`),
:mod:`~bayesclv.segmentation.lifecycle` (:func:`lifecycle_stage`),
:mod:`~bayesclv.segmentation.value_matrix` (:func:`value_matrix`: current x future value
with posterior quadrant probabilities) and :mod:`~bayesclv.segmentation.strategy` (a
strategy per segment of a segment report).
"""

from bayesclv.segmentation.kmeans import KMeansSegmenter, value_segment_names
from bayesclv.segmentation.lifecycle import LIFECYCLE_STAGES, lifecycle_stage
from bayesclv.segmentation.rfm import DEFAULT_RFM_GROUPS, RFMSegmenter
from bayesclv.segmentation.strategy import (
    SEGMENT_STRATEGIES,
    default_segment_strategy,
    segment_strategies,
)
from bayesclv.segmentation.value_matrix import VALUE_QUADRANTS, value_matrix

__all__ = [
    "DEFAULT_RFM_GROUPS",
    "LIFECYCLE_STAGES",
    "KMeansSegmenter",
    "RFMSegmenter",
    "SEGMENT_STRATEGIES",
    "VALUE_QUADRANTS",
    "default_segment_strategy",
    "lifecycle_stage",
    "segment_strategies",
    "value_matrix",
    "value_segment_names",
]
