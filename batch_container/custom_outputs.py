"""The folder a scoring script writes its own files into (AZUREML_BI_OUTPUT_PATH), and how those files reach the
job's output folder exactly once.

Azure hands every worker the job's output folder itself, a shared mount: what run() writes is there at once, even
when the attempt then fails and is retried. Here each worker process gets a folder of its own on local disk. After
each run() its files are moved into a folder of their own for that attempt (staged), or deleted if the attempt
failed; the runner commits a staged folder into the job's output folder only once its mini-batch succeeded, before
the mini-batch's result marks it done. So a failed, timed-out or retried attempt leaves nothing in the output, and a
mini-batch whose runner died mid-commit has no result: it is scored again and writes the same names again.

Two mini-batches that write the same relative path: the one committed last wins, as the later write does on Azure's
shared folder. Mini-batches run in parallel, so which one that is is not fixed: name files after their inputs.

This module is imported by worker processes: standard library only at the top.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batch_endpoints.ports import BlobStore

VARIABLE = "AZUREML_BI_OUTPUT_PATH"
CHUNK_BYTES = 8 * 2**20
# The longest key S3 takes (1,024 bytes of UTF-8, "Naming Amazon S3 objects") and the longest path Linux opens
# (PATH_MAX, 4,096 bytes): a file whose path under the output folder would not fit fails its attempt up front.
S3_KEY_BYTES = 1024
LOCAL_PATH_BYTES = 4096
# C0 controls and DEL: S3 takes them in a key but its XML listings cannot carry them unencoded, and a CR or LF in a
# name breaks every line-based listing downstream.
CONTROL_CHARACTERS = frozenset(map(chr, [*range(32), 127]))
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
# A staged file is opened without following a link (the last component; fwalk holds the folders by descriptor) and
# without waiting for a writer (a FIFO put there after it was staged): such a file is refused, never read.
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class RefusedOutput(ValueError):
    """run() left something in its folder that the job does not upload; its attempt fails, naming it."""


def path_budget(output_folder: str) -> int:
    """How many bytes a path under `output_folder` may take: what S3's key limit leaves (the bucket is not part of
    the key), or Linux's path limit on the local backend."""
    if output_folder.startswith("s3://"):
        key = output_folder[len("s3://") :].partition("/")[2].strip("/")
        return S3_KEY_BYTES - len(key.encode()) - (1 if key else 0)
    return LOCAL_PATH_BYTES - len(os.path.abspath(output_folder).encode()) - 1


class CustomOutputs:
    """One worker process's AZUREML_BI_OUTPUT_PATH folder and the attempts staged from it."""

    def __init__(self, folder: str, staging: str, reserved: list[str], path_bytes: int = S3_KEY_BYTES) -> None:
        self.folder = folder
        self.staging = staging
        self.reserved = set(reserved)
        self.path_bytes = path_bytes

    @classmethod
    def open(cls, staging: str, reserved: list[str], path_bytes: int = S3_KEY_BYTES) -> CustomOutputs:
        """Make this process's folder under `staging` and export it, before init() reads it."""
        os.makedirs(staging, exist_ok=True)
        folder = os.path.realpath(tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=staging))
        os.environ[VARIABLE] = folder
        return cls(folder, staging, reserved, path_bytes)

    def drop(self) -> None:
        """Forget what a failed attempt wrote."""
        for name in os.listdir(self.folder):
            path = os.path.join(self.folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    def stage(self, index: int) -> str | None:
        """Move what mini-batch `index`'s successful attempt wrote into a folder of its own, returned (None when
        it wrote nothing). The folder itself stays, empty, for the next attempt: scripts keep its path from init().
        What the job would not upload as written (see `refusal`) fails the attempt instead, and is dropped."""
        names = os.listdir(self.folder)
        if not names:
            return None
        try:
            problem = self.refusal(names)
        except OSError as exc:  # a folder the script made unreadable, or one removed while it was walked
            problem = f"run() left {exc.filename!r} in {VARIABLE}, which cannot be read ({exc.strerror})"
        if problem is not None:
            self.drop()
            raise RefusedOutput(problem)
        staged = tempfile.mkdtemp(prefix=f"mb-{index:08d}-", dir=self.staging)
        for name in names:
            # The same file system: a rename, whatever the files' size.
            os.rename(os.path.join(self.folder, name), os.path.join(staged, name))
        return staged

    def refusal(self, names: list[str]) -> str | None:
        """Why the folder's contents cannot be uploaded as written, or None. Only regular files and folders are:
        a link is not followed (it could lead anywhere on the machine, or nowhere), a FIFO or socket has no
        content to copy, a name must be a printable UTF-8 text whose path fits the output folder's storage, and
        a file still open for writing would be copied half written."""
        taken = sorted(self.reserved.intersection(names))
        if taken:
            return (
                f"run() wrote {taken[0]} to {VARIABLE}, the name of the job's output file (output_file_name); "
                "name the script's own files otherwise"
            )
        for relative, mode in _entries(self.folder):
            shown = repr(relative)
            if stat.S_ISLNK(mode):
                return (
                    f"run() left a symbolic link {shown} in {VARIABLE}; links are not followed or uploaded: "
                    "write the file itself"
                )
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
                return f"run() left {kind} {shown} in {VARIABLE}; only regular files and folders are uploaded"
            try:
                text = os.fsencode(relative).decode("utf-8")
            except UnicodeDecodeError:
                return f"run() wrote {shown} to {VARIABLE}, a name that is not UTF-8; storage keys are UTF-8 text"
            if CONTROL_CHARACTERS.intersection(text):
                return f"run() wrote {shown} to {VARIABLE}, a name with a control character (CR, LF, tab, ...)"
            if len(text.encode()) > self.path_bytes:
                return (
                    f"run() wrote {shown[:80]}... to {VARIABLE}, a path of {len(text.encode())} bytes; under the "
                    f"job's output folder a path may take {self.path_bytes}"
                )
        still_open = _open_for_writing(self.folder)
        if still_open:
            return (
                f"run() returned while {still_open[0]!r} in {VARIABLE} was still open for writing (a file not "
                "closed, or a thread still writing it); close the script's files before run() returns"
            )
        return None


def _entries(folder: str) -> Iterator[tuple[str, int]]:
    """Every entry under `folder` (its path relative to it, its mode), links not followed, depth first."""
    pending = [""]
    while pending:  # a loop, not recursion: a script may nest folders deeper than Python's stack
        relative = pending.pop()
        with os.scandir(os.path.join(folder, relative) if relative else folder) as found:
            for entry in found:
                path = f"{relative}/{entry.name}" if relative else entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                yield path, mode
                if stat.S_ISDIR(mode):
                    pending.append(path)


def _open_for_writing(folder: str) -> list[str]:
    """The files under `folder` this process holds open for writing (Linux's /proc; elsewhere none are found).
    A thread the script left writing holds its file open; what a child process holds is not seen."""
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if not target.startswith(folder + os.sep):
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags = int(next(line for line in info if line.startswith("flags:")).split()[1], 8)
        except (OSError, StopIteration, ValueError, IndexError):
            continue  # closed meanwhile
        if flags & os.O_ACCMODE != os.O_RDONLY:
            found.append(os.path.relpath(target, folder))
    return sorted(found)


def commit(blobs: BlobStore, staged: str, output_folder: str) -> int:
    """Copy a staged attempt's files into the job's output folder, then delete them; returns how many. Each file
    is written whole or not at all (write_stream), over a file of the same name. One write (an S3 PUT, or a
    multipart upload above its part size) per file. Folders are held by descriptor and files opened without
    following links, so nothing put in the staged folder after it was checked leads out of it."""
    count = 0
    for folder, folders, files, folder_fd in os.fwalk(staged, follow_symlinks=False):
        # fwalk lists a link to a folder among the folders and does not enter it: refused, not skipped unseen.
        for name in folders:
            if stat.S_ISLNK(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode):
                raise _changed(name, "a symbolic link")
        relative = os.path.relpath(folder, staged)
        parts = [] if relative == "." else relative.split(os.sep)
        for name in sorted(files):
            blobs.write_stream(blobs.join(output_folder, *parts, name), _chunks(name, folder_fd))
            count += 1
    shutil.rmtree(staged, ignore_errors=True)
    return count


def _chunks(name: str, folder_fd: int) -> Iterator[bytes]:
    try:
        fd = os.open(name, OPEN_FLAGS, dir_fd=folder_fd)
    except OSError as exc:  # ELOOP: a link put there after the attempt was checked
        raise _changed(name, exc.strerror or "cannot be opened") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _changed(name, "not a regular file")
        while chunk := file.read(CHUNK_BYTES):
            yield chunk


def _changed(name: str, now: str) -> RefusedOutput:
    return RefusedOutput(f"{name!r} in {VARIABLE} changed after its attempt was checked: {now}")
