"""Which inputs are tables, and how a table is cut into row-based mini-batches. Pure apart from reading files.

An input is tabular when every file of it is a CSV, Parquet or JSON lines file (by extension), or when the
deployment's `input_format` names a format. Its mini-batches are then rows, not files: `mini_batch_size` counts
rows, or is a size ("10MB"), and a mini-batch is a list of row slices that may span files, so one huge file is
no longer one huge mini-batch.

CSV and JSON lines are cut at line boundaries: one record per line (a CSV field holding a line break is not
supported). The planner reads each file once to find its line ends and records byte ranges, so a runner reads
exactly its rows. It keeps 8 bytes per row of the file being read. Parquet files are cut by rows from their
metadata alone; a size for Parquet is turned into rows with the file's average uncompressed row size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import MiniBatch, RowSlice
from batch_endpoints.specs import size_in_bytes

EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
READ_CHUNK = 8 << 20


def file_format(name: str, input_format: str) -> str | None:
    """ "csv", "parquet" or "jsonl" for a file read as a table; None for a file passed by path."""
    if input_format == "files":
        return None
    if input_format != "auto":
        return input_format
    return EXTENSIONS.get(os.path.splitext(name)[1].lower())


def is_tabular(names: Iterable[str], input_format: str) -> bool:
    return all(file_format(name, input_format) is not None for name in names)


@dataclass(frozen=True)
class TableLayout:
    """Where a file's rows are: `ends[k]` is the offset just past row k (a virtual one for Parquet)."""

    data_start: int
    ends: np.ndarray
    byte_ranges: bool
    """False for Parquet: slices carry rows only."""

    @property
    def rows(self) -> int:
        return len(self.ends)


def layout(path: str, file_format: str) -> TableLayout:
    if file_format == "parquet":
        return _parquet_layout(path)
    with open(path, "rb") as f:
        data_start = len(f.readline()) if file_format == "csv" else 0
        return TableLayout(data_start, _line_ends(f, data_start), byte_ranges=True)


def _line_ends(f: BinaryIO, start: int) -> np.ndarray:
    """Offsets just past each non-blank line from `start`. pandas skips blank lines, so they are no rows."""
    f.seek(start)
    found: list[np.ndarray] = []
    offset = start
    tail = b"\n\n"  # as if right after a line break, so a blank first line counts as blank
    while chunk := f.read(READ_CHUNK):
        buf = np.frombuffer(tail + chunk, np.uint8)
        newline = buf == 10
        # A line is blank when its break follows the previous break, directly or after a carriage return.
        blank = newline[1:-1] | ((buf[1:-1] == 13) & newline[:-2])
        found.append(np.flatnonzero(newline[2:] & ~blank).astype(np.int64) + offset + 1)
        offset += len(chunk)
        tail = (tail + chunk)[-2:]
    ends = np.concatenate(found) if found else np.empty(0, np.int64)
    last_break = int(ends[-1]) if len(ends) else start
    if offset > last_break and not tail.endswith(b"\n"):
        f.seek(last_break)
        if f.read(offset - last_break).strip():
            ends = np.append(ends, offset)  # a last line without its line break
    return ends


def _parquet_layout(path: str) -> TableLayout:
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    rows = metadata.num_rows
    size = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    per_row = size / rows if rows else 0.0
    return TableLayout(0, np.floor(np.arange(1, rows + 1) * per_row).astype(np.int64), byte_ranges=False)


class RowCutter:
    """Cuts tables, file after file, into mini-batches of `rows` rows or of at least `size` bytes."""

    def __init__(self, mini_batch_size: int | str) -> None:
        self.rows = mini_batch_size if isinstance(mini_batch_size, int) else None
        self.size = size_in_bytes(mini_batch_size) if isinstance(mini_batch_size, str) else None
        self.index = 0
        self.total_rows = 0
        self._slices: list[RowSlice] = []
        self._taken_rows = 0
        self._taken_bytes = 0

    def add(self, name: str, table: TableLayout) -> Iterator[MiniBatch]:
        ends, k = table.ends, 0
        self.total_rows += table.rows
        while k < table.rows:
            start = table.data_start if k == 0 else int(ends[k - 1])
            if self.rows is not None:
                take = min(self.rows - self._taken_rows, table.rows - k)
            else:
                assert self.size is not None
                # The row whose end reaches the size closes the mini-batch: every mini-batch has a row or more.
                reach = int(np.searchsorted(ends, start + self.size - self._taken_bytes, side="left"))
                take = min(reach - k + 1, table.rows - k)
            end = int(ends[k + take - 1])
            self._slices.append(
                RowSlice(name, k, take, start if table.byte_ranges else 0, end if table.byte_ranges else 0)
            )
            self._taken_rows += take
            self._taken_bytes += end - start
            k += take
            if self._full:
                yield self._emit()

    def finish(self) -> Iterator[MiniBatch]:
        if self._slices:
            yield self._emit()

    @property
    def _full(self) -> bool:
        if self.rows is not None:
            return self._taken_rows >= self.rows
        assert self.size is not None
        return self._taken_bytes >= self.size

    def _emit(self) -> MiniBatch:
        files = list(dict.fromkeys(s.file for s in self._slices))
        batch = MiniBatch(self.index, files, self._slices)
        self.index, self._slices, self._taken_rows, self._taken_bytes = self.index + 1, [], 0, 0
        return batch


def cut_tables(
    paths: Iterable[tuple[str, str]], mini_batch_size: int | str, input_format: str
) -> tuple[list[MiniBatch], int]:
    """Mini-batches over (name, local path) tables, in order, and the total row count."""
    cutter = RowCutter(mini_batch_size)
    batches: list[MiniBatch] = []
    for name, path in paths:
        file_format = file_format_or_fail(name, input_format)
        try:
            table = layout(path, file_format)
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{name or path} cannot be read as {file_format}: {exc}", field="input") from None
        batches += cutter.add(name, table)
    batches += cutter.finish()
    return batches, cutter.total_rows


def file_format_or_fail(name: str, input_format: str) -> str:
    found = file_format(name, input_format)
    if found is None:
        raise ValidationError(f"{name} is not a CSV, Parquet or JSON lines file", field="settings.input_format")
    return found
