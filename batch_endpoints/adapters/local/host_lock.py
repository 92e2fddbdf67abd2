"""Whether a job has a live job host: a lock on a file of the job's, held by its host for the host's whole life.

A PID says nothing once its process has died: a host that died unreaped (a zombie, under an init that never
reaps) still answers `kill(pid, 0)`, and so does an unrelated process that got its PID later. An flock belongs to
an open file, and the kernel drops it when the last descriptor of that file closes, which happens as a process
exits, before it is a zombie: a lock nobody holds means no host, whatever became of the PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.specs import Job

LOCK_FILE = "job-host.lock"


def lock_path(job: Job) -> str:
    return os.path.join(to_path(job.scratch_uri), LOCK_FILE)


def take(job: Job) -> int | None:
    """Lock the job for a new host; return the locked file's descriptor, or None when a live host holds it.
    The descriptor is handed to the host (it keeps the lock while open in any process)."""
    path = lock_path(job)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if _lock(fd):
        return fd
    os.close(fd)
    return None


def is_held(job: Job) -> bool:
    try:
        fd = os.open(lock_path(job), os.O_RDWR)
    except FileNotFoundError:
        return False  # no host was ever started for this job
    try:
        return not _lock(fd)
    finally:
        os.close(fd)  # and with it the lock, if this took it


def keep(fd: int) -> None:
    """In the host: hold the lock handed over as `fd` until this process exits, and lend it to no child."""
    os.set_inheritable(fd, False)
    if not _lock(fd):  # the same open file as the one locked for us: this only confirms it
        raise RuntimeError(f"the job-host lock (descriptor {fd}) is held by another process")


def _lock(fd: int) -> bool:
    with contextlib.suppress(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    return False
