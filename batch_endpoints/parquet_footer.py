"""A stored Parquet file's footer, parsed by pyarrow from two ranged reads at most, and what planning and the
runner look up in it: which row groups hold a run of rows, and where their column chunks are.

    <"PAR1"> <column chunks of row group 0> ... <footer: FileMetaData> <footer length: u32 LE> <"PAR1">

`pyarrow.parquet.read_metadata` parses a footer from any file object, reading from its end. It asks the file's size
first, which for a stored object is a request of its own. `FooterFile` spares that request: it is the footer seen as
a file of its own, from the footer's first byte to the closing magic, whose size the object's last 8 bytes tell.
Its first read fetches the object's last TAIL_GUESS bytes, which hold most footers whole; a larger footer costs one
more. pyarrow reads no opening magic and no column data to parse a footer, so the rest of the object is never read.

pyarrow is imported when a footer is read: the API Lambda, which plans nothing, carries none.
"""

from __future__ import annotations

import bisect
import itertools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from batch_endpoints.blob_files import BlobFile
from batch_endpoints.ports import BlobStore

if TYPE_CHECKING:
    from pyarrow.parquet import FileMetaData

MAGIC = b"PAR1"
# The footer's length (u32) and the closing magic.
LENGTH_AND_MAGIC = 8
# parquet-cpp's own first read of a footer (kDefaultFooterReadSize): most footers are a few KiB.
TAIL_GUESS = 64 * 1024
# parquet-cpp reads up to this much past a column chunk's recorded end (old parquet-mr writers under-counted).
CHUNK_PADDING = 100


@dataclass(frozen=True)
class ParquetFooter:
    metadata: FileMetaData
    tail: bytes
    """The file's last bytes: the footer, its length and the closing magic, as stored."""


class RowGroupSpan(NamedTuple):
    groups: range
    """The consecutive row groups that hold the rows."""
    first_row: int
    """The file row the first of them starts at."""


def read_footer(blobs: BlobStore, uri: str) -> ParquetFooter:
    """The footer of the Parquet file `uri`. A file that is no Parquet file, or is cut short, raises ValueError or
    OSError saying what is wrong."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading Parquet needs pyarrow (the package's `tabular` extra)") from None
    with FooterFile(blobs, uri) as footer:
        metadata = pq.read_metadata(footer)
        return ParquetFooter(metadata, footer.tail())


def row_groups_holding(metadata: FileMetaData, first: int, count: int) -> RowGroupSpan:
    """The row groups that hold rows [first, first + count) of the file."""
    sizes = (metadata.row_group(index).num_rows for index in range(metadata.num_row_groups))
    starts = list(itertools.accumulate(sizes, initial=0))  # starts[k]: row group k's first row
    low = max(bisect.bisect_right(starts, first) - 1, 0)
    high = min(bisect.bisect_left(starts, first + count), metadata.num_row_groups)
    return RowGroupSpan(range(low, high), starts[low])


def column_chunks(metadata: FileMetaData, group: int) -> list[tuple[int, int]] | None:
    """Byte ranges [start, end) of the row group's column chunks in the file, each from its dictionary page when
    that comes first; None when a column is kept in another file."""
    row_group = metadata.row_group(group)
    ranges = []
    for index in range(row_group.num_columns):
        column = row_group.column(index)
        if column.file_path:
            return None
        data_page, dictionary_page = column.data_page_offset, column.dictionary_page_offset
        start = dictionary_page if dictionary_page is not None and 0 < dictionary_page < data_page else data_page
        ranges.append((start, start + column.total_compressed_size + CHUNK_PADDING))
    return ranges


class FooterFile(BlobFile):
    """The footer of a stored Parquet file, its length and its closing magic, as a read-only file of their own."""

    def __init__(self, blobs: BlobStore, uri: str) -> None:
        super().__init__(blobs, uri)
        self._suffix = b""
        """The object's last bytes, as many as have been fetched."""
        self._size: int | None = None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return super().seek(self.size() + offset)
        return super().seek(offset, whence)

    # io hands readinto() a bytearray or a memoryview (sized, sliceable); typeshed allows any writable buffer.
    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = self.size()
        end = min(self._position + len(buffer), size)
        if end <= self._position:
            return 0
        if size - self._position > len(self._suffix):
            self._fetch(size)
        # Position p of this file is the object's byte at `size - p` from its end.
        data = self._suffix[len(self._suffix) - size + self._position : len(self._suffix) - size + end]
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def size(self) -> int:
        """The footer's length and 8; what the object holds when it is shorter (pyarrow then says it is cut short)."""
        if self._size is None:
            self._suffix = self._blobs.read_range(self._uri, -TAIL_GUESS)
            if len(self._suffix) < LENGTH_AND_MAGIC:
                self._size = len(self._suffix)
            else:
                footer = int.from_bytes(self._suffix[-LENGTH_AND_MAGIC:-4], "little") + LENGTH_AND_MAGIC
                # Less than asked came back: that is the whole object, and no footer is longer than it.
                self._size = footer if len(self._suffix) == TAIL_GUESS else min(footer, len(self._suffix))
        return self._size

    def tail(self) -> bytes:
        """The bytes of this file, all read by then."""
        return self._suffix[len(self._suffix) - self.size() :]

    def _fetch(self, size: int) -> None:
        self._suffix = self._blobs.read_range(self._uri, -size)
        if len(self._suffix) < size:
            raise ValueError(
                f"it is truncated: its footer says {size - LENGTH_AND_MAGIC} bytes, more than the file's "
                f"{len(self._suffix)}"
            )
