"""The local stand-in for a pipeline job's workflow: its steps in dependency order, independent ones side by side up
to the default compute's instances, each command step a process (a group of its own, as runners are) in a working
folder of its own.

A step reads its data inputs in place, writes its outputs to local folders that are stored when it completes, and
its stdout and stderr go to its log. The host alone writes the job's record; the step threads only report.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from batch_endpoints import pipeline_jobs
from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.backend import Backend
from batch_endpoints.command_steps import prepare_command, store_outputs
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.pipeline_graph import pipeline_steps
from batch_endpoints.process_groups import kill_group
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Job, JobStatus, StepRun, StepStatus, now
from batch_endpoints.specs.components import CommandComponent, ParallelComponent

log = logging.getLogger("bep.pipeline_host")

WATCH_INTERVAL_S = 0.5
_StepChange = Callable[[StepRun], StepRun]


@dataclass
class _RunningStep:
    thread: threading.Thread = field(default_factory=threading.Thread)
    process: subprocess.Popen[bytes] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: bool = False
    child_job: str | None = None
    """A parallel step's own job, run by the mini-batch engine."""


RunJob = Callable[[Backend, str], Job]
"""Runs a model deployment's job to its end (the job host's run_job): how a parallel step runs."""


class PipelineHost:
    def __init__(self, backend: Backend, job: Job, run_job: RunJob) -> None:
        assert job.pipeline is not None and job.deployment.component is not None, "a pipeline job"
        self.job = job
        self.pipeline = job.deployment.component
        self.run_job = run_job
        self.backend = backend
        self.repo = Repository(backend.records)
        self.job_id = job.id
        self.components = pipeline_steps(job.deployment.component)
        settings = job.deployment.pipeline_settings
        self.continue_on_failure = settings is not None and settings.continue_on_step_failure
        self.max_parallel = job.pipeline.max_parallel_steps
        self.scratch = to_path(job.scratch_uri)
        self.logs = JobFiles(backend.blobs, job.scratch_uri).logs
        self.running: dict[str, _RunningStep] = {}

    def run(self) -> Job:
        job = self._update_steps(pipeline_jobs.reset_unfinished, status=JobStatus.RUNNING)
        while True:
            if job.status == JobStatus.CANCEL_REQUESTED:
                return self._cancel()
            job = self._collect_ended()
            failed = any(run.status == StepStatus.FAILED for run in _steps(job))
            if failed and not self.continue_on_failure:
                self._stop_all()
                return self._end(JobStatus.FAILED)
            job = self._skip_blocked(job)
            ready = pipeline_jobs.ready_steps(_steps(job))[: self.max_parallel - len(self.running)]
            for run in ready:
                job = self._start(run)
            if not self.running:
                return self._end(JobStatus.FAILED if failed else JobStatus.COMPLETED)
            next(iter(self.running.values())).thread.join(WATCH_INTERVAL_S)
            job = self.repo.get_job(self.job_id)

    # ------------------------------------------------------------------ record
    def _update_steps(self, change: _StepChange, *, status: JobStatus | None = None) -> Job:
        def update(current: Job) -> Job:
            assert current.pipeline is not None
            steps = [change(run) for run in current.pipeline.steps]
            fields: dict[str, object] = {"pipeline": current.pipeline.model_copy(update={"steps": steps})}
            if status is not None and not current.status.is_final and current.status != JobStatus.CANCEL_REQUESTED:
                fields["status"] = status
                fields["started_at"] = current.started_at or now()
            return current.model_copy(update=fields)

        return self.repo.update_job(self.job_id, update)

    def _set_step(self, name: str, **fields: object) -> Job:
        return self._update_steps(lambda run: run.model_copy(update=fields) if run.step == name else run)

    def _end(self, status: JobStatus) -> Job:
        def end(current: Job) -> Job:
            if current.status.is_final:
                return current
            error = pipeline_jobs.failure_summary(_steps(current))
            return current.model_copy(update={"status": status, "error": error, "ended_at": now()})

        return self.repo.update_job(self.job_id, end)

    # ------------------------------------------------------------------ steps
    def _start(self, run: StepRun) -> Job:
        log_uri = self.backend.blobs.join(self.logs, f"step-{run.step}.log")
        job = self._set_step(run.step, status=StepStatus.RUNNING, started_at=now(), log_uri=log_uri, error=None)
        running = _RunningStep()
        running.thread = threading.Thread(target=self._run_step, args=(run, running, to_path(log_uri)), daemon=True)
        self.running[run.step] = running
        running.thread.start()
        return job

    def _collect_ended(self) -> Job:
        job = self.repo.get_job(self.job_id)
        for name, running in list(self.running.items()):
            if running.thread.is_alive():
                continue
            del self.running[name]
            status = StepStatus.COMPLETED if running.error is None else StepStatus.FAILED
            job = self._set_step(name, status=status, ended_at=now(), error=running.error)
        return job

    def _skip_blocked(self, job: Job) -> Job:
        blocked = {run.step for run in pipeline_jobs.blocked_steps(_steps(job))}
        if not blocked:
            return job
        return self._update_steps(
            lambda run: run.model_copy(update={"status": StepStatus.SKIPPED}) if run.step in blocked else run
        )

    def _run_step(self, run: StepRun, running: _RunningStep, log_path: str) -> None:
        try:
            component = self.components[run.step]
            if isinstance(component, CommandComponent):
                running.error = self._run_command(run, component, running, log_path)
            else:
                running.error = self._run_parallel(run, component, running)
        except Exception as error:  # a step's failure is the step's, recorded on it
            log.exception("step %s failed", run.step)
            running.error = f"{type(error).__name__}: {error}"

    def _run_command(
        self, run: StepRun, component: CommandComponent, running: _RunningStep, log_path: str
    ) -> str | None:
        folder = os.path.join(self.scratch, "steps", run.step)
        prepared = prepare_command(self.backend.blobs, run, component, folder)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "ab") as step_log:
            step_log.write(f"$ {prepared.command}\n".encode())
            step_log.flush()
            with running.lock:
                if running.stopped:
                    return "canceled"
                running.process = subprocess.Popen(
                    ["/bin/sh", "-c", prepared.command],
                    cwd=prepared.cwd,
                    env=prepared.environment,
                    stdin=subprocess.DEVNULL,
                    stdout=step_log,
                    stderr=subprocess.STDOUT,
                    process_group=0,  # a cancel kills what the command started too
                )
            code_returned = running.process.wait()
        if code_returned != 0:
            return f"its command exited with code {code_returned} (log: {log_path})"
        store_outputs(self.backend.blobs, prepared, run)
        return None

    def _run_parallel(self, run: StepRun, component: ParallelComponent, running: _RunningStep) -> str | None:
        """The step's job, made on its first run; a resumed step's job goes on where it stopped, keeping the
        mini-batches that have a result."""
        made = pipeline_jobs.parallel_step_job(self.job, run, self.pipeline.jobs[run.step], component)
        if pipeline_jobs.open_step_job(self.repo, made).status == JobStatus.COMPLETED:
            return None
        with running.lock:
            if running.stopped:
                return "canceled"
            running.child_job = made.id
        return pipeline_jobs.step_job_failure(self.run_job(self.backend, made.id))

    def _stop_all(self) -> None:
        for running in self.running.values():
            with running.lock:
                running.stopped = True
                if running.process is not None and running.process.poll() is None:
                    kill_group(running.process.pid)
                if running.child_job is not None:
                    # Its job host's pool sees the request, stops its instances, and closes the job Canceled.
                    self.repo.update_job(running.child_job, pipeline_jobs.request_cancel)
        for running in self.running.values():
            running.thread.join()
        stopped = set(self.running)
        self.running.clear()
        self._update_steps(
            lambda run: (
                run.model_copy(update={"status": StepStatus.CANCELED, "ended_at": now()})
                if run.step in stopped or run.status == StepStatus.NOT_STARTED
                else run
            )
        )

    def _cancel(self) -> Job:
        self._stop_all()
        return self._end(JobStatus.CANCELED)


def _steps(job: Job) -> list[StepRun]:
    assert job.pipeline is not None
    return job.pipeline.steps


def run_pipeline(backend: Backend, job: Job, run_job: RunJob) -> Job:
    return PipelineHost(backend, job, run_job).run()
