"""A pipeline job's workflow as rounds, for an orchestrator that cannot hold the DAG in its state (a state
machine): pick the steps that are ready, run them side by side, record how each ended, and pick again, until no
step is left to run. The DAG and every step's status live in the job's record; a round carries only step names.

`pick_round` ends the job (Completed, Failed or Canceled) and `record_step` a step that ran, so each runs again (a
retried Lambda) with the same result; `close` ends a job whose execution ended outside the rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from batch_endpoints import pipeline_jobs
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import Job, JobStatus, PipelineRun, StepRun, StepStatus, now

UNRECORDED = "it ended without a recorded result"


@dataclass(frozen=True)
class Round:
    """What a round runs: the steps it started, in dependency order; none once the job has ended."""

    job: Job
    steps: list[StepRun]

    @property
    def done(self) -> bool:
        return self.job.status.is_final


def pick_round(job: Job, *, first: bool, most: int | None = None) -> Round:
    """The job with the next round's steps marked Running, or ended when none is left: no more steps than the
    default compute's instances, nor than `most` (what the orchestrator runs at once). The first round of an
    execution (a new job, or a resumed one) runs again every step that did not complete, keeping the outputs of
    those that did."""
    steps = _steps(job)
    if job.status.is_final:
        return Round(job, [])
    if job.status == JobStatus.CANCEL_REQUESTED:
        return Round(_end(job, _close_unfinished(steps, StepStatus.CANCELED), JobStatus.CANCELED), [])
    # A round's steps have all ended when the next is picked: one still Running lost its result.
    settle = pipeline_jobs.reset_unfinished if first else _unrecorded
    steps = [settle(run) for run in steps]
    failed = any(run.status == StepStatus.FAILED for run in steps)
    if failed and not _continues_on_failure(job):
        return Round(_end(job, _close_unfinished(steps, StepStatus.CANCELED), JobStatus.FAILED), [])
    steps = _close(steps, {run.step for run in pipeline_jobs.blocked_steps(steps)}, StepStatus.SKIPPED)
    limit = min(_pipeline(job).max_parallel_steps, most or _pipeline(job).max_parallel_steps)
    ready = {run.step for run in pipeline_jobs.ready_steps(steps)[:limit]}
    if not ready:
        return Round(_end(job, steps, JobStatus.FAILED if failed else JobStatus.COMPLETED), [])
    started = now()
    steps = [
        run.model_copy(update={"status": StepStatus.RUNNING, "started_at": started, "ended_at": None, "error": None})
        if run.step in ready
        else run
        for run in steps
    ]
    update = {
        "status": JobStatus.RUNNING,
        "started_at": job.started_at or started,
        "pipeline": _pipeline(job).model_copy(update={"steps": steps}),
    }
    return Round(job.model_copy(update=update), [run for run in steps if run.step in ready])


def record_step(job: Job, step: str, error: str | None) -> Job:
    """The job with `step` ended: Completed when `error` is None, else Failed with it. A step that has already
    ended (recorded before, or canceled) keeps what it has."""
    steps = _steps(job)
    if step not in {run.step for run in steps}:
        raise ValidationError(f"is not a step of job {job.id}", field="step")
    status = StepStatus.COMPLETED if error is None else StepStatus.FAILED
    ended = now()
    steps = [
        run.model_copy(update={"status": status, "ended_at": ended, "error": error})
        if run.step == step and not run.status.is_final
        else run
        for run in steps
    ]
    return job.model_copy(update={"pipeline": _pipeline(job).model_copy(update={"steps": steps})})


def close(job: Job, error: str) -> Job:
    """The job of an execution that ended outside its states (stopped by a cancel, or failed where no state saw
    it), closed: Canceled when a cancel was requested, else Failed with `error`; its steps that had not ended are
    Canceled. A job already ended keeps what it has."""
    if job.status.is_final:
        return job
    steps = _close_unfinished(_steps(job), StepStatus.CANCELED)
    if job.status == JobStatus.CANCEL_REQUESTED:
        return _end(job, steps, JobStatus.CANCELED)
    ended = _end(job, steps, JobStatus.FAILED)
    return ended.model_copy(update={"error": "; ".join(filter(None, [error, ended.error]))})


def _unrecorded(run: StepRun) -> StepRun:
    if run.status != StepStatus.RUNNING:
        return run
    return run.model_copy(update={"status": StepStatus.FAILED, "ended_at": now(), "error": UNRECORDED})


def _end(job: Job, steps: list[StepRun], status: JobStatus) -> Job:
    pipeline = _pipeline(job).model_copy(update={"steps": steps})
    error = pipeline_jobs.failure_summary(steps) if status != JobStatus.COMPLETED else None
    return job.model_copy(update={"status": status, "error": error, "ended_at": now(), "pipeline": pipeline})


def _close_unfinished(steps: list[StepRun], status: StepStatus) -> list[StepRun]:
    return _close(steps, {run.step for run in steps if not run.status.is_final}, status)


def _close(steps: list[StepRun], names: set[str], status: StepStatus) -> list[StepRun]:
    ended = now()
    return [
        run.model_copy(update={"status": status, "ended_at": ended if run.started_at else None})
        if run.step in names
        else run
        for run in steps
    ]


def _continues_on_failure(job: Job) -> bool:
    settings = job.deployment.pipeline_settings
    return settings is not None and settings.continue_on_step_failure


def _pipeline(job: Job) -> PipelineRun:
    if job.pipeline is None:
        raise ValidationError(f"job {job.id} is not a pipeline job", field="job_id")
    return job.pipeline


def _steps(job: Job) -> list[StepRun]:
    return _pipeline(job).steps
