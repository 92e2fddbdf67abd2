"""requirements.lock as pip constraints: each pinned version, without its hashes.

The lock carries hashes, and `make` installs it with `--require-hashes`. Given whole as a constraints file, pip
23 (what a new Python 3.11 virtual environment has) turns hash checking on for the whole install, then refuses
every requirement not pinned with `==`: the Lambda bundles' own requirements are ranges (pyproject.toml's). The
versions alone constrain the same way. (The scoring images install with the hashes: batch_endpoints/lock_subset.py.)
"""

from __future__ import annotations

import re

# `name==version`, with extras or an environment marker, before the line's `\` and its `--hash` lines.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?==[^\s\\;]+(?:\s*;[^\\\n]*)?)", re.M)


def constraints(lock_text: str) -> str:
    return "".join(match.group(1).strip() + "\n" for match in PIN.finditer(lock_text))
