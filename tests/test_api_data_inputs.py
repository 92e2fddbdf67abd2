"""Data assets, datastores, every input kind and job metadata through the API, on the local backend and on the
cloud one (moto: DynamoDB, S3, Step Functions). An input the stack cannot read is refused at invoke (400, field
`input`) and starts nothing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.errors import ValidationError
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
    Api,
    Folders,
    Stack,
    api_fixture,
    aws_fixture,
    folders_fixture,
    ready_fixture,
    stack_fixture,
)
from tests.aws_fixtures import INPUT_BUCKET

JOBS = "/endpoints/digits/jobs"


def refused(response, status: int, field: str) -> dict:
    assert response.status == status, response.text
    body = response.json()
    assert body["field"] == field, body
    return body


def started(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api("POST", JOBS, body)
    assert response.status == 202, response.text
    return response.json()


def parent_and_name(location: str) -> tuple[str, str]:
    parent, _, name = location.rstrip("/").rpartition("/")
    return parent, name


def datastore_body(stack: Stack, root: str) -> dict[str, str]:
    """A datastore whose root is `root` (an s3:// prefix in the cloud, a folder locally)."""
    if stack.kind == "aws":
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        return {"bucket": bucket, "prefix": prefix}
    return {"folder": root}


# ------------------------------------------------------------------------------------------ data assets
def test_data_asset_versions_are_registered_listed_shown_and_invoked(ready: Stack, api: Api, folders: Folders):
    put = api("PUT", "/data/images/versions/1", {"path": folders.inputs, "tags": {"set": "a"}})
    assert put.status == 201, put.text
    asset = put.json()
    assert (asset["name"], asset["version"], asset["type"], asset["tags"]) == (
        "images",
        "1",
        "uri_folder",
        {"set": "a"},
    )
    assert api("PUT", "/data/images/versions/2", {"path": folders.inputs}).status == 201

    assert [v["version"] for v in api("GET", "/data").json()["value"]] == ["1", "2"]
    assert [v["version"] for v in api("GET", "/data/images/versions").json()["value"]] == ["1", "2"]
    assert api("GET", "/data/images/versions/latest").json()["version"] == "2"
    assert api("GET", "/data/images/versions/1").json() == asset

    job = started(api, {"input": {"uri": "azureml:images:1"}})
    assert job["input"] == {"uri": asset["path"], "type": "uri_folder", "source": "azureml:images:1", "exclude": []}
    assert started(api, {"input": {"uri": "images@latest"}})["input"]["source"] == "azureml:images:2"


def test_azures_resource_ids_name_data_assets_and_datastore_paths(ready: Stack, api: Api, folders: Folders):
    """What `az ml data show` / `az ml datastore show` print as `id`, as Azure's docs pass them to invoke."""
    workspace = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
    api("PUT", "/data/images/versions/1", {"path": folders.inputs})
    asset = api("GET", "/data/images/versions/1").json()
    parent, name = parent_and_name(folders.inputs)
    api("PUT", "/datastores/staged", datastore_body(ready, parent))

    by_asset_id = started(api, {"input": {"uri": f"{workspace}/data/images/versions/1"}})
    by_datastore_id = started(api, {"input": {"uri": f"{workspace}/datastores/staged/paths/{name}"}})

    assert by_asset_id["input"]["uri"] == asset["path"]
    assert by_datastore_id["input"]["uri"] == folders.inputs


@pytest.mark.parametrize(
    ("version", "body", "status", "field"),
    [
        ("1", {"path": "IN"}, 409, "version"),
        ("2", {"path": "IN", "type": "mltable"}, 400, "type"),
        ("2", {"path": "IN", "type": "uri_file"}, 400, "type"),
        ("2", {"path": "MISSING"}, 400, "path"),
        ("2", {"path": "relative/folder"}, 400, "path"),
        ("2", {"path": "azureml://datastores/ghost/paths/x"}, 400, "path"),
        ("latest", {"path": "IN"}, 400, "version"),
    ],
)
def test_bad_data_assets_are_refused_and_change_nothing(
    ready: Stack, api: Api, folders: Folders, version, body, status, field
):
    api("PUT", "/data/images/versions/1", {"path": folders.inputs})
    before = api("GET", "/data").json()
    path = {"IN": folders.inputs, "MISSING": ready.location("missing")}.get(body["path"], body["path"])

    refused(api("PUT", f"/data/images/versions/{version}", {**body, "path": path}), status, field)
    assert api("GET", "/data").json() == before


def test_an_unknown_data_asset_version_is_not_found(stack: Stack, api: Api) -> None:
    assert api("GET", "/data/images/versions/3").status == 404


# ------------------------------------------------------------------------------------------ datastores
def test_datastores_are_registered_and_name_input_and_output_paths(ready: Stack, api: Api, folders: Folders):
    parent, name = parent_and_name(folders.inputs)
    put = api("PUT", "/datastores/staged", {**datastore_body(ready, parent), "description": "staged inputs"})
    assert put.status == 201, put.text

    listed = api("GET", "/datastores").json()["value"]
    assert [(d["name"], d["is_default"]) for d in listed] == [("workspaceblobstore", True), ("staged", False)]
    assert api("GET", "/datastores/staged").json()["root"] == parent
    assert api("GET", "/datastores/workspaceblobstore").json()["root"] == ready.backend.blobs.root

    # Under outputs/: the only place of its own storage where a stack lets jobs write.
    output = "azureml://datastores/workspaceblobstore/paths/outputs/run-1"
    job = started(api, {"input": {"uri": f"azureml://datastores/staged/paths/{name}"}, "output": {"path": output}})

    assert job["input"]["uri"] == folders.inputs
    assert job["output_uri"] == ready.backend.blobs.join(
        ready.backend.blobs.root, "outputs", "run-1", "predictions.csv"
    )


@pytest.mark.parametrize(
    ("name", "body", "status", "field"),
    [
        ("workspaceblobstore", "GOOD", 400, "name"),
        ("taken", "GOOD", 409, "name"),
        ("other", "MISSING", 400, "SPOT"),
        ("other", {"bucket": "Not_A_Bucket"}, 400, "bucket"),
    ],
)
def test_bad_datastores_are_refused_and_change_nothing(
    ready: Stack, api: Api, folders: Folders, name, body, status, field
):
    parent, _ = parent_and_name(folders.inputs)
    good = datastore_body(ready, parent)
    api("PUT", "/datastores/taken", good)
    before = api("GET", "/datastores").json()
    missing = {"bucket": "no-such-bucket"} if ready.kind == "aws" else {"folder": ready.location("missing")}
    body = {"GOOD": good, "MISSING": missing}.get(body, body) if isinstance(body, str) else body
    field = ("bucket" if ready.kind == "aws" else "folder") if field == "SPOT" else field

    refused(api("PUT", f"/datastores/{name}", body), status, field)
    assert api("GET", "/datastores").json() == before


def test_an_unknown_datastore_is_not_found(stack: Stack, api: Api) -> None:
    assert api("GET", "/datastores/ghost").status == 404


# ------------------------------------------------------------------------------------------ unreadable inputs
def unreadable_inputs(stack: Stack) -> list[str]:
    common = [
        "azureml:ghost:1",
        "ghost@latest",
        "azureml://datastores/ghost/paths/images",
        "azureml://datastores/workspaceblobstore/paths/outputs/nothing-here",  # where jobs may read, and empty
        "https://example.com/images",
        "relative/images",
    ]
    if stack.kind == "aws":
        return [*common, f"s3://{INPUT_BUCKET}/no-such-prefix", "/etc"]
    return [*common, "s3://some-bucket/images", stack.location("missing")]


def test_an_input_the_stack_cannot_read_is_refused_at_invoke_and_starts_nothing(ready: Stack, api: Api):
    for uri in unreadable_inputs(ready):
        refused(api("POST", JOBS, {"input": {"uri": uri}}), 400, "input")
    if ready.kind == "aws":
        # A bucket outside the stack's allowed locations is refused before it is looked at: whether it exists is
        # not the caller's to learn.
        refused(api("POST", JOBS, {"input": {"uri": "s3://no-such-bucket/images"}}), 403, "input")
    assert ready.started() == []
    assert api("GET", JOBS).json()["value"] == []


def test_an_s3_access_denied_is_the_callers_error_not_a_fault(aws: None) -> None:
    client = boto3.client("s3")
    store = S3BlobStore("bep-storage", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(ValidationError, match="access denied; the stack reads its own bucket"):
            store.exists("s3://someone-elses-bucket/images/a.png")


# ------------------------------------------------------------------------------------------ job metadata
def test_jobs_carry_metadata_and_the_list_filters_by_it(ready: Stack, api: Api, folders: Folders) -> None:
    tagged = started(
        api,
        {
            "input": {"uri": folders.inputs},
            "experiment_name": "nightly",
            "display_name": "Night 1",
            "tags": {"team": "vision"},
        },
    )
    plain = started(api, {"input": {"uri": folders.inputs}})

    assert (tagged["experiment_name"], tagged["display_name"], tagged["tags"]) == (
        "nightly",
        "Night 1",
        {"team": "vision"},
    )
    assert api("GET", f"/jobs/{tagged['id']}").json()["tags"] == {"team": "vision"}
    assert plain["experiment_name"] == "digits"

    def listed(**query: str) -> list[str]:
        response = api("GET", JOBS, query=query)
        assert response.status == 200, response.text
        return [job["id"] for job in response.json()["value"]]

    assert listed() == [plain["id"], tagged["id"]]
    assert listed(experiment_name="nightly") == [tagged["id"]]
    assert listed(tag="team=vision") == [tagged["id"]]
    assert listed(tag="team=audio") == []
    refused(api("GET", JOBS, query={"tag": "novalue"}), 400, "tag")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"experiment_name": "has space"}, "experiment_name"),
        ({"display_name": "x" * 300}, "display_name"),
        ({"tags": {"": "empty key"}}, "tags"),
        ({"tags": {"n": 1}}, "tags.n"),
    ],
)
def test_bad_job_metadata_is_refused(ready: Stack, api: Api, folders: Folders, fields, field) -> None:
    body = refused(api("POST", JOBS, {"input": {"uri": folders.inputs}, **fields}), 400, field)
    assert body["code"] == "ValidationError"
    assert ready.started() == []


@pytest.mark.parametrize("stack", ["aws"], indirect=True)
@pytest.mark.parametrize(
    ("place", "field"),
    [("input", "input"), ("output", "output.path")],
)
def test_a_stack_refuses_its_own_storage_outside_the_prefixes_it_lets_jobs_use(
    ready: Stack, api: Api, folders: Folders, place: str, field: str
) -> None:
    # models/ and jobs/ hold the system's own files: a job reading or overwriting them is a deputy misused.
    body = {"input": {"uri": folders.inputs}}
    if place == "input":
        body["input"] = {"uri": ready.backend.blobs.join(ready.backend.blobs.root, "models")}
    else:
        body["output"] = {"path": "azureml://datastores/workspaceblobstore/paths/jobs/elsewhere"}

    refused(api("POST", JOBS, body), 403, field)
    assert ready.started() == []
