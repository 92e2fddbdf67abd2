"""The workflow's execution_ended step: what EventBridge hands it when a job's execution stops or fails outside the
states, and how it closes the job. Executions run on moto (a state machine that waits), the job files on moto's S3;
each event is built from DescribeExecution, whose fields an execution status change event's detail carries."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_endpoints import workflow
from batch_endpoints.adapters.aws.backend import close_never_started
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.backend import Backend
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import Job, JobStatus
from lambdas.workflow import handlers
from lambdas.workflow.ended_executions import EVENT_DETAIL_TYPE, EVENT_SOURCE
from tests.aws_fixtures import INPUT_BUCKET, aws_backend, aws_fixture, put_objects, ready, role_arn  # noqa: F401
from tests.test_workflow_lambdas import CONTEXT, endpoint_metrics, published_metrics

WAITING_MACHINE = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
DATA_LIMIT = (
    "States.DataLimitExceeded",
    "The state/task 'Score shards' returned a result with a size exceeding the maximum number of bytes service limit.",
)
ANN = "arn:aws:iam::123456789012:user/ann"


@pytest.fixture(name="service")
def service_fixture(aws: None, tmp_path: Path) -> Iterator[BatchEndpointService]:
    machine = boto3.client("stepfunctions").create_state_machine(
        name="bep-jobs", definition=json.dumps(WAITING_MACHINE), roleArn=role_arn("bep-states")
    )["stateMachineArn"]
    orchestrator = StepFunctionsOrchestrator(machine)
    backend: Backend = aws_backend(orchestrator)
    orchestrator.computes = backend.computes
    orchestrator.on_never_started = functools.partial(close_never_started, backend)
    handlers.set_backend(backend)
    put_objects(INPUT_BUCKET, {f"images/{n}.png": b"png" for n in range(5)})
    yield ready(BatchEndpointService(backend), tmp_path, mini_batch_size=2, instance_count=3)
    handlers.set_backend(None)


def planned_job(service: BatchEndpointService) -> Job:
    job = service.invoke(InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/images"))
    workflow.plan_job(service.backend, job.id)
    return service.get_job(job.id)


def ended_event(execution_arn: str, **detail: Any) -> dict[str, Any]:
    """The event EventBridge delivers once the execution has ended: DescribeExecution's fields, `detail` changed."""
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution_arn)
    fields = ("executionArn", "stateMachineArn", "name", "status", "input", "output", "error", "cause")
    dates = {key: int(described[key].timestamp() * 1000) for key in ("startDate", "stopDate") if key in described}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EVENT_DETAIL_TYPE,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [execution_arn],
        "detail": {**{key: described.get(key) for key in fields}, **dates, **detail},
    }


def test_a_canceled_job_ends_canceled_once_its_execution_is_stopped(
    service: BatchEndpointService, capsys: pytest.CaptureFixture[str]
) -> None:
    job = planned_job(service)
    assert service.cancel_job(job.id).status == JobStatus.CANCEL_REQUESTED
    event = ended_event(job.execution)
    assert event["detail"]["status"] == "ABORTED"
    capsys.readouterr()

    result = handlers.execution_ended(event, CONTEXT)

    closed = service.get_job(job.id)
    assert result == {"job_id": job.id, "status": "Canceled", "closed": True}
    assert closed.status == JobStatus.CANCELED and closed.ended_at and closed.error is None
    # Closed as the local job host closes a canceled job: a summary, and every file accounted for.
    files = JobFiles(service.blobs, closed.scratch_uri)
    assert json.loads(service.blobs.get_bytes(files.summary))["status"] == "Canceled"
    unscored = [json.loads(line) for line in service.blobs.get_bytes(files.errors).splitlines()]
    assert sorted(line["file"] for line in unscored) == [f"{n}.png" for n in range(5)]
    assert all(line["error"].startswith("not scored") for line in unscored)
    assert not service.blobs.exists(closed.output_uri)
    assert published_metrics(capsys) == [
        endpoint_metrics(JobsCanceled=1, FilesSucceeded=0, FilesFailed=0, FilesNotScored=5, MiniBatchesScored=3)
    ]


def test_the_same_event_again_changes_and_counts_nothing(
    service: BatchEndpointService, capsys: pytest.CaptureFixture[str]
) -> None:
    job = planned_job(service)
    service.cancel_job(job.id)
    event = ended_event(job.execution)
    handlers.execution_ended(event, CONTEXT)
    closed = service.get_job(job.id)
    summary = service.blobs.get_bytes(JobFiles(service.blobs, job.scratch_uri).summary)
    capsys.readouterr()

    again = handlers.execution_ended(event, CONTEXT)

    assert again == {"job_id": job.id, "status": "Canceled", "closed": False}
    assert service.get_job(job.id) == closed
    assert service.blobs.get_bytes(JobFiles(service.blobs, job.scratch_uri).summary) == summary
    assert published_metrics(capsys) == []


def test_a_job_whose_execution_failed_outside_the_states_fails_naming_the_cause(
    service: BatchEndpointService, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Distributed Map whose children's outputs pass 256 KiB ends the execution with no Catch and no state after.
    job = planned_job(service)
    error, cause = DATA_LIMIT
    event = ended_event(job.execution, status="FAILED", error=error, cause=cause)
    capsys.readouterr()

    result = handlers.execution_ended(event, CONTEXT)

    failed = service.get_job(job.id)
    assert result == {"job_id": job.id, "status": "Failed", "closed": True}
    assert failed.status == JobStatus.FAILED and failed.ended_at
    assert failed.error == f"the workflow's execution {job.id} ended FAILED: {error}: {cause}"
    assert published_metrics(capsys) == [endpoint_metrics(JobsFailed=1)]


@pytest.mark.parametrize(("status", "before"), [("ABORTED", JobStatus.RUNNING), ("TIMED_OUT", JobStatus.FINALIZING)])
def test_a_job_left_open_by_a_stop_by_hand_or_a_timeout_fails_saying_so(
    service: BatchEndpointService, status: str, before: JobStatus
) -> None:
    job = planned_job(service)
    service.repo.update_job(job.id, lambda j: j.model_copy(update={"status": before}))
    boto3.client("stepfunctions").stop_execution(executionArn=job.execution)

    handlers.execution_ended(ended_event(job.execution, status=status), CONTEXT)

    failed = service.get_job(job.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == f"the workflow's execution {job.id} ended {status}"


def test_the_end_of_an_earlier_execution_of_a_resumed_job_is_ignored(service: BatchEndpointService) -> None:
    job = planned_job(service)
    boto3.client("stepfunctions").stop_execution(executionArn=job.execution)
    workflow.mark_failed(service.backend, job.id, "the first execution stopped")
    resumed = service.resume_job(job.id, caller=ANN)
    assert resumed.execution.endswith(f":{job.id}-resume-1") and resumed.status == JobStatus.RUNNING

    result = handlers.execution_ended(ended_event(job.execution), CONTEXT)

    assert result == {"job_id": job.id, "status": "Running", "closed": False}
    assert service.get_job(job.id) == resumed


def test_a_shard_child_execution_and_an_execution_of_no_job_are_ignored(service: BatchEndpointService) -> None:
    job = planned_job(service)
    child = {
        "executionArn": f"{service.backend.orchestrator.execution_arn('bep-jobs/ScoreShards')}:{uuid.uuid4()}",
        "name": str(uuid.uuid4()),
        "input": json.dumps({"shard": "s3://bucket/jobs/x/shards/shard-00000.json", "job_id": job.id}),
    }
    events = [
        ended_event(job.execution, status="FAILED", **child),
        ended_event(job.execution, status="FAILED", input="{}"),
        ended_event(job.execution, status="FAILED", input="not json"),
        ended_event(job.execution, status="FAILED", input=json.dumps({"job_id": "digits-000000000000"})),
        # Not an end the rule selects: an execution that succeeded closed its job in its own states.
        ended_event(job.execution, status="SUCCEEDED"),
        {"detail-type": EVENT_DETAIL_TYPE, "source": EVENT_SOURCE, "detail": None},
    ]

    results = [handlers.execution_ended(event, CONTEXT) for event in events]

    assert [r["closed"] for r in results] == [False] * len(events)
    assert service.get_job(job.id) == job
