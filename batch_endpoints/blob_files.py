"""A stored object as a read-only, seekable file whose every read is one ranged read of the store.

Code written against files (the planner's line scan, a CSV header's `readline`) then streams through an S3
object a chunk at a time: nothing lands on disk and memory holds one buffer, however large the object.
"""

from __future__ import annotations

import io
import os

from batch_endpoints.ports import BlobStore


class BlobFile(io.RawIOBase):
    def __init__(self, blobs: BlobStore, uri: str) -> None:
        super().__init__()
        self._blobs = blobs
        self._uri = uri
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # From the end would need the object's size, a request of its own: nothing here reads backwards.
        if whence not in (os.SEEK_SET, os.SEEK_CUR):
            raise io.UnsupportedOperation("a blob file seeks from its start or its current position only")
        position = offset if whence == os.SEEK_SET else self._position + offset
        if position < 0:
            raise ValueError(f"negative position {position}")
        self._position = position
        return position

    # io hands readinto() a bytearray or a memoryview (sized, sliceable); typeshed allows any writable buffer.
    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._blobs.read_range(self._uri, self._position, self._position + len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def open_blob(blobs: BlobStore, uri: str, *, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> io.BufferedReader:
    """A buffered file over the object: small reads (`readline`) share one ranged read of `buffer_size` bytes."""
    return io.BufferedReader(BlobFile(blobs, uri), buffer_size=buffer_size)
