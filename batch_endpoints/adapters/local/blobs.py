"""Blobs as files on disk. URIs are absolute paths (a `file://` prefix is accepted)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence

from batch_endpoints.errors import AlreadyExistsError, NotFoundError, ValidationError
from batch_endpoints.ports import BlobInfo, BlobRange, check_piece, is_empty_range

# Files being written carry this prefix until they are complete; listings skip them.
TEMP_PREFIX = ".tmp-"
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_temp_numbers = itertools.count()
COPY_BLOCK = 1024 * 1024


def to_path(uri: str) -> str:
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise ValidationError(f"{uri!r} is not a local path; the local backend reads and writes files on disk")
    return os.path.abspath(os.path.expanduser(uri))


class FolderBlobStore:
    reads_in_place = True

    def __init__(self, root: str) -> None:
        self.root = to_path(root)
        os.makedirs(self.root, exist_ok=True)

    def join(self, base: str, *parts: str) -> str:
        return os.path.join(to_path(base), *(p for p in parts if p))

    def relative(self, base: str, uri: str) -> str:
        rel = os.path.relpath(to_path(uri), to_path(base))
        return "" if rel == "." else rel.replace(os.sep, "/")

    def put_bytes(self, uri: str, data: bytes, *, if_absent: bool = False) -> None:
        self.write_stream(uri, [data], if_absent=if_absent)

    def write_stream(self, uri: str, chunks: Iterable[bytes], *, if_absent: bool = False) -> int:
        path = to_path(uri)
        if if_absent and os.path.exists(path):
            raise AlreadyExistsError(f"{path} already exists; results are never overwritten", field="output")
        # Write aside, then publish in one step: readers never see half a file. A runner writes two small files
        # per mini-batch, so this path makes as few system calls as it can: the folder is made only when the
        # first create says it is missing, and the name aside is unique without mkstemp's retries.
        tmp = os.path.join(
            os.path.dirname(path), f"{TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{next(_temp_numbers)}"
        )
        try:
            fd = os.open(tmp, TEMP_FLAGS, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, TEMP_FLAGS, 0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            if if_absent:
                try:
                    os.link(tmp, path)  # fails if the target appeared meanwhile: never overwrite
                except FileExistsError:
                    raise AlreadyExistsError(
                        f"{path} already exists; results are never overwritten", field="output"
                    ) from None
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return size

    def compose(self, uri: str, pieces: Sequence[BlobRange], *, if_absent: bool = False) -> int:
        return self.write_stream(uri, self._read_pieces(pieces), if_absent=if_absent)

    def _read_pieces(self, pieces: Sequence[BlobRange]) -> Iterator[bytes]:
        for piece in pieces:
            check_piece(piece)
            try:
                with open(to_path(piece.uri), "rb") as f:
                    f.seek(piece.start)
                    left = piece.size
                    while left:
                        block = f.read(min(left, COPY_BLOCK))
                        if not block:
                            raise ValueError(f"{piece.uri} ends before byte {piece.end}")
                        left -= len(block)
                        yield block
            except FileNotFoundError:
                raise NotFoundError(f"{to_path(piece.uri)} does not exist") from None

    def get_bytes(self, uri: str) -> bytes:
        try:
            with open(to_path(uri), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFoundError(f"{to_path(uri)} does not exist") from None

    def read_range(self, uri: str, start: int, end: int | None = None) -> bytes:
        if is_empty_range(start, end):
            return b""
        try:
            with open(to_path(uri), "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) + start) if start < 0 else start)
                return f.read() if end is None else f.read(max(0, end - f.tell()))
        except FileNotFoundError:
            raise NotFoundError(f"{to_path(uri)} does not exist") from None

    def exists(self, uri: str) -> bool:
        return os.path.exists(to_path(uri))

    def is_folder(self, uri: str) -> bool:
        return os.path.isdir(to_path(uri))

    def list_files(self, uri: str, *, after: str = "") -> Iterator[BlobInfo]:
        root = to_path(uri)
        after = to_path(after) if after else ""
        if os.path.isfile(root):
            if root > after:
                yield BlobInfo(root, os.path.getsize(root))
            return
        if not os.path.isdir(root):
            return  # as in S3: nothing is under a folder that does not exist
        stack = [root]
        found = []
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir():
                        stack.append(entry.path)
                    elif entry.is_file() and not entry.name.startswith(TEMP_PREFIX):
                        found.append(BlobInfo(entry.path, entry.stat().st_size))
        # Walked whole even when resuming: a local disk lists a million names in seconds, and no step here has a
        # time limit to split the listing for.
        found.sort(key=lambda info: info.uri)
        yield from (info for info in found if info.uri > after)

    def localize(self, uri: str, scratch_dir: str) -> str:
        return to_path(uri)

    def upload_folder(self, local_dir: str, uri: str) -> None:
        target = to_path(uri)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Copy aside, then swap in: a crash mid-copy never leaves a half folder where readers look.
        staging = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=TEMP_PREFIX)
        try:
            shutil.copytree(
                local_dir, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
            if os.path.exists(target):
                shutil.rmtree(target)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def download_folder(self, uri: str, local_dir: str) -> str:
        return to_path(uri)

    def delete_prefix(self, uri: str) -> None:
        path = to_path(uri)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
