"""Value segments from K-Means on standardised log recency, frequency and monetary value."""

from __future__ import annotations

from collections.abc import Mapping
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
    _names_state,
    _rfm_values,
    _state_count,
    _state_feature_names,
    _state_floats,
    _state_labels,
    _state_value,
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


def _nearest_centre(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean distance) of each row of ``z``.

    The first centre wins ties. One pass per centre, so memory stays that of ``z``.
    """
    best = np.zeros(len(z), dtype=np.int64)
    best_distance = np.full(len(z), np.inf)
    for c, centre in enumerate(centres):
        distance = ((z - centre) ** 2).sum(axis=1)
        closer = distance < best_distance
        best[closer] = c
        best_distance[closer] = distance[closer]
    return best


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
        Fitted on the standardised features. ``transform`` does not call its
        ``predict``: it assigns each customer to the nearest of its
        ``cluster_centers_`` itself, so that a segmenter read back by
        :func:`bayesclv.load` transforms exactly as the saved one. The ``kmeans_`` of a
        loaded segmenter has the fitted ``cluster_centers_``, ``inertia_``, ``n_iter_``
        and ``n_features_in_`` only: no ``labels_`` of the training customers, and its
        own ``predict`` (which needs scikit-learn's private state) is not supported.
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
    to the training segments: the nearest centre by squared Euclidean distance on the
    standardised features, the first (in K-Means' cluster order) on a tie. It is
    K-Means' own assignment up to rounding, which can only matter for a customer
    equidistant from two centres.

    A fitted segmenter can be saved with :func:`bayesclv.io.save`, alone or in a
    :class:`~sklearn.pipeline.Pipeline`, and read back with :func:`bayesclv.load`.

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
        z = (features - self.scaler_.mean_) / self.scaler_.scale_
        clusters = _nearest_centre(z, self.kmeans_.cluster_centers_)
        label = pd.Categorical.from_codes(self.cluster_rank_[clusters],
                                          categories=self.segment_names_)
        out = X.copy()
        out[self.label_col] = label
        if self.segment_col is not None:
            out[self.segment_col] = label
        return out

    def _fitted_state(self) -> dict[str, Any]:
        """The fitted attributes as plain JSON data, for saved models.

        Returns
        -------
        dict
            The scaler's ``mean_``, ``var_``, ``scale_`` and ``n_samples_seen_``; K-Means'
            ``cluster_centers_``, ``inertia_`` and ``n_iter_``; ``n_segments_``,
            ``segment_names_``, ``cluster_rank_``, ``centres_`` (its numbers by row, and
            ``n_customers``), ``silhouette_scores_`` (keys as strings), ``n_features_in_``
            and ``feature_names_in_``. Floats are Python floats, which JSON writes
            exactly.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the transformer is not fitted.
        ValueError
            If a column name of the training table is neither a string nor an int.
        """
        check_is_fitted(self, "kmeans_")
        scaler, kmeans = self.scaler_, self.kmeans_
        numbers = [*self._columns(), "value"]
        scores = self.silhouette_scores_
        return {
            "scaler_": {"mean_": scaler.mean_.tolist(), "var_": scaler.var_.tolist(),
                        "scale_": scaler.scale_.tolist(),
                        "n_samples_seen_": int(scaler.n_samples_seen_)},
            "kmeans_": {"cluster_centers_": kmeans.cluster_centers_.tolist(),
                        "inertia_": float(kmeans.inertia_), "n_iter_": int(kmeans.n_iter_)},
            "n_segments_": int(self.n_segments_),
            "segment_names_": [str(name) for name in self.segment_names_],
            "cluster_rank_": [int(rank) for rank in self.cluster_rank_],
            "centres_": {"values": self.centres_[numbers].to_numpy(np.float64).tolist(),
                         "n_customers": [int(n) for n in self.centres_["n_customers"]]},
            "silhouette_scores_": None if scores is None else {
                str(k): float(v) for k, v in scores.items()},
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": _names_state(self.feature_names_in_),
        }

    def _restore_fitted_state(self, state: Mapping[str, Any]) -> KMeansSegmenter:
        """Set the fitted attributes from :meth:`_fitted_state`'s data, checking them.

        ``scaler_`` becomes a :class:`~sklearn.preprocessing.StandardScaler` and
        ``kmeans_`` a :class:`~sklearn.cluster.KMeans` (with this segmenter's ``n_init``
        and ``random_state``) holding their public fitted attributes; ``kmeans_`` has no
        ``labels_``.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`_fitted_state` (after a JSON round trip).

        Returns
        -------
        KMeansSegmenter
            ``self``, fitted.

        Raises
        ------
        TypeError
            If ``state`` or one of its parts is not a mapping.
        ValueError
            If an entry is missing or malformed (shapes that do not match the number of
            segments, non-finite numbers, a non-positive scale, a cluster rank that is
            not a permutation, negative counts, ...).
        """
        owner = type(self).__name__
        k = _state_count(state, "n_segments_", owner, 2)
        scores = _state_value(state, "silhouette_scores_", owner)
        if scores is not None:
            if not (isinstance(scores, Mapping) and scores and all(
                    isinstance(key, str) and key.isascii() and key.isdigit()
                    and int(key) >= 2 for key in scores)):
                raise ValueError(f"{owner}: silhouette_scores_ must be null or map numbers "
                                 f"of clusters (>= 2) to scores; got {scores!r}.")
            scores = {int(key): float(_state_floats(scores, key, f"{owner}.silhouette_"
                                                    "scores_", ())) for key in scores}
        if self.n_segments is None or self.n_segments == "auto":
            if scores is None or k not in scores:
                raise ValueError(f"{owner}: n_segments={self.n_segments!r} needs the "
                                 f"silhouette_scores_ of the {k} clusters chosen; got "
                                 f"{scores!r}.")
        elif k != self.n_segments or scores is not None:
            raise ValueError(f"{owner}: n_segments={self.n_segments!r} needs n_segments_ "
                             f"= {self.n_segments} and no silhouette_scores_; got {k} and "
                             f"{scores!r}.")
        scaler_state = _state_value(state, "scaler_", owner)
        kmeans_state = _state_value(state, "kmeans_", owner)
        scaler = StandardScaler()
        scaler.mean_ = _state_floats(scaler_state, "mean_", f"{owner}.scaler_", (3,))
        scaler.var_ = _state_floats(scaler_state, "var_", f"{owner}.scaler_", (3,))
        scaler.scale_ = _state_floats(scaler_state, "scale_", f"{owner}.scaler_", (3,))
        if (scaler.var_ < 0).any() or (scaler.scale_ <= 0).any():
            raise ValueError(f"{owner}: the scaler's var_ must be >= 0 and its scale_ > 0; "
                             f"got {scaler.var_.tolist()} and {scaler.scale_.tolist()}.")
        scaler.n_samples_seen_ = _state_count(scaler_state, "n_samples_seen_",
                                              f"{owner}.scaler_", 1)
        scaler.n_features_in_ = 3
        kmeans = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        kmeans.cluster_centers_ = _state_floats(kmeans_state, "cluster_centers_",
                                                f"{owner}.kmeans_", (k, 3))
        kmeans.inertia_ = float(_state_floats(kmeans_state, "inertia_", f"{owner}.kmeans_",
                                              ()))
        kmeans.n_iter_ = _state_count(kmeans_state, "n_iter_", f"{owner}.kmeans_", 0)
        kmeans.n_features_in_ = 3
        names = _state_labels(state, "segment_names_", owner, size=k)
        rank = _state_value(state, "cluster_rank_", owner)
        if not (isinstance(rank, list) and all(isinstance(r, int) and not isinstance(r, bool)
                                               for r in rank)
                and sorted(rank) == list(range(k))):
            raise ValueError(f"{owner}: cluster_rank_ must be a permutation of 0..{k - 1}; "
                             f"got {rank!r}.")
        centres_state = _state_value(state, "centres_", owner)
        numbers = [*self._columns(), "value"]
        values = _state_floats(centres_state, "values", f"{owner}.centres_",
                               (k, len(numbers)))
        counts = _state_value(centres_state, "n_customers", f"{owner}.centres_")
        if not (isinstance(counts, list) and len(counts) == k and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)):
            raise ValueError(f"{owner}: centres_ n_customers must be {k} counts >= 0; got "
                             f"{counts!r}.")
        n_features, feature_names = _state_feature_names(state, owner)
        self.scaler_ = scaler
        self.kmeans_ = kmeans
        self.n_segments_ = k
        self.segment_names_ = names
        self.cluster_rank_ = np.asarray(rank, dtype=np.int64)
        self.centres_ = pd.DataFrame(values, index=pd.Index(names, name="segment"),
                                     columns=numbers)
        self.centres_["n_customers"] = np.asarray(counts, dtype=np.int64)
        self.silhouette_scores_ = scores
        self.n_features_in_ = n_features
        self.feature_names_in_ = feature_names
        return self

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
