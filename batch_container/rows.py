"""The one place that turns what a scoring script's run() returned into output rows.

Azure's contract: run(mini_batch) returns a pandas DataFrame, a list or an array with one element per input
file, or None when the script wrote its own outputs. A DataFrame may instead name each row's input in a
`file`-like column, which also allows several rows per file (detections, chunks) or none (a failed file).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray
from pandas.arrays import NumpyExtensionArray

from batch_container.json_lines import json_lines
from batch_endpoints import csv_records
from batch_endpoints.specs import AZURE_APPEND_ROW

# Checked in this order; the first one present names each row's input.
FILE_COLUMNS = ("file", "file_name", "filename", "path")
NO_ROW = "run() returned no row for this file"


class BadResult(Exception):
    """run() returned something that cannot be turned into rows: the attempt failed."""


Column = Sequence[Any] | np.ndarray[Any, Any] | ExtensionArray
"""A column's cells: a list, a numpy array, or a DataFrame column's own array (which keeps its dtype)."""


@dataclass
class Rows:
    """One mini-batch's output rows, column by column: names in `columns`, one sequence of `count` cells per
    column in `values` (a list, a numpy array, or a DataFrame column's own array, which keeps its dtype)."""

    columns: list[str] = field(default_factory=list)
    values: list[Column] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Input name -> why that file has no rows (the attempt itself succeeded)."""
    added_columns: int = 0
    """How many leading columns the runner added to run()'s (`file`, or `file` and `row` for tables)."""

    @classmethod
    def of(cls, table: pd.DataFrame, failed: dict[str, str] | None = None) -> Rows:
        return cls([str(c) for c in table.columns], [column.array for _, column in table.items()], failed or {})

    @property
    def count(self) -> int:
        return len(self.values[0]) if self.values else 0

    @property
    def table(self) -> pd.DataFrame | None:
        """The rows as a DataFrame; None when run() returned None."""
        return self._frame() if self.columns else None

    def _frame(self) -> pd.DataFrame:
        # Keyed by position: column names may repeat.
        table = pd.DataFrame(dict(enumerate(self.values)))
        table.columns = self.columns
        return table

    def to_csv(self) -> bytes:
        """The part file's bytes: a header row, UTF-8, "\\n" line endings, the same on every platform. Names and
        cells holding a line break (CR or LF), a quote or a comma are quoted (RFC 4180)."""
        if not self.columns:
            return b""
        plain = _plain_csv(self.columns, self.values)
        if plain is not None:
            return plain
        records = csv_records.UnixRecords()
        # pandas needs only write(); pandas-stubs' WriteBuffer also asks for seek(), tell() and flush().
        self._frame().to_csv(records, index=False, lineterminator=csv_records.UnixRecords.TOLD)  # type: ignore[call-overload]
        return records.utf8()

    def to_azure_lines(self) -> bytes:
        """Azure's append_row layout: what run() returned, one line a row, its values joined by a space, with no
        header and no quoting (a value holding a space or a line break cannot be told apart)."""
        values = self.values[self.added_columns :]
        cells = [np.asarray(column, dtype=object) for column in values]
        return b"".join(" ".join(map(str, row)).encode() + b"\n" for row in zip(*cells, strict=True))

    def to_bytes(self, part_format: str) -> bytes:
        """The part file's bytes in the output's format: "csv", "parquet", "jsonl" (one JSON object a line) or
        Azure's own layout."""
        if not self.columns or part_format == "csv":
            return self.to_csv()
        if part_format == AZURE_APPEND_ROW:
            return self.to_azure_lines()
        if part_format == "jsonl":
            return json_lines(self.columns, self.values)
        import pyarrow.parquet as pq

        from batch_endpoints.parquet_types import part_table

        buffer = io.BytesIO()
        pq.write_table(part_table(self.columns, self.values), buffer)
        return buffer.getvalue()


def to_rows(result: Any, paths: Sequence[str], names: Sequence[str]) -> Rows:
    """Rows for one mini-batch. `paths` are what run() was given, `names` the same files as users know them
    (relative to the input folder), which is what the output shows. Raises BadResult to fail the attempt."""
    if result is None:
        return Rows()
    result = _records_as_frame(_untensor(result))
    if isinstance(result, pd.DataFrame):
        file_column = next((c for c in FILE_COLUMNS if c in result.columns), None)
        if file_column is not None:
            return _rows_by_file_column(result, file_column, paths, names)
    predictions = _predictions(result, len(names), lambda returned: _count_mismatch(returned, len(names)))
    return Rows(["file", *predictions.columns], [list(names), *predictions.values], added_columns=1)


def to_table_rows(result: Any, inputs: pd.DataFrame, sources: pd.DataFrame, keep_columns: Sequence[str]) -> Rows:
    """Rows for one tabular mini-batch: run() returns one prediction per input row (a DataFrame, a Series, a
    list or an array); each row gets the input's `file` and `row` (from `sources`), then the input columns
    named in `keep_columns`, then the predictions. Raises BadResult to fail the attempt."""
    if result is None:
        return Rows()
    count = len(inputs)
    predictions = _predictions(
        _records_as_frame(_untensor(result)),
        count,
        lambda returned: f"run() returned {returned} rows for {count} input rows; return one per row",
    )
    missing = [c for c in keep_columns if c not in inputs.columns]
    if missing:
        raise BadResult(f"keep_input_columns names {missing}, which the input does not have (it has {list(inputs)})")
    # The runner's own columns say where each row came from; run() cannot move them. A kept input column that
    # run() returns itself (the input frame with a prediction added) is run()'s.
    own = [(c, v) for c, v in zip(predictions.columns, predictions.values, strict=True) if c not in sources.columns]
    kept = Rows.of(inputs[[c for c in keep_columns if c not in {c for c, _ in own}]])
    where = Rows.of(sources)
    return Rows(
        [*where.columns, *kept.columns, *(c for c, _ in own)],
        [*where.values, *kept.values, *(v for _, v in own)],
        added_columns=len(where.columns),
    )


def _untensor(result: Any) -> Any:
    if hasattr(result, "detach") and hasattr(result, "cpu"):
        # A torch tensor, possibly on a GPU or requiring grad, which plain numpy conversion refuses.
        return result.detach().cpu().numpy()
    return result


def _records_as_frame(result: Any) -> Any:
    """A list of dicts is a table with a column per key, as if run() had returned the DataFrame."""
    if isinstance(result, list | tuple) and result and all(isinstance(item, Mapping) for item in result):
        return pd.DataFrame.from_records(list(result))
    return result


def _predictions(result: Any, count: int, mismatch: Callable[[int], str]) -> Rows:
    """run()'s result as columns of `count` rows, one row per input in order."""
    if isinstance(result, pd.DataFrame):
        predictions = Rows.of(result)
    elif isinstance(result, pd.Series):
        predictions = Rows([str(result.name or "prediction")], [result.array])
    elif isinstance(result, list | tuple):
        predictions = _list_columns(list(result))
    elif isinstance(result, np.ndarray):
        predictions = _array_columns(result)
    else:
        raise BadResult(f"run() must return a pandas DataFrame, a list or an array; got {type(result).__name__}")
    if len(result) != count:
        raise BadResult(mismatch(len(result)))
    return predictions


def _count_mismatch(rows: int, files: int) -> str:
    return (
        f"run() returned {rows} rows for {files} files; return one row per file, "
        "or include a 'file' column naming each row's input"
    )


def _list_columns(items: list[Any]) -> Rows:
    if all(_is_scalar(item) for item in items):
        return Rows(["prediction"], [items])
    vectors = [np.asarray(item) for item in items]
    if all(v.ndim == 1 for v in vectors) and len({len(v) for v in vectors}) == 1:
        return _array_columns(np.stack(vectors))
    # Ragged or nested elements: keep one cell per file rather than guess a shape.
    return Rows(["prediction"], [items])


def _array_columns(array: np.ndarray) -> Rows:
    if array.ndim == 0 or array.ndim > 2:
        raise BadResult(f"run() returned an array of shape {array.shape}; return one row per file (a 1-D or 2-D array)")
    if array.ndim == 1:
        return Rows(["prediction"], [array])
    return Rows([f"prediction_{i}" for i in range(array.shape[1])], [array[:, i] for i in range(array.shape[1])])


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bytes) or np.ndim(value) == 0


def _rows_by_file_column(table: pd.DataFrame, column: str, paths: Sequence[str], names: Sequence[str]) -> Rows:
    """Each row's input, as `column` names it: by its local path, its path relative to the input, or its basename
    where no other file of the mini-batch has it. Rows naming a basename that several files share are matched by
    position when there is one row per file and each could name the file at its place (what
    `os.path.basename(p) for p in mini_batch` gives); otherwise only the files those rows may name fail."""
    inputs = _Inputs(paths, names)
    values = [str(value) for value in table[column]]
    candidates = [inputs.could_name(value, column) for value in values]
    if (
        any(len(files) > 1 for files in candidates)
        and len(values) == len(names)
        and all(name in files for files, name in zip(candidates, names, strict=True))
    ):
        matched: list[str | None] = list(names)
    else:
        matched = [
            inputs.exact.get(value) or (files[0] if len(files) == 1 else None)
            for value, files in zip(values, candidates, strict=True)
        ]
    failed = {
        name: _ambiguous(column, value, files)
        for value, files, match in zip(values, candidates, matched, strict=True)
        if match is None
        for name in files
    }
    keep = [row for row, match in enumerate(matched) if match is not None and match not in failed]
    seen = {matched[row] for row in keep}
    failed.update((name, NO_ROW) for name in names if name not in seen and name not in failed)
    rows = Rows.of(
        table.iloc[keep] if len(keep) < len(matched) else table, failed={n: failed[n] for n in names if n in failed}
    )
    # The same value wherever the file was downloaded to, so merged outputs are reproducible.
    rows.values[rows.columns.index(column)] = [matched[row] for row in keep]
    return rows


class _Inputs:
    """A mini-batch's files by every way a row may name one: `exact` maps a local path or a path relative to the
    input to its file, `by_basename` a basename to every file that has it, in mini-batch order."""

    def __init__(self, paths: Sequence[str], names: Sequence[str]) -> None:
        self.exact: dict[str, str] = {}
        self.by_basename: dict[str, list[str]] = {}
        for path, name in zip(paths, names, strict=True):
            self.exact[path] = self.exact[name] = name
            for base in dict.fromkeys((os.path.basename(path), os.path.basename(name))):
                self.by_basename.setdefault(base, []).append(name)

    def could_name(self, value: str, column: str) -> tuple[str, ...]:
        """The files `value` may name, an exact match first; raises BadResult when it names none."""
        files = tuple(dict.fromkeys([*filter(None, [self.exact.get(value)]), *self.by_basename.get(value, [])]))
        if not files:
            raise BadResult(
                f"run() returned a row whose {column!r} is {value!r}, which names no file of this "
                f"mini-batch; a {'/'.join(FILE_COLUMNS)} column must name each row's input file"
            )
        return files


def _ambiguous(column: str, value: str, files: Sequence[str]) -> str:
    return (
        f"run() returned a row whose {column!r} is {value!r}, the basename of {len(files)} files of this "
        f"mini-batch ({', '.join(files)}), and its rows are not one per file in the mini-batch's order, so which "
        "row is whose is unknown; name each row's file by its path relative to the input"
    )


def _plain_csv(columns: list[str], values: list[Column]) -> bytes | None:
    """The CSV that pandas writes, made without building a DataFrame (a few times faster on the small tables of
    one mini-batch), when every column holds plain cells: text, integers, booleans or floats. None otherwise,
    and pandas renders it."""
    cells = [_plain_cells(column) for column in values]
    if any(column is None for column in cells):
        return None
    records = csv_records.UnixRecords()
    writer = csv.writer(records, lineterminator=csv_records.UnixRecords.TOLD)
    writer.writerow(columns)
    writer.writerows(zip(*cells, strict=True))
    return records.utf8()


def _plain_cells(column: Column) -> list[Any] | None:
    """A column's cells as csv.writer should get them to write what pandas writes; None if it may differ."""
    if isinstance(column, list):
        return _plain_list(column)
    if isinstance(column, pd.api.extensions.ExtensionArray):
        if isinstance(column.dtype, pd.StringDtype):
            return _plain_list(column.to_numpy(dtype=object, na_value="").tolist())
        if not isinstance(column, NumpyExtensionArray):
            return None  # categoricals, nullable integers, intervals: pandas' own formatting
        column = column.to_numpy()
    if not isinstance(column, np.ndarray):
        return None
    kind = column.dtype.kind
    if kind in "iubU":
        cells: list[Any] = column.tolist()
        return cells
    if kind == "f" and column.dtype.itemsize == 8:
        return _plain_list(column.tolist())
    if kind == "f" and column.dtype.itemsize == 4:
        # str() of a float32 is its shortest text, as pandas writes it; as a Python float it would be longer.
        return ["" if x != x else str(x) for x in column]
    if kind == "O":
        return _plain_list(column.tolist())
    return None


def _plain_list(cells: list[Any]) -> list[Any] | None:
    """Cells of one Python type pandas writes as str() does; NaN is written empty, as pandas does."""
    kinds = set(map(type, cells))
    if len(kinds) > 1 or not kinds <= {str, int, bool, float}:
        return None
    if kinds == {float}:
        return ["" if x != x else x for x in cells]
    return cells
