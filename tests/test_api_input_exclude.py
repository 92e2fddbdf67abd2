"""An invocation's `input.exclude` through the REST API: through the API Lambda's handler (local and moto backends)
and through `bep serve`, a bad one is a 400 naming the field and changes nothing, and an Idempotency-Key holds the
exclude among what it was first used for."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.service import BatchEndpointService
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
from tests.aws_fixtures import ready as ready_service
from tests.core_fixtures import RecordingOrchestrator, write_tree
from tests.server_fixtures import LocalApi, serving
from tests.test_api_routes import refused
from tests.test_bad_input_everywhere import snapshot

# (case, the input's fields besides its uri, a file of the folder as the uri instead, the field the 400 names)
BAD_EXCLUDES: list[tuple[str, dict[str, Any], bool, str]] = [
    ("not a list", {"exclude": "*.tmp"}, False, "input.exclude"),
    ("a number among patterns", {"exclude": ["*.tmp", 7]}, False, "input.exclude.1"),
    ("a control character", {"exclude": ["*.tmp", "a\x07b"]}, False, "input.exclude.1"),
    ("a newline", {"exclude": ["*.tmp\n.git/*"]}, False, "input.exclude.0"),
    ("on a uri_file input", {"exclude": ["*.tmp"]}, True, "input.exclude"),
    ("on a declared uri_file input", {"exclude": ["*.tmp"], "type": "uri_file"}, True, "input.exclude"),
]


def bad_input(inputs: str, fields: dict[str, Any], one_file: bool) -> dict[str, Any]:
    return {"input": {"uri": f"{inputs}/a.txt" if one_file else inputs, **fields}}


@pytest.mark.parametrize(("case", "fields", "one_file", "field"), BAD_EXCLUDES, ids=[c[0] for c in BAD_EXCLUDES])
def test_a_bad_exclude_is_refused_naming_it_and_nothing_changes(
    ready: Stack, api: Api, folders: Folders, case: str, fields: dict[str, Any], one_file: bool, field: str
) -> None:
    before = snapshot(ready)

    body = refused(api("POST", "/endpoints/digits/jobs", bad_input(folders.inputs, fields, one_file)), 400, field)

    assert body["code"] == "ValidationError"
    assert snapshot(ready) == before


def test_one_idempotency_key_with_another_exclude_is_a_conflict_naming_the_first_job(
    ready: Stack, api: Api, folders: Folders
) -> None:
    key = {"Idempotency-Key": "exclude-1"}
    first = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs, "exclude": ["a.*"]}}, headers=key)
    assert first.status == 202, first.text
    before = snapshot(ready)

    other = {"input": {"uri": folders.inputs, "exclude": ["b.*"]}}
    body = refused(api("POST", "/endpoints/digits/jobs", other, headers=key), 409, "Idempotency-Key")

    assert first.json()["id"] in body["message"]
    assert snapshot(ready) == before


# ---------------------------------------------------------------------------------------------- bep serve
@pytest.fixture(name="served", scope="module")
def served_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalApi, str, RecordingOrchestrator]]:
    """`bep serve` over a backend with endpoint digits ready and an input folder; jobs are recorded, not run."""
    home = tmp_path_factory.mktemp("bep-home")
    orchestrator = RecordingOrchestrator()
    backend = replace(open_local_backend(str(home)), orchestrator=orchestrator)
    ready_service(BatchEndpointService(backend), home / "made")
    inputs = write_tree(home / "inputs", {f"{name}.txt": name for name in "abc"})
    with serving(backend, home) as local_api:
        yield local_api, str(inputs), orchestrator


@pytest.mark.parametrize(("case", "fields", "one_file", "field"), BAD_EXCLUDES, ids=[c[0] for c in BAD_EXCLUDES])
def test_bep_serve_refuses_a_bad_exclude_naming_it_and_nothing_changes(
    served: tuple[LocalApi, str, RecordingOrchestrator],
    case: str,
    fields: dict[str, Any],
    one_file: bool,
    field: str,
) -> None:
    local_api, inputs, orchestrator = served

    reply = local_api.call("POST", "/endpoints/digits/jobs", bad_input(inputs, fields, one_file))

    assert reply.status == 400 and reply.json()["field"] == field, reply.body
    assert local_api.call("GET", "/endpoints/digits/jobs").json()["value"] == []
    assert orchestrator.started == []
