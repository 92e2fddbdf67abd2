"""`job stream`: follow a job to its end with a progress bar, then say where its output is."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO, TypeVar

from batch_endpoints.cli.progress import StatusLine, bar
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import Job, JobCounts, JobStatus

# Without a terminal (CI logs, pipes) print a line only when something changed, and at most this often.
PLAIN_PRINT_EVERY_S = 2.0


def progress_line(job: JobState, progress: dict[str, int], elapsed_s: float) -> str:
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


class JobState(Protocol):
    """What a progress line shows of a job: the core's record, or the API's view of it."""

    status: JobStatus
    counts: JobCounts


JobT = TypeVar("JobT", bound=JobState)


def follow(
    service: BatchEndpointService,
    job_id: str,
    *,
    out: TextIO | None = None,
    interval_s: float = 0.5,
    timeout_s: float | None = None,
) -> Job:
    return watch(
        lambda: (service.get_job(job_id), service.job_progress(job_id)),
        out=out or sys.stderr,
        interval_s=interval_s,
        timeout_s=timeout_s,
    )


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
