"""Progress on stderr: one line redrawn in place on a terminal, with a bar. It draws an upload's bytes and a
job's mini-batches. Logs and pipes get no redrawing: a job's line is printed when it changes (at most every few
seconds), an upload's not at all, so what a script reads from stderr is the command's own messages."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
MIB = 1024 * 1024


def bar(fraction: float) -> str:
    """`[#########.....................]`: `fraction` (0 to 1) of it filled."""
    filled = int(WIDTH * min(max(fraction, 0.0), 1.0))
    return "[" + "#" * filled + "." * (WIDTH - filled) + "]"


class StatusLine:
    """A line on `out` redrawn in place on a terminal. Elsewhere a changed line is printed on a line of its own once
    `plain_every_s` seconds have passed since the last (the last line always), or never when that is None."""

    def __init__(self, out: TextIO, *, plain_every_s: float | None = None) -> None:
        self.out = out
        self.live = out.isatty()
        self.plain_every_s = plain_every_s
        self.shown: str | None = None
        self.printed_at: float | None = None

    def show(self, line: str, *, last: bool = False) -> None:
        if self.live:
            self.out.write("\r" + line)
        elif self.plain_every_s is None or line == self.shown:
            return
        elif last or self.printed_at is None or time.monotonic() - self.printed_at >= self.plain_every_s:
            self.out.write(line + "\n")
            self.printed_at = time.monotonic()
        else:
            return
        self.shown = line
        self.out.flush()

    def close(self) -> None:
        """Ends a line drawn in place, so that what comes next starts on a line of its own."""
        if self.live and self.shown is not None:
            self.out.write("\n")
            self.out.flush()
            self.shown = None


class ProgressBar:
    """Call it with (done, total) bytes as work moves; `close` ends the line. Redrawn when the percentage moves."""

    def __init__(self, label: str, out: TextIO | None = None) -> None:
        self.label = label
        self.line = StatusLine(out or sys.stderr)
        self.shown: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        if (percent, total) != self.shown:
            self.shown = (percent, total)
            self.line.show(
                f"{self.label} {bar(1.0 if total == 0 else done / total)} {percent:3d}% "
                f"{done / MIB:.1f}/{total / MIB:.1f} MiB"
            )

    def close(self) -> None:
        self.line.close()
