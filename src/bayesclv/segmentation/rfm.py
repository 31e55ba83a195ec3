"""RFM scores (rank-based quintiles) and rule-based RFM groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from bayesclv.segmentation._common import (
    _ColumnName,
    _feature_names_out,
    _names_state,
    _rfm_values,
    _state_feature_names,
    _state_floats,
    _state_labels,
    _validate_params,
)

__all__ = ["DEFAULT_RFM_GROUPS", "RFMSegmenter"]

_N_SCORES = 5

#: Default RFM groups: ``(name, {score: (low, high)})`` rules, inclusive ranges on the
#: ``r``, ``f`` and ``m`` scores (1-5, 5 best); the first matching rule wins and the
#: last one (no condition) catches everyone else.
DEFAULT_RFM_GROUPS: tuple[tuple[str, dict[str, tuple[int, int]]], ...] = (
    ("champions", {"r": (4, 5), "f": (4, 5), "m": (4, 5)}),
    ("loyal", {"r": (3, 5), "f": (4, 5)}),
    ("new", {"r": (5, 5), "f": (1, 2)}),
    ("potential", {"r": (3, 5), "f": (1, 3)}),
    ("at_risk", {"r": (1, 2), "f": (3, 5)}),
    ("hibernating", {}),
)


def _midrank_quintiles(values: np.ndarray) -> np.ndarray:
    """Quintile (1-5) of each value from its mid-rank: tied values share a quintile."""
    ordered = np.sort(values)
    rank_sum = (np.searchsorted(ordered, values, "left")
                + np.searchsorted(ordered, values, "right"))  # = 2 * mid-rank (0-based)
    # ceil(5 * rank_sum / (2 n)) in integer arithmetic, clipped to 1..5.
    score = -((-_N_SCORES * rank_sum) // (2 * len(values)))
    return np.clip(score, 1, _N_SCORES).astype(np.int64)


def _normalise_groups(groups: Any) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    items = groups.items() if isinstance(groups, Mapping) else groups
    rules: list[tuple[str, dict[str, tuple[int, int]]]] = []
    try:
        items = list(items)
    except TypeError as error:
        raise ValueError("groups must be a sequence of (name, {'r'|'f'|'m': (low, high)}) "
                         f"rules or a mapping; got {groups!r}.") from error
    if not items:
        raise ValueError("groups must contain at least one rule.")
    for item in items:
        if not (isinstance(item, Sequence) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], Mapping)):
            raise ValueError(f"Each RFM group rule must be (name, conditions); got {item!r}.")
        name, conditions = item
        checked = {}
        for key, bounds in conditions.items():
            ok = key in ("r", "f", "m") and isinstance(bounds, Sequence) and len(bounds) == 2
            if ok:
                low, high = bounds
                ok = all(isinstance(b, (int, np.integer)) and not isinstance(b, bool)
                         for b in bounds) and 1 <= low <= high <= _N_SCORES
            if not ok:
                raise ValueError(
                    f"RFM group {name!r}: condition {key!r}: {bounds!r} must be a key 'r', "
                    "'f' or 'm' with an inclusive (low, high) range of scores within 1..5."
                )
            checked[key] = (int(bounds[0]), int(bounds[1]))
        rules.append((name, checked))
    return rules


def _rule_table(groups: Any) -> tuple[list[str], np.ndarray]:
    """Group names and the group code of each score cell, ``table[r - 1, f - 1, m - 1]``.

    ``groups`` is the hyper-parameter (``None``: :data:`DEFAULT_RFM_GROUPS`). Raises
    ValueError for invalid rules or rules that leave a cell without a group.
    """
    rules = _normalise_groups(DEFAULT_RFM_GROUPS if groups is None else groups)
    names = list(dict.fromkeys(name for name, _ in rules))
    table = np.full((_N_SCORES,) * 3, -1, dtype=np.int64)
    r, f, m = _score_grid()
    grid = {"r": r, "f": f, "m": m}
    for name, conditions in rules:
        match = table < 0
        for key, (low, high) in conditions.items():
            match &= (grid[key] >= low) & (grid[key] <= high)
        table[match] = names.index(name)
    if (table < 0).any():
        cells = [f"{a}{b}{c}" for a, b, c in zip(r[table < 0], f[table < 0], m[table < 0],
                                                 strict=True)]
        raise ValueError(
            f"The RFM group rules leave {len(cells)} of the 125 score cells without a "
            f"group (e.g. {', '.join(cells[:5])}); end the rules with a catch-all such "
            "as ('other', {})."
        )
    return names, table


def _score_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.arange(1, _N_SCORES + 1)
    return tuple(np.meshgrid(scores, scores, scores, indexing="ij"))


def _cell_groups(names: list[str], table: np.ndarray) -> pd.Series:
    """The group of each of the 125 cells, indexed by cell (``"555"`` ... ``"111"``)."""
    r, f, m = _score_grid()
    cells = pd.Index([f"{a}{b}{c}" for a, b, c in zip(r.ravel(), f.ravel(), m.ravel(),
                                                      strict=True)], name="rfm_cell")
    return pd.Series(np.asarray(names, dtype=object)[table.ravel()], index=cells,
                     name="rfm_group").iloc[::-1]


def _groups_from_json(groups: Any) -> Any:
    """The ``groups`` hyper-parameter as JSON gives it back, with its tuples restored.

    JSON turns the rules' tuples into lists; this gives ``(name, {key: (low, high)})``
    tuples again, so that a reloaded segmenter's ``get_params()`` equals the saved one's
    for rules written as :data:`DEFAULT_RFM_GROUPS` is. (Rules given as a mapping are
    saved as a list of pairs, since JSON objects are written with sorted keys and the
    rules' order matters; a mapping read here keeps its order, with ``(low, high)``
    tuples.) Anything else is returned unchanged, for :func:`_normalise_groups` to
    refuse.
    """
    def rule(conditions: Any) -> Any:
        if not isinstance(conditions, Mapping):
            return conditions
        return {key: tuple(bounds) if isinstance(bounds, list) else bounds
                for key, bounds in conditions.items()}

    if isinstance(groups, Mapping):
        return {name: rule(conditions) for name, conditions in groups.items()}
    if isinstance(groups, list) and all(isinstance(item, list) and len(item) == 2
                                        for item in groups):
        return tuple((name, rule(conditions)) for name, conditions in groups)
    return groups


class RFMSegmenter(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """RFM scores (1-5 quintiles) and rule-based RFM groups, as a transformer.

    ``fit`` learns the quintile edges of recency, frequency and monetary value;
    ``transform`` scores customers against them (new customers included) and maps each
    of the 125 score cells to a named group.

    Parameters
    ----------
    recency_col, frequency_col, monetary_col : str, default="recency", "frequency", \
"monetary"
        Columns of the customer table (as made by :func:`bayesclv.data.summarize`).
    groups : sequence of (str, dict) or mapping, optional
        Rules ``(name, {"r": (low, high), "f": ..., "m": ...})`` with inclusive score
        ranges; a customer gets the first rule whose conditions all hold (a missing key
        places no condition). The rules must cover all 125 cells: end with a catch-all
        such as ``("other", {})``. Default :data:`DEFAULT_RFM_GROUPS`:

        ============  ===================================================
        champions     r >= 4, f >= 4, m >= 4
        loyal         r >= 3, f >= 4 (frequent, fairly recent)
        new           r == 5, f <= 2 (just arrived, few purchases)
        potential     r >= 3, f <= 3 (recent, not yet frequent)
        at_risk       r <= 2, f >= 3 (used to buy often, not lately)
        hibernating   everyone else (r <= 2, f <= 2)
        ============  ===================================================
    segment_col : str or None, default="segment"
        Column that also receives the group, replacing any existing segment so that a
        following CLV model pools by RFM group; ``None`` leaves the segment alone.

    Attributes
    ----------
    edges_ : pandas.DataFrame
        Rows: the three columns; columns ``1..4``: ``edges_.loc[col, b]`` is the largest
        training value in quintiles ``1..b`` (ascending values; ``-inf`` when those
        quintiles are empty). A value above ``b`` of the edges is in quintile ``b + 1``.
    group_names_ : list of str
        Group names in rule order (the categories of ``rfm_group``).
    cell_groups_ : pandas.Series
        The group of each of the 125 cells, indexed by cell (``"555"`` ... ``"111"``).
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray of str
        Columns of the training table.

    Notes
    -----
    Quintiles are rank based: each value's quintile is ``ceil(5 * midrank / n)`` with
    ``midrank`` its average (0-based, +1/2) rank, so **tied values always share a
    score** and the scores use the whole 1-5 scale whenever the data allow; when a value
    is shared by many customers (e.g. ``frequency == 0``) some scores are left empty
    rather than splitting the ties arbitrarily. The recency score is reversed (a low
    recency, a recent purchase, scores 5). ``transform`` reproduces the training scores
    exactly and places new values between the learned edges.

    A fitted segmenter can be saved with :func:`bayesclv.io.save`, alone or in a
    :class:`~sklearn.pipeline.Pipeline`, and read back with :func:`bayesclv.load`.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesclv.segmentation import RFMSegmenter
    >>> table = pd.DataFrame({
    ...     "customer_id": list("abcdefghij"),
    ...     "recency": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    ...     "frequency": [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ...     "monetary": [50.0, 45, 40, 35, 30, 25, 20, 15, 10, 5],
    ... })
    >>> scored = RFMSegmenter().fit_transform(table)
    >>> scored[["customer_id", "rfm_cell", "rfm_group"]].head(3)
      customer_id rfm_cell  rfm_group
    0           a      555  champions
    1           b      555  champions
    2           c      444  champions
    >>> scored["segment"].tolist()[-2:]
    ['hibernating', 'hibernating']
    """

    _parameter_constraints: dict[str, Any] = {
        "recency_col": _ColumnName(),
        "frequency_col": _ColumnName(),
        "monetary_col": _ColumnName(),
        "segment_col": _ColumnName(allow_none=True),
    }

    def __init__(
        self,
        *,
        recency_col: str = "recency",
        frequency_col: str = "frequency",
        monetary_col: str = "monetary",
        groups: Sequence[tuple[str, Mapping[str, tuple[int, int]]]] | None = None,
        segment_col: str | None = "segment",
    ) -> None:
        self.recency_col = recency_col
        self.frequency_col = frequency_col
        self.monetary_col = monetary_col
        self.groups = groups
        self.segment_col = segment_col

    def _columns(self) -> list[str]:
        return [self.recency_col, self.frequency_col, self.monetary_col]

    def fit(self, X: pd.DataFrame, y: Any = None) -> RFMSegmenter:
        """Learn the quintile edges of recency, frequency and monetary value.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table with the three RFM columns (finite numbers).
        y : None
            Ignored.

        Returns
        -------
        RFMSegmenter
            The fitted transformer.

        Raises
        ------
        ValueError
            For an invalid parameter or group rule set (with the uncovered cells).
        DataValidationError
            For a missing column, an empty table, or NaN / infinite values.
        """
        _validate_params(self, self._parameter_constraints)
        names, table = _rule_table(self.groups)

        values = _rfm_values(X, self._columns(), type(self).__name__, min_value=None)
        edges = np.empty((3, _N_SCORES - 1), dtype=np.float64)
        for j in range(3):
            quintile = _midrank_quintiles(values[:, j])
            for b in range(1, _N_SCORES):
                below = values[quintile <= b, j]
                edges[j, b - 1] = below.max() if below.size else -np.inf
        self.edges_ = pd.DataFrame(edges, index=self._columns(),
                                   columns=list(range(1, _N_SCORES)))
        self._set_groups(names, table)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _set_groups(self, names: list[str], table: np.ndarray) -> None:
        self.group_names_ = names
        self.cell_groups_ = _cell_groups(names, table)
        self._group_table = table

    def _fitted_state(self) -> dict[str, Any]:
        """The fitted attributes as plain JSON data, for saved models.

        Returns
        -------
        dict
            ``edges_`` (3 lists of 4 floats, ``None`` for ``-inf``), ``group_names_``,
            ``n_features_in_`` and ``feature_names_in_``. The group of each cell is not
            included: it follows from the ``groups`` hyper-parameter.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the transformer is not fitted.
        ValueError
            If a column name of the training table is neither a string nor an int.
        """
        check_is_fitted(self, "edges_")
        return {
            "edges_": [[None if np.isneginf(v) else float(v) for v in row]
                       for row in self.edges_.to_numpy()],
            "group_names_": [str(name) for name in self.group_names_],
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": _names_state(self.feature_names_in_),
        }

    def _restore_fitted_state(self, state: Mapping[str, Any]) -> RFMSegmenter:
        """Set the fitted attributes from :meth:`_fitted_state`'s data, checking them.

        The hyper-parameters must already be set: the group of each score cell is
        rebuilt from ``groups``, and must give the saved ``group_names_``.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`_fitted_state` (after a JSON round trip).

        Returns
        -------
        RFMSegmenter
            ``self``, fitted.

        Raises
        ------
        TypeError
            If ``state`` is not a mapping.
        ValueError
            If an entry is missing or malformed: edges not 3 x 4 numbers (or ``null``)
            ascending along each row, group names that are not those of ``groups``,
            feature names that do not match ``n_features_in_``.
        """
        owner = type(self).__name__
        edges = _state_floats(state, "edges_", owner, (3, _N_SCORES - 1), allow_null=True)
        if (np.diff(edges, axis=1) < 0).any():
            raise ValueError(f"{owner}: each row of edges_ must be ascending; got "
                             f"{edges.tolist()}.")
        names, table = _rule_table(self.groups)
        saved = _state_labels(state, "group_names_", owner)
        if saved != names:
            raise ValueError(f"{owner}: group_names_ {saved} are not the names of the "
                             f"groups parameter, {names}.")
        n_features, feature_names = _state_feature_names(state, owner)
        self.edges_ = pd.DataFrame(edges, index=self._columns(),
                                   columns=list(range(1, _N_SCORES)))
        self._set_groups(names, table)
        self.n_features_in_ = n_features
        self.feature_names_in_ = feature_names
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Score customers and assign their RFM group.

        Parameters
        ----------
        X : pandas.DataFrame
            Customer table with the three RFM columns (finite numbers).

        Returns
        -------
        pandas.DataFrame
            A copy of ``X`` (same index and rows) with ``r_score``, ``f_score``,
            ``m_score`` (int 1-5, 5 best), ``rfm_cell`` (str, e.g. ``"545"``),
            ``rfm_group`` (categorical, categories in rule order) and, unless
            ``segment_col=None``, the group in ``segment_col``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the transformer is not fitted.
        DataValidationError
            For a missing column or NaN / infinite values.
        """
        check_is_fitted(self, "edges_")
        values = _rfm_values(X, self._columns(), type(self).__name__, min_value=None)
        edges = self.edges_.to_numpy()
        quintile = 1 + (values[:, :, None] > edges[None, :, :]).sum(axis=2)
        r_score = (_N_SCORES + 1 - quintile[:, 0]).astype(np.int64)
        f_score = quintile[:, 1].astype(np.int64)
        m_score = quintile[:, 2].astype(np.int64)
        out = X.copy()
        out["r_score"] = r_score
        out["f_score"] = f_score
        out["m_score"] = m_score
        out["rfm_cell"] = pd.Series(r_score * 100 + f_score * 10 + m_score,
                                    index=X.index).astype(str)
        group = pd.Categorical.from_codes(
            self._group_table[r_score - 1, f_score - 1, m_score - 1],
            categories=self.group_names_,
        )
        out["rfm_group"] = group
        if self.segment_col is not None:
            out[self.segment_col] = group
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
        check_is_fitted(self, "edges_")
        names = self.feature_names_in_ if input_features is None else input_features
        return _feature_names_out(np.asarray(names, dtype=object), [
            "r_score", "f_score", "m_score", "rfm_cell", "rfm_group", self.segment_col])
