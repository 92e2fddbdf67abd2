"""The files of a file or folder on this machine, as the system reads them: every file of data, scoring code
without its caches.

Data is data: every regular file under an input folder is input, whatever its name (dotfiles, `.tmp-` names,
`*.pyc`, `__pycache__/`, `.git/`); a job leaves files out only when its input says so (`exclude`). Scoring code
and model folders leave out what Python, git and Jupyter write beside code (`CODE_JUNK`, `*.pyc`).

Symbolic links are followed: a link to a file is that file, under the link's name; a link to a folder is walked
as that folder. What cannot be read as files is refused before anything is copied or planned, naming the path
and what was expected: a link that leads nowhere, a link to itself or around a circle of links, a link back to a
folder it is in (which would be walked forever), a file or folder this user may not read, and anything that is
neither a file nor a folder (a FIFO would block its reader forever).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from batch_endpoints.errors import ValidationError

CODE_JUNK = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})
CODE_JUNK_SUFFIX = ".pyc"

_UNREADABLE = "cannot be read (permission denied); expected {} this user can read"

FolderId = tuple[int, int]
"""(device, inode): a folder, however it is reached."""


@dataclass(frozen=True)
class LocalFile:
    relative: str
    """The path under the folder walked, "/"-separated; the file's own name for a single file."""
    path: str
    """Where it is read, through the links it was reached by."""
    size: int
    mtime_ns: int = field(default=0, compare=False)
    inode: int = field(default=0, compare=False)
    """When it was listed: what a snapshot of it records (adapters/local/snapshots), without stat-ing it again."""


def input_files(path: str, *, field: str | None = "input") -> list[LocalFile]:
    """Every file of the file or folder `path`, in order of relative path."""
    info = _stat(path, field)
    if stat.S_ISDIR(info.st_mode):
        return folder_files(path, field=field)
    _check_file(path, info, field)
    return [LocalFile(os.path.basename(path), path, info.st_size, info.st_mtime_ns, info.st_ino)]


def code_files(folder: str, *, field: str | None) -> list[str]:
    """The relative paths of a code or model folder's files, without caches, version control and bytecode."""
    return [
        found.relative
        for found in folder_files(folder, field=field, leave_out=lambda name: name in CODE_JUNK)
        if not found.relative.endswith(CODE_JUNK_SUFFIX)
    ]


def folder_files(
    root: str,
    *,
    field: str | None = "input",
    leave_out: Callable[[str], bool] | None = None,
    never_enter: Container[FolderId] = (),
) -> list[LocalFile]:
    """Every file under the folder `root`, in order of relative path. `leave_out` names folders not walked;
    `never_enter` are folders not walked wherever they are reached (a store's own staging folder)."""
    top = _stat(root, field)
    found: list[LocalFile] = []
    # Each folder to walk with the folders it lies in: a link to one of those is a loop.
    stack: list[tuple[str, str, tuple[FolderId, ...]]] = [(root, "", ((top.st_dev, top.st_ino),))]
    while stack:
        folder, prefix, ancestors = stack.pop()
        for entry in _entries(folder, field):
            if leave_out is not None and leave_out(entry.name):
                continue
            info = _stat(entry.path, field)
            if stat.S_ISDIR(info.st_mode):
                identity = (info.st_dev, info.st_ino)
                if identity in ancestors:
                    raise _refused(
                        entry.path,
                        f"is a link to {os.readlink(entry.path)!r}, a folder it is in (a loop); expected a file "
                        "or a folder that does not contain the link",
                        field,
                    )
                if identity not in never_enter:
                    stack.append((entry.path, f"{prefix}{entry.name}/", (*ancestors, identity)))
            else:
                _check_file(entry.path, info, field)
                found.append(
                    LocalFile(f"{prefix}{entry.name}", entry.path, info.st_size, info.st_mtime_ns, info.st_ino)
                )
    found.sort(key=lambda f: f.relative)
    return found


def _entries(folder: str, field: str | None) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except PermissionError:
        raise _refused(folder, _UNREADABLE.format("a folder"), field) from None


def _stat(path: str, field: str | None) -> os.stat_result:
    """What `path` is, links followed; refused when a link leads nowhere or in a circle."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise _refused(
                path, f"is a link to {os.readlink(path)!r}, which does not exist; expected a file or a folder", field
            ) from None
        raise _refused(path, "does not exist", field) from None
    except PermissionError:
        raise _refused(path, _UNREADABLE.format("a file or a folder"), field) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refused(
                path,
                f"is a link to {os.readlink(path)!r}, which leads back to itself (a loop of links); expected a "
                "file or a folder",
                field,
            ) from None
        # A name too long, a component that is a file, an I/O error: the path cannot be a file or folder here.
        raise _refused(path, f"cannot be read ({error.strerror}); expected a file or a folder", field) from None


def _check_file(path: str, info: os.stat_result, field: str | None) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise _refused(path, "is neither a file nor a folder (a FIFO, socket or device); expected a file", field)
    if not os.access(path, os.R_OK):
        raise _refused(path, _UNREADABLE.format("a file"), field)


def _refused(path: str, expected: str, field: str | None) -> ValidationError:
    return ValidationError(f"{path} {expected}", field=field)
