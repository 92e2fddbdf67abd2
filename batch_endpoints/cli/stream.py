"""`job stream`: follow a job to its end with a progress bar, then say where its output is."""

from __future__ import annotations

import sys
from typing import TextIO

from batch_endpoints.progress import watch
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import Job


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
