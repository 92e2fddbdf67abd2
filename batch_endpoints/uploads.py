"""Local files into the backend's storage: what a client does with a local input before invoking, as Azure's CLI
uploads a local `--input` to the workspace's default datastore.

Inputs go under a fresh prefix (`uploads/inputs/<date>-<random>/<name>`), not one derived from their content:
hashing a folder of data means reading it twice, and a job must read the files as they were when it was invoked,
whatever happens to the local folder later. Scoring code is the opposite case (small, reused by every
deployment update), so it is content-addressed instead (assets.upload_code).

A store on this machine's disks takes a job's input without copying its bytes (ports.LocalSnapshots: the local
store reads the files where they are and fails any that changed after invoke, see adapters/local/snapshots):
copying 20,000 small files took 3.4 s, a fifth of a job scoring them. Data assets are still copied: they outlive
the job, and the user's folder may change in between.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from batch_endpoints import local_files
from batch_endpoints.errors import ValidationError
from batch_endpoints.ports import BlobStore, LocalSnapshots

UPLOADS = "uploads"
BLOCK = 1024 * 1024
# Each file is one request to S3 (tens of ms): several in flight keep a folder of small files moving.
THREADS = 8

Progress = Callable[[int, int], None]
"""Called with (bytes sent so far, bytes in all) as the upload moves."""


def upload_input(blobs: BlobStore, local_path: str, *, field: str, progress: Progress | None = None) -> str:
    """Copy a local file or folder under a new prefix of the default datastore (or snapshot it, on a store that
    can); returns the copy's URI. Every file is copied, whatever its name (see local_files); a folder that cannot
    be read whole is refused first."""
    path = os.path.abspath(os.path.expanduser(local_path))
    files = local_files.input_files(path, field=field)
    if not files:
        raise ValidationError(f"{path} holds no files to score", field=field)
    stamp = f"{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:12]}"
    target = blobs.join(blobs.root, UPLOADS, "inputs", stamp, os.path.basename(path.rstrip(os.sep)) or "input")
    if isinstance(blobs, LocalSnapshots):
        total = sum(found.size for found in files)
        if progress is not None:
            progress(0, total)
        blobs.snapshot(path, files, target)
        if progress is not None:
            progress(total, total)
        return target
    return _copy(blobs, path, files, target, progress=progress)


def discard(blobs: BlobStore, uri: str) -> None:
    """Remove an input uploaded by upload_input, with the prefix made for it."""
    blobs.delete_prefix(uri.rstrip("/").rpartition("/")[0])


def upload(blobs: BlobStore, path: str, target: str, *, field: str, progress: Progress | None = None) -> str:
    """Copy the file `path` to `target`, or every file of the folder `path` to the folder `target`; returns
    `target`."""
    return _copy(blobs, path, local_files.input_files(path, field=field), target, progress=progress)


def _copy(
    blobs: BlobStore, path: str, files: list[local_files.LocalFile], target: str, *, progress: Progress | None
) -> str:
    if os.path.isdir(path):
        copies = [(found.path, blobs.join(target, *found.relative.split("/"))) for found in files]
    else:
        copies = [(files[0].path, target)]
    total = sum(found.size for found in files)
    sent = 0
    lock = threading.Lock()

    def advance(size: int) -> None:
        nonlocal sent
        with lock:
            sent += size
            if progress is not None:
                progress(sent, total)

    def copy(item: tuple[str, str]) -> None:
        source, uri = item
        blobs.write_stream(uri, _blocks(source, advance))

    if progress is not None:
        progress(0, total)
    with ThreadPoolExecutor(THREADS, thread_name_prefix="upload") as pool:
        list(pool.map(copy, sorted(copies)))
    return target


def _blocks(path: str, advance: Callable[[int], None]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            yield block
            advance(len(block))
