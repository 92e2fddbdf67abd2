"""The pipeline workflow's Lambda steps over a job's record: pipeline_round hands the state machine step names and
types only, and says done once the job has ended; pipeline_step_ended records a step's end from what a Catch hands
over, as one readable line."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_endpoints.backend import Backend
from batch_endpoints.errors import ValidationError
from batch_endpoints.ports import ComputeRegistry
from batch_endpoints.repository import Repository
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import Compute, Job, JobStatus
from lambdas.workflow import handlers
from tests.core_fixtures import local_backend_fixture, recorder_fixture, service_fixture  # noqa: F401
from tests.test_pipeline_rounds import recorded_job
from tests.test_workflow_lambdas import CONTEXT

MODEL_JOBS = "arn:aws:states:us-east-1:123456789012:stateMachine:bep-jobs"
JOB_QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/bep-cpu"
JOB_DEFINITION = "arn:aws:batch:us-east-1:123456789012:job-definition/bep-shop_pipeline:1"


class QueuedComputes:
    """The computes as the cloud's registry holds them: each with its Batch job queue."""

    def __init__(self, computes: ComputeRegistry) -> None:
        self.computes = computes

    def get(self, name: str) -> Compute | None:
        compute = self.computes.get(name)
        return compute and compute.model_copy(update={"details": {**compute.details, "job_queue": JOB_QUEUE}})


@pytest.fixture
def job(
    service: BatchEndpointService, local_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Job]:
    """A pipeline job as the cloud runs it: its deployment registered as a Batch job definition, its computes with
    job queues, and the model-job state machine named to the round's Lambda."""
    monkeypatch.setenv("BEP_STATE_MACHINE_ARN", MODEL_JOBS)
    handlers.set_backend(dataclasses.replace(local_backend, computes=QueuedComputes(local_backend.computes)))
    made = recorded_job(service, tmp_path / "project")
    registered = made.deployment.model_copy(update={"compute_handle": JOB_DEFINITION})
    Repository(local_backend.records).update_job(made.id, lambda job: job.model_copy(update={"deployment": registered}))
    yield made
    handlers.set_backend(None)


def stored(backend: Backend, job_id: str) -> Job:
    return Repository(backend.records).get_job(job_id)


def test_rounds_hand_over_step_names_and_types_until_the_job_completes(job, local_backend):
    rounds = [handlers.pipeline_round({"job_id": job.id, "round": 0}, CONTEXT)]
    while not rounds[-1]["done"]:
        for step in rounds[-1]["steps"]:
            handlers.pipeline_step_ended({"job_id": job.id, "step": step["step"], "error": None}, CONTEXT)
        rounds.append(handlers.pipeline_round({"job_id": job.id, "round": rounds[-1]["round"]}, CONTEXT))

    assert [[step["step"] for step in picked["steps"]] for picked in rounds] == [["a", "b"], ["c"], ["d"], []]
    # A command step with where its Batch job goes: all the state machine's Map needs to run it.
    assert rounds[0]["steps"][0] == {
        "step": "a",
        "job_name": f"{job.id}-a",
        "type": "command",
        "job_queue": JOB_QUEUE,
        "job_definition": JOB_DEFINITION,
    }
    assert [picked["round"] for picked in rounds] == [1, 2, 3, 4]
    assert rounds[-1]["status"] == "Completed"
    assert stored(local_backend, job.id).status.value == "Completed"


def test_a_command_step_with_an_image_of_its_own_goes_to_its_job_definition_the_others_to_the_deployments(
    job, local_backend
):
    own = "arn:aws:batch:us-east-1:123456789012:job-definition/bep-shop_pipeline:2"
    registered = job.deployment.model_copy(update={"compute_handle": JOB_DEFINITION, "step_handles": {"b": own}})
    Repository(local_backend.records).update_job(job.id, lambda j: j.model_copy(update={"deployment": registered}))

    picked = handlers.pipeline_round({"job_id": job.id, "round": 0}, CONTEXT)

    assert {step["step"]: step["job_definition"] for step in picked["steps"]} == {"a": JOB_DEFINITION, "b": own}


def test_a_step_that_failed_in_batch_is_recorded_with_the_jobs_reason_and_fails_the_job(job, local_backend):
    handlers.pipeline_round({"job_id": job.id, "round": 0}, CONTEXT)
    batch_job = {
        "JobId": "1234",
        "JobName": f"{job.id}-a",
        "Status": "FAILED",
        "StatusReason": "Essential container in task exited",
        "Attempts": [{"Container": {"ExitCode": 3, "Reason": "exit 3"}}],
    }
    caught = {"Error": "States.TaskFailed", "Cause": json.dumps(batch_job)}

    recorded = handlers.pipeline_step_ended({"job_id": job.id, "step": "a", "error": caught}, CONTEXT)
    handlers.pipeline_step_ended({"job_id": job.id, "step": "b", "error": None}, CONTEXT)
    ended = handlers.pipeline_round({"job_id": job.id, "round": 1}, CONTEXT)

    assert recorded == {"job_id": job.id, "step": "a", "status": "Failed"}
    assert (ended["done"], ended["status"], ended["steps"]) == (True, "Failed", [])
    assert stored(local_backend, job.id).error == (
        f"step a failed: AWS Batch job {job.id}-a (1234) failed: Essential container in task exited"
    )


def test_a_round_of_a_deployment_without_a_job_definition_is_refused_naming_the_deployment(job, local_backend):
    unregistered = job.deployment.model_copy(update={"compute_handle": ""})
    Repository(local_backend.records).update_job(job.id, lambda j: j.model_copy(update={"deployment": unregistered}))

    with pytest.raises(ValidationError, match="has no AWS Batch job definition") as refused:
        handlers.pipeline_round({"job_id": job.id, "round": 0}, CONTEXT)

    assert refused.value.field == "deployment"


def test_a_round_without_the_model_job_state_machine_is_refused_naming_the_variable(job, monkeypatch):
    monkeypatch.delenv("BEP_STATE_MACHINE_ARN")

    with pytest.raises(ValidationError, match="BEP_STATE_MACHINE_ARN is not set"):
        handlers.pipeline_round({"job_id": job.id, "round": 0}, CONTEXT)


def ended_execution(job: Job, status: str, **detail: str) -> dict:
    """EventBridge's event for the job's execution that ended `status` outside its states."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:bep-pipelines:{job.id}"
    fields = {"executionArn": arn, "name": job.id, "status": status, "input": json.dumps({"job_id": job.id})}
    return {"detail": {**fields, **detail}}


def running_round(job: Job, local_backend: Backend) -> Job:
    """The job's first round started (steps a and b Running), and its execution recorded."""
    handlers.pipeline_round({"job_id": job.id, "round": 0}, CONTEXT)
    arn = ended_execution(job, "RUNNING")["detail"]["executionArn"]
    return Repository(local_backend.records).update_job(job.id, lambda j: j.model_copy(update={"execution": arn}))


def test_a_pipeline_job_whose_execution_failed_outside_its_states_fails_and_its_steps_are_canceled(job, local_backend):
    running = running_round(job, local_backend)

    result = handlers.execution_ended(
        ended_execution(running, "FAILED", error="States.Runtime", cause="a Lambda failed past its retries"), CONTEXT
    )

    closed = stored(local_backend, job.id)
    assert result == {"job_id": job.id, "status": "Failed", "closed": True}
    assert closed.error is not None and closed.error.startswith(f"the workflow's execution {job.id} ended FAILED")
    assert closed.pipeline is not None
    assert {run.step: run.status.value for run in closed.pipeline.steps} == dict.fromkeys("abcd", "Canceled")


def test_a_canceled_pipeline_job_ends_canceled_once_its_stopped_execution_is_reported(job, local_backend):
    running = running_round(job, local_backend)
    Repository(local_backend.records).update_job(
        job.id, lambda j: j.model_copy(update={"status": JobStatus.CANCEL_REQUESTED})
    )

    result = handlers.execution_ended(ended_execution(running, "ABORTED"), CONTEXT)
    again = handlers.execution_ended(ended_execution(running, "ABORTED"), CONTEXT)

    closed = stored(local_backend, job.id)
    assert result == {"job_id": job.id, "status": "Canceled", "closed": True}
    assert again == {"job_id": job.id, "status": "Canceled", "closed": False}
    assert closed.error is None and closed.pipeline is not None
    assert {run.step: run.status.value for run in closed.pipeline.steps} == dict.fromkeys("abcd", "Canceled")
