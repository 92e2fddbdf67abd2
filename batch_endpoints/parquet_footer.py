"""A Parquet file's footer, read with two ranged reads at most and decoded with the standard library alone.

The workflow's Lambdas plan jobs without pyarrow, and a Parquet file's row counts are all in its footer:

    <"PAR1"> <column chunks of row group 0> ... <footer: FileMetaData, Thrift compact> <footer length: u32 LE> <"PAR1">

`FileMetaData` is a Thrift struct in the compact protocol. This reader decodes the few fields planning and the
runner need (how many rows, and per row group its rows, its size and where its column chunks are) and skips every
other field generically, so footers written by any version of any writer read the same. Garbage or a truncated
file raises ValueError naming what is wrong, never reads past the bytes it was given, and never loops on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from batch_endpoints.ports import BlobStore

MAGIC = b"PAR1"
# Most footers are a few KiB: reading this much of the tail first usually gets the whole footer in one request.
TAIL_GUESS = 64 * 1024
# Thrift compact types (Apache Thrift's TCompactProtocol).
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT, UUID = range(14)
MAX_DEPTH = 64
# parquet-cpp reads up to this much past a column chunk's recorded end (old parquet-mr writers under-counted).
CHUNK_PADDING = 100


@dataclass(frozen=True)
class RowGroup:
    rows: int
    byte_size: int
    """Uncompressed size of its column data (Parquet's total_byte_size)."""
    chunks: tuple[tuple[int, int], ...] | None
    """Byte ranges [start, end) of its column chunks in the file; None when the footer does not say (encrypted
    column metadata, or columns kept in other files)."""


@dataclass(frozen=True)
class ParquetFooter:
    rows: int
    row_groups: list[RowGroup]
    tail: bytes
    """The file's last bytes: the footer, its length and the closing magic, as stored."""

    def row_groups_holding(self, first: int, count: int) -> list[int]:
        """Indexes of the row groups that hold rows [first, first + count)."""
        found, seen = [], 0
        for index, group in enumerate(self.row_groups):
            if seen < first + count and seen + group.rows > first:
                found.append(index)
            seen += group.rows
        return found


def read_footer(blobs: BlobStore, uri: str) -> ParquetFooter:
    """The footer of the Parquet file `uri`: one ranged read of its tail, a second when the footer is larger."""
    tail = blobs.read_range(uri, -TAIL_GUESS)
    if len(tail) < len(MAGIC) + 8 or tail[-4:] != MAGIC:
        raise ValueError(f"it is not a Parquet file (it does not end with {MAGIC.decode()})")
    length = int.from_bytes(tail[-8:-4], "little")
    wanted = length + 8
    if wanted > len(tail) and len(tail) == TAIL_GUESS:
        tail = blobs.read_range(uri, -wanted)
    # Less than asked came back: that is the whole file, which must also hold the opening magic.
    too_short = len(tail) < TAIL_GUESS and len(tail) < wanted + len(MAGIC)
    if wanted > len(tail) or too_short:
        raise ValueError(f"it is truncated: its footer says {length} bytes, more than the file holds")
    rows, groups = _file_metadata(_Compact(tail[-wanted:-8]))
    return ParquetFooter(rows, groups, tail[-wanted:])


def _file_metadata(reader: _Compact) -> tuple[int, list[RowGroup]]:
    rows: int | None = None
    groups: list[RowGroup] | None = None
    for field, kind in reader.fields():
        if field == 3 and kind == I64:
            rows = reader.integer()
        elif field == 4 and kind == LIST:
            groups = [_row_group(reader) for _ in reader.elements(STRUCT)]
        else:
            reader.skip(kind)
    if rows is None or groups is None:
        raise ValueError("its footer has no row count or no row groups")
    if rows < 0 or any(group.rows < 0 for group in groups):
        raise ValueError("its footer gives a negative row count")
    return rows, groups


def _row_group(reader: _Compact) -> RowGroup:
    rows = size = None
    chunks: list[tuple[int, int]] | None = []
    for field, kind in reader.fields():
        if field == 1 and kind == LIST:
            for _ in reader.elements(STRUCT):
                chunk = _column_chunk(reader)
                chunks = None if chunk is None or chunks is None else [*chunks, chunk]
        elif field == 2 and kind == I64:
            size = reader.integer()
        elif field == 3 and kind == I64:
            rows = reader.integer()
        else:
            reader.skip(kind)
    if rows is None or size is None:
        raise ValueError("a row group in its footer has no row count or size")
    return RowGroup(rows, size, None if chunks is None else tuple(chunks))


def _column_chunk(reader: _Compact) -> tuple[int, int] | None:
    """The chunk's byte range, or None when its data is elsewhere or its metadata is encrypted."""
    elsewhere, found = False, None
    for field, kind in reader.fields():
        if field == 1 and kind == BINARY:
            elsewhere = bool(reader.binary())
        elif field == 3 and kind == STRUCT:
            found = _chunk_range(reader)
        else:
            reader.skip(kind)
    return None if elsewhere else found


def _chunk_range(reader: _Compact) -> tuple[int, int] | None:
    """ColumnMetaData's [start, end): from its dictionary page (if it comes first), total_compressed_size long."""
    compressed = data_page = dictionary_page = None
    for field, kind in reader.fields():
        if field == 7 and kind == I64:
            compressed = reader.integer()
        elif field == 9 and kind == I64:
            data_page = reader.integer()
        elif field == 11 and kind == I64:
            dictionary_page = reader.integer()
        else:
            reader.skip(kind)
    if compressed is None or data_page is None:
        return None
    start = dictionary_page if dictionary_page is not None and 0 < dictionary_page < data_page else data_page
    return start, start + compressed + CHUNK_PADDING


class _Compact:
    """Reads Thrift's compact protocol from bytes, checking every length against what is left."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0
        self.depth = 0

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise ValueError("its footer ends in the middle of a value")
        value = self.data[self.position]
        self.position += 1
        return value

    def take(self, count: int) -> bytes:
        if count < 0 or self.position + count > len(self.data):
            raise ValueError("its footer ends in the middle of a value")
        value = self.data[self.position : self.position + count]
        self.position += count
        return value

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("its footer holds an integer longer than 64 bits")

    def integer(self) -> int:
        """A zigzag-encoded i16, i32 or i64."""
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def binary(self) -> bytes:
        return self.take(self.varint())

    def fields(self) -> Iterator[tuple[int, int]]:
        """(field id, type) of each field of a struct, up to its end; the caller reads or skips each value."""
        with self.nested():
            last = 0
            while (header := self.byte()) != STOP:
                kind, delta = header & 0x0F, header >> 4
                last = last + delta if delta else self.integer()
                yield last, kind

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        # Garbage can nest lists in lists a byte each: bound the recursion, not just the bytes.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError("its footer nests values deeper than any Parquet footer does")
        yield
        self.depth -= 1

    def elements(self, expected: int) -> range:
        """The element count of a list whose elements must be of type `expected`."""
        count, kind = self.collection()
        if kind != expected and count:
            raise ValueError(f"its footer holds a list of type {kind} where type {expected} belongs")
        return range(count)

    def collection(self) -> tuple[int, int]:
        header = self.byte()
        count = header >> 4
        return (self.varint() if count == 15 else count), header & 0x0F

    def skip(self, kind: int, *, in_collection: bool = False) -> None:
        if kind in (TRUE, FALSE):
            if in_collection:  # a boolean field carries its value in its type; a list's booleans are bytes
                self.byte()
        elif kind == BYTE:
            self.byte()
        elif kind in (I16, I32, I64):
            self.varint()
        elif kind == DOUBLE:
            self.take(8)
        elif kind == BINARY:
            self.binary()
        elif kind == UUID:
            self.take(16)
        elif kind in (LIST, SET):
            count, element = self.collection()
            with self.nested():
                for _ in range(count):  # every element takes a byte or more: bounded by the data
                    self.skip(element, in_collection=True)
        elif kind == MAP:
            count = self.varint()
            types = self.byte() if count else 0
            with self.nested():
                for _ in range(count):
                    self.skip(types >> 4, in_collection=True)
                    self.skip(types & 0x0F, in_collection=True)
        elif kind == STRUCT:
            for _, field_kind in self.fields():
                self.skip(field_kind)
        else:
            raise ValueError(f"its footer holds an unknown Thrift type {kind}")
