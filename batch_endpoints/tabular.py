"""Which inputs are tables, and how a table is cut into row-based mini-batches. Pure apart from reading files.

As on Azure, `mini_batch_size` counts files, whatever the files are: a scoring script gets their paths, and an MLflow
model scored without a script (a no-code deployment) reads each file whole as one table. A deployment reads
tables in row mini-batches when it asks for them: `input_format: tables` or a format, or settings only rows have
(a size such as "10MB" for `mini_batch_size`, `keep_input_columns`; see `job_input_format`).

A tabular input's mini-batches are rows, not files: `mini_batch_size` counts rows, or is a size, and a
mini-batch is a list of row slices that may span files, so one huge file is no longer one huge mini-batch.

CSV and JSON lines are cut at line boundaries: one record per line (a CSV field holding a line break is not
supported). The planner streams through each file once, in ranged reads of READ_CHUNK bytes (nothing is
downloaded to disk), to find its line ends, and records byte ranges, so a runner reads exactly its rows. It keeps
8 bytes per row of the file being read. Parquet files are cut by rows from their footer alone (two ranged reads at
most, parsed by pyarrow: see parquet_footer); a size for Parquet is turned into rows with the file's average
uncompressed row size. Planning CSV and JSON lines needs no numpy, pandas or pyarrow.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, overload

from batch_endpoints import parquet_footer
from batch_endpoints.blob_files import open_blob
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import MiniBatch, RowSlice
from batch_endpoints.ports import BlobStore
from batch_endpoints.specs import RunSettings, size_in_bytes

EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
READ_CHUNK = 8 << 20
# A CSV's header line is read first, through a buffer this size: one ranged read for any ordinary header.
HEADER_CHUNK = 64 << 10


def job_input_format(settings: RunSettings) -> str:
    """How a job reads its files: "files", "tables" (by extension) or a format. "auto" is Azure's default, files
    (`mini_batch_size` counts them), for a scoring script and for the built-in MLflow scorer alike: Azure's model
    deployments hand a script paths, and its no-code MLflow deployments read each file whole into one DataFrame
    (the scorer does so). Settings that only rows have ask for tables: a size for `mini_batch_size`, or
    `keep_input_columns`."""
    if settings.input_format != "auto":
        return settings.input_format
    return "tables" if isinstance(settings.mini_batch_size, str) or settings.keep_input_columns else "files"


def file_format(name: str, input_format: str) -> str | None:
    """ "csv", "parquet" or "jsonl" for a file read as a table; None for a file passed by path. A runner reading
    the row slices a plan cut passes "auto" as "tables": the plan chose tables (see `job_input_format`)."""
    if input_format == "files":
        return None
    if input_format not in ("auto", "tables"):
        return input_format
    return EXTENSIONS.get(os.path.splitext(name)[1].lower())


def is_tabular(names: Iterable[str], input_format: str) -> bool:
    return all(file_format(name, input_format) is not None for name in names)


@dataclass(frozen=True)
class TableLayout:
    """Where a file's rows are: `ends[k]` is the offset just past row k (a virtual one for Parquet)."""

    data_start: int
    ends: Sequence[int]
    byte_ranges: bool
    """False for Parquet: slices carry rows only."""

    @property
    def rows(self) -> int:
        return len(self.ends)


def layout(blobs: BlobStore, uri: str, file_format: str) -> TableLayout:
    if file_format == "parquet":
        return _parquet_layout(blobs, uri)
    with open_blob(blobs, uri, buffer_size=HEADER_CHUNK) as f:
        data_start = len(f.readline()) if file_format == "csv" else 0
        return TableLayout(data_start, _line_ends(f, data_start), byte_ranges=True)


def _line_ends(f: BinaryIO, start: int) -> array[int]:
    """Offsets just past each non-blank line from `start`. pandas skips blank lines, so they are no rows.
    Standard library only: the workflow's Lambdas plan jobs without numpy."""
    f.seek(start)
    ends = array("q")
    offset = previous = start  # `previous`: where the current line began
    before = b"\n"  # the byte before the current chunk, as if right after a line break
    while chunk := f.read(READ_CHUNK):
        for match in _NEWLINE.finditer(chunk):
            end = offset + match.end()
            length = end - previous
            # A blank line is its break alone, or a carriage return and its break.
            blank = length == 1 or (length == 2 and (chunk[match.start() - 1 : match.start()] or before) == b"\r")
            if not blank:
                ends.append(end)
            previous = end
        offset += len(chunk)
        before = chunk[-1:]
    if offset > previous:
        f.seek(previous)
        if f.read(offset - previous).strip():
            ends.append(offset)  # a last line without its line break
    return ends


_NEWLINE = re.compile(b"\n")


class _EvenRows(Sequence[int]):
    """Virtual row ends of a Parquet file: each row its average uncompressed size, without a list per row."""

    def __init__(self, rows: int, per_row: float) -> None:
        self._rows, self._per_row = rows, per_row

    def __len__(self) -> int:
        return self._rows

    @overload
    def __getitem__(self, k: int) -> int: ...

    @overload
    def __getitem__(self, k: slice) -> list[int]: ...

    def __getitem__(self, k: int | slice) -> int | list[int]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._rows))]
        if not -self._rows <= k < self._rows:
            raise IndexError(k)
        return math.floor(((k % self._rows) + 1) * self._per_row)


def _parquet_layout(blobs: BlobStore, uri: str) -> TableLayout:
    metadata = parquet_footer.read_footer(blobs, uri).metadata
    rows = metadata.num_rows
    # Uncompressed: what the rows take in memory, which a size in mini_batch_size stands for.
    size = sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))
    return TableLayout(0, _EvenRows(rows, size / rows if rows else 0.0), byte_ranges=False)


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
                reach = bisect.bisect_left(ends, start + self.size - self._taken_bytes)
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
    blobs: BlobStore, root: str, names: Iterable[str], mini_batch_size: int | str, input_format: str
) -> tuple[list[MiniBatch], int]:
    """Mini-batches over the tables `names` (relative to `root`), in order, and the total row count."""
    cutter = RowCutter(mini_batch_size)
    batches: list[MiniBatch] = []
    for name in names:
        uri = blobs.join(root, name)
        file_format = file_format_or_fail(name, input_format)
        try:
            table = layout(blobs, uri, file_format)
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{name or uri} cannot be read as {file_format}: {exc}", field="input") from None
        batches += cutter.add(name, table)
    batches += cutter.finish()
    return batches, cutter.total_rows


def file_format_or_fail(name: str, input_format: str) -> str:
    found = file_format(name, input_format)
    if found is None:
        raise ValidationError(f"{name} is not a CSV, Parquet or JSON lines file", field="settings.input_format")
    return found
