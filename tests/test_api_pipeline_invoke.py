"""Invoking a pipeline deployment through the API: the body's `inputs` and `outputs` maps by name, each mistake
refused with 400 naming `inputs.NAME` (or the model's field given), and no job created."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_endpoints import yaml_specs
from tests.api_fixtures import Api, Stack, api_fixture  # noqa: F401 (pytest fixtures)
from tests.test_api_local_job import follow, running_stack_fixture  # noqa: F401 (pytest fixtures)
from tests.test_pipeline_deployments_local import write_project


@pytest.fixture
def data(running_stack: Stack, tmp_path: Path) -> Path:
    root = write_project(tmp_path / "project")
    running_stack.service.create_endpoint(yaml_specs.load_endpoint_mapping({"name": "shop"}))
    running_stack.service.create_deployment(yaml_specs.load_deployment(root / "deployment.yml"), set_default=True)
    return root / "data"


def test_the_body_names_the_pipelines_inputs_and_the_job_runs_its_steps(running_stack, api: Api, data):
    body = {"inputs": {"input_data": {"type": "uri_folder", "path": str(data)}, "label": "nightly"}}

    started = api("POST", "/endpoints/shop/jobs", body)

    assert started.status == 202, started.text
    job = follow(api, started.json()["id"])
    assert job["status"] == "Completed", job
    assert [run["status"] for run in job["pipeline"]["steps"]] == ["Completed", "Completed"]
    summary = Path(job["pipeline"]["outputs"]["summary"]) / "summary.csv"
    assert summary.read_text().startswith("nightly,a.csv")


def data_input(data: Path) -> dict:
    return {"input_data": {"type": "uri_folder", "path": str(data)}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (lambda data: {"inputs": {"label": "nightly"}}, "inputs.input_data"),
        (lambda data: {"inputs": {**data_input(data), "colour": "red"}}, "inputs.colour"),
        (lambda data: {"inputs": {**data_input(data), "label": 3}}, "inputs.label"),
        (lambda data: {"inputs": data_input(data), "outputs": {"nope": {}}}, "outputs.nope"),
        (lambda data: {"input": {"uri": str(data)}}, "input"),
        (lambda data: {"inputs": data_input(data), "overrides": {"mini_batch_size": 2}}, "overrides"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field_and_start_nothing(running_stack, api: Api, data, body, field):
    refused = api("POST", "/endpoints/shop/jobs", body(data))

    assert refused.status == 400, refused.text
    assert refused.json()["field"] == field
    assert running_stack.service.list_jobs("shop") == []


def test_an_invoke_retried_with_its_idempotency_key_answers_with_the_same_job(running_stack, api: Api, data):
    body = {"inputs": {**data_input(data), "label": "nightly"}}
    key = {"Idempotency-Key": "nightly-run-1"}

    first = api("POST", "/endpoints/shop/jobs", body, headers=key)
    again = api("POST", "/endpoints/shop/jobs", body, headers=key)
    other = api("POST", "/endpoints/shop/jobs", {"inputs": {**data_input(data), "label": "plain"}}, headers=key)

    assert (first.status, again.status) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert other.status == 409
    follow(api, first.json()["id"])
    assert len(running_stack.service.list_jobs("shop")) == 1
