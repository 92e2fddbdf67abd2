"""A progress bar on stderr for uploads, redrawn in place. Only for a terminal: logs and pipes get no bar, so
what a script reads from stderr is the command's own messages."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30
MIB = 1024 * 1024


class ProgressBar:
    """Call it with (done, total) bytes as work moves; `close` ends the line."""

    def __init__(self, label: str, out: TextIO | None = None) -> None:
        self.label = label
        self.out = out or sys.stderr
        self.live = self.out.isatty()
        self.shown: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        if self.live and (percent, total) != self.shown:
            self.shown = (percent, total)
            self.out.write("\r" + self._line(done, total))
            self.out.flush()

    def close(self) -> None:
        if self.live and self.shown is not None:
            self.out.write("\n")
            self.out.flush()

    def _line(self, done: int, total: int) -> str:
        filled = WIDTH if total == 0 else WIDTH * done // total
        percent = 100 if total == 0 else done * 100 // total
        bar = "#" * filled + "." * (WIDTH - filled)
        return f"{self.label} [{bar}] {percent:3d}% {done / MIB:.1f}/{total / MIB:.1f} MiB"
