"""Local copies of just the rows a tabular mini-batch reads, fetched with ranged reads.

One large CSV, JSON lines or Parquet file on S3 cut into many mini-batches would otherwise be downloaded whole once
per mini-batch. A slice's copy is a sparse file holding, at their original offsets, only the bytes its reader
touches, and holes elsewhere (which take no disk):

- CSV: the header line and the slice's lines; JSON lines: the slice's lines.
- Parquet: the opening magic, the column chunks of the row groups that hold the slice's rows, and the footer.

The worker reads a copy exactly as it reads the original (batch_container/tables.py), so the plan's offsets and
row numbers need no translating. Bytes move in pieces of at most COPY_CHUNK: memory stays bounded whatever the
size of a mini-batch or a row group.
"""

from __future__ import annotations

import functools
from typing import BinaryIO

from batch_endpoints import parquet_footer, tabular
from batch_endpoints.blob_files import open_blob
from batch_endpoints.jobfiles import RowSlice
from batch_endpoints.ports import BlobStore

COPY_CHUNK = 8 << 20
# Column chunks this close together are fetched in one read: a request costs more than a few KiB of bytes.
JOIN_GAP = 64 << 10
# Parquet footers kept for the slices still to come (the footers of the files a runner is working through).
FOOTERS_KEPT = 32


def copy_slice(blobs: BlobStore, uri: str, piece: RowSlice, file_format: str, path: str) -> str:
    """Write the copy of `piece` of `uri` to `path`; returns `path`."""
    with open(path, "wb") as out:
        if file_format == "parquet":
            _copy_parquet_rows(blobs, uri, piece, out)
            return path
        if file_format == "csv":
            with open_blob(blobs, uri, buffer_size=tabular.HEADER_CHUNK) as f:
                out.write(f.readline())
        _copy_range(blobs, uri, piece.start, piece.end, out)
    return path


@functools.lru_cache(maxsize=FOOTERS_KEPT)
def _footer_and_size(blobs: BlobStore, uri: str) -> tuple[parquet_footer.ParquetFooter, int]:
    """Read once per file, not once per slice: a large file is cut into many slices, and each read of its footer
    is a listing, a tail read and a parse. Inputs do not change while a job reads them."""
    return parquet_footer.read_footer(blobs, uri), next(blobs.list_files(uri)).size


def _copy_parquet_rows(blobs: BlobStore, uri: str, piece: RowSlice, out: BinaryIO) -> None:
    footer, size = _footer_and_size(blobs, uri)
    footer_start = size - len(footer.tail)
    ranges = []
    for index in parquet_footer.row_groups_holding(footer.metadata, piece.row, piece.rows).groups:
        chunks = parquet_footer.column_chunks(footer.metadata, index)
        if chunks is None:
            raise ValueError(f"{piece.file}: row group {index} keeps columns in other files, which is not supported")
        ranges += [(start, min(end, footer_start)) for start, end in chunks]
    out.write(parquet_footer.MAGIC)
    for start, end in _joined(ranges):
        _copy_range(blobs, uri, start, end, out)
    out.seek(footer_start)
    out.write(footer.tail)


def _joined(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    joined: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if joined and start <= joined[-1][1] + JOIN_GAP:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _copy_range(blobs: BlobStore, uri: str, start: int, end: int, out: BinaryIO) -> None:
    out.seek(start)
    for offset in range(start, end, COPY_CHUNK):
        out.write(blobs.read_range(uri, offset, min(end, offset + COPY_CHUNK)))
