"""Local files a job reads where they are, checked against what they were at invoke: a job's local input.

Taking a snapshot writes a symbolic link to the user's file or folder in the store and a manifest of every file's
size, modification time (ns) and inode, and copies no byte: 20,000 small files take about 0.2 s (listing them
and writing the manifest), where copying them took 3.4 s and hard-linking them 0.5 s (ext4 on 2 cores). Reflinks
(ioctl FICLONE) cost more than links, and ext4 has none.

What the job sees of the user's changes after invoke:
- a file added: not scored, the job's files are the manifest's (list);
- a file written in place, replaced (an editor's save, `mv`, `cp`) or removed: reading it (check, at the time its
  mini-batch is fetched, just before run() opens it) fails that file, naming it and what changed, and the job
  goes on with the others as for any file that fails (error_threshold). Its other files are scored as invoked.
A write that keeps the size and lands within the file system's clock tick of the last one (a few ms on ext4)
could go unseen, and a file changed after its check is read as it is then: a user who edits inputs during a job
should copy them first.

Manifests live in the store's `.snapshots` folder, at the target's path under the root, outside any folder a job
reads, so no input file can pass for one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from batch_endpoints.local_files import LocalFile

SNAPSHOTS_FOLDER = ".snapshots"
MANIFEST = "manifest.json"

Taken = tuple[int, int, int]
"""(size, mtime_ns, inode) of a file when its snapshot was taken."""


class ChangedInputError(Exception):
    """A file of a snapshot changed after it was taken."""


@dataclass(frozen=True)
class Snapshot:
    target: str
    files: dict[str, Taken]
    """Relative path under the target, "/"-separated ("" for a single file) -> what the file was."""

    def files_under(self, folder: str) -> Iterator[tuple[str, int]]:
        """(path, size) of the snapshot's files at or under `folder`, in order of path."""
        relative = os.path.relpath(folder, self.target)
        prefix = "" if relative == os.curdir else relative.replace(os.sep, "/") + "/"
        for name in sorted(self.files):
            if name.startswith(prefix) or (not prefix and not name):
                yield (os.path.join(self.target, *name.split("/")) if name else self.target), self.files[name][0]


class Snapshots:
    """The snapshots of the folder store rooted at `root`."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.folder = os.path.join(root, SNAPSHOTS_FOLDER)
        # Folder of a file read -> its snapshot (None: none). Targets are new when taken, so a folder read once
        # does not become part of a snapshot later.
        self._by_folder: dict[str, Snapshot | None] = {}

    def take(self, local_path: str, files: Sequence[LocalFile], target: str) -> None:
        """Record `files` (those of the file or folder `local_path`, as listed) and make `target` lead to
        `local_path`; `target` is new."""
        single = not os.path.isdir(local_path)
        taken: dict[str, Taken] = {}
        for found in files:
            taken["" if single else found.relative] = (found.size, found.mtime_ns, found.inode)
        manifest = self._manifest_path(target)
        os.makedirs(os.path.dirname(manifest), exist_ok=True)
        with open(manifest, "w", encoding="utf-8") as out:
            json.dump(taken, out)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.path.abspath(local_path), target)

    def find(self, path: str) -> Snapshot | None:
        """The snapshot that `path` (a file or folder) is, or is in."""
        return self._snapshot_of(os.path.dirname(path)) or self._load(path)

    def check(self, path: str) -> None:
        """Raises ChangedInputError if `path` is a snapshot's file and changed since it was taken."""
        snapshot = self.find(path)
        if snapshot is None:
            return
        # A path under the target starts with it: cheaper than relpath, for every file of a job.
        taken = snapshot.files.get(path[len(snapshot.target) + 1 :].replace(os.sep, "/"))
        if taken is None:
            return
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise ChangedInputError(f"{path} was removed after the job was invoked; {_AGAIN}") from None
        size, mtime_ns, inode = taken
        if info.st_ino != inode:
            raise ChangedInputError(f"{path} was replaced by another file after the job was invoked; {_AGAIN}")
        if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
            raise ChangedInputError(
                f"{path} was written after the job was invoked (it was {size} bytes, now {info.st_size}); {_AGAIN}"
            )

    def forget(self, target: str) -> None:
        """Remove the manifests of the snapshots at or under `target`."""
        if self._is_inside(target):
            shutil.rmtree(os.path.dirname(self._manifest_path(target)), ignore_errors=True)
        self._by_folder.clear()

    def _manifest_path(self, target: str) -> str:
        if not self._is_inside(target):
            raise ValueError(f"{target} is not under the store's root {self.root}")
        return os.path.join(self.folder, os.path.relpath(target, self.root), MANIFEST)

    def _snapshot_of(self, folder: str) -> Snapshot | None:
        if folder in self._by_folder:
            return self._by_folder[folder]
        found: Snapshot | None = None
        if self._is_inside(folder) and os.path.isdir(self.folder):
            parts = os.path.relpath(folder, self.root).split(os.sep)
            # Outermost first: a folder of the user's, inside a snapshot, is never taken for a snapshot's target.
            for depth in range(1, len(parts) + 1):
                found = self._load(os.path.join(self.root, *parts[:depth]))
                if found is not None:
                    break
        self._by_folder[folder] = found
        return found

    def _is_inside(self, path: str) -> bool:
        relative = os.path.relpath(path, self.root)
        return relative not in (os.curdir, os.pardir) and not relative.startswith(os.pardir + os.sep)

    def _load(self, target: str) -> Snapshot | None:
        if not self._is_inside(target):
            return None
        try:
            with open(self._manifest_path(target), encoding="utf-8") as f:
                files = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Snapshot(target, {name: (size, mtime, inode) for name, (size, mtime, inode) in files.items()})


_AGAIN = "the job reads a local input as it was at invoke; invoke a new job to score the file as it is now"
