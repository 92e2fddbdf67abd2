"""Pipeline deployments through the REST API, on the local backend and on AWS (moto): Azure's `type: pipeline`
deployment as JSON, its component inline (code already in storage) or registered; on AWS a Batch job definition
of its own, deregistered with it; and every bad body refused with 400 naming the field, nothing stored."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from batch_endpoints.adapters.aws.computes import (
    INSTALL_REQUIREMENTS_VARIABLE,
    MAX_ATTEMPT_DURATION_S,
    BatchComputeRegistry,
)
from batch_endpoints.data_access import ALLOWED_INPUTS, ALLOWED_OUTPUTS, from_environment
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import Job, now
from tests.api_fixtures import Api, Stack, api_fixture, aws_fixture, aws_stack_fixture, stack_fixture
from tests.aws_fixtures import INPUT_BUCKET, LOG_GROUP, put_objects
from tests.test_aws_logs import run_shard
from tests.test_pipeline_deployments_local import write_project

__all__ = ["api_fixture", "aws_fixture", "aws_stack_fixture", "stack_fixture"]


def inline_pipeline(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    """The two-step pipeline of the local tests, its steps' code folder put in the stack's storage."""
    root = write_project(tmp_path / "project")
    pipeline: dict[str, Any] = yaml.safe_load((root / "pipeline.yml").read_text())
    code = stack.stage(root / "src")
    for step in pipeline["jobs"].values():
        step["component"]["code"] = code
    return pipeline


def pipeline_body(component: Any, **fields: Any) -> dict[str, Any]:
    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json",
        "type": "pipeline",
        "component": component,
        "settings": {"default_compute": "azureml:cpu-cluster", "continue_on_step_failure": False},
        **fields,
    }


@pytest.fixture
def shop(api: Api) -> str:
    assert api("PUT", "/endpoints/shop", {}).status == 200
    return "/endpoints/shop/deployments/summarize"


def test_an_inline_pipeline_is_deployed_and_shown(stack: Stack, api: Api, shop: str, tmp_path: Path) -> None:
    put = api("PUT", shop, pipeline_body(inline_pipeline(stack, tmp_path)), query={"set_default": "true"})

    assert put.status == 200, put.text
    deployment = put.json()
    assert (deployment["type"], deployment["compute"], deployment["model"]) == ("pipeline", "cpu-cluster", None)
    assert list(deployment["component"]["jobs"]) == ["prepare_job", "summarize_job"]
    assert deployment["pipeline_settings"]["default_compute"] == "cpu-cluster"
    assert api("GET", shop).json() == deployment
    assert api("GET", "/endpoints/shop").json()["default_deployment"] == "summarize"


def test_a_registered_pipeline_is_deployed_pinned_to_its_version(
    stack: Stack, api: Api, shop: str, tmp_path: Path
) -> None:
    pipeline = inline_pipeline(stack, tmp_path)
    assert api("PUT", "/components/two_steps/versions/4", pipeline).status == 201

    put = api("PUT", shop, pipeline_body("azureml:two_steps@latest"))

    assert put.status == 200, put.text
    assert put.json()["component_ref"] == "two_steps:4"


def test_on_aws_a_pipeline_deployment_has_a_job_definition_of_its_own_until_it_is_deleted(
    aws_stack: Stack, api: Api, shop: str, tmp_path: Path
) -> None:
    batch = boto3.client("batch")
    computes = aws_stack.backend.computes
    assert isinstance(computes, BatchComputeRegistry)

    put = api("PUT", shop, pipeline_body(inline_pipeline(aws_stack, tmp_path)))

    handle = put.json()["compute_handle"]
    (definition,) = batch.describe_job_definitions(jobDefinitions=[handle])["jobDefinitions"]
    assert definition["status"] == "ACTIVE"
    assert definition["containerProperties"]["image"] == computes.images["cpu"]
    assert definition["timeout"]["attemptDurationSeconds"] == MAX_ATTEMPT_DURATION_S  # a command has no bound
    assert api("DELETE", shop).status == 204
    (gone,) = batch.describe_job_definitions(jobDefinitions=[handle])["jobDefinitions"]
    assert gone["status"] == "INACTIVE"


PREPARE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/prepare:1"
SUMMARIZE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/summarize:2"


def test_on_aws_each_command_step_runs_on_a_job_definition_with_its_environments_image_all_deregistered_at_delete(
    aws_stack: Stack, api: Api, shop: str, tmp_path: Path
) -> None:
    batch = boto3.client("batch")
    environment = {"image": SUMMARIZE_IMAGE, "conda_file": "dependencies: [python=3.11]\n"}
    assert api("PUT", "/environments/summarizer/versions/2", environment).status in (200, 201)
    pipeline = inline_pipeline(aws_stack, tmp_path)
    pipeline["jobs"]["prepare_job"]["component"]["environment"] = {"image": PREPARE_IMAGE}
    pipeline["jobs"]["summarize_job"]["component"]["environment"] = "azureml:summarizer@latest"

    deployment = api("PUT", shop, pipeline_body(pipeline)).json()

    pinned = deployment["component"]["jobs"]["summarize_job"]["component"]["environment"]
    assert (pinned["name"], pinned["version"], pinned["image"]) == ("summarizer", "2", SUMMARIZE_IMAGE)
    handles = deployment["step_handles"]
    assert sorted(handles) == ["prepare_job", "summarize_job"]
    assert len({*handles.values(), deployment["compute_handle"]}) == 3
    definitions = batch.describe_job_definitions(jobDefinitions=list(handles.values()))["jobDefinitions"]
    images = {d["jobDefinitionArn"]: d["containerProperties"]["image"] for d in definitions}
    assert images[handles["prepare_job"]] == PREPARE_IMAGE
    assert images[handles["summarize_job"]] == SUMMARIZE_IMAGE
    # A custom image is the user's: nothing is installed into it (computes.py).
    assert all(
        INSTALL_REQUIREMENTS_VARIABLE not in {v["name"] for v in d["containerProperties"]["environment"]}
        for d in definitions
    )
    assert api("DELETE", shop).status == 204
    arns = [*handles.values(), deployment["compute_handle"]]
    gone = batch.describe_job_definitions(jobDefinitions=arns)["jobDefinitions"]
    assert sorted(d["status"] for d in gone) == ["INACTIVE"] * 3


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param("azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest", id="azure-curated-reference"),
        pytest.param({"image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"}, id="azure-image"),
        pytest.param({"pip_requirements": ["tabulate"]}, id="requirements-only"),
    ],
)
def test_on_aws_a_command_step_without_an_image_of_its_own_runs_on_the_deployments_job_definition(
    aws_stack: Stack, api: Api, shop: str, tmp_path: Path, environment: Any
) -> None:
    pipeline = inline_pipeline(aws_stack, tmp_path)
    pipeline["jobs"]["prepare_job"]["component"]["environment"] = {"image": PREPARE_IMAGE}
    pipeline["jobs"]["summarize_job"]["component"]["environment"] = environment

    put = api("PUT", shop, pipeline_body(pipeline))

    assert put.status == 200, put.text
    assert list(put.json()["step_handles"]) == ["prepare_job"]
    kept = put.json()["component"]["jobs"]["summarize_job"]["component"]["environment"]
    if isinstance(environment, str):  # not registered here: kept as written, not pinned
        assert kept == environment.removeprefix("azureml:")
    else:
        assert {key: kept[key] for key in environment} == environment


def test_on_aws_a_started_steps_log_uri_is_its_child_jobs_logs_route_reading_cloudwatch(
    aws_stack: Stack, api: Api, shop: str, tmp_path: Path
) -> None:
    backend = aws_stack.backend
    everywhere = f"{backend.blobs.root},s3://{INPUT_BUCKET}"  # a pipeline job's outputs go under azureml/
    access = from_environment(backend.blobs.root, environ={ALLOWED_INPUTS: everywhere, ALLOWED_OUTPUTS: everywhere})
    aws_stack.service = BatchEndpointService(backend, access=access)
    boto3.client("logs").create_log_group(logGroupName=LOG_GROUP)
    put_objects(INPUT_BUCKET, {"images/0.png": b"png"})
    put = api("PUT", shop, pipeline_body(inline_pipeline(aws_stack, tmp_path)), query={"set_default": "true"})
    assert put.status == 200, put.text
    data = {"input_data": {"type": "uri_folder", "path": f"s3://{INPUT_BUCKET}/images"}}
    job_id = api("POST", "/endpoints/shop/jobs", {"inputs": data}).json()["id"]
    job = aws_stack.service.repo.update_job(job_id, functools.partial(_started, step="prepare_job"))
    run_shard(job, [(1000, "prepared 2")], name=f"{job_id}-prepare_job")

    steps = api("GET", f"/jobs/{job_id}").json()["pipeline"]["steps"]
    route = f"{backend.api_base_url}/jobs/{job_id}-prepare_job/logs"
    logs = api("GET", route.removeprefix(backend.api_base_url))

    assert [step["log_uri"] for step in steps] == [route, ""]
    assert [line["message"] for line in logs.json()["lines"]] == ["prepared 2"]
    assert api("GET", f"/jobs/{job_id}-nope/logs").status == 404


def _started(job: Job, *, step: str) -> Job:
    assert job.pipeline is not None
    steps = [run.model_copy(update={"started_at": now()}) if run.step == step else run for run in job.pipeline.steps]
    return job.model_copy(update={"pipeline": job.pipeline.model_copy(update={"steps": steps})})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: {**body, "component": None}, "component"),
        (lambda body: {**body, "component": "pipeline.yml"}, "component"),
        (lambda body: {**body, "type": "pipelines"}, "type"),
        (lambda body: {**body, "model": "azureml:digits:1"}, "model"),
        (
            lambda body: {**body, "code_configuration": {"code": "s3://b/c", "scoring_script": "s.py"}},
            "code_configuration",
        ),
        (lambda body: {**body, "settings": {"default_compute": "nowhere"}}, "settings.default_compute"),
        (lambda body: {**body, "settings": {"mini_batch_size": 3}}, "settings.mini_batch_size"),
        (
            lambda body: {**body, "settings": {"continue_on_step_failure": "sometimes"}},
            "settings.continue_on_step_failure",
        ),
        (lambda body: {**body, "name": "other"}, "name"),
        (
            lambda body: _step(body, "summarize_job", {"inputs": {"data": "${{parent.jobs.nope.outputs.x}}"}}),
            "jobs.summarize_job.inputs.data",
        ),
        (
            lambda body: _step(
                body, "prepare_job", {"inputs": {"data": "${{parent.jobs.summarize_job.outputs.summary}}"}}
            ),
            "jobs.prepare_job.inputs.data",
        ),
        (lambda body: _code(body, "relative/src"), "component.jobs.prepare_job.component.code"),
        (lambda body: {**body, "component": {**body["component"], "jobs": {}}}, "component.jobs"),
    ],
)
def test_a_bad_body_is_refused_naming_its_field_and_stores_nothing(
    stack: Stack, api: Api, shop: str, tmp_path: Path, change: Any, field: str
) -> None:
    refused = api("PUT", shop, change(pipeline_body(inline_pipeline(stack, tmp_path))))

    assert refused.status == 400, refused.text
    assert refused.json()["field"] == field, refused.json()
    assert api("GET", "/endpoints/shop/deployments").json()["value"] == []


def test_a_registered_pipeline_that_does_not_exist_is_not_found(stack: Stack, api: Api, shop: str) -> None:
    refused = api("PUT", shop, pipeline_body("azureml:nothing:1"))

    assert (refused.status, refused.json()["field"]) == (404, "component"), refused.text
    assert api("GET", "/endpoints/shop/deployments").json()["value"] == []


def _step(body: dict[str, Any], name: str, changes: dict[str, Any]) -> dict[str, Any]:
    jobs = body["component"]["jobs"]
    return {**body, "component": {**body["component"], "jobs": {**jobs, name: {**jobs[name], **changes}}}}


def _code(body: dict[str, Any], code: str) -> dict[str, Any]:
    step = body["component"]["jobs"]["prepare_job"]
    return _step(body, "prepare_job", {"component": {**step["component"], "code": code}})
