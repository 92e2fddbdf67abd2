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
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batch_endpoints.ports import BlobStore

VARIABLE = "AZUREML_BI_OUTPUT_PATH"
CHUNK_BYTES = 8 * 2**20


class OutputNameTaken(ValueError):
    """run() wrote a file the job writes itself."""


class CustomOutputs:
    """One worker process's AZUREML_BI_OUTPUT_PATH folder and the attempts staged from it."""

    def __init__(self, folder: str, staging: str, reserved: list[str]) -> None:
        self.folder = folder
        self.staging = staging
        self.reserved = set(reserved)

    @classmethod
    def open(cls, staging: str, reserved: list[str]) -> CustomOutputs:
        """Make this process's folder under `staging` and export it, before init() reads it."""
        os.makedirs(staging, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=staging)
        os.environ[VARIABLE] = folder
        return cls(folder, staging, reserved)

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
        it wrote nothing). The folder itself stays, empty, for the next attempt: scripts keep its path from init()."""
        names = os.listdir(self.folder)
        if not names:
            return None
        taken = sorted(self.reserved.intersection(names))
        if taken:
            self.drop()
            raise OutputNameTaken(
                f"run() wrote {taken[0]} to {VARIABLE}, the name of the job's output file (output_file_name); "
                "name the script's own files otherwise"
            )
        staged = tempfile.mkdtemp(prefix=f"mb-{index:08d}-", dir=self.staging)
        for name in names:
            # The same file system: a rename, whatever the files' size.
            os.rename(os.path.join(self.folder, name), os.path.join(staged, name))
        return staged


def staged_files(staged: str) -> list[str]:
    """The files of a staged folder, as "/"-separated paths relative to it, sorted."""
    found = []
    for folder, _, files in os.walk(staged):
        for name in files:
            found.append(os.path.relpath(os.path.join(folder, name), staged).replace(os.sep, "/"))
    return sorted(found)


def commit(blobs: BlobStore, staged: str, output_folder: str) -> int:
    """Copy a staged attempt's files into the job's output folder, then delete them; returns how many. Each file
    is written whole or not at all (write_stream), over a file of the same name."""
    files = staged_files(staged)
    for relative in files:
        path = os.path.join(staged, *relative.split("/"))
        blobs.write_stream(blobs.join(output_folder, *relative.split("/")), _chunks(path))
    shutil.rmtree(staged, ignore_errors=True)
    return len(files)


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk
