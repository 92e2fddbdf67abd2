"""The entries of requirements.lock, with their hashes, that one install needs: the scoring images install these
with `pip install --require-hashes`, so every file an image holds is the one the project was tested with.

The lock pins the `dev` extra, far more than an image needs (moto, pytest, the CDK). pip-compile writes under each
entry which entries pulled it in (`# via`); the subset is what those links reach from the project's core
dependencies, the extras asked for, its build requirement (setuptools, to install the project itself without
fetching anything unchecked) and any other names given. pip checks the result: in hash-checking mode a dependency
missing from the file is refused, not fetched.

    python -m batch_endpoints.lock_subset requirements.lock pyproject.toml --extras runner,torch,mlflow \
        --with boto3 --without torch > image.lock

`--without` leaves out a package but not what it pulls in: the images take torch from PyTorch's own index, whose
builds are other files than the one the lock's hash names (tools/lock.py says why the lock holds that one), after
its dependencies are installed from this subset, checked.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = "batch-endpoints"
# An entry starts at a line that names a package; its `--hash` lines and `# via` comments follow, indented.
_ENTRY_START = re.compile(r"^[A-Za-z0-9]", re.M)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRAS = re.compile(r"\[([^\]]*)\]")


def canonical(name: str) -> str:
    """A package's name as pip compares names (PEP 503): case and runs of '-', '_', '.' do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Entry:
    name: str
    text: str
    """The pin and its hash lines, without the comments."""
    pulled_in_by: frozenset[str]


def entries(lock_text: str) -> dict[str, Entry]:
    """The lock's entries by canonical name."""
    starts = [match.start() for match in _ENTRY_START.finditer(lock_text)]
    found = {}
    for start, end in zip(starts, [*starts[1:], len(lock_text)], strict=True):
        lines = lock_text[start:end].splitlines()
        pin = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        # `# via a` or `# via` then `#   a` lines, indented; a comment at the margin (pip-compile's closing
        # warning) belongs to no entry.
        via = " ".join(line.strip().lstrip("#") for line in lines if line[:1].isspace() and "#" in line[:8])
        parents = [word for word in via.split() if word != "via" and _NAME.fullmatch(word)]
        name = _name(lines[0])
        found[name] = Entry(name, "\n".join(pin) + "\n", frozenset(canonical(p) for p in parents))
    return found


def _name(requirement: str) -> str:
    match = _NAME.match(requirement.strip())
    if match is None:
        raise ValueError(f"{requirement!r} does not start with a package name")
    return canonical(match.group(0))


def requirement_names(requirements: Iterable[str], extras_of: Mapping[str, list[str]]) -> set[str]:
    """The names `requirements` ask for, the project's own extras (`batch-endpoints[a,b]`) expanded."""
    names: set[str] = set()
    for requirement in requirements:
        name = _name(requirement)
        if name != PROJECT:
            names.add(name)
            continue
        extras = _EXTRAS.search(requirement)
        for extra in extras.group(1).split(",") if extras else []:
            names |= requirement_names(extras_of[extra.strip()], extras_of)
    return names


def roots(pyproject: Mapping[str, Any], extras: Iterable[str]) -> set[str]:
    """What installing the project with `extras` asks for directly (pyproject.toml read as a mapping), and what
    building it needs."""
    project, build = pyproject["project"], pyproject["build-system"]
    extras_of: dict[str, list[str]] = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(extras_of))
    if unknown:
        raise ValueError(f"the project has no extra {', '.join(unknown)} (it has {', '.join(sorted(extras_of))})")
    wanted = [*project["dependencies"], *build["requires"], f"{PROJECT}[{','.join(extras)}]"]
    return requirement_names(wanted, extras_of)


def subset(lock_text: str, wanted: Iterable[str], *, without: Iterable[str] = ()) -> str:
    """The lock's entries that `wanted` need, each with its hashes; `without` left out, though not what they pull
    in. Raises ValueError for a wanted name the lock does not pin."""
    locked = entries(lock_text)
    left_out = {canonical(name) for name in without}
    missing = sorted({canonical(name) for name in wanted} - set(locked) - left_out)
    if missing:
        raise ValueError(f"requirements.lock pins no {', '.join(missing)}: run `make lock`")
    pulls: dict[str, set[str]] = {}
    for entry in locked.values():
        for parent in entry.pulled_in_by:
            pulls.setdefault(parent, set()).add(entry.name)
    needed: set[str] = set()
    pending = [canonical(name) for name in wanted]
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(pulls.get(name, ()))
    return "".join(locked[name].text for name in sorted(needed - left_out))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m batch_endpoints.lock_subset", description=__doc__)
    parser.add_argument("lock", type=Path)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extras", default="", help="the project's extras, comma-separated")
    parser.add_argument("--with", dest="plus", action="append", default=[], help="another package to install")
    parser.add_argument("--without", action="append", default=[], help="a package installed otherwise")
    args = parser.parse_args(argv)
    pyproject = tomllib.loads(args.pyproject.read_text())
    extras = [extra for extra in args.extras.split(",") if extra]
    try:
        text = subset(args.lock.read_text(), roots(pyproject, extras) | set(args.plus), without=args.without)
    except ValueError as error:
        raise SystemExit(f"lock_subset: {error}") from None
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
