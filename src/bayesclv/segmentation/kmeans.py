"""Value segments from K-Means on standardised log recency, frequency and monetary value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from bayesclv._params import Interval
from bayesclv.exceptions import DataValidationError
from bayesclv.segmentation._common import (
    _ColumnName,
    _feature_names_out,
    _rfm_values,
    _validate_params,
)

__all__ = ["KMeansSegmenter", "value_segment_names"]


def value_segment_names(n_segments: int) -> list[str]:
    """Names of ``n_segments`` value-ordered segments, highest value first.

    Parameters
    ----------
    n_segments : int
        Number of segments (>= 1).

    Returns
    -------
    list of str
        ``["high", "low"]`` for 2, ``["high", "mid", "low"]`` for 3,
        ``["high", "mid-high", "mid-low", "low"]`` for 4, and ``["value-1", ...,
        "value-k"]`` otherwise (1 = highest value).

    Examples
    --------
    >>> value_segment_names(4)
    ['high', 'mid-high', 'mid-low', 'low']
    >>> value_segment_names(5)
    ['value-1', 'value-2', 'value-3', 'value-4', 'value-5']
    """
    named = {2: ["high", "low"], 3: ["high", "mid", "low"],
             4: ["high", "mid-high", "mid-low", "low"]}
    return named.get(n_segments, [f"value-{i}" for i in range(1, n_segments + 1)])


def _is_n_segments(value: Any) -> bool:
    if value is None or value == "auto":
        return True
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 2


class _NSegments:
    def check(self, value: Any) -> bool:
        return _is_n_segments(value)

    def describe(self) -> str:
        return "an int >= 2, 'auto' or None"


class KMeansSegmenter(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Value segments from K-Means on standardised ``log1p`` recency, frequency, monetary.

    Parameters
    ----------
    n_segments : int, "auto" or None, default=4
        Number of clusters. ``"auto"`` (or ``None``) picks it by the silhouette score
        over ``2..max_segments``, computed on a random subsample of
        ``silhouette_sample_size`` customers for speed (ties go to fewer segments).
    max_segments : int, default=8
        Largest number of clusters tried by ``"auto"``.
    silhouette_sample_size : int, default=5000
        Size of the subsample used by ``"auto"``.
    n_init : int, default=10
        K-Means restarts (the best inertia wins).
    random_state : int, optional
        Seed of K-Means and of the subsample.
    recency_col, frequency_col, monetary_col : str, default="recency", "frequency", \
"monetary"
        Columns of the customer table (non-negative numbers).
    label_col : str, default="kmeans_segment"
        Column receiving the segment name.
    segment_col : str or None, default="segment"
        Column that also receives it (replacing any existing segment, so that a
        following CLV model pools by value segment); ``None`` leaves it alone.

    Attributes
    ----------
    scaler_ : sklearn.preprocessing.StandardScaler
        Fitted on ``log1p`` of the three columns.
    kmeans_ : sklearn.cluster.KMeans
        Fitted on the standardised features.
    n_segments_ : int
        Number of clusters used.
    segment_names_ : list of str
        Segment names, highest value first (:func:`value_segment_names`).
    cluster_rank_ : numpy.ndarray of int
        ``cluster_rank_[c]`` is the value rank (0 = highest) of K-Means cluster ``c``.
    centres_ : pandas.DataFrame
        Per segment (index ``segment_names_``): the cluster centre in the original units
        of the three columns, ``value`` and ``n_customers`` in the training table.
    silhouette_scores_ : dict of int to float, or None
        Silhouette score per number of clusters tried (``None`` for a fixed number).
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray of str

    Notes
    -----
    Clusters are ranked by **value**: the mean over the cluster's training customers of
    ``monetary * (frequency + 1)``, i.e. the mean observed spend with the columns of
    :func:`bayesclv.data.summarize` (mean spend per active period times active
    periods). K-Means cluster numbers depend on the seed; the value order does not, so
    on well-separated data the names are the same for any ``random_state``.
    ``transform`` applies the learned scaler and centres, so new customers are assigned
    to the training segments.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from bayesclv.segmentation import KMeansSegmenter
    >>> rng = np.random.default_rng(0)
    >>> table = pd.DataFrame({
    ...     "recency": np.r_[rng.integers(0, 2, 50), rng.integers(10, 12, 50)],
    ...     "frequency": np.r_[rng.integers(8, 10, 50), rng.integers(0, 2, 50)],
    ...     "monetary": np.r_[rng.normal(100, 5, 50), rng.normal(10, 1, 50)],
    ... })
    >>> seg = KMeansSegmenter(n_segments=2, random_state=0).fit(table)
    >>> seg.transform(table)["segment"].value_counts().sort_index().to_dict()
    {'high': 50, 'low': 50}
    """

    _parameter_constraints: dict[str, Any] = {
        "n_segments": _NSegments(),
        "max_segments": Interval(int, 2, None),
        "silhouette_sample_size": Interval(int, 3, None),
        "n_init": Interval(int, 1, None),
        "random_state": Interval(int, 0, None, allow_none=True),
        "recency_col": _ColumnName(),
        "frequency_col": _ColumnName(),
        "monetary_col": _ColumnName(),
        "label_col": _ColumnName(),
        "segment_col": _ColumnName(allow_none=True),
    }

    def __init__(
        self,
        n_segments: int | str | None = 4,
        *,
        max_segments: int = 8,
        silhouette_sample_size: int = 5000,
        n_init: int = 10,
        random_state: int | None = None,
        recency_col: str = "recency",
        frequency_col: str = "frequency",
        monetary_col: str = "monetary",
        label_col: str = "kmeans_segment",
        segment_col: str | None = "segment",
    ) -> None:
        self.n_segments = n_segments
        self.max_segments = max_segments
        self.silhouette_sample_size = silhouette_sample_size
        self.n_init = n_init
        self.random_state = random_state
        self.recency_col = recency_col
        self.frequency_col = frequency_col
        self.monetary_col = monetary_col
        self.label_col = label_col
        self.segment_col = segment_col

    def _columns(self) -> list[str]:
        return [self.recency_col, self.frequency_col, self.monetary_col]

    def _features(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = _rfm_values(X, self._columns(), type(self).__name__, min_value=0.0)
        return values, np.log1p(values)

    def _choose_k(self, z: np.ndarray, n_distinct: int) -> tuple[int, dict[int, float]]:
        rng = np.random.default_rng(self.random_state)
        size = min(len(z), self.silhouette_sample_size)
        sample = z[rng.choice(len(z), size=size, replace=False)] if size < len(z) else z
        n_distinct_sample = len(np.unique(sample, axis=0))
        high = min(self.max_segments, n_distinct_sample - 1)
        if high < 2:
            raise DataValidationError(
                f"n_segments='auto' needs at least 3 distinct customers (by recency, "
                f"frequency and monetary value) in the sample; found {n_distinct_sample}. "
                "Pass n_segments as an int."
            )
        scores: dict[int, float] = {}
        for k in range(2, high + 1):
            labels = KMeans(n_clusters=k, n_init=self.n_init,
                            random_state=self.random_state).fit_predict(sample)
            scores[k] = float(silhouette_score(sample, labels))
        best = max(scores, key=lambda k: (scores[k], -k))
        return best, scores

    def fit(self, X: pd.DataFrame, y: Any = None) -> KMeansSegmenter:
        """Standardise the log features, choose the number of clusters, run K-Means.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table with the three RFM columns (non-negative numbers).
        y : None
            Ignored.

        Returns
        -------
        KMeansSegmenter
            The fitted transformer.

        Raises
        ------
        ValueError
            For an invalid parameter.
        DataValidationError
            For a missing column, an empty table, NaN, infinite or negative values, or
            fewer distinct customers than segments.
        """
        _validate_params(self, self._parameter_constraints)
        values, features = self._features(X)
        scaler = StandardScaler().fit(features)
        z = scaler.transform(features)
        n_distinct = len(np.unique(z, axis=0))
        if self.n_segments is None or self.n_segments == "auto":
            k, scores = self._choose_k(z, n_distinct)
        else:
            k, scores = int(self.n_segments), None
            if n_distinct < k:
                raise DataValidationError(
                    f"n_segments={k} but the customer table has only {n_distinct} distinct "
                    "customers (by recency, frequency and monetary value). Pass fewer "
                    "segments."
                )
        kmeans = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        labels = kmeans.fit_predict(z)
        value = values[:, 2] * (values[:, 1] + 1.0)
        counts = np.bincount(labels, minlength=k)
        cluster_value = np.bincount(labels, weights=value, minlength=k) / np.maximum(counts, 1)
        order = np.lexsort((np.arange(k), -cluster_value))  # highest value first
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        names = value_segment_names(k)
        centres = np.expm1(scaler.inverse_transform(kmeans.cluster_centers_))[order]
        self.scaler_ = scaler
        self.kmeans_ = kmeans
        self.n_segments_ = k
        self.segment_names_ = names
        self.cluster_rank_ = rank
        self.centres_ = pd.DataFrame(centres, index=pd.Index(names, name="segment"),
                                     columns=self._columns())
        self.centres_["value"] = cluster_value[order]
        self.centres_["n_customers"] = counts[order]
        self.silhouette_scores_ = scores
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Assign each customer to the nearest learned centre and name its segment.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table with the three RFM columns (non-negative numbers).

        Returns
        -------
        pandas.DataFrame
            A copy of ``X`` with ``label_col`` (categorical, categories
            ``segment_names_``, highest value first) and, unless ``segment_col=None``,
            the same labels in ``segment_col``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the transformer is not fitted.
        DataValidationError
            For a missing column or NaN, infinite or negative values.
        """
        check_is_fitted(self, "kmeans_")
        _, features = self._features(X)
        clusters = self.kmeans_.predict(self.scaler_.transform(features))
        label = pd.Categorical.from_codes(self.cluster_rank_[clusters],
                                          categories=self.segment_names_)
        out = X.copy()
        out[self.label_col] = label
        if self.segment_col is not None:
            out[self.segment_col] = label
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Columns of the table ``transform`` returns for a table like the training one.

        Parameters
        ----------
        input_features : array-like of str, optional
            Input columns; defaults to ``feature_names_in_``.

        Returns
        -------
        numpy.ndarray of str
            The input columns followed by the added ones.
        """
        check_is_fitted(self, "kmeans_")
        names = self.feature_names_in_ if input_features is None else input_features
        return _feature_names_out(np.asarray(names, dtype=object),
                                  [self.label_col, self.segment_col])
