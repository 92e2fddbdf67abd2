"""The Step Functions orchestrator: one execution per job, named after it, started once; cancel stops it and
returns (the workflow's execution_ended step closes the job: tests/test_execution_ended.py), or closes at once a job
whose execution never started."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import boto3
import pytest

from batch_endpoints import workflow
from batch_endpoints.adapters.aws.backend import NEVER_STARTED, close_never_started
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import Job, JobStatus, PipelineRun
from tests.aws_fixtures import INPUT_BUCKET, aws_backend, aws_fixture, put_objects, ready, role_arn  # noqa: F401

# The orchestrator only starts and stops executions; what the state machine does is the infrastructure's test.
WAITING_MACHINE = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@pytest.fixture(name="backend")
def backend_fixture(aws: None) -> Backend:
    state_machine = boto3.client("stepfunctions").create_state_machine(
        name="bep-jobs", definition=json.dumps(WAITING_MACHINE), roleArn=role_arn("bep-states")
    )["stateMachineArn"]
    orchestrator = StepFunctionsOrchestrator(state_machine)
    backend = aws_backend(orchestrator)
    orchestrator.computes = backend.computes
    orchestrator.on_never_started = functools.partial(close_never_started, backend)
    return backend


@pytest.fixture(name="service")
def service_fixture(backend: Backend, tmp_path: Path) -> BatchEndpointService:
    put_objects(INPUT_BUCKET, {f"images/{n}.png": b"png" for n in range(5)})
    return ready(BatchEndpointService(backend), tmp_path, mini_batch_size=2, instance_count=3)


def invoke(service: BatchEndpointService, **fields: object) -> str:
    return service.invoke(InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/images", **fields)).id


def executions() -> list[dict]:
    client = boto3.client("stepfunctions")
    machine = client.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return client.list_executions(stateMachineArn=machine)["executions"]


def test_invoke_starts_one_execution_named_after_the_job_with_ids_only(service: BatchEndpointService) -> None:
    job = service.get_job(invoke(service))

    [execution] = executions()
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert described["name"] == job.id
    assert described["status"] == "RUNNING"
    assert job.execution == execution["executionArn"]
    queue = service.backend.computes.get("cpu-cluster").details["job_queue"]
    assert json.loads(described["input"]) == {
        "job_id": job.id,
        "instance_count": 3,
        "compute": "cpu",
        "job_queue": queue,
        "job_definition": job.deployment.compute_handle,
    }
    assert job.deployment.compute_handle.endswith(":job-definition/bep-digits_blue:1")


def test_starting_the_same_job_again_returns_its_execution(service: BatchEndpointService) -> None:
    job = service.get_job(invoke(service))
    orchestrator = service.backend.orchestrator

    assert orchestrator.start(job) == job.execution
    # An execution that has ended keeps its name for 90 days: Step Functions refuses it, and the job keeps it.
    boto3.client("stepfunctions").stop_execution(executionArn=job.execution)
    assert orchestrator.start(job) == job.execution

    assert len(executions()) == 1


def test_cancel_stops_the_execution_and_leaves_the_job_to_the_workflow(service: BatchEndpointService) -> None:
    job_id = invoke(service)
    workflow.plan_job(service.backend, job_id)

    canceled = service.cancel_job(job_id)

    [execution] = executions()
    assert execution["status"] == "ABORTED"
    assert canceled.status == JobStatus.CANCEL_REQUESTED and canceled.ended_at is None
    # Nothing of finalize's: the stopped execution's end closes the job.
    files = JobFiles(service.blobs, canceled.scratch_uri)
    assert not service.blobs.exists(files.summary) and not service.blobs.exists(files.errors)


def test_cancel_closes_at_once_a_job_whose_execution_never_started(service: BatchEndpointService) -> None:
    # The invoke that recorded it died before StartExecution: no execution will end, so no event will close it.
    invoked = service.get_job(invoke(service))
    never_started = invoked.model_copy(update={"id": "digits-0000000000ab", "execution": ""})
    service.repo.add_job(never_started)

    canceled = service.cancel_job(never_started.id)

    assert canceled.status == JobStatus.CANCELED and canceled.ended_at
    assert canceled.error == NEVER_STARTED
    assert [e["name"] for e in executions()] == [invoked.id]


def test_a_compute_without_a_queue_starts_nothing(service: BatchEndpointService) -> None:
    job = service.get_job(invoke(service))
    elsewhere = job.deployment.model_copy(update={"compute": "tpu-cluster"})
    snapshot = job.model_copy(update={"id": "digits-elsewhere", "deployment": elsewhere})

    with pytest.raises(ValidationError, match="tpu-cluster"):
        service.backend.orchestrator.start(snapshot)
    assert len(executions()) == 1


def test_constructing_the_orchestrator_calls_no_aws() -> None:
    # No moto, no credentials: building it must not reach AWS (the runner opens the backend without it).
    orchestrator = StepFunctionsOrchestrator("arn:aws:states:us-east-1:123456789012:stateMachine:bep-jobs")

    assert orchestrator.execution_arn("digits-1") == "arn:aws:states:us-east-1:123456789012:execution:bep-jobs:digits-1"


def pipeline_job(service: BatchEndpointService) -> Job:
    """A job the pipeline state machine runs: one whose record has a pipeline."""
    job = service.get_job(invoke(service))
    return job.model_copy(update={"id": f"{job.id}-p", "pipeline": PipelineRun(), "execution": None})


def test_a_pipeline_job_starts_on_the_pipeline_state_machine_with_its_id_only(
    service: BatchEndpointService, backend: Backend
) -> None:
    client = boto3.client("stepfunctions")
    pipelines = client.create_state_machine(
        name="bep-pipelines", definition=json.dumps(WAITING_MACHINE), roleArn=role_arn("bep-pipelines")
    )["stateMachineArn"]
    orchestrator = backend.orchestrator
    assert isinstance(orchestrator, StepFunctionsOrchestrator)
    orchestrator.pipeline_state_machine_arn = pipelines
    job = pipeline_job(service)

    started = orchestrator.start(job)
    resumed = orchestrator.resume(job.model_copy(update={"resumes": 1}))
    orchestrator.cancel(job.model_copy(update={"execution": started}))

    runs = {e["name"]: e for e in client.list_executions(stateMachineArn=pipelines)["executions"]}
    assert set(runs) == {job.id, f"{job.id}-resume-1"}
    assert (runs[job.id]["executionArn"], runs[f"{job.id}-resume-1"]["executionArn"]) == (started, resumed)
    assert json.loads(client.describe_execution(executionArn=started)["input"]) == {"job_id": job.id}
    assert runs[job.id]["status"] == "ABORTED"
    assert orchestrator.start(job) == started  # a retried invoke: the same execution


def test_a_pipeline_job_in_a_stack_without_the_pipeline_state_machine_starts_nothing(
    service: BatchEndpointService, backend: Backend
) -> None:
    job = pipeline_job(service)

    with pytest.raises(ValidationError, match="BEP_PIPELINE_STATE_MACHINE_ARN") as refused:
        backend.orchestrator.start(job)

    assert refused.value.field == "deployment"
    assert [e["name"] for e in executions()] == [job.id.removesuffix("-p")]
