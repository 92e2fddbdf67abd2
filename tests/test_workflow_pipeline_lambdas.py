"""The pipeline workflow's Lambda steps over a job's record: pipeline_round hands the state machine step names and
types only, and says done once the job has ended; pipeline_step_ended records a step's end from what a Catch hands
over, as one readable line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_endpoints.backend import Backend
from batch_endpoints.repository import Repository
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import Job
from lambdas.workflow import handlers
from tests.core_fixtures import local_backend_fixture, recorder_fixture, service_fixture  # noqa: F401
from tests.test_pipeline_rounds import recorded_job
from tests.test_workflow_lambdas import CONTEXT


@pytest.fixture
def job(service: BatchEndpointService, local_backend: Backend, tmp_path: Path) -> Iterator[Job]:
    handlers.set_backend(local_backend)
    made = recorded_job(service, tmp_path / "project")
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
    assert rounds[0]["steps"][0] == {"step": "a", "job_name": f"{job.id}-a", "type": "command"}
    assert [picked["round"] for picked in rounds] == [1, 2, 3, 4]
    assert rounds[-1]["status"] == "Completed"
    assert stored(local_backend, job.id).status.value == "Completed"


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
