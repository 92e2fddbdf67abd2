"""Merge part files, in order, into one file's bytes: CSV, JSON lines, Parquet or Azure's append_row lines. A
runner merges a shard's mini-batch parts into the shard's output; finalize merges shard outputs this way when they
cannot be joined as they are stored (Parquet, or CSV whose columns differ between shards).

Each writer yields the output a part at a time, so it holds one part in memory, never the whole output.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from batch_endpoints import csv_records
from batch_endpoints.specs import AZURE_APPEND_ROW

Part = tuple[str, list[str]]
"""A part file's URI and the columns its mini-batch wrote."""
Read = Callable[[str], bytes]


@dataclass
class Merged:
    """The merged output's bytes, a part at a time, and the columns whose types were unified to merge them."""

    chunks: Iterator[bytes]
    unified: list[dict[str, Any]] = field(default_factory=list)
    """{"column", "types_met", "type_chosen"} for each column whose values came in more than one type (Parquet)."""

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


def merged(part_format: str, read: Read, parts: list[Part]) -> Merged:
    if part_format in ("jsonl", AZURE_APPEND_ROW):
        # One record a line, and no header (a JSON object names its own columns): concatenating is merging.
        return Merged(read(uri) for uri, _ in parts)
    if part_format == "parquet":
        return _parquet(read, parts)
    return Merged(_csv(read, parts))


def _csv(read: Read, parts: list[Part]) -> Iterator[bytes]:
    """The output's bytes, one part in memory at a time when all parts share their columns."""
    if len({tuple(columns) for _, columns in parts}) <= 1:
        for number, (uri, _) in enumerate(parts):
            header, body = csv_records.split_header(read(uri))
            if number == 0:
                yield header
            yield body
        return
    # Mini-batches returned different columns: align them under the union of columns, in first-seen order,
    # one part at a time. Cells pass through as text, exactly as written (no 1 -> 1.0, 007 -> 7, NA -> empty).
    columns = list(dict.fromkeys(column for _, part_columns in parts for column in part_columns))
    out = csv_records.UnixRecords()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator=out.TOLD)
    writer.writeheader()
    for uri, _ in parts:
        writer.writerows(csv.DictReader(io.StringIO(read(uri).decode("utf-8"), newline="")))
        yield out.utf8()


def _parquet(read: Read, parts: list[Part]) -> Merged:
    """One Parquet file, one row group per part, its columns' types unified by parquet_types' rule."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batch_endpoints import parquet_types

    schema, unified = parquet_types.unified_schema([pq.read_metadata(pa.BufferReader(read(uri))) for uri, _ in parts])

    def chunks() -> Iterator[bytes]:
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, schema) as writer:
            for uri, _ in parts:
                # One thread: a part is small, and a process that read with pyarrow's thread pool may abort as it
                # exits (the local job host does, after finalize).
                table = pq.read_table(pa.BufferReader(read(uri)), use_threads=False)
                writer.write_table(parquet_types.conformed(table, schema))
                yield _take(sink)
        yield _take(sink)

    return Merged(chunks(), unified)


def _take(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
