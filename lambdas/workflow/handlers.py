"""The workflow's Lambda steps: plan, finalize, mark_failed (the state machine's), execution_ended (the
EventBridge rule's, when an execution stops or fails outside the states), and a pipeline job's pipeline_round and
pipeline_step_ended. Event and result shapes: lambdas.workflow.

Each handler is the core's workflow step plus the translation to and from the state machine's JSON. The
backend is opened once per Lambda container from its environment; tests put theirs in with `set_backend`.

Each step also publishes custom metrics (CloudWatch embedded metric format: one JSON line on stdout that
CloudWatch Logs turns into metrics) in the namespace BatchEndpoints with one dimension, `endpoint` (the job's
endpoint name). plan: JobsStarted (1), MiniBatchesPlanned, FilesPlanned. finalize, once per job that it ends:
JobsCompleted, JobsFailed or JobsCanceled (1, by the final status), FilesSucceeded, FilesFailed, FilesNotScored
(never run: the job stopped first), MiniBatchesScored (the job's mini-batches). mark_failed, when it ends a job:
JobsFailed (or JobsCanceled). execution_ended, when it ends a job: finalize's (a canceled job) or mark_failed's
(any other). A step run again on a job already ended publishes nothing, so retries do not count a job twice.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_endpoints import pipeline_jobs, pipeline_rounds, planning, workflow
from batch_endpoints.adapters.aws.backend import STATE_MACHINE_ARN
from batch_endpoints.adapters.aws.blobs import parse as parse_s3_uri
from batch_endpoints.adapters.aws.computes import attempt_duration_seconds
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.adapters.aws.pipeline_targets import RoundTargets
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.backend import Backend
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Job, JobStatus, StepStatus
from lambdas.core_logs import log_core_as
from lambdas.workflow.ended_executions import EndedExecution
from lambdas.workflow.failures import describe_failure

logger = Logger(service="bep-workflow")
log_core_as(logger)
tracer = Tracer(service="bep-workflow")
METRICS_NAMESPACE = "BatchEndpoints"
# No service name: the metrics' only dimension is the endpoint, which the dashboard's SEARCH expressions expect.
metrics = Metrics(namespace=METRICS_NAMESPACE)
ENDPOINT_DIMENSION = "endpoint"
FINAL_STATUS_METRICS = {
    JobStatus.COMPLETED: "JobsCompleted",
    JobStatus.FAILED: "JobsFailed",
    JobStatus.CANCELED: "JobsCanceled",
}

# A round's steps run in an inline Map, which runs up to 40 iterations at once (Step Functions, "Using Map state in
# Inline mode"): a round starts no more, and the next round starts the rest.
INLINE_MAP_CONCURRENCY = 40

_backend: Backend | None = None


def backend() -> Backend:
    global _backend
    if _backend is None:
        _backend = from_environment()
    return _backend


def publish_metrics(handler: Callable[..., Any]) -> Callable[..., Any]:
    """`metrics.log_metrics`, quiet when the step published nothing (a job already ended, a failed plan)."""
    logged = metrics.log_metrics(handler, raise_on_empty_metrics=False)

    @functools.wraps(handler)
    def wrapper(event: dict[str, Any], context: LambdaContext) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "No application metrics to publish")
            return logged(event, context)

    return wrapper


def set_backend(replacement: Backend | None) -> None:
    """Use `replacement` from now on; None opens the environment's backend again on next use."""
    global _backend
    _backend = replacement


@logger.inject_lambda_context(clear_state=True)
@publish_metrics
@tracer.capture_lambda_handler
def plan(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One step of the plan: the state machine calls it again while `planned` is false (the input's listing goes
    on), so each call lists a bounded window within the Lambda's 15 minutes and memory."""
    job_id = _job_id(event)
    result = workflow.plan_step(backend(), job_id)
    job = Repository(backend().records).get_job(job_id)
    per_shard = planning.mini_batches_per_shard(job.counts.mini_batches, job.settings.instance_count)
    bucket, key = parse_s3_uri(result.shard_index_uri)
    if result.planned:
        logger.info("planned", extra={"files": job.counts.files, "shards": job.counts.shards})
        _count(job, JobsStarted=1, MiniBatchesPlanned=job.counts.mini_batches, FilesPlanned=job.counts.files)
    else:
        logger.info("planning goes on", extra={"shards_so_far": len(result.shard_uris)})
    return {
        "job_id": job_id,
        "planned": result.planned,
        "shard_count": len(result.shard_uris),
        "shards_bucket": bucket,
        "shards_key": key,
        # The largest shard's: shards cut while the listing went on are no larger than the rule for all of them.
        "attempt_duration_s": attempt_duration_seconds(job.settings, per_shard),
    }


@logger.inject_lambda_context(clear_state=True)
@publish_metrics
@tracer.capture_lambda_handler
def finalize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = _job_id(event)
    before = Repository(backend().records).get_job(job_id)
    job = _finalize(before)
    output = job.output_uri if job.status == JobStatus.COMPLETED else None
    return {
        "job_id": job.id,
        "status": job.status.value,
        "error": job.error,
        "counts": job.counts.model_dump(),
        "output": output,
    }


@logger.inject_lambda_context(clear_state=True)
@publish_metrics
@tracer.capture_lambda_handler
def mark_failed(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    message = describe_failure(event.get("error"))
    job_id = _job_id(event)
    before = Repository(backend().records).get_job(job_id)
    job = workflow.mark_failed(backend(), job_id, message)
    if not before.status.is_final and job.status.is_final:
        _count(job, **{FINAL_STATUS_METRICS[job.status]: 1})
    logger.warning("marked failed", extra={"status": job.status.value, "error": message, "caught": event.get("error")})
    return {"job_id": job.id, "status": job.status.value, "error": job.error}


@logger.inject_lambda_context(clear_state=True)
@publish_metrics
@tracer.capture_lambda_handler
def execution_ended(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Close the job of an execution that ended outside the workflow's states. EventBridge delivers at least once,
    so the same event may come again: a job already final is left as it is."""
    ended = EndedExecution.from_event(event)
    if ended is None:
        logger.info("not a job's execution", extra={"detail": event.get("detail")})
        return {"job_id": None, "status": None, "closed": False}
    job_id = _job_id({"job_id": ended.job_id})
    try:
        before = Repository(backend().records).get_job(job_id)
    except NotFoundError:
        logger.warning("no such job", extra={"execution": ended.execution_arn})
        return {"job_id": job_id, "status": None, "closed": False}
    if before.status.is_final or not ended.is_current_of(before):
        logger.info("nothing to close", extra={"status": before.status.value, "execution": ended.execution_arn})
        return {"job_id": job_id, "status": before.status.value, "closed": False}
    if before.pipeline is not None:
        job = Repository(backend().records).update_job(job_id, lambda job: pipeline_rounds.close(job, ended.failure()))
        _cancel_step_jobs(job)
    elif before.status == JobStatus.CANCEL_REQUESTED or _parent_canceled(before):
        job = _finalize(before)
    else:
        # The safety net for what no Catch sees (States.DataLimitExceeded, States.Runtime, a stop by hand).
        job = workflow.mark_failed(backend(), job_id, ended.failure())
        if job.status.is_final:
            _count(job, **{FINAL_STATUS_METRICS[job.status]: 1})
        logger.warning("marked failed", extra={"status": job.status.value, "error": job.error})
    return {"job_id": job_id, "status": job.status.value, "closed": job.status.is_final}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def pipeline_round(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A pipeline job's next round: the steps it starts (names and types only, whatever the pipeline's size), or
    done once the job has ended. Round 0 is the execution's first (a new or resumed job)."""
    job_id = _job_id(event)
    number = int(event.get("round", 0))
    picked: list[pipeline_rounds.Round] = []

    def pick(job: Job) -> Job:
        picked[:] = [pipeline_rounds.pick_round(job, first=number == 0, most=INLINE_MAP_CONCURRENCY)]
        return picked[0].job

    repo = Repository(backend().records)
    job = repo.update_job(job_id, pick)
    steps = RoundTargets(repo, model_jobs()).steps(job, picked[0].steps)
    logger.info("round picked", extra={"round": number, "steps": [run["step"] for run in steps]})
    return {
        "job_id": job_id,
        "round": number + 1,
        "done": job.status.is_final,
        "status": job.status.value,
        "error": job.error,
        "steps": steps,
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def pipeline_step_ended(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record how one step of a round ended: `error` is null when it completed, else what the Catch handed over."""
    job_id = _job_id(event)
    step = str(event["step"])
    error = None if event.get("error") is None else describe_failure(event["error"])
    repo = Repository(backend().records)
    parent = repo.get_job(job_id)
    if parent.pipeline is not None and parent.pipeline.step(step).type == "parallel":
        # Its job's end says why, in its words: a canceled job's execution ends well, a failed one's Cause is
        # the execution's description.
        error = pipeline_jobs.step_job_failure(repo.get_job(parent.pipeline.step(step).name))
    job = repo.update_job(job_id, lambda job: pipeline_rounds.record_step(job, step, error))
    assert job.pipeline is not None
    recorded = job.pipeline.step(step)
    logger.info("step ended", extra={"step": step, "status": recorded.status.value, "error": recorded.error})
    return {"job_id": job_id, "step": step, "status": recorded.status.value}


def model_jobs() -> StepFunctionsOrchestrator:
    """The model-job state machine, where a pipeline's parallel steps run."""
    arn = os.environ.get(STATE_MACHINE_ARN, "")
    if not arn:
        raise ValidationError(f"the environment variable {STATE_MACHINE_ARN} is not set", field=STATE_MACHINE_ARN)
    return StepFunctionsOrchestrator(arn, computes=backend().computes)


def _cancel_step_jobs(job: Job) -> None:
    """Ask the parallel steps' jobs still open to stop: Step Functions stops their executions with the pipeline's,
    and their execution_ended then closes them Canceled."""
    assert job.pipeline is not None
    repo = Repository(backend().records)
    for run in job.pipeline.steps:
        if run.type == "parallel" and run.status == StepStatus.CANCELED and run.started_at is not None:
            with contextlib.suppress(NotFoundError):
                repo.update_job(run.name, pipeline_jobs.request_cancel)


def _parent_canceled(job: Job) -> bool:
    """Whether `job` is a pipeline's step whose pipeline was canceled: its execution stopped with the pipeline's."""
    if not job.parent_job_name:
        return False
    try:
        parent = Repository(backend().records).get_job(job.parent_job_name)
    except NotFoundError:
        return False
    return parent.status in (JobStatus.CANCEL_REQUESTED, JobStatus.CANCELED)


def _finalize(before: Job) -> Job:
    job = workflow.finalize_job(backend(), before.id)
    logger.info("finalized", extra={"status": job.status.value, "error": job.error})
    if not before.status.is_final and job.status.is_final:
        _count(
            job,
            **{FINAL_STATUS_METRICS[job.status]: 1},
            FilesSucceeded=job.counts.files_succeeded,
            FilesFailed=job.counts.files_failed,
            FilesNotScored=job.counts.files_not_scored,
            MiniBatchesScored=job.counts.mini_batches,
        )
    return job


def _count(job: Job, **values: int) -> None:
    """Add the counts as metrics of the job's endpoint; `publish_metrics` prints them when the handler returns."""
    metrics.add_dimension(name=ENDPOINT_DIMENSION, value=job.endpoint_name)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _job_id(event: dict[str, Any]) -> str:
    job_id: str = event["job_id"]
    logger.append_keys(job_id=job_id)
    tracer.put_annotation("job_id", job_id)
    return job_id
