"""Starts each job in a job-host process of its own, detached, so jobs outlive the command that invoked them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from batch_endpoints.adapters.local import host_lock
from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.errors import ConflictError
from batch_endpoints.specs import Job


class LocalOrchestrator:
    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self._hosts: list[subprocess.Popen[bytes]] = []

    def start(self, job: Job) -> str:
        self._reap_ended_hosts()
        # Locked here and handed over, so the job counts as running from this moment, not from when the new
        # interpreter gets round to locking it.
        lock = host_lock.take(job)
        if lock is None:
            raise ConflictError(f"job {job.id} already has a running job host", field="job")
        logs = os.path.join(to_path(job.scratch_uri), "logs")
        os.makedirs(logs, exist_ok=True)
        try:
            with open(os.path.join(logs, "job-host.log"), "ab") as log:
                host = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "batch_endpoints.adapters.local.job_host",
                        "--job-id",
                        job.id,
                        "--lock-fd",
                        str(lock),
                    ],
                    env={**os.environ, **self.environment},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(lock,),
                    start_new_session=True,  # a Ctrl-C in the invoking terminal must not kill the job
                )
        finally:
            os.close(lock)  # the host's copy holds the lock now
        self._hosts.append(host)
        return f"local-process:{host.pid}"

    def cancel(self, job: Job) -> None:
        # A live host sees the cancel request within a second and stops its instances. A host that is gone
        # (machine rebooted, process killed) is started again: it finds the request and closes the job.
        if not self.is_running(job):
            with contextlib.suppress(ConflictError):  # a host started meanwhile: it finds the request
                self.start(job)

    def is_running(self, job: Job) -> bool:
        self._reap_ended_hosts()
        return host_lock.is_held(job)

    def resume(self, job: Job) -> str:
        # A new host picks the job up where its record says it is: it keeps the plan, its runners skip the
        # mini-batches that have a result, and it finalizes.
        return self.start(job)

    def _reap_ended_hosts(self) -> None:
        """Collect the hosts this process started that have ended, so a long-lived server leaves no zombies."""
        self._hosts = [host for host in self._hosts if host.poll() is None]
