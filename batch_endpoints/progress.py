"""Progress on stderr: one line redrawn in place on a terminal, with a bar. It draws an upload's bytes and a
job's mini-batches. Logs and pipes get no redrawing: a job's line is printed when it changes (at most every few
seconds), an upload's not at all, so what a script reads from stderr is the command's own messages."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO, TypeVar

from batch_endpoints.specs import JobCounts, JobStatus, PipelineRun, StepStatus

WIDTH = 30
MIB = 1024 * 1024
# Without a terminal (CI logs, pipes) print a line only when something changed, and at most this often.
PLAIN_PRINT_EVERY_S = 2.0


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


def progress_line(job: JobState, progress: dict[str, int], elapsed_s: float) -> str:
    if job.pipeline is not None:
        return pipeline_line(job.status, job.pipeline, progress)
    total_mb = job.counts.mini_batches
    done_mb = progress.get("mini_batches_done", 0)
    files_done = progress.get("files_succeeded", 0) + progress.get("files_failed", 0)
    fraction = done_mb / total_mb if total_mb else 0.0
    eta = f"{elapsed_s * (1 - fraction) / fraction:.0f}s" if 0 < fraction < 1 and not job.status.is_final else "-"
    # Known once the job has ended: the files it never ran (canceled, or stopped by its error_threshold).
    not_scored = f"  not scored {job.counts.files_not_scored}" if job.counts.files_not_scored else ""
    return (
        f"{job.status.value:<10} {bar(fraction)} mini-batches {done_mb}/{total_mb}  "
        f"{job.counts.unit} {files_done}/{job.counts.files}  failed {progress.get('files_failed', 0)}{not_scored}  "
        f"ETA {eta}"
    )


def pipeline_line(status: JobStatus, pipeline: PipelineRun, progress: dict[str, int]) -> str:
    """A pipeline job's steps done of all, the steps running, and a parallel step's mini-batches."""
    done = sum(run.status.is_final for run in pipeline.steps)
    running = [run.step for run in pipeline.steps if run.status == StepStatus.RUNNING]
    mini_batches = f"  mini-batches done {progress['mini_batches_done']}" if progress.get("mini_batches_done") else ""
    return (
        f"{status.value:<10} {bar(done / len(pipeline.steps))} steps {done}/{len(pipeline.steps)}  "
        f"running {', '.join(running) or '-'}{mini_batches}"
    )


class JobState(Protocol):
    """What a progress line shows of a job: the core's record, or the API's view of it."""

    status: JobStatus
    counts: JobCounts
    pipeline: PipelineRun | None


JobT = TypeVar("JobT", bound=JobState)


def watch(
    poll: Callable[[], tuple[JobT, dict[str, int]]],
    *,
    out: TextIO,
    interval_s: float,
    timeout_s: float | None = None,
) -> JobT:
    """Polls `poll` (the job and its progress counters) until the job ends or `timeout_s` passes, drawing the
    progress line on `out`; returns the job as last seen."""
    started = time.monotonic()
    status = StatusLine(out, plain_every_s=PLAIN_PRINT_EVERY_S)
    while True:
        job, progress = poll()
        status.show(progress_line(job, progress, time.monotonic() - started), last=job.status.is_final)
        if job.status.is_final or (timeout_s is not None and time.monotonic() - started > timeout_s):
            status.close()
            return job
        time.sleep(interval_s)
