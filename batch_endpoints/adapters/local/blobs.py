"""Blobs as files on disk. URIs are absolute paths (a `file://` prefix is accepted).

Every file under a folder is listed, whatever its name: the store's own files being written live in its staging
folder (`<root>/.staging`), which no listing enters, and are published from there by a rename (or a hard link,
for writes that must not overwrite) on the same file system, so a reader never sees half a file. A target on
another file system (an output folder on another disk) is written as an unnamed file in its own folder (Linux's
O_TMPFILE) and linked into place; where a file system cannot make unnamed files, the file is written aside in the
target's folder under a `.tmp-` name for the time of the write, the one case where a listing can see it.

A job's local input is read where it is (snapshot, see snapshots): its listing is what it was at invoke, and each
read of one of its files (localize) checks that the file has not changed since; the manifests that record them
live in `<root>/.snapshots`, which no listing enters either.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from batch_endpoints import local_files
from batch_endpoints.adapters.local.snapshots import Snapshots
from batch_endpoints.errors import AlreadyExistsError, NotFoundError, ValidationError
from batch_endpoints.ports import BlobInfo, BlobRange, check_piece, is_empty_range

STAGING_FOLDER = ".staging"
# A crashed writer's file in the staging folder is removed by the next store opened on that root once no one has
# written to it for this long: a live writer touches its file with every block it writes.
STALE_STAGED_SECONDS = 24 * 3600
# Names of files being written beside a target on a file system that cannot make unnamed files (see the module).
TEMP_PREFIX = ".tmp-"
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
UNNAMED_FLAGS = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | getattr(os, "O_CLOEXEC", 0)
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
        self.staging = os.path.join(self.root, STAGING_FOLDER)
        os.makedirs(self.staging, exist_ok=True)
        _remove_stale(self.staging)
        self.snapshots = Snapshots(self.root)

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
            raise _exists(path)
        # Write aside, then publish in one step: readers never see half a file. A runner writes two small files
        # per mini-batch, so this path makes as few system calls as it can: the staging folder is made again only
        # when the first create says it is missing, and the name aside is unique without mkstemp's retries.
        tmp = os.path.join(self.staging, _temp_name())
        try:
            fd = os.open(tmp, TEMP_FLAGS, 0o600)
        except FileNotFoundError:
            os.makedirs(self.staging, exist_ok=True)
            fd = os.open(tmp, TEMP_FLAGS, 0o600)
        return _write_then_publish(tmp, fd, chunks, path, if_absent=if_absent)

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
        snapshot = self.snapshots.find(root)
        if snapshot is not None:
            yield from (BlobInfo(path, size) for path, size in snapshot.files_under(root) if path > after)
            return
        if not os.path.isdir(root):
            if os.path.lexists(root) and root > after:
                # A single file (a link followed); a link to nowhere is refused, naming it.
                yield from (BlobInfo(root, found.size) for found in local_files.input_files(root, field=None))
            return  # as in S3: nothing is under a folder that does not exist
        found = local_files.folder_files(root, field=None, never_enter=self._own_folders())
        # Walked whole even when resuming: a local disk lists a million names in seconds, and no step here has a
        # time limit to split the listing for.
        yield from (BlobInfo(f.path, f.size) for f in found if f.path > after)

    def _own_folders(self) -> set[tuple[int, int]]:
        own = set()
        for folder in (self.staging, self.snapshots.folder):
            with contextlib.suppress(FileNotFoundError):
                info = os.stat(folder)
                own.add((info.st_dev, info.st_ino))
        return own

    def localize(self, uri: str, scratch_dir: str) -> str:
        path = to_path(uri)
        self.snapshots.check(path)
        return path

    def snapshot(self, local_path: str, files: Sequence[local_files.LocalFile], target: str) -> None:
        self.snapshots.take(local_path, files, to_path(target))

    def upload_folder(self, local_dir: str, uri: str, files: Sequence[str] | None = None) -> None:
        target = to_path(uri)
        if files is None:
            files = [found.relative for found in local_files.folder_files(local_dir, field=None)]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.makedirs(self.staging, exist_ok=True)
        # Copy aside, then swap in: a crash mid-copy never leaves a half folder where readers look.
        staging = tempfile.mkdtemp(dir=self.staging)
        try:
            for relative in files:
                copy = os.path.join(staging, *relative.split("/"))
                os.makedirs(os.path.dirname(copy), exist_ok=True)
                shutil.copy2(os.path.join(local_dir, *relative.split("/")), copy)
            shutil.copymode(local_dir, staging)  # not mkdtemp's private mode: the folder's own
            if os.path.exists(target):
                shutil.rmtree(target)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def download_folder(self, uri: str, local_dir: str) -> str:
        return to_path(uri)

    def delete_prefix(self, uri: str) -> None:
        path = to_path(uri)
        self.snapshots.forget(path)
        if os.path.islink(path):
            os.unlink(path)  # a snapshot's link: the user's files stay where they are
        elif os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)


def _temp_name() -> str:
    return f"{os.getpid()}-{threading.get_ident()}-{next(_temp_numbers)}"


def _write_then_publish(tmp: str, fd: int, chunks: Iterable[bytes], path: str, *, if_absent: bool) -> int:
    """Write `chunks` to the new file `tmp` (open as `fd`), then publish it as `path`; `tmp` is gone either way."""
    try:
        with os.fdopen(fd, "wb") as out:
            size = sum(out.write(chunk) for chunk in chunks)
        try:
            _publish_from(tmp, path, if_absent=if_absent)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _publish_from(tmp, path, if_absent=if_absent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return size


def _publish_from(tmp: str, path: str, *, if_absent: bool) -> None:
    """Publish `tmp` as `path`, wherever `path` is; the name `tmp` is gone after."""
    try:
        _publish(tmp, path, if_absent=if_absent)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        _publish_on_its_file_system(tmp, path, if_absent=if_absent)
        os.unlink(tmp)
        return
    if if_absent:
        os.unlink(tmp)  # published by a link: the name aside goes


def _publish(tmp: str, path: str, *, if_absent: bool) -> None:
    """Give the whole file at `tmp` the name `path`; with if_absent, only if nothing has that name (a hard link
    fails on an existing name, where a rename would replace it)."""
    if not if_absent:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path) from None


def _exists(path: str) -> AlreadyExistsError:
    return AlreadyExistsError(f"{path} already exists; results are never overwritten", field="output")


def _publish_on_its_file_system(staged: str, path: str, *, if_absent: bool) -> None:
    """A rename cannot cross file systems (EXDEV): copy the staged file into the target's folder and name it
    there. A write that must not overwrite (an output file) goes through an unnamed file where the file system
    makes them (O_TMPFILE, Linux 3.11+), so no listing ever sees it; any other, through a `.tmp-` name aside."""
    folder, name = os.path.split(path)
    unnamed = _unnamed_file(folder) if if_absent else None
    if unnamed is None:
        aside = os.path.join(folder, f"{TEMP_PREFIX}{_temp_name()}")
        _write_then_publish(aside, os.open(aside, TEMP_FLAGS, 0o600), _blocks_of(staged), path, if_absent=if_absent)
        return
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.fdopen(unnamed, "wb") as out:
            for block in _blocks_of(staged):
                out.write(block)
            out.flush()
            # An unnamed file is named by linking its /proc/self/fd entry, following it (open(2), O_TMPFILE);
            # os.link asks linkat to follow only when given a folder's descriptor.
            os.link(f"/proc/self/fd/{out.fileno()}", name, dst_dir_fd=folder_fd, follow_symlinks=True)
    except FileExistsError:
        raise _exists(path) from None
    finally:
        os.close(folder_fd)


def _unnamed_file(folder: str) -> int | None:
    if not hasattr(os, "O_TMPFILE"):
        return None
    try:
        return os.open(folder, UNNAMED_FLAGS, 0o600)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None  # a file system (or kernel) without unnamed files
        raise


def _blocks_of(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(COPY_BLOCK):
            yield block


def _remove_stale(staging: str) -> None:
    """Remove what crashed writers left in the staging folder (a file, or a folder copy in progress)."""
    stale_before = time.time() - STALE_STAGED_SECONDS
    with os.scandir(staging) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_mtime >= stale_before:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
