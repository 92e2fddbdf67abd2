"""Every route of the REST API, through API Gateway proxy events, on the local backend and on AWS (moto).

The tests walk what a client does: register a model, create an endpoint and a deployment, invoke, follow the job.
Each route's refusals come back as {code, message, field} with the status the error means.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests

from batch_endpoints import idempotency
from batch_endpoints.repository import JOB
from batch_endpoints.service import InvokeRequest, new_job_id
from batch_endpoints.specs import JobStatus
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
    ANN,
    BOB,
    Api,
    Folders,
    Stack,
    api_fixture,
    aws_fixture,
    deployment_body,
    folders_fixture,
    ready_fixture,
    stack_fixture,
)
from tests.core_fixtures import write_tree


def error_of(response) -> dict:
    body = response.json()
    assert set(body) <= {"code", "message", "field"}, body
    return body


def refused(response, status: int, field: str | None = None, code: str | None = None) -> dict:
    assert response.status == status, response.text
    body = error_of(response)
    if field is not None:
        assert body.get("field") == field, body
    if code is not None:
        assert body["code"] == code, body
    return body


def invoke(api: Api, folders: Folders, endpoint: str = "digits", **body) -> dict:
    response = api("POST", f"/endpoints/{endpoint}/jobs", {"input": {"uri": folders.inputs}, **body})
    assert response.status == 202, response.text
    return response.json()


# ------------------------------------------------------------------------------------------------ endpoints
def test_put_endpoint_creates_it_then_updates_it_and_a_repeat_changes_nothing(stack: Stack, api: Api) -> None:
    created = api("PUT", "/endpoints/digits", {"description": "first", "tags": {"team": "ml"}})
    updated = api("PUT", "/endpoints/digits", {"description": "second"}, caller=BOB)
    repeated = api("PUT", "/endpoints/digits", {"description": "second"}, caller=BOB)

    assert created.status == updated.status == repeated.status == 200
    assert created.json()["created_by"] == ANN
    assert updated.json() == repeated.json()
    # PUT replaces what it declares: the omitted tags are now none; who created it and when stay.
    assert updated.json()["description"] == "second" and updated.json()["tags"] == {}
    assert updated.json()["created_at"] == created.json()["created_at"]
    assert updated.json()["created_by"] == ANN


def test_put_endpoint_reads_azures_endpoint_schema(stack: Stack, api: Api) -> None:
    body = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json",
        "name": "digits",
        "description": "8x8",
        "auth_mode": "aad_token",
    }

    endpoint = api("PUT", "/endpoints/digits", body).json()

    assert endpoint["auth_mode"] == "aws_iam"
    assert endpoint["scoring_uri"] == f"{stack.backend.api_base_url}/endpoints/digits/jobs"


def test_put_endpoint_refuses_a_name_other_than_the_paths(stack: Stack, api: Api) -> None:
    body = refused(api("PUT", "/endpoints/digits", {"name": "other"}), 400, "name", "ValidationError")

    assert "the path says 'digits'" in body["message"]
    assert api("GET", "/endpoints/other").status == 404


def test_put_endpoint_refuses_a_bad_name_and_writes_nothing(stack: Stack, api: Api) -> None:
    refused(api("PUT", "/endpoints/1-bad", {}), 400, "name")

    assert api("GET", "/endpoints").json() == {"value": [], "next_token": None}


def test_put_endpoint_refuses_a_default_deployment_on_creation(stack: Stack, api: Api) -> None:
    refused(api("PUT", "/endpoints/digits", {"defaults": {"deployment_name": "blue"}}), 400, "defaults.deployment_name")


def test_put_endpoint_sets_the_default_of_an_existing_endpoint(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))

    put = api("PUT", "/endpoints/digits", {"description": "8x8 digits", "defaults": {"deployment_name": "green"}})

    assert put.status == 200
    assert put.json()["default_deployment"] == "green"


def test_get_endpoint_shows_it_with_its_scoring_uri(ready: Stack, api: Api) -> None:
    endpoint = api("GET", "/endpoints/digits").json()

    assert endpoint["name"] == "digits"
    assert endpoint["default_deployment"] == "blue"
    assert endpoint["scoring_uri"].endswith("/endpoints/digits/jobs")


def test_get_unknown_endpoint_is_not_found(stack: Stack, api: Api) -> None:
    body = refused(api("GET", "/endpoints/nothing"), 404, "endpoint_name", "NotFound")

    assert "'nothing' does not exist" in body["message"]


def test_patch_endpoint_sets_the_default_deployment_and_description(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))

    patched = api("PATCH", "/endpoints/digits", {"defaults": {"deployment_name": "green"}, "description": "v2"})

    assert patched.status == 200
    assert patched.json()["default_deployment"] == "green"
    assert patched.json()["description"] == "v2"
    assert api("GET", "/endpoints/digits").json()["default_deployment"] == "green"


def test_patch_endpoint_to_an_unknown_deployment_is_not_found(ready: Stack, api: Api) -> None:
    refused(api("PATCH", "/endpoints/digits", {"defaults": {"deployment_name": "nope"}}), 404, "deployment_name")

    assert api("GET", "/endpoints/digits").json()["default_deployment"] == "blue"


def test_patch_unknown_endpoint_is_not_found(stack: Stack, api: Api) -> None:
    refused(api("PATCH", "/endpoints/nothing", {"description": "x"}), 404, "endpoint_name")


def test_delete_endpoint_deletes_its_deployments_but_keeps_its_jobs(ready: Stack, api: Api, folders: Folders) -> None:
    job = invoke(api, folders)

    deleted = api("DELETE", "/endpoints/digits")

    assert deleted.status == 204 and not deleted.text
    assert api("GET", "/endpoints/digits").status == 404
    assert ready.service.repo.list_deployments("digits") == []
    assert api("GET", f"/jobs/{job['id']}").json()["status"] == "Queued"
    refused(api("DELETE", "/endpoints/digits"), 404, "endpoint_name")


def test_list_endpoints(stack: Stack, api: Api) -> None:
    for name in ("digits", "images"):
        api("PUT", f"/endpoints/{name}", {})

    listed = api("GET", "/endpoints")

    assert listed.status == 200
    assert [e["name"] for e in listed.json()["value"]] == ["digits", "images"]


# ------------------------------------------------------------------------------------------------ deployments
def test_put_deployment_creates_it_from_azures_deployment_schema(ready: Stack, api: Api, folders: Folders) -> None:
    deployment = api("GET", "/endpoints/digits/deployments/blue").json()

    assert deployment["model"] == "digits:1"
    assert deployment["compute"] == "cpu-cluster"
    assert deployment["settings"]["mini_batch_size"] == 3
    assert deployment["code_configuration"]["scoring_script"] == "score.py"
    assert deployment["created_by"] == ANN
    if ready.kind == "aws":  # code already in storage is used where it is, and the deployment is a Batch job def
        assert deployment["code_configuration"]["code"] == folders.code
        assert ":job-definition/" in deployment["compute_handle"]


def test_put_deployment_again_updates_it_and_keeps_its_creation(ready: Stack, api: Api, folders: Folders) -> None:
    before = api("GET", "/endpoints/digits/deployments/blue").json()

    body = deployment_body(folders, settings={"mini_batch_size": 5, "output_action": "AppendRow"})
    updated = api("PUT", "/endpoints/digits/deployments/blue", body, caller=BOB)

    assert updated.status == 200, updated.text
    assert updated.json()["settings"]["mini_batch_size"] == 5
    assert updated.json()["created_at"] == before["created_at"]
    assert updated.json()["created_by"] == ANN


def test_put_deployment_reads_null_as_not_given_as_it_always_has(ready: Stack, api: Api, folders: Folders) -> None:
    nulls = dict.fromkeys(("description", "tags", "compute", "inputs", "environment", "resources", "settings"))

    updated = api("PUT", "/endpoints/digits/deployments/blue", {**deployment_body(folders), **nulls})

    assert updated.status == 200, updated.text
    assert (updated.json()["compute"], updated.json()["settings"]["mini_batch_size"]) == ("cpu-cluster", 10)


def test_put_deployment_with_an_inline_model_in_storage_registers_it(ready: Stack, api: Api, folders: Folders) -> None:
    body = deployment_body(folders, model={"path": folders.model})

    put = api("PUT", "/endpoints/digits/deployments/green", body)

    assert put.status == 200, put.text
    assert put.json()["model"] == "green-model:1"
    model = api("GET", "/models/green-model/versions/1").json()
    assert model["created_by"] == ANN
    if ready.kind == "aws":
        assert model["path"] == folders.model


def test_put_deployment_with_set_default_makes_it_the_default(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders), query={"set_default": "true"})

    assert api("GET", "/endpoints/digits").json()["default_deployment"] == "green"


def test_put_deployment_refuses_code_outside_the_backends_storage(ready: Stack, api: Api, folders: Folders) -> None:
    elsewhere = "/var/task" if ready.kind == "aws" else "s3://bucket/code"
    body = deployment_body(folders, code_configuration={"code": elsewhere, "scoring_script": "score.py"})

    refused(api("PUT", "/endpoints/digits/deployments/green", body), 400, "code_configuration.code")
    assert api("GET", "/endpoints/digits/deployments/green").status == 404


def test_put_deployment_refuses_a_relative_code_path(ready: Stack, api: Api, folders: Folders) -> None:
    body = deployment_body(folders, code_configuration={"code": "./src", "scoring_script": "score.py"})

    refused(api("PUT", "/endpoints/digits/deployments/green", body), 400, "code_configuration.code")


def test_put_deployment_without_its_scoring_script_in_storage_is_refused(
    ready: Stack, api: Api, folders: Folders
) -> None:
    body = deployment_body(folders, code_configuration={"code": folders.code, "scoring_script": "missing.py"})

    refused(api("PUT", "/endpoints/digits/deployments/green", body), 400, "code_configuration.scoring_script")


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"compute": "tpu-cluster"}, 400, "compute"),
        ({"model": "digits:9"}, 404, "model"),
        ({"model": 5}, 400, "model"),
        ({"name": "green-2"}, 400, "name"),
        ({"endpoint_name": "images"}, 400, "endpoint_name"),
        ({"settings": {"mini_batch_szie": 3}}, 400, "settings.mini_batch_szie"),
        ({"settings": {"mini_batch_size": "three"}}, 400, "settings.mini_batch_size"),
        ({"settings": {"mini_batch_size": 0}}, 400, "settings.mini_batch_size"),
        ({"environment": {"image": "x", "conda_file": "conda.yml"}}, 400, "environment.conda_file"),
        ({"environment": "azureml:nothing:1"}, 404, "environment"),
        ({"environment": "nothing@latest"}, 404, "environment"),
        ({"environment": "azureml://registries/azureml/environments/sklearn/labels/latest"}, 400, "environment"),
        ({"code_configuration": None}, 400, "code_configuration"),
    ],
)
def test_put_deployment_refusals_name_the_field_and_write_nothing(
    ready: Stack, api: Api, folders: Folders, change: dict, status: int, field: str
) -> None:
    body = {k: v for k, v in {**deployment_body(folders), **change}.items() if v is not None}

    refused(api("PUT", "/endpoints/digits/deployments/green", body), status, field)
    assert [d["name"] for d in api("GET", "/endpoints/digits/deployments").json()["value"]] == ["blue"]


def test_put_deployment_in_an_unknown_endpoint_is_not_found(stack: Stack, api: Api, folders: Folders) -> None:
    refused(api("PUT", "/endpoints/nothing/deployments/blue", deployment_body(folders)), 404, "endpoint_name")


def test_get_unknown_deployment_is_not_found(ready: Stack, api: Api) -> None:
    refused(api("GET", "/endpoints/digits/deployments/green"), 404, "deployment_name")
    refused(api("GET", "/endpoints/nothing/deployments/blue"), 404, "endpoint_name")


def test_list_deployments(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))

    listed = api("GET", "/endpoints/digits/deployments")

    assert listed.status == 200
    assert sorted(d["name"] for d in listed.json()["value"]) == ["blue", "green"]
    refused(api("GET", "/endpoints/nothing/deployments"), 404, "endpoint_name")


def test_deleting_the_default_while_others_exist_is_a_conflict_that_says_what_to_do(
    ready: Stack, api: Api, folders: Folders
) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))

    body = refused(api("DELETE", "/endpoints/digits/deployments/blue"), 409, "name", "Conflict")

    assert "make another deployment the default first (one of: green)" in body["message"]
    assert api("GET", "/endpoints/digits/deployments/blue").status == 200


def test_delete_deployment(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))

    assert api("DELETE", "/endpoints/digits/deployments/green").status == 204
    assert api("DELETE", "/endpoints/digits/deployments/blue").status == 204  # the last one, default or not
    assert api("GET", "/endpoints/digits").json()["default_deployment"] is None
    refused(api("DELETE", "/endpoints/digits/deployments/blue"), 404, "deployment_name")


# ------------------------------------------------------------------------------------------------ models
def test_put_model_version_registers_it_where_it_is(stack: Stack, api: Api, folders: Folders) -> None:
    put = api("PUT", "/models/digits/versions/3", {"path": folders.model, "description": "8x8", "tags": {"a": "b"}})

    assert put.status == 201, put.text
    model = put.json()
    assert (model["name"], model["version"], model["description"], model["tags"]) == ("digits", "3", "8x8", {"a": "b"})
    assert model["created_by"] == ANN
    if stack.kind == "aws":
        assert model["path"] == folders.model


def test_put_model_version_is_immutable(stack: Stack, api: Api, folders: Folders) -> None:
    first = api("PUT", "/models/digits/versions/1", {"path": folders.model}).json()

    refused(api("PUT", "/models/digits/versions/1", {"path": folders.model, "description": "x"}), 409, "version")
    assert api("GET", "/models/digits/versions/1").json() == first


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/models/digits/versions/latest", None, "version"),
        ("/models/bad%name/versions/1", None, "name"),
        ("/models/digits/versions/1", {}, "path"),
        ("/models/digits/versions/1", {"path": "relative/model"}, "path"),
    ],
)
def test_put_model_version_refusals_name_the_field(
    stack: Stack, api: Api, folders: Folders, path: str, body: dict | None, field: str
) -> None:
    refused(api("PUT", path, {"path": folders.model} if body is None else body), 400, field)
    assert api("GET", "/models").json() == {"value": [], "next_token": None}


def test_put_model_version_from_a_missing_location_is_refused(stack: Stack, api: Api) -> None:
    refused(api("PUT", "/models/digits/versions/1", {"path": stack.location("no-model")}), 400, "path")


def test_put_model_version_refuses_paths_outside_the_backends_storage(stack: Stack, api: Api) -> None:
    elsewhere = "/proc/self" if stack.kind == "aws" else "s3://bucket/model"

    refused(api("PUT", "/models/digits/versions/1", {"path": elsewhere}), 400, "path")


def test_list_and_show_model_versions_with_latest(stack: Stack, api: Api, folders: Folders) -> None:
    for version in ("1", "2", "10"):
        api("PUT", f"/models/digits/versions/{version}", {"path": folders.model})
    api("PUT", "/models/other/versions/1", {"path": folders.model})

    every = api("GET", "/models").json()["value"]
    versions = api("GET", "/models/digits/versions").json()["value"]

    assert sorted((m["name"], m["version"]) for m in every) == [
        ("digits", "1"),
        ("digits", "10"),
        ("digits", "2"),
        ("other", "1"),
    ]
    assert sorted(m["version"] for m in versions) == ["1", "10", "2"]
    assert api("GET", "/models/digits/versions/latest").json()["version"] == "10"
    assert api("GET", "/models/digits/versions/2").json()["version"] == "2"
    assert api("GET", "/models/nothing/versions").json() == {"value": [], "next_token": None}


def test_unknown_model_version_is_not_found(stack: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/models/digits/versions/1", {"path": folders.model})

    refused(api("GET", "/models/digits/versions/2"), 404, "model")
    refused(api("GET", "/models/nothing/versions/latest"), 404, "model")


def test_model_upload_gives_a_presigned_post_into_the_stacks_bucket(stack: Stack, api: Api) -> None:
    response = api("POST", "/models/digits/uploads")

    if stack.kind == "local":
        refused(response, 400, "path")  # the local backend's storage is this disk: nothing to upload
        return
    assert response.status == 200, response.text
    upload = response.json()
    bucket = stack.backend.blobs.root.removeprefix("s3://").split("/")[0]
    assert upload["path"] == f"s3://{bucket}/{upload['key_prefix']}"
    assert upload["key_prefix"].startswith("uploads/models/digits/") and upload["key_prefix"].endswith("/")
    assert "policy" in upload["fields"] and "x-amz-signature" in upload["fields"]
    assert "key" not in upload["fields"]  # each file names its own key under the prefix
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["starts-with", "$key", upload["key_prefix"]] in policy["conditions"]
    # The client posts each file with the fields and its own key, then registers the folder by its path.
    for name, content in (("weights.txt", b"0.5\n"), ("meta/config.json", b"{}")):
        form = {**upload["fields"], "key": upload["key_prefix"] + name}
        posted = requests.post(upload["url"], data=form, files={"file": (name, content)}, timeout=10)
        assert posted.status_code == 204
    registered = api("PUT", "/models/digits/versions/1", {"path": upload["path"]})
    assert registered.status == 201, registered.text
    assert registered.json()["path"] == upload["path"]


def test_code_upload_gives_a_presigned_post_for_a_code_folder(stack: Stack, api: Api) -> None:
    response = api("POST", "/code/uploads")

    if stack.kind == "local":
        refused(response, 400, "path")
        return
    assert response.json()["key_prefix"].startswith("uploads/code/")


# ------------------------------------------------------------------------------------------------ environments
CONDA = "name: digits\ndependencies:\n  - python=3.11\n  - pip:\n    - pillow\n"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bep-digits"


def test_put_environment_version_registers_it(stack: Stack, api: Api) -> None:
    body = {"image": f"{IMAGE}:3", "conda_file": CONDA, "pip_requirements": ["numpy"], "description": "cpu"}

    put = api("PUT", "/environments/digits-env/versions/3", {**body, "tags": {"a": "b"}})

    assert put.status == 201, put.text
    environment = put.json()
    assert (environment["name"], environment["version"], environment["image"]) == ("digits-env", "3", f"{IMAGE}:3")
    assert (environment["conda_file"], environment["pip_requirements"]) == (CONDA, ["numpy", "pillow"])
    assert (environment["description"], environment["tags"], environment["created_by"]) == ("cpu", {"a": "b"}, ANN)
    assert api("GET", "/environments/digits-env/versions/3").json() == environment


def test_put_environment_version_is_immutable(stack: Stack, api: Api) -> None:
    first = api("PUT", "/environments/digits-env/versions/1", {"image": f"{IMAGE}:1"}).json()

    refused(api("PUT", "/environments/digits-env/versions/1", {"image": f"{IMAGE}:2"}), 409, "version", "Conflict")
    assert api("GET", "/environments/digits-env/versions/1").json() == first


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/environments/digits-env/versions/latest", {"image": "x"}, "version"),
        ("/environments/bad%name/versions/1", {"image": "x"}, "name"),
        ("/environments/digits-env/versions/1", {}, "image"),
        ("/environments/digits-env/versions/1", {"description": "no image, no conda file"}, "image"),
        ("/environments/digits-env/versions/1", {"conda_file": "/etc/hostname"}, "conda_file"),
        ("/environments/digits-env/versions/1", {"conda_file": "- a\n- list\n"}, "conda_file"),
        ("/environments/digits-env/versions/1", {"image": "x", "pip_requirements": "numpy"}, "pip_requirements"),
        ("/environments/digits-env/versions/1", {"image": "x", "dockerfile": "FROM x"}, "dockerfile"),
    ],
)
def test_put_environment_version_refusals_name_the_field(
    stack: Stack, api: Api, path: str, body: dict, field: str
) -> None:
    refused(api("PUT", path, body), 400, field)
    assert api("GET", "/environments").json() == {"value": [], "next_token": None}


def test_list_and_show_environment_versions_with_latest(stack: Stack, api: Api) -> None:
    for version in ("1", "2", "10"):
        api("PUT", f"/environments/digits-env/versions/{version}", {"image": f"{IMAGE}:{version}"})
    api("PUT", "/environments/other/versions/1", {"conda_file": CONDA})

    every = api("GET", "/environments").json()["value"]
    versions = api("GET", "/environments/digits-env/versions").json()["value"]

    assert sorted((e["name"], e["version"]) for e in every) == [
        ("digits-env", "1"),
        ("digits-env", "10"),
        ("digits-env", "2"),
        ("other", "1"),
    ]
    assert sorted(e["version"] for e in versions) == ["1", "10", "2"]
    assert api("GET", "/environments/digits-env/versions/latest").json()["image"] == f"{IMAGE}:10"
    assert api("GET", "/environments/digits-env/versions/2").json()["version"] == "2"
    assert api("GET", "/environments/nothing/versions").json() == {"value": [], "next_token": None}


def test_unknown_environment_version_is_not_found(stack: Stack, api: Api) -> None:
    api("PUT", "/environments/digits-env/versions/1", {"image": f"{IMAGE}:1"})

    refused(api("GET", "/environments/digits-env/versions/2"), 404, "environment", "NotFound")
    refused(api("GET", "/environments/nothing/versions/latest"), 404, "environment", "NotFound")


def job_definition_image(job_definition_arn: str) -> str:
    [definition] = boto3.client("batch").describe_job_definitions(jobDefinitions=[job_definition_arn])["jobDefinitions"]
    return definition["containerProperties"]["image"]


@pytest.mark.parametrize("reference", ["azureml:digits-env:1", "digits-env@latest"])
def test_deployment_runs_the_registered_environment_and_keeps_it_when_a_newer_one_comes(
    ready: Stack, api: Api, folders: Folders, reference: str
) -> None:
    api("PUT", "/environments/digits-env/versions/1", {"image": f"{IMAGE}:1", "conda_file": CONDA})

    put = api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders, environment=reference))
    api("PUT", "/environments/digits-env/versions/2", {"image": f"{IMAGE}:2"})
    shown = api("GET", "/endpoints/digits/deployments/green").json()

    assert put.status == 200, put.text
    assert shown == put.json()
    assert shown["environment"] == {
        "name": "digits-env",
        "version": "1",
        "image": f"{IMAGE}:1",
        "conda_file": CONDA,
        "pip_requirements": ["pillow"],
        "description": "",
        "tags": {},
        "created_at": None,
        "created_by": "",
    }
    if ready.kind == "aws":  # the deployment's Batch job definition runs the registered image
        assert job_definition_image(shown["compute_handle"]) == f"{IMAGE}:1"
    # Updating the deployment resolves the reference again: @latest is now version 2.
    updated = api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders, environment=reference)).json()
    expected = "1" if reference.endswith(":1") else "2"
    assert updated["environment"]["version"] == expected
    if ready.kind == "aws":
        assert job_definition_image(updated["compute_handle"]) == f"{IMAGE}:{expected}"


# ------------------------------------------------------------------------------------------------ computes
def test_list_computes(stack: Stack, api: Api) -> None:
    listed = api("GET", "/computes")

    assert listed.status == 200
    assert {c["name"]: c["kind"] for c in listed.json()["value"]} == {"cpu-cluster": "cpu", "gpu-cluster": "gpu"}


# ------------------------------------------------------------------------------------------------ invoke
def test_invoke_starts_a_job_and_answers_202_with_its_links(ready: Stack, api: Api, folders: Folders) -> None:
    response = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}})

    assert response.status == 202, response.text
    job = response.json()
    assert job["status"] == "Queued"
    assert job["deployment_name"] == "blue"
    assert job["input"] == {"uri": folders.inputs, "type": "uri_folder", "source": None, "exclude": []}
    assert job["created_by"] == ANN
    assert job["links"]["job"] == f"{ready.backend.api_base_url}/jobs/{job['id']}"
    assert response.headers["Location"] == job["links"]["job"]
    assert job["links"]["output"] == job["output_uri"]
    assert job["output_uri"].endswith(f"/outputs/digits/{job['id']}/predictions.csv")
    assert ready.started() == [job["id"]]
    if ready.kind == "aws":
        assert job["execution"].startswith("arn:aws:states:us-east-1:")
        assert job["links"]["console"] == (
            "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
            f"#/v2/executions/details/{job['execution']}"
        )
    else:
        assert "console" not in job["links"] or job["links"]["console"] is None


def test_invoke_with_a_deployment_output_and_overrides(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))
    output = ready.location("results")
    body = {
        "deployment_name": "green",
        "output": {"path": output, "file_name": "scores.csv"},
        "overrides": {"mini_batch_size": 2, "instance_count": 2, "max_retries": 1, "timeout": 60, "error_threshold": 0},
    }

    job = invoke(api, folders, **body)

    assert job["deployment_name"] == "green"
    assert job["output_uri"] == f"{output}/scores.csv"
    settings = job["settings"]
    assert (settings["mini_batch_size"], settings["instance_count"], settings["error_threshold"]) == (2, 2, 0)
    assert settings["retry_settings"] == {"max_retries": 1, "timeout": 60}
    assert settings["output_file_name"] == "scores.csv"
    # The deployment keeps its own settings.
    assert api("GET", "/endpoints/digits/deployments/green").json()["settings"]["mini_batch_size"] == 3


def test_invoke_takes_azures_inputs_and_outputs_by_name(ready: Stack, api: Api, folders: Folders) -> None:
    output = ready.location("results")
    body = {
        "inputs": {"heart_data": {"type": "uri_folder", "path": folders.inputs, "mode": "ro_mount"}},
        "outputs": {"score": {"type": "uri_file", "path": f"{output}/scores.csv"}},
    }

    response = api("POST", "/endpoints/digits/jobs", body)

    assert response.status == 202, response.text
    job = response.json()
    assert job["input"]["uri"] == folders.inputs and job["input"]["type"] == "uri_folder"
    assert job["output_uri"] == f"{output}/scores.csv"
    assert job["settings"]["output_file_name"] == "scores.csv"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"input": {}}, 400, "input.uri"),
        ({}, 400, "inputs"),
        ({"inputs": {"heart": {"type": "uri_folder"}}}, 400, "inputs.heart.path"),
        ({"inputs": {"heart": {"type": "uri_table", "path": "IN"}}}, 400, "inputs.heart.type"),
        ({"inputs": {"a": {"path": "IN"}, "b": {"type": "uri_folder", "path": "IN"}}}, 400, "inputs.b"),
        ({"input": {"uri": "IN"}, "outputs": {"other": {"path": "IN"}}}, 400, "outputs.other"),
        ({"input": {"uri": "IN"}, "inputs": {"t": {"type": "integer", "default": "x"}}}, 400, "inputs.t.default"),
        ({"input": {"uri": "IN"}, "inputs": {"t": {"type": "string", "path": "IN"}}}, 400, "inputs.t.path"),
        ({"input": {"uri": "IN"}, "inputs": {"colour": "red"}}, 400, "inputs.colour"),
        ({"input": {"uri": "IN", "type": "uri_table"}}, 400, "input.type"),
        ({"input": {"uri": "IN"}, "overrides": {"mini_batch_size": 0}}, 400, "overrides.mini_batch_size"),
        ({"input": {"uri": "IN"}, "overrides": {"retries": 2}}, 400, "overrides.retries"),
        ({"input": {"uri": "IN"}, "overrides": {"output_file_name": "a/b.csv"}}, 400, "output_file_name"),
        ({"input": {"uri": "IN"}, "deployment_name": "nope"}, 404, "deployment_name"),
        ({"input": {"uri": "IN", "type": "uri_file"}}, 400, "input_type"),
        ({"input": {"uri": "MISSING"}}, 400, "input"),
        ({"input": {"uri": "relative/in"}}, 400, "input"),
        (
            {"input": {"uri": "IN"}, "output": {"file_name": "a.csv"}, "overrides": {"output_file_name": "b.csv"}},
            400,
            "output.file_name",
        ),
    ],
)
def test_invoke_refusals_name_the_field_and_start_nothing(
    ready: Stack, api: Api, folders: Folders, body: dict, status: int, field: str
) -> None:
    text = json.dumps(body).replace('"IN"', json.dumps(folders.inputs))
    text = text.replace('"MISSING"', json.dumps(ready.location("missing")))

    refused(api("POST", "/endpoints/digits/jobs", text), status, field)
    assert ready.started() == []
    assert api("GET", "/endpoints/digits/jobs").json()["value"] == []


def test_invoke_of_an_unknown_endpoint_is_not_found(stack: Stack, api: Api, folders: Folders) -> None:
    refused(api("POST", "/endpoints/nothing/jobs", {"input": {"uri": folders.inputs}}), 404, "endpoint_name")


def test_invoke_without_a_default_deployment_is_refused(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/images", {})

    body = refused(api("POST", "/endpoints/images/jobs", {"input": {"uri": folders.inputs}}), 400, "deployment_name")

    assert "no default deployment" in body["message"]


def test_invoke_onto_an_existing_output_file_is_a_conflict(ready: Stack, api: Api, folders: Folders) -> None:
    output = {"path": folders.inputs, "file_name": "a.txt"}

    refused(api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}, "output": output}), 409, "output")
    assert ready.started() == []


def test_invoke_refuses_input_outside_the_backends_storage(ready: Stack, api: Api) -> None:
    elsewhere = "/etc" if ready.kind == "aws" else "s3://bucket/inputs"

    refused(api("POST", "/endpoints/digits/jobs", {"input": {"uri": elsewhere}}), 400, "input")


# ------------------------------------------------------------------------------------------------ idempotency
def test_invoke_twice_with_one_idempotency_key_makes_one_job_and_one_execution(
    ready: Stack, api: Api, folders: Folders
) -> None:
    body = {"input": {"uri": folders.inputs}, "overrides": {"mini_batch_size": 2}}
    key = {"Idempotency-Key": "2f1c7d4e-retry-me"}

    first = api("POST", "/endpoints/digits/jobs", body, headers=key)
    second = api("POST", "/endpoints/digits/jobs", body, headers={"idempotency-key": key["Idempotency-Key"]})

    assert first.status == second.status == 202
    assert first.json()["id"] == second.json()["id"]
    assert ready.started() == [first.json()["id"]]
    assert len(api("GET", "/endpoints/digits/jobs").json()["value"]) == 1


def test_one_idempotency_key_with_a_different_request_is_a_conflict(ready: Stack, api: Api, folders: Folders) -> None:
    key = {"Idempotency-Key": "k-1"}
    first = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}}, headers=key).json()

    other = {"input": {"uri": folders.inputs}, "overrides": {"mini_batch_size": 2}}
    body = refused(api("POST", "/endpoints/digits/jobs", other, headers=key), 409, "Idempotency-Key")

    assert first["id"] in body["message"]
    assert ready.started() == [first["id"]]


def test_one_idempotency_key_with_a_different_input_is_a_conflict_naming_the_first_job(
    ready: Stack, api: Api, folders: Folders, tmp_path: Path
) -> None:
    other = ready.stage(write_tree(tmp_path / "other-inputs", {"h.txt": "hh"}))
    key = {"Idempotency-Key": "k-input"}
    first = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}}, headers=key).json()

    body = refused(
        api("POST", "/endpoints/digits/jobs", {"input": {"uri": other}}, headers=key), 409, "Idempotency-Key"
    )

    assert first["id"] in body["message"]
    assert ready.started() == [first["id"]]
    assert [job["id"] for job in api("GET", "/endpoints/digits/jobs").json()["value"]] == [first["id"]]


def test_idempotency_keys_are_per_endpoint(ready: Stack, api: Api, folders: Folders) -> None:
    api("PUT", "/endpoints/images", {})
    api("PUT", "/endpoints/images/deployments/blue", deployment_body(folders), query={"set_default": "true"})
    key = {"Idempotency-Key": "same-key"}

    digits = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}}, headers=key).json()
    images = api("POST", "/endpoints/images/jobs", {"input": {"uri": folders.inputs}}, headers=key).json()

    assert digits["id"] != images["id"]
    assert sorted(ready.started()) == sorted([digits["id"], images["id"]])


def test_concurrent_requests_with_one_key_agree_on_one_job(ready: Stack, folders: Folders) -> None:
    # The resolver serves one request at a time per process (as Lambda does), so race the service itself.
    request = InvokeRequest(endpoint_name="digits", input=folders.inputs, caller=ANN)
    barrier = threading.Barrier(4)

    def invoke_at_once() -> str:
        barrier.wait()
        return ready.service.invoke_idempotent(request, "raced-key").id

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda _: invoke_at_once(), range(4)))

    assert len(ids) == 1
    assert ready.started() == list(ids)


def test_a_retry_after_a_first_request_that_never_created_its_job_creates_it_once(
    ready: Stack, api: Api, folders: Folders
) -> None:
    # The first request stored the key and its job id, then died before writing the job.
    body = {"input": {"uri": folders.inputs}}
    fields = {
        "endpoint_name": "digits",
        "input": folders.inputs,
        "input_type": None,
        "deployment_name": None,
        "output_path": None,
        "overrides": {},
    }
    job_id = new_job_id("digits")
    idempotency.claim(ready.backend.records, "digits", "k-2", fields, job_id)

    retried = api("POST", "/endpoints/digits/jobs", body, headers={"Idempotency-Key": "k-2"})
    again = api("POST", "/endpoints/digits/jobs", body, headers={"Idempotency-Key": "k-2"})

    assert retried.json()["id"] == again.json()["id"] == job_id
    assert ready.started() == [job_id]


def test_a_refused_request_keeps_its_key_for_the_same_request(ready: Stack, api: Api, folders: Folders) -> None:
    body = {"input": {"uri": folders.inputs}, "deployment_name": "green"}
    key = {"Idempotency-Key": "k-3"}
    refused(api("POST", "/endpoints/digits/jobs", body, headers=key), 404, "deployment_name")

    api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))
    retried = api("POST", "/endpoints/digits/jobs", body, headers=key)

    assert retried.status == 202
    assert ready.started() == [retried.json()["id"]]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_idempotency_key_is_refused(ready: Stack, api: Api, folders: Folders, key: str) -> None:
    response = api(
        "POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}}, headers={"Idempotency-Key": key}
    )

    refused(response, 400, "Idempotency-Key")
    assert ready.started() == []


# ------------------------------------------------------------------------------------------------ jobs
def test_get_job_shows_its_live_progress(ready: Stack, api: Api, folders: Folders) -> None:
    job = invoke(api, folders)
    ready.backend.records.add_counters(JOB, job["id"], {"mini_batches_done": 2, "files_succeeded": 6})

    shown = api("GET", f"/jobs/{job['id']}")

    assert shown.status == 200
    assert shown.json()["progress"] == {"mini_batches_done": 2, "files_succeeded": 6}
    assert shown.json()["links"] == job["links"]
    assert "deployment" not in shown.json()


def test_get_unknown_job_is_not_found(stack: Stack, api: Api) -> None:
    refused(api("GET", "/jobs/digits-000000000000"), 404, "job")


def test_list_jobs_pages_newest_first_without_skipping_any(ready: Stack, api: Api, folders: Folders) -> None:
    ids = [invoke(api, folders)["id"] for _ in range(5)]

    pages, token = [], None
    while True:
        query = {"limit": "2", **({"next_token": token} if token else {})}
        page = api("GET", "/endpoints/digits/jobs", query=query).json()
        pages.append([job["id"] for job in page["value"]])
        token = page.get("next_token")
        if not token:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [job_id for page in pages for job_id in page] == ids[::-1]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"next_token": "garbage"}, "next_token")],
)
def test_list_jobs_refuses_a_bad_page(ready: Stack, api: Api, query: dict, field: str) -> None:
    refused(api("GET", "/endpoints/digits/jobs", query=query), 400, field)


def test_list_jobs_of_an_unknown_endpoint_is_not_found(stack: Stack, api: Api) -> None:
    refused(api("GET", "/endpoints/nothing/jobs"), 404, "endpoint_name")


def test_cancel_job_asks_it_to_stop(ready: Stack, api: Api, folders: Folders) -> None:
    job = invoke(api, folders)

    canceled = api("POST", f"/jobs/{job['id']}/cancel")

    assert canceled.status == 202
    # The request is recorded and the workflow asked to stop; the workflow closes the job once it has stopped
    # (locally the job host, on AWS the execution_ended step): the API does nothing that grows with the job.
    assert canceled.json()["status"] == "CancelRequested"
    assert api("GET", f"/jobs/{job['id']}").json()["status"] == "CancelRequested"
    if ready.kind == "aws":
        execution = boto3.client("stepfunctions").describe_execution(executionArn=canceled.json()["execution"])
        assert execution["status"] == "ABORTED"


def test_cancel_of_an_ended_job_is_a_conflict(ready: Stack, api: Api, folders: Folders) -> None:
    job = invoke(api, folders)
    ready.service.repo.update_job(job["id"], lambda j: j.model_copy(update={"status": JobStatus.COMPLETED}))

    body = refused(api("POST", f"/jobs/{job['id']}/cancel"), 409, "job")

    assert "already ended (Completed)" in body["message"]


def test_cancel_of_an_unknown_job_is_not_found(stack: Stack, api: Api) -> None:
    refused(api("POST", "/jobs/digits-000000000000/cancel"), 404, "job")


def test_job_logs_come_a_page_at_a_time(ready: Stack, api: Api, folders: Folders) -> None:
    job = invoke(api, folders)
    if ready.kind == "local":
        logs = ready.service.repo.get_job(job["id"]).scratch_uri + "/logs"
        ready.backend.blobs.put_bytes(logs + "/instance-0-worker-0.log", b"one\ntwo\nthree\n")

    first = api("GET", f"/jobs/{job['id']}/logs", query={"limit": "2"})

    assert first.status == 200, first.text
    if ready.kind == "aws":  # no Batch job has run, so nothing was logged
        assert first.json() == {"lines": [], "next_token": None}
        return
    assert [line["message"] for line in first.json()["lines"]] == ["one", "two"]
    assert first.json()["lines"][0]["source"] == "instance-0-worker-0"
    rest = api("GET", f"/jobs/{job['id']}/logs", query={"next_token": first.json()["next_token"]}).json()
    assert [line["message"] for line in rest["lines"]] == ["three"]
    assert rest["next_token"] is None


def test_job_logs_of_an_unknown_job_are_not_found(stack: Stack, api: Api) -> None:
    refused(api("GET", "/jobs/digits-000000000000/logs"), 404, "job")
    refused(api("GET", "/jobs/digits-000000000000/logs", query={"limit": "0"}), 400, "limit")


# ------------------------------------------------------------------------------------------------ identity
def test_every_record_a_request_creates_names_its_caller(ready: Stack, folders: Folders) -> None:
    bob = Api(caller=BOB)

    bob("PUT", "/endpoints/images", {})
    bob("PUT", "/models/images/versions/1", {"path": folders.model})
    bob("PUT", "/environments/images/versions/1", {"image": "img:1"})
    bob("PUT", "/endpoints/images/deployments/blue", deployment_body(folders, model="images:1"))
    job = bob("POST", "/endpoints/images/jobs", {"input": {"uri": folders.inputs}, "deployment_name": "blue"}).json()

    assert bob("GET", "/endpoints/images").json()["created_by"] == BOB
    assert bob("GET", "/models/images/versions/1").json()["created_by"] == BOB
    assert bob("GET", "/environments/images/versions/1").json()["created_by"] == BOB
    assert bob("GET", "/endpoints/images/deployments/blue").json()["created_by"] == BOB
    assert job["created_by"] == BOB
    assert ready.service.get_job(job["id"]).created_by == BOB


def test_a_request_without_an_iam_identity_records_no_caller(stack: Stack) -> None:
    assert Api(caller=None)("PUT", "/endpoints/digits", {}).json()["created_by"] == ""


# ------------------------------------------------------------------------------------------------ every list pages
# A Lambda's response is at most 6 MB: every list answers `limit` items and a next_token while more follow, with
# the jobs' query parameters and token.
ITEMS = 5


def _endpoints(api: Api, folders: Folders) -> None:
    for i in range(ITEMS - 1):  # and `digits`
        assert api("PUT", f"/endpoints/shop-{i}", {}).status == 200


def _deployments(api: Api, folders: Folders) -> None:
    for i in range(ITEMS - 1):  # and `blue`
        assert api("PUT", f"/endpoints/digits/deployments/green-{i}", deployment_body(folders)).status == 200


def _model_versions(api: Api, folders: Folders) -> None:
    for version in range(2, ITEMS + 1):  # and digits:1
        assert api("PUT", f"/models/digits/versions/{version}", {"path": folders.model}).status == 201


def _environment_versions(api: Api, folders: Folders) -> None:
    for version in range(1, ITEMS + 1):
        assert api("PUT", f"/environments/torch/versions/{version}", {"image": f"{IMAGE}:{version}"}).status == 201


def _data_versions(api: Api, folders: Folders) -> None:
    for version in range(1, ITEMS + 1):
        assert api("PUT", f"/data/images/versions/{version}", {"path": folders.inputs}).status == 201


LISTS: dict[str, Callable[[Api, Folders], None]] = {
    "/endpoints": _endpoints,
    "/endpoints/digits/deployments": _deployments,
    "/models": _model_versions,
    "/models/digits/versions": _model_versions,
    "/environments": _environment_versions,
    "/environments/torch/versions": _environment_versions,
    "/data": _data_versions,
    "/data/images/versions": _data_versions,
}


def pages(api: Api, resource: str, limit: int) -> list[list[dict]]:
    """Every page of a list, following next_token as a client does."""
    found, token = [], None
    while True:
        query = {"limit": str(limit), **({"next_token": token} if token else {})}
        page = api("GET", resource, query=query).json()
        found.append(page["value"])
        token = page["next_token"]
        if token is None:
            return found


@pytest.mark.parametrize("resource", LISTS)
def test_a_list_pages_with_a_limit_and_a_token_round_trip_without_skipping_any(
    ready: Stack, api: Api, folders: Folders, resource: str
) -> None:
    LISTS[resource](api, folders)

    whole = api("GET", resource).json()
    paged = pages(api, resource, limit=2)

    assert len(whole["value"]) == ITEMS and whole["next_token"] is None
    assert [len(page) for page in paged] == [2, 2, 1]
    assert [item for page in paged for item in page] == whole["value"]


BAD_PAGES = [
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "x"}, "limit"),
    ({"next_token": "garbage"}, "next_token"),
    ({"next_token": "eyJvZmZzZXQiOiAtMX0="}, "next_token"),  # {"offset": -1}
]


@pytest.mark.parametrize("resource", LISTS)
def test_a_list_refuses_a_bad_limit_or_token_naming_it(ready: Stack, api: Api, resource: str) -> None:
    for query, field in BAD_PAGES:
        refused(api("GET", resource, query=query), 400, field)


def test_a_page_past_the_end_is_empty(ready: Stack, api: Api, folders: Folders) -> None:
    _endpoints(api, folders)
    token = api("GET", "/endpoints", query={"limit": "4"}).json()["next_token"]

    last = api("GET", "/endpoints", query={"limit": "4", "next_token": token}).json()

    assert [e["name"] for e in last["value"]] == ["shop-3"] and last["next_token"] is None
