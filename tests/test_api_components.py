"""Components through the REST API, on the local backend and on AWS (moto: DynamoDB records, S3 code): a version
is registered once with its code in storage, a pipeline's registered steps are pinned, and a refused component
stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api_fixtures import Api, Stack, api_fixture, aws_fixture, stack_fixture
from tests.core_fixtures import write_tree

__all__ = ["api_fixture", "aws_fixture", "stack_fixture"]

COMMAND = "python prepare.py --data ${{inputs.data}} $[[--mode ${{inputs.mode}}]] --out ${{outputs.prepared}}"


def prepare(code: str, **fields: Any) -> dict[str, Any]:
    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
        "type": "command",
        "inputs": {"data": {"type": "uri_folder"}, "mode": {"type": "string", "optional": True}},
        "outputs": {"prepared": {"type": "uri_folder"}},
        "code": code,
        "environment": "azureml:sklearn@latest",
        "command": COMMAND,
        **fields,
    }


def pipeline(**jobs: Any) -> dict[str, Any]:
    return {
        "type": "pipeline",
        "inputs": {"input_data": {"type": "uri_folder"}},
        "outputs": {"prepared": {"type": "uri_folder"}},
        "jobs": jobs,
    }


def staged_code(stack: Stack, tmp_path: Path) -> str:
    return stack.stage(write_tree(tmp_path / "src", {"prepare.py": "print('prepared')\n"}))


def test_a_component_version_is_registered_shown_and_listed(stack: Stack, api: Api, tmp_path: Path) -> None:
    put = api("PUT", "/components/prepare/versions/1", prepare(staged_code(stack, tmp_path)))
    assert put.status == 201, put.text
    registered = put.json()
    assert (registered["name"], registered["version"], registered["type"]) == ("prepare", "1", "command")
    assert stack.backend.blobs.exists(stack.backend.blobs.join(registered["code"], "prepare.py"))
    assert api("GET", "/components/prepare/versions/latest").json() == registered
    assert [c["version"] for c in api("GET", "/components").json()["value"]] == ["1"]
    again = api("PUT", "/components/prepare/versions/1", prepare(staged_code(stack, tmp_path)))
    assert (again.status, again.json()["field"]) == (409, "version")


def test_a_pipeline_pins_its_registered_step(stack: Stack, api: Api, tmp_path: Path) -> None:
    code = staged_code(stack, tmp_path)
    assert api("PUT", "/components/prepare/versions/3", prepare(code)).status == 201
    step = {
        "type": "command",
        "component": "azureml:prepare@latest",
        "inputs": {"data": "${{parent.inputs.input_data}}", "mode": "fast"},
        "outputs": {"prepared": "${{parent.outputs.prepared}}"},
    }
    put = api("PUT", "/components/flow/versions/1", pipeline(prep=step))
    assert put.status == 201, put.text
    assert put.json()["jobs"]["prep"]["component"] == "prepare:3"


def test_a_refused_pipeline_stores_nothing(stack: Stack, api: Api, tmp_path: Path) -> None:
    inline = prepare(staged_code(stack, tmp_path))
    del inline["$schema"]
    steps = {
        name: {
            "type": "command",
            "component": inline,
            "inputs": {"data": f"${{{{parent.jobs.{other}.outputs.prepared}}}}"},
        }
        for name, other in (("a", "b"), ("b", "a"))
    }
    put = api("PUT", "/components/flow/versions/1", pipeline(**steps))
    assert (put.status, put.json()["field"]) == (400, "jobs.a.inputs.data"), put.text
    assert "cycle" in put.json()["message"]
    assert api("GET", "/components").json()["value"] == []


def test_code_outside_the_backends_storage_is_refused(stack: Stack, api: Api) -> None:
    elsewhere = "/etc" if stack.kind == "aws" else "relative/src"
    put = api("PUT", "/components/prepare/versions/1", prepare(elsewhere))
    assert (put.status, put.json()["field"]) == (400, "code"), put.text
    assert api("GET", "/components").json()["value"] == []


def test_the_body_may_repeat_the_paths_name_not_change_it(stack: Stack, api: Api, tmp_path: Path) -> None:
    put = api("PUT", "/components/prepare/versions/1", prepare(staged_code(stack, tmp_path), name="other"))
    assert (put.status, put.json()["field"]) == (400, "name"), put.text


def test_an_unknown_version_is_not_found(stack: Stack, api: Api) -> None:
    got = api("GET", "/components/prepare/versions/9")
    assert (got.status, got.json()["field"]) == (404, "component")
