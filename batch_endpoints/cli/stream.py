"""`job stream`: follow a job to its end with a progress bar, then say where its output is."""

from __future__ import annotations

import sys
from typing import TextIO

from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.api.schemas import JobView
from batch_endpoints.progress import watch
from batch_endpoints.specs import Job, StepStatus


def follow(
    service: EndpointsApi,
    job_id: str,
    *,
    out: TextIO | None = None,
    interval_s: float = 0.5,
    timeout_s: float | None = None,
) -> Job | JobView:
    def poll() -> tuple[Job | JobView, dict[str, int]]:
        job = service.get_job(job_id)
        return job, service.job_progress(_counted_job(job))

    return watch(
        poll,
        out=out or sys.stderr,
        interval_s=interval_s,
        timeout_s=timeout_s,
    )


def _counted_job(job: Job | JobView) -> str:
    """The job whose mini-batches the line counts: a pipeline's running parallel step's own job, or the job."""
    running = [] if job.pipeline is None else job.pipeline.steps
    parallel = [run.name for run in running if run.type == "parallel" and run.status == StepStatus.RUNNING]
    return parallel[0] if parallel else job.id
