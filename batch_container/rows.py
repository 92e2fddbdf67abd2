"""The one place that turns what a scoring script's run() returned into output rows.

Azure's contract: run(mini_batch) returns a pandas DataFrame, a list or an array with one element per input
file, or None when the script wrote its own outputs. A DataFrame may instead name each row's input in a
`file`-like column, which also allows several rows per file (detections, chunks) or none (a failed file).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Checked in this order; the first one present names each row's input.
FILE_COLUMNS = ("file", "file_name", "filename", "path")
NO_ROW = "run() returned no row for this file"


class BadResult(Exception):
    """run() returned something that cannot be turned into rows: the attempt failed."""


@dataclass
class Rows:
    table: pd.DataFrame | None
    """The rows to append, or None when run() returned None."""
    failed: dict[str, str] = field(default_factory=dict)
    """Input name -> why that file has no rows (the attempt itself succeeded)."""

    @property
    def count(self) -> int:
        return 0 if self.table is None else len(self.table)

    @property
    def columns(self) -> list[str]:
        return [] if self.table is None else [str(c) for c in self.table.columns]

    def to_csv(self) -> bytes:
        """The part file's bytes: a header row, UTF-8, "\\n" line endings, the same on every platform."""
        if self.table is None:
            return b""
        return self.table.to_csv(index=False, lineterminator="\n").encode("utf-8")

    def to_bytes(self, part_format: str) -> bytes:
        """The part file's bytes in the output's format: "csv", "parquet" or "jsonl" (one JSON object a line)."""
        if self.table is None or part_format == "csv":
            return self.to_csv()
        if part_format == "jsonl":
            return self.table.to_json(orient="records", lines=True, date_format="iso").encode("utf-8")
        buffer = io.BytesIO()
        # Column names must be text in Parquet; a DataFrame from an array has numbers.
        self.table.rename(columns=str).to_parquet(buffer, index=False)
        return buffer.getvalue()


def to_rows(result: Any, paths: Sequence[str], names: Sequence[str]) -> Rows:
    """Rows for one mini-batch. `paths` are what run() was given, `names` the same files as users know them
    (relative to the input folder), which is what the output shows. Raises BadResult to fail the attempt."""
    if result is None:
        return Rows(table=None)
    result = _untensor(result)
    if isinstance(result, pd.DataFrame):
        file_column = next((c for c in FILE_COLUMNS if c in result.columns), None)
        if file_column is not None:
            return _rows_by_file_column(result, file_column, paths, names)
        return _positional(result.reset_index(drop=True), names)
    if isinstance(result, pd.Series):
        return _positional(result.reset_index(drop=True).to_frame(name=result.name or "prediction"), names)
    if isinstance(result, list | tuple):
        return _positional(_list_table(list(result), len(names)), names)
    if isinstance(result, np.ndarray):
        return _positional(_array_table(result, len(names)), names)
    raise BadResult(f"run() must return a pandas DataFrame, a list or an array; got {type(result).__name__}")


def to_table_rows(result: Any, inputs: pd.DataFrame, sources: pd.DataFrame, keep_columns: Sequence[str]) -> Rows:
    """Rows for one tabular mini-batch: run() returns one prediction per input row (a DataFrame, a Series, a
    list or an array); each row gets the input's `file` and `row` (from `sources`), then the input columns
    named in `keep_columns`, then the predictions. Raises BadResult to fail the attempt."""
    if result is None:
        return Rows(table=None)
    result = _untensor(result)
    count = len(inputs)
    if isinstance(result, pd.DataFrame):
        table = result.reset_index(drop=True)
    elif isinstance(result, pd.Series):
        table = result.reset_index(drop=True).to_frame(name=result.name or "prediction")
    elif isinstance(result, list | tuple | np.ndarray):
        if np.ndim(result) == 0 or len(result) != count:
            raise BadResult(f"run() returned {_length(result)} rows for {count} input rows; return one per row")
        table = _list_table(list(result), count) if isinstance(result, list | tuple) else _array_table(result, count)
    else:
        raise BadResult(f"run() must return a pandas DataFrame, a list or an array; got {type(result).__name__}")
    if len(table) != count:
        raise BadResult(f"run() returned {len(table)} rows for {count} input rows; return one per row")
    missing = [c for c in keep_columns if c not in inputs.columns]
    if missing:
        raise BadResult(f"keep_input_columns names {missing}, which the input does not have (it has {list(inputs)})")
    # The runner's own columns say where each row came from; run() cannot move them. A kept input column that
    # run() returns itself (the input frame with a prediction added) is run()'s.
    table = table.drop(columns=[c for c in sources.columns if c in table.columns])
    kept = inputs[[c for c in keep_columns if c not in table.columns]].reset_index(drop=True)
    return Rows(table=pd.concat([sources.reset_index(drop=True), kept, table], axis=1))


def _untensor(result: Any) -> Any:
    if hasattr(result, "detach") and hasattr(result, "cpu"):
        # A torch tensor, possibly on a GPU or requiring grad, which plain numpy conversion refuses.
        return result.detach().cpu().numpy()
    return result


def _length(result: Any) -> str:
    return "no" if np.ndim(result) == 0 else str(len(result))


def _positional(table: pd.DataFrame, names: Sequence[str]) -> Rows:
    if len(table) != len(names):
        raise BadResult(_count_mismatch(len(table), len(names)))
    table.insert(0, "file", list(names))
    return Rows(table=table)


def _count_mismatch(rows: int, files: int) -> str:
    return (
        f"run() returned {rows} rows for {files} files; return one row per file, "
        "or include a 'file' column naming each row's input"
    )


def _list_table(items: list[Any], files: int) -> pd.DataFrame:
    if len(items) != files:
        raise BadResult(_count_mismatch(len(items), files))
    if items and all(isinstance(item, Mapping) for item in items):
        return pd.DataFrame.from_records(items)
    if all(_is_scalar(item) for item in items):
        return pd.DataFrame({"prediction": items})
    vectors = [np.asarray(item) for item in items]
    if all(v.ndim == 1 for v in vectors) and len({len(v) for v in vectors}) == 1:
        return _array_table(np.stack(vectors), files)
    # Ragged or nested elements: keep one cell per file rather than guess a shape.
    return pd.DataFrame({"prediction": items})


def _array_table(array: np.ndarray, files: int) -> pd.DataFrame:
    if array.ndim == 0 or array.ndim > 2:
        raise BadResult(f"run() returned an array of shape {array.shape}; return one row per file (a 1-D or 2-D array)")
    if len(array) != files:
        raise BadResult(_count_mismatch(len(array), files))
    if array.ndim == 1:
        return pd.DataFrame({"prediction": array})
    return pd.DataFrame(array, columns=[f"prediction_{i}" for i in range(array.shape[1])])


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bytes) or np.ndim(value) == 0


def _rows_by_file_column(table: pd.DataFrame, column: str, paths: Sequence[str], names: Sequence[str]) -> Rows:
    lookup = _input_lookup(paths, names)
    matched: list[str] = []
    for value in table[column]:
        name = lookup.get(str(value))
        if name is None:
            raise BadResult(
                f"run() returned a row whose {column!r} is {str(value)!r}, which names no file of this "
                f"mini-batch; a {'/'.join(FILE_COLUMNS)} column must name each row's input file"
            )
        matched.append(name)
    table = table.reset_index(drop=True)
    # The same value wherever the file was downloaded to, so merged outputs are reproducible.
    table[column] = matched
    seen = set(matched)
    return Rows(table=table, failed={name: NO_ROW for name in names if name not in seen})


def _input_lookup(paths: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Every way a row may name an input: its local path, its relative path, or its basename if unique."""
    lookup: dict[str, str] = {}
    basenames: dict[str, list[str]] = {}
    for path, name in zip(paths, names, strict=True):
        basenames.setdefault(os.path.basename(path), []).append(name)
        basenames.setdefault(os.path.basename(name), []).append(name)
    for base, owners in basenames.items():
        if len(set(owners)) == 1:
            lookup[base] = owners[0]
    for path, name in zip(paths, names, strict=True):
        lookup[path] = name
        lookup[name] = name
    return lookup
