"""requirements.lock as pip constraints (batch_endpoints/lock_constraints.py): every pin, no hashes, so that pip
23's hash checking is never turned on for installs of version ranges (the Lambda bundles)."""

from __future__ import annotations

import re
from pathlib import Path

from batch_endpoints.lock_constraints import constraints

LOCK = (Path(__file__).resolve().parents[1] / "requirements.lock").read_text()


def test_every_pin_of_the_lock_and_nothing_else() -> None:
    pins = constraints(LOCK).splitlines()

    assert pins == [line.split(" \\")[0] for line in LOCK.splitlines() if re.match(r"[A-Za-z0-9]", line)]
    assert "torch==2.13.0" in pins
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+", pin) for pin in pins), pins


def test_extras_and_markers_are_kept_hashes_and_comments_dropped() -> None:
    lock = (
        "# header\n"
        "a==1.0 \\\n    --hash=sha256:00\n    # via b\n"
        'b[x,y]==2.0 ; python_version >= "3.11" \\\n    --hash=sha256:11 \\\n    --hash=sha256:22\n'
        "c==3\n"
    )

    assert constraints(lock) == 'a==1.0\nb[x,y]==2.0 ; python_version >= "3.11"\nc==3\n'
