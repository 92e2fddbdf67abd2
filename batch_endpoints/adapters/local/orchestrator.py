"""Starts each job in a job-host process of its own, detached, so jobs outlive the command that invoked them."""

from __future__ import annotations

import os
import subprocess
import sys

from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.specs import Job


class LocalOrchestrator:
    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self._hosts: dict[str, subprocess.Popen] = {}

    def start(self, job: Job) -> str:
        logs = os.path.join(to_path(job.scratch_uri), "logs")
        os.makedirs(logs, exist_ok=True)
        with open(os.path.join(logs, "job-host.log"), "ab") as log:
            host = subprocess.Popen(
                [sys.executable, "-m", "batch_endpoints.adapters.local.job_host", "--job-id", job.id],
                env={**os.environ, **self.environment},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the invoking terminal must not kill the job
            )
        self._hosts[job.id] = host
        return f"local-process:{host.pid}"

    def cancel(self, job: Job) -> None:
        # A live host sees the cancel request within a second and stops its instances. A host that is gone
        # (machine rebooted, process killed) is started again: it finds the request and closes the job.
        if not self.is_running(job):
            self.start(job)

    def is_running(self, job: Job) -> bool:
        return _alive(job.execution, self._hosts.get(job.id))

    def resume(self, job: Job) -> str:
        # A new host picks the job up where its record says it is: it keeps the plan, its runners skip the
        # mini-batches that have a result, and it finalizes.
        return self.start(job)


def _alive(execution: str, host: subprocess.Popen | None) -> bool:
    if host is not None:
        return host.poll() is None
    _, _, pid = execution.rpartition(":")
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
