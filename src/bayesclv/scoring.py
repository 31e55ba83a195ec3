"""Batch scoring: a saved model's ``predict`` over a CSV or Parquet table, streamed.

:func:`score_file` reads the customer table in chunks (pandas for CSV, pyarrow for
Parquet), predicts each chunk and appends it to the output (CSV or Parquet), so memory
is bounded by the chunk, not the table: one output row per input row, in input order,
ids kept. The output is written to a temporary sibling and renamed into place at the
end: a failure leaves no partial file (and an earlier output untouched).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from bayesclv.exceptions import DataValidationError

__all__ = ["DEFAULT_CHUNK_SIZE", "read_chunks", "score_file", "table_format"]

#: Rows predicted at once unless told otherwise.
DEFAULT_CHUNK_SIZE = 100_000
#: The strings pandas reads as missing by default; kept for the numeric columns only.
MISSING_MARKERS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                   "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                   "nan", "null"]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as error:
        raise ImportError("Parquet tables need pyarrow: pip install 'bayesclv[io]'."
                          ) from error
    return pyarrow


def table_format(path: str | os.PathLike) -> str:
    """``"parquet"`` or ``"csv"`` from a file name's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise ValueError(f"{str(path)!r}: give a .csv or .parquet file (the suffix says which).")


def read_chunks(path: str | os.PathLike, chunk_size: int,
                text_columns: Sequence[str | None] = ()) -> tuple[Iterator[pd.DataFrame],
                                                                   int | None]:
    """The table in chunks of ``chunk_size`` rows, and its row count when known.

    Each chunk's index continues the previous one (row numbers of the whole file), so a
    validation error names rows of the file. CSV ``text_columns`` (ids, segments) are read
    as written: an id ``007`` stays ``"007"``.
    """
    if table_format(path) == "parquet":
        source = _pyarrow().parquet.ParquetFile(path)

        def parquet() -> Iterator[pd.DataFrame]:
            start = 0
            for batch in source.iter_batches(batch_size=chunk_size):
                frame = batch.to_pandas()
                if any(name is not None for name in frame.index.names):
                    frame = frame.reset_index()  # an id stored as the pandas index
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame

        return parquet(), source.metadata.num_rows
    header = pd.read_csv(path, nrows=0).columns
    text = [c for c in text_columns if c is not None and c in header]
    reader = pd.read_csv(path, chunksize=chunk_size, dtype={c: str for c in text},
                         keep_default_na=False,
                         na_values={c: MISSING_MARKERS for c in header if c not in text})
    return iter(reader), None


class _Writer:
    """Appends chunks to a CSV or a Parquet file (the schema fixed by the first chunk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = table_format(path)
        self._parquet = None
        self._schema = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self.path, mode="a" if self.rows else "w", header=not self.rows,
                         index=False)
        else:
            pa = _pyarrow()
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pa.parquet.ParquetWriter(self.path, self._schema)
            self._parquet.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        elif self.rows == 0:
            self.path.write_text("")


def _selected(predictions: pd.DataFrame, columns: Sequence[str] | None, id_column: str
              ) -> pd.DataFrame:
    if not columns:
        return predictions
    unknown = [c for c in columns if c not in predictions.columns]
    if unknown:
        raise ValueError(f"--columns {unknown} are not prediction columns; the model "
                         f"predicts {list(predictions.columns)}.")
    keep = [id_column] + [c for c in columns if c != id_column]
    return predictions[keep]


def _check_unique_ids(hashes: np.ndarray, data: str | os.PathLike, chunk_size: int,
                      text: Sequence[str | None], id_column: str) -> None:
    """Refuse repeated ids across chunks, naming them (the file is read again to do so)."""
    unique, counts = np.unique(hashes, return_counts=True)
    if (counts == 1).all():
        return
    repeated = set(unique[counts > 1].tolist())
    names: list[Any] = []
    chunks, _ = read_chunks(data, chunk_size, text)
    for chunk in chunks:
        ids = chunk[id_column]
        found = pd.util.hash_pandas_object(ids, index=False).isin(repeated).to_numpy()
        names.extend(ids[found].tolist())
        if len(set(names)) >= 5:
            break
    shown = list(dict.fromkeys(names))[:5]
    raise DataValidationError(
        f"Column {id_column!r}: {int((counts - 1)[counts > 1].sum())} repeated customer "
        f"id(s) in {Path(data).name} (e.g. {', '.join(repr(n) for n in shown)}): "
        "one row per customer; nothing was written.")


def score_file(model: Any, data: str | os.PathLike, out: str | os.PathLike, *,
               chunk_size: int = DEFAULT_CHUNK_SIZE, columns: Sequence[str] | None = None,
               progress: Callable[[int, int | None], None] | None = None) -> int:
    """Predict every row of a CSV or Parquet customer table, chunk by chunk, into ``out``.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        A :class:`~bayesclv.CLVModel`, :class:`~bayesclv.RetentionModel` or
        :class:`~bayesclv.SpendModel`, or a Pipeline of segmenters ending in one (e.g.
        from :func:`bayesclv.load`); its ``predict`` gives the columns.
    data : str or os.PathLike
        The customer table (DESIGN §3), ``.csv`` or ``.parquet``.
    out : str or os.PathLike
        The predictions, ``.csv`` or ``.parquet``: the id column first, then ``predict``'s
        columns, one row per input row, in input order.
    chunk_size : int, default=100,000
        Rows read and predicted at once; memory grows with it, not with the table.
    columns : sequence of str, optional
        Keep only these prediction columns (the id column is always kept).
    progress : callable, optional
        Called as ``progress(rows_done, total_rows or None)`` after each chunk.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    DataValidationError
        For the first chunk that fails validation (the message says which rows of the
        file the chunk holds, then names the offending customers and their count in it),
        ids repeated anywhere in the table (checked over all chunks: 8 bytes per row are
        kept), or an empty table.
    ValueError
        For an unknown file type, a bad ``chunk_size``, unknown ``columns``, or a model
        that does not score customers (a segmenter alone).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}.")
    out = Path(out)
    table_format(out)
    final = model[-1] if isinstance(model, Pipeline) else model
    if not hasattr(final, "customer_col"):
        raise ValueError(f"Cannot score with a {type(final).__name__}: a CLVModel, "
                        "RetentionModel or SpendModel (or a Pipeline ending in one) scores "
                        "customers.")
    id_column = final.customer_col
    text = [id_column, getattr(final, "segment_col", None)]
    chunks, total = read_chunks(data, int(chunk_size), text)
    staged = out.with_name(f".{out.stem}.partial{out.suffix}")
    writer = _Writer(staged)
    # Ids must be unique over the whole table, not only within a chunk: 8 bytes per row.
    id_hashes = []
    try:
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            try:
                predictions = model.predict(chunk)
            except DataValidationError as error:
                # Scoring stops at the first bad chunk: say where it is in the file.
                raise DataValidationError(
                    f"{Path(data).name}, rows {chunk.index[0]:,} to {chunk.index[-1]:,} "
                    f"(counting from 0): {error}") from error
            id_hashes.append(pd.util.hash_pandas_object(chunk[id_column], index=False)
                             .to_numpy())
            writer.write(_selected(predictions, columns, id_column))
            if progress is not None:
                progress(writer.rows, total)
        writer.close()
        if writer.rows == 0:
            raise DataValidationError(f"{str(data)!r} has no rows: there is nothing to score.")
        _check_unique_ids(np.concatenate(id_hashes), data, chunk_size, text, id_column)
        os.replace(staged, out)
    finally:
        writer.close()
        staged.unlink(missing_ok=True)
    return writer.rows
