"""Merge part files, in order, into one file's bytes: CSV, JSON lines or Parquet. A runner merges a shard's
mini-batch parts into the shard's output; finalize merges shard outputs this way when they cannot be joined as
they are stored (Parquet, or CSV whose columns differ between shards).

Each writer yields the output a part at a time, so it holds one part in memory, never the whole output.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

from batch_endpoints import csv_records

Part = tuple[str, list[str]]
"""A part file's URI and the columns its mini-batch wrote."""
Read = Callable[[str], bytes]


def merged(part_format: str, read: Read, parts: list[Part]) -> Iterator[bytes]:
    if part_format == "jsonl":
        # One JSON object a line, each naming its own columns: concatenating is merging.
        return (read(uri) for uri, _ in parts)
    if part_format == "parquet":
        return _parquet(read, parts)
    return _csv(read, parts)


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


def _parquet(read: Read, parts: list[Part]) -> Iterator[bytes]:
    """One Parquet file, one row group per part. Parts whose columns or types differ are unified first (a column
    an int in one part and a float in another becomes a float; one missing in a part is null there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(pa.BufferReader(read(uri))) for uri, _ in parts]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if len(schemas) > 1 else schemas[0]
    schema = schema.remove_metadata()
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, schema) as writer:
        for uri, _ in parts:
            # One thread: a part is small, and a process that read with pyarrow's thread pool may abort as it
            # exits (the local job host does, after finalize).
            table = pq.read_table(pa.BufferReader(read(uri)), use_threads=False)
            columns = [
                table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
                for f in schema
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            yield _take(sink)
    yield _take(sink)


def _take(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
