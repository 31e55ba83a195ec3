"""Segmenting customers: RFM scores, K-Means on RFM, and lifecycle stages.

The transformers take the customer table of :func:`bayesclv.data.summarize` (which has
``recency``, ``frequency`` and ``monetary`` columns) and return a copy with the scores
and a ``segment`` column, so that a following :class:`bayesclv.CLVModel` pools its
parameters by the segments found here; both follow scikit-learn's transformer
conventions and fit in a :class:`sklearn.pipeline.Pipeline`.

One module per method: :mod:`~bayesclv.segmentation.rfm` (:class:`RFMSegmenter`),
:mod:`~bayesclv.segmentation.kmeans` (:class:`KMeansSegmenter`) and
:mod:`~bayesclv.segmentation.lifecycle` (:func:`lifecycle_stage`).
"""

from bayesclv.segmentation.kmeans import KMeansSegmenter, value_segment_names
from bayesclv.segmentation.lifecycle import LIFECYCLE_STAGES, lifecycle_stage
from bayesclv.segmentation.rfm import DEFAULT_RFM_GROUPS, RFMSegmenter

__all__ = [
    "DEFAULT_RFM_GROUPS",
    "LIFECYCLE_STAGES",
    "KMeansSegmenter",
    "RFMSegmenter",
    "lifecycle_stage",
    "value_segment_names",
]
