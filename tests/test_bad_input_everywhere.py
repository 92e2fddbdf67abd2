"""Every API route against hostile values: malformed and oversized bodies, wrong types, unicode, path traversal,
injection-looking names. Each is a 4xx naming the field (or the route) and leaves every record and every stored
object as it was. Routes come from the API's own OpenAPI document, so a new route is covered (or fails here)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from batch_endpoints.api.openapi import openapi_document
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
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

HOSTILE = [
    "../../etc/passwd",
    "..",
    "'; DROP TABLE records;--",
    "$(rm -rf ~)",
    "{{7*7}}",
    "name\x00nul",
    "ünïcødé-名前",
    "x" * 2000,
]
BAD_BODIES: list[tuple[str, Any]] = [
    ("malformed JSON", "{not json"),
    ("a list", [1, 2]),
    ("wrong types", {"description": 7, "tags": "x", "path": 3, "input": "s3://x", "settings": []}),
    ("oversized", {"description": "x" * (1024 * 1024 + 1)}),
    ("traversal", {"path": "../../etc", "input": {"uri": "../../etc/passwd"}, "code_configuration": {"code": ".."}}),
]


def snapshot(stack: Stack) -> dict[str, Any]:
    """Every record the API can show and a digest of every stored object."""
    service = stack.service
    endpoints = service.list_endpoints()
    blobs = stack.backend.blobs
    objects = {info.uri: hashlib.sha256(blobs.get_bytes(info.uri)).hexdigest() for info in blobs.list_files(blobs.root)}
    return {
        "endpoints": [e.model_dump() for e in endpoints],
        "deployments": [d.model_dump() for e in endpoints for d in service.list_deployments(e.name)],
        "jobs": [j.model_dump() for e in endpoints for j in service.list_jobs_page(e.name, limit=100).items],
        "models": [m.model_dump() for m in service.list_models()],
        "environments": [e.model_dump() for e in service.list_environments()],
        "components": [c.model_dump() for c in service.list_components()],
        "computes": [c.model_dump() for c in service.list_computes()],
        "objects": objects,
        "started": stack.started(),
    }


def _routes() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item]


def _fill(path: str, value: str) -> str:
    names = {
        "endpoint_name": "digits",
        "deployment_name": "blue",
        "model_name": "digits",
        "environment_name": "torch",
        "component_name": "prepare",
        "data_name": "images",
        "datastore_name": "raw",
        "compute_name": "batch-cluster",
        "version": "1",
        "job_id": "digits-000000000000",
    }
    return path.format_map({name: value for name in names})


def _refused_clearly(response: Any, route: str) -> None:
    assert 400 <= response.status < 500, (route, response.status, response.text)
    body = response.json()
    assert body["code"] != "InternalError" and body["message"], (route, body)


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{r[0]} {r[1]}")
def test_hostile_path_values_are_refused_and_change_nothing(ready: Stack, api: Api, route: tuple[str, str]) -> None:
    method, path = route
    if "{" not in path:
        pytest.skip("no path parameter")
    before = snapshot(ready)
    for value in HOSTILE:
        body = {"input": {"uri": "/nowhere"}, "path": "/nowhere"} if method in ("PUT", "POST", "PATCH") else None
        response = api(method, _fill(path, value), body)
        if method == "GET" and response.status == 200:
            # A read may find nothing under a strange name (an empty list); it must not evaluate or echo it.
            assert "49" not in response.text and response.json() == {"value": [], "next_token": None}, (
                path,
                value,
                response.text,
            )
            continue
        _refused_clearly(response, f"{method} {path} {value[:30]!r}")
    assert snapshot(ready) == before


@pytest.mark.parametrize("route", [r for r in _routes() if r[0] in ("PUT", "POST", "PATCH")], ids=" ".join)
@pytest.mark.parametrize("kind,body", BAD_BODIES, ids=[kind for kind, _ in BAD_BODIES])
def test_bad_bodies_are_refused_naming_the_field_and_change_nothing(
    ready: Stack, api: Api, route: tuple[str, str], kind: str, body: Any
) -> None:
    method, path = route
    before = snapshot(ready)
    response = api(method, _fill(path, "digits-2"), body)
    if response.status < 300:
        # Routes that take no body (upload requests, cancel) may ignore it; they must still change nothing.
        assert "requestBody" not in openapi_document()["paths"][path][method.lower()], (route, kind)
    else:
        _refused_clearly(response, f"{method} {path} {kind}")
        assert response.json().get("field"), (route, kind, response.text)
    assert snapshot(ready) == before


def test_instance_count_above_the_distributed_maps_limit_is_refused_on_every_route(
    ready: Stack, api: Api, folders: Folders
) -> None:
    """A Distributed Map runs at most 10,000 shards at once, so more instances than that are refused wherever
    they are asked for: a deployment's resources, and an invocation's overrides."""
    before = snapshot(ready)
    too_many = {"instance_count": 10_001}
    asked = {
        "deployment": api("PUT", "/endpoints/digits/deployments/red", deployment_body(folders, resources=too_many)),
        "invoke": api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}, "overrides": too_many}),
    }
    for route, response in asked.items():
        _refused_clearly(response, route)
        body = response.json()
        assert body["field"].endswith("instance_count"), (route, body)
        assert "at most 10,000" in body["message"] and "Distributed Map" in body["message"], (route, body)
    assert snapshot(ready) == before
