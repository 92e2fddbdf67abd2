"""Ending a process together with every process it started: each worker and runner leads a process group.

Killing only a process leaves what it started (a `subprocess` in run(), a data loader's workers) running, with no
one left to stop them. Their group outlives the leader's exit, so killing the group still reaches them.
"""

from __future__ import annotations

import contextlib
import os
import signal


def kill_group(leader: int) -> None:
    """SIGKILL the process group that `leader` leads: it and its descendants (those that did not leave it).

    Call it before the leader is reaped where possible. After that its PID, and so the group's number, stays
    reserved only while some member of the group lives; a group without members is simply not found.
    """
    # ProcessLookupError: no such group (the leader never got to create it, or all of it has ended).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader, signal.SIGKILL)
