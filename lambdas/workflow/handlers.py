"""The state machine's Lambda steps: plan, finalize, mark_failed. Event and result shapes: lambdas.workflow.

Each handler is the core's workflow step plus the translation to and from the state machine's JSON. The
backend is opened once per Lambda container from its environment; tests put theirs in with `set_backend`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_endpoints import planning, workflow
from batch_endpoints.adapters.aws.blobs import parse as parse_s3_uri
from batch_endpoints.adapters.aws.computes import attempt_duration_seconds
from batch_endpoints.backend import Backend, from_environment
from batch_endpoints.repository import Repository
from batch_endpoints.specs import JobStatus
from lambdas.workflow.failures import describe_failure

logger = Logger(service="bep-workflow")
tracer = Tracer(service="bep-workflow")

_backend: Backend | None = None


def backend() -> Backend:
    global _backend
    if _backend is None:
        _backend = from_environment()
    return _backend


def set_backend(replacement: Backend | None) -> None:
    """Use `replacement` from now on; None opens the environment's backend again on next use."""
    global _backend
    _backend = replacement


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def plan(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = _job_id(event)
    result = workflow.plan_job(backend(), job_id)
    job = Repository(backend().records).get_job(job_id)
    per_shard = planning.mini_batches_per_shard(job.counts.mini_batches, job.settings.instance_count)
    bucket, key = parse_s3_uri(result.shard_index_uri)
    logger.info("planned", extra={"files": job.counts.files, "shards": job.counts.shards})
    return {
        "job_id": job_id,
        "shard_count": len(result.shard_uris),
        "shards_bucket": bucket,
        "shards_key": key,
        "attempt_duration_s": attempt_duration_seconds(job.settings, per_shard),
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def finalize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = workflow.finalize_job(backend(), _job_id(event))
    logger.info("finalized", extra={"status": job.status.value, "error": job.error})
    output = job.output_uri if job.status == JobStatus.COMPLETED else None
    return {
        "job_id": job.id,
        "status": job.status.value,
        "error": job.error,
        "counts": job.counts.model_dump(),
        "output": output,
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def mark_failed(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    message = describe_failure(event.get("error"))
    job = workflow.mark_failed(backend(), _job_id(event), message)
    logger.warning("marked failed", extra={"status": job.status.value, "error": message, "caught": event.get("error")})
    return {"job_id": job.id, "status": job.status.value, "error": job.error}


def _job_id(event: dict[str, Any]) -> str:
    job_id = event["job_id"]
    logger.append_keys(job_id=job_id)
    tracer.put_annotation("job_id", job_id)
    return job_id
