"""Standalone pipeline jobs through the REST API (`POST /jobs`, Azure's pipeline job as JSON), on the local
backend and on AWS (moto): the job starts as an invoked pipeline job does, filed under no endpoint, and a deployment
can be made from it (`job_definition`); every bad body is refused with 400 naming the field, and no job is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_endpoints.adapters.aws.computes import BatchComputeRegistry
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.repository import Repository
from batch_endpoints.specs import now
from tests.api_fixtures import (
    Api,
    Stack,
    api_fixture,
    aws_fixture,
    aws_stack_fixture,
    local_stack_fixture,
    stack_fixture,
)
from tests.test_api_pipeline_deployments import inline_pipeline
from tests.test_pipeline_deployments_local import write_project

__all__ = ["api_fixture", "aws_fixture", "aws_stack_fixture", "local_stack_fixture", "stack_fixture"]


def job_body(stack: Stack, tmp_path: Path, **fields: Any) -> dict[str, Any]:
    """The two-step pipeline as a job of its own, its code and its data in the stack's storage."""
    data = stack.stage(write_project(tmp_path / "data-project") / "data")
    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
        "type": "pipeline",
        "experiment_name": "tryouts",
        "display_name": "first try",
        "settings": {"default_compute": "azureml:cpu-cluster"},
        "component": inline_pipeline(stack, tmp_path),
        "inputs": {"input_data": {"type": "uri_folder", "path": data}, "label": "nightly"},
        **fields,
    }


def test_a_pipeline_job_starts_outside_any_endpoint_and_a_deployment_is_made_from_it(
    stack: Stack, api: Api, tmp_path: Path
) -> None:
    started = api("POST", "/jobs", job_body(stack, tmp_path, name="tryout-1"))

    assert started.status == 202, started.text
    job = started.json()
    assert (job["id"], job["endpoint_name"], job["experiment_name"], job["display_name"]) == (
        "tryout-1",
        "",
        "tryouts",
        "first try",
    )
    assert started.headers["Location"] == job["links"]["job"]
    assert [step["step"] for step in job["pipeline"]["steps"]] == ["prepare_job", "summarize_job"]
    assert stack.started() == ["tryout-1"]  # on AWS, an execution of the pipeline state machine
    assert api("GET", "/jobs/tryout-1").json()["id"] == "tryout-1"

    assert api("PUT", "/endpoints/shop", {}).status == 200
    body = {"type": "pipeline", "job_definition": "azureml:tryout-1", "settings": {"default_compute": "cpu-cluster"}}
    deployed = api("PUT", "/endpoints/shop/deployments/from-job", body)

    assert deployed.status == 200, deployed.text
    assert list(deployed.json()["component"]["jobs"]) == ["prepare_job", "summarize_job"]


def test_a_pipeline_job_written_as_its_steps_takes_its_inputs_from_what_it_gives(
    local_stack: Stack, api: Api, tmp_path: Path
) -> None:
    body = job_body(local_stack, tmp_path)
    pipeline = body.pop("component")
    body["jobs"] = pipeline["jobs"]
    body["outputs"] = {"summary": {"type": "uri_folder"}}

    started = api("POST", "/jobs", body)

    assert started.status == 202, started.text
    assert set(started.json()["pipeline"]["outputs"]) == {"summary"}


def test_a_registered_pipeline_runs_as_a_job(local_stack: Stack, api: Api, tmp_path: Path) -> None:
    body = job_body(local_stack, tmp_path)
    assert api("PUT", "/components/two_steps/versions/2", body.pop("component")).status == 201

    started = api("POST", "/jobs", {**body, "component": "azureml:two_steps@latest"})

    assert started.status == 202, started.text


def _steps_file_name(body: dict[str, Any]) -> None:
    body["jobs"] = {"main": {"type": "command", "component": "components/main.yml"}}
    del body["component"]


def _relative_code(body: dict[str, Any]) -> None:
    body["component"]["jobs"]["prepare_job"]["component"]["code"] = "src"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: body.pop("component"), "component"),
        (lambda body: body.update(jobs={"a": {}}), "jobs"),
        (lambda body: body.update(type="command"), "type"),
        (lambda body: body.update(colour="red"), "colour"),
        (lambda body: body["inputs"].update(colour="red"), "inputs.colour"),
        (lambda body: body["inputs"].pop("input_data"), "inputs.input_data"),
        (lambda body: body["inputs"].update(label=3), "inputs.label"),
        (lambda body: body.update(outputs={"nope": {}}), "outputs.nope"),
        (lambda body: body.update(component="azureml:missing:1"), "component"),
        (_steps_file_name, "jobs.main.component"),
        (_relative_code, "component.jobs.prepare_job.component.code"),
        (lambda body: body.update(name="bad name!"), "name"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field_and_make_no_job(
    local_stack: Stack, api: Api, tmp_path: Path, change: Any, field: str
) -> None:
    body = job_body(local_stack, tmp_path)
    change(body)

    refused = api("POST", "/jobs", body)

    assert refused.status in (400, 404), refused.text
    assert refused.json()["field"] == field
    assert local_stack.started() == []


def test_a_job_name_taken_is_a_conflict(local_stack: Stack, api: Api, tmp_path: Path) -> None:
    assert api("POST", "/jobs", job_body(local_stack, tmp_path, name="once")).status == 202

    again = api("POST", "/jobs", job_body(local_stack, tmp_path / "again", name="once"))

    assert again.status == 409, again.text
    assert local_stack.started() == ["once"]


def test_a_pipeline_job_retried_with_its_idempotency_key_is_one_job(stack: Stack, api: Api, tmp_path: Path) -> None:
    body = job_body(stack, tmp_path)
    key = {"Idempotency-Key": "tryout-retry-1"}

    first = api("POST", "/jobs", body, headers=key)
    second = api("POST", "/jobs", body, headers=key)

    assert first.status == second.status == 202, second.text
    assert first.json()["id"] == second.json()["id"]
    assert stack.started() == [first.json()["id"]]
    assert [job["id"] for job in api("GET", "/jobs").json()["value"]] == [first.json()["id"]]


def test_one_key_with_another_pipeline_job_is_a_conflict_naming_the_first_job(
    stack: Stack, api: Api, tmp_path: Path
) -> None:
    body = job_body(stack, tmp_path)
    key = {"Idempotency-Key": "tryout-retry-2"}
    first = api("POST", "/jobs", body, headers=key).json()

    refused = api("POST", "/jobs", {**body, "display_name": "second try"}, headers=key)

    assert refused.status == 409, refused.text
    assert refused.json()["field"] == "Idempotency-Key"
    assert first["id"] in refused.json()["message"]
    assert stack.started() == [first["id"]]


def test_a_named_pipeline_job_retried_with_its_key_is_the_job_and_a_new_key_for_its_name_a_conflict(
    local_stack: Stack, api: Api, tmp_path: Path
) -> None:
    body = job_body(local_stack, tmp_path, name="nightly")
    assert api("POST", "/jobs", body, headers={"Idempotency-Key": "n-1"}).status == 202

    retried = api("POST", "/jobs", body, headers={"Idempotency-Key": "n-1"})
    taken = api("POST", "/jobs", body, headers={"Idempotency-Key": "n-2"})
    unkeyed_taken = api("POST", "/jobs", body)

    assert retried.status == 202 and retried.json()["id"] == "nightly"
    assert taken.status == unkeyed_taken.status == 409, taken.text
    assert taken.json() == unkeyed_taken.json()  # refused for its name, as without a key
    assert local_stack.started() == ["nightly"]


def test_a_pipeline_jobs_key_is_not_shared_with_an_endpoints_invokes(
    local_stack: Stack, api: Api, tmp_path: Path
) -> None:
    # A standalone job's keys are those of no endpoint: an endpoint's invoke with the same key is another request.
    body = job_body(local_stack, tmp_path)
    started = api("POST", "/jobs", body, headers={"Idempotency-Key": "shared"}).json()
    assert api("PUT", "/endpoints/shop", {}).status == 200
    deployment = {
        "type": "pipeline",
        "job_definition": f"azureml:{started['id']}",
        "settings": {"default_compute": "cpu-cluster"},
    }
    assert api("PUT", "/endpoints/shop/deployments/from-job", deployment, query={"set_default": "true"}).status == 200

    invoked = api("POST", "/endpoints/shop/jobs", {"inputs": body["inputs"]}, headers={"Idempotency-Key": "shared"})

    assert invoked.status == 202, invoked.text
    assert local_stack.started() == [started["id"], invoked.json()["id"]]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256])
def test_a_malformed_idempotency_key_starts_no_pipeline_job(
    local_stack: Stack, api: Api, tmp_path: Path, key: str
) -> None:
    refused = api("POST", "/jobs", job_body(local_stack, tmp_path, name="nightly"), headers={"Idempotency-Key": key})

    assert refused.status == 400, refused.text
    assert refused.json()["field"] == "Idempotency-Key"
    assert local_stack.started() == []


def test_on_aws_a_pipeline_jobs_command_steps_have_a_job_definition_on_its_compute(
    aws_stack: Stack, api: Api, tmp_path: Path
) -> None:
    started = api("POST", "/jobs", job_body(aws_stack, tmp_path, name="tryout-2"))
    assert started.status == 202, started.text
    job = aws_stack.service.get_job("tryout-2")
    orchestrator, computes = aws_stack.backend.orchestrator, aws_stack.backend.computes
    assert isinstance(orchestrator, StepFunctionsOrchestrator) and isinstance(computes, BatchComputeRegistry)
    assert job.pipeline is not None

    target = orchestrator.step_target(job, job.pipeline.steps[0], compute="cpu-cluster", child=None)

    assert target["job_definition"] == job.deployment.compute_handle
    (definition,) = boto3.client("batch").describe_job_definitions(jobDefinitions=[target["job_definition"]])[
        "jobDefinitions"
    ]
    assert definition["status"] == "ACTIVE"
    assert definition["containerProperties"]["image"] == computes.images["cpu"]
    assert target["job_queue"] == computes.job_queue("cpu-cluster")


def test_on_aws_pipeline_jobs_on_one_compute_share_one_job_definition_revision_refused_ones_too(
    aws_stack: Stack, api: Api, tmp_path: Path
) -> None:
    handles = set()
    for name in ("tryout-1", "tryout-2"):
        assert api("POST", "/jobs", job_body(aws_stack, tmp_path / name, name=name)).status == 202
        handles.add(aws_stack.service.get_job(name).deployment.compute_handle)
    # Refused for its name once its job definition was registered.
    assert api("POST", "/jobs", job_body(aws_stack, tmp_path / "again", name="tryout-1")).status == 409

    (handle,) = handles
    batch = boto3.client("batch")
    name = handle.split("/")[-1].split(":")[0]
    revisions = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
    assert [revision["jobDefinitionArn"] for revision in revisions] == [handle]


def test_every_job_is_listed_newest_first_the_standalone_pipeline_jobs_with_the_endpoints_steps_jobs_without(
    stack: Stack, api: Api, tmp_path: Path
) -> None:
    for name in ("tryout-1", "tryout-2"):
        assert api("POST", "/jobs", job_body(stack, tmp_path / name, name=name)).status == 202
    assert api("PUT", "/endpoints/shop", {}).status == 200
    body = {"type": "pipeline", "job_definition": "azureml:tryout-1", "settings": {"default_compute": "cpu-cluster"}}
    assert api("PUT", "/endpoints/shop/deployments/from-job", body, query={"set_default": "true"}).status == 200
    invoked = api("POST", "/endpoints/shop/jobs", {"inputs": job_body(stack, tmp_path / "invoke")["inputs"]})
    assert invoked.status == 202, invoked.text
    # A step's own job, the newest record: listed with its pipeline job only, and no page ends short for it.
    repo = Repository(stack.backend.records)
    parent = repo.get_job("tryout-2")
    repo.add_job(parent.model_copy(update={"id": "tryout-2-score", "parent_job_name": "tryout-2", "created_at": now()}))

    first = api("GET", "/jobs", query={"limit": "2"}).json()
    second = api("GET", "/jobs", query={"limit": "2", "next_token": first["next_token"]}).json()
    tried = api("GET", "/jobs", query={"experiment_name": "tryouts"}).json()

    newest_first = [invoked.json()["id"], "tryout-2", "tryout-1"]
    assert [job["id"] for job in first["value"] + second["value"]] == newest_first
    assert second["next_token"] is None
    assert [job["id"] for job in tried["value"]] == ["tryout-2", "tryout-1"]
