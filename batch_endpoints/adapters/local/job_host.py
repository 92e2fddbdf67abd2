"""The local stand-in for the cloud's state machine: plan → shards on instances → finalize; on error, mark failed.

Each instance is a long-lived runner process (`python -m batch_container --shards-from-stdin`), the same runner
the AWS Batch container runs. Instances pull shards from one queue, so a slow shard never idles the others; a
shard whose instance dies is retried on a fresh instance, as AWS Batch retries a job on a reclaimed Spot host.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque

from batch_endpoints.adapters.local import host_lock, pipeline_host
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.backend import Backend, local_home
from batch_endpoints.errors import BatchEndpointError
from batch_endpoints.fetch_sizing import CPUS_VARIABLE
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.process_groups import kill_group
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Compute, Job, JobStatus

log = logging.getLogger("bep.job_host")

SHARD_ATTEMPTS = 3
WATCH_INTERVAL_S = 0.5
STOP_GRACE_S = 5.0


class InstancePool:
    def __init__(self, backend: Backend, job: Job) -> None:
        self.backend = backend
        self.repo = Repository(backend.records)
        self.job = job
        self.pending: deque[tuple[str, int]] = deque()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.processes: set[subprocess.Popen[str]] = set()
        self.first: subprocess.Popen[str] | None = None
        self.log_dir = to_path(JobFiles(backend.blobs, job.scratch_uri).logs)

    @functools.cached_property
    def compute(self) -> Compute | None:
        return self.backend.computes.get(self.job.deployment.compute)

    @property
    def instance_count(self) -> int:
        """The job's instance_count, within a created compute's max_instances (the backend's own computes are
        this machine, and take what a job asks)."""
        requested = self.job.settings.instance_count
        if self.compute is None or self.compute.built_in:
            return requested
        return max(1, min(requested, self.compute.max_instances))

    def start_first(self) -> None:
        """Start one instance before the plan exists: its workers import their libraries and run init() while
        the plan is written, which on a small job is a large part of the time to the first result."""
        self.first = self._start_instance(0)

    def run(self, shard_uris: list[str]) -> None:
        """Run the shards on up to instance_count instances (no more than there are shards, nor than the compute's
        max_instances)."""
        self.pending.extend((uri, 1) for uri in shard_uris)
        count = min(self.instance_count, len(shard_uris))
        threads = [threading.Thread(target=self._instance, args=(n,), daemon=True) for n in range(count)]
        for thread in threads:
            thread.start()
        while alive := [t for t in threads if t.is_alive()]:
            if not self.stopping.is_set() and self._must_stop():
                self.stop()
            alive[0].join(WATCH_INTERVAL_S)  # returns as soon as the work is over: no sleep to wait out

    def reap(self) -> None:
        """Wait for the instances, told to finish, to exit. Their work is already in storage, so the job host
        finalizes first and reaps after: the interpreters' exit costs the job nothing."""
        with self.lock:
            exiting = list(self.processes)
            self.processes.clear()
        for process in exiting:
            _close(process)

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            live = list(self.processes)
        for process in live:
            _terminate(process)

    def _must_stop(self) -> bool:
        job = self.repo.get_job(self.job.id)
        if job.status in {JobStatus.CANCEL_REQUESTED, JobStatus.CANCELED, JobStatus.FAILED}:
            return True
        threshold = self.job.settings.error_threshold
        return threshold >= 0 and self.repo.job_progress(self.job.id).get("files_failed", 0) > threshold

    def _next_shard(self) -> tuple[str, int] | None:
        with self.lock:
            if self.stopping.is_set() or not self.pending:
                return None
            return self.pending.popleft()

    def _instance(self, number: int) -> None:
        process = self.first if number == 0 else None
        try:
            while (work := self._next_shard()) is not None:
                uri, attempt = work
                if process is None or process.poll() is not None:
                    process = self._start_instance(number)
                outcome = _run_shard(process, uri)
                if outcome != "done":
                    log.warning("instance %d: shard %s attempt %d failed: %s", number, uri, attempt, outcome)
                    if attempt < SHARD_ATTEMPTS and not self.stopping.is_set():
                        with self.lock:
                            self.pending.append((uri, attempt + 1))
        finally:
            if process is not None and process.poll() is None and process.stdin:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # end of input: the instance finishes and exits on its own

    def _start_instance(self, number: int) -> subprocess.Popen[str]:
        cores = os.cpu_count() or 1
        environment = {
            **os.environ,
            **self.backend.child_environment,
            CPUS_VARIABLE: str(max(1, cores // self.instance_count)),
        }
        if self.compute is None or self.compute.kind == "cpu":
            environment["CUDA_VISIBLE_DEVICES"] = ""  # CPU compute: scoring code must not find the GPU
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "batch_container",
                "--job-id",
                self.job.id,
                "--shards-from-stdin",
                "--instance",
                str(number),
                "--log-dir",
                self.log_dir,
            ],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            # A group of its own (with its fork server; each worker leads its own): a cancel that finds the
            # runner stuck kills the group, not only the runner.
            process_group=0,
        )
        with self.lock:
            self.processes.add(process)
        return process


def _run_shard(process: subprocess.Popen[str], uri: str) -> str:
    """Hand one shard to an instance and wait for its answer line: 'done' or why not."""
    assert process.stdin and process.stdout
    try:
        process.stdin.write(uri + "\n")
        process.stdin.flush()
    except (BrokenPipeError, OSError):
        return f"instance exited (code {process.wait()})"
    line = process.stdout.readline().strip()
    if not line:
        return f"instance exited (code {process.wait()})"
    verdict, _, rest = line.partition(" ")
    return "done" if verdict == "done" else rest or line


def _close(process: subprocess.Popen[str]) -> None:
    if process.poll() is None and process.stdin:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=STOP_GRACE_S * 6)
    except subprocess.TimeoutExpired:
        _kill(process)


def _terminate(process: subprocess.Popen[str]) -> None:
    """Ask the runner to stop (it ends its workers and their groups); kill its group if it has not within the
    grace."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill(process)


def _kill(process: subprocess.Popen[str]) -> None:
    kill_group(process.pid)  # before the wait below reaps it, while its PID still names its group
    process.kill()
    process.wait()  # reaped: the host leaves no zombie behind


def run_job(backend: Backend, job_id: str) -> Job:
    pool: InstancePool | None = None
    try:
        job = Repository(backend.records).get_job(job_id)
        if job.pipeline is not None:
            return pipeline_host.run_pipeline(backend, job, run_job)
        # Queued: a new job. Running: a resumed one (its host died); the plan is kept and its runners skip
        # mini-batches that have a result. Otherwise only finalizing is left (or a cancel request to close).
        if job.status in {JobStatus.QUEUED, JobStatus.RUNNING}:
            pool = InstancePool(backend, job)
            pool.start_first()
    except Exception as error:
        return _failed(backend, job_id, error)
    # Imported only now: planning, merging and finalizing cost this process about 0.3 s to import, which the first
    # instance's start (its interpreter, then its workers' libraries: the path to the first part) need not wait for.
    from batch_endpoints import workflow

    try:
        if pool is not None:
            try:
                plan = workflow.plan_job(backend, job_id)
                pool.run(plan.shard_uris)
            finally:
                pool.reap()
        return workflow.finalize_job(backend, job_id)
    except Exception as error:
        return _failed(backend, job_id, error)


def _failed(backend: Backend, job_id: str, error: Exception) -> Job:
    from batch_endpoints import workflow

    if isinstance(error, BatchEndpointError):
        return workflow.mark_failed(backend, job_id, str(error))
    log.exception("job %s failed", job_id, exc_info=error)
    return workflow.mark_failed(backend, job_id, f"{type(error).__name__}: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch_endpoints.adapters.local.job_host")
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--lock-fd", type=int, help="the job's host lock, taken by the starter (default: take it here)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    backend = open_local_backend(local_home())
    if args.lock_fd is not None:
        host_lock.keep(args.lock_fd)
    elif host_lock.take(Repository(backend.records).get_job(args.job_id)) is None:
        log.error("job %s already has a running job host", args.job_id)
        return 1
    job = run_job(backend, args.job_id)
    log.info("job %s ended %s%s", job.id, job.status.value, f": {job.error}" if job.error else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
