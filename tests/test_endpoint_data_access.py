"""An endpoint's own allow-lists (allowed_inputs, allowed_outputs): they narrow where its jobs may read and write
within the system's lists, never widen them; checked at invoke, rerun and resume, before any job exists. And who
changed what last: endpoints, deployments, the default deployment switch, a job's cancel and resume."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from batch_endpoints.data_access import DataAccess
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
from tests.test_bad_input_everywhere import snapshot


def _parent(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[0]


def _invoke(api: Api, folders: Folders, output: str | None = None, **more: object):
    body: dict[str, object] = {"input": {"uri": folders.inputs}, **more}
    if output is not None:
        body["output"] = {"path": output}
    return api("POST", "/endpoints/digits/jobs", body)


def test_an_endpoint_narrows_its_inputs_and_outputs_and_refuses_the_rest_before_any_job(
    ready: Stack, api: Api, folders: Folders
) -> None:
    results = ready.location("results")
    patched = api(
        "PATCH", "/endpoints/digits", {"allowed_inputs": [folders.inputs], "allowed_outputs": [_parent(results)]}
    )
    assert patched.status == 200, patched.text
    assert patched.json()["allowed_inputs"] == [folders.inputs]
    # The code folder is inside the system's lists, but outside the endpoint's.
    elsewhere = _invoke(api, folders, output=results, input={"uri": folders.code})
    assert (elsewhere.status, elsewhere.json()["field"]) == (403, "input"), elsewhere.text
    assert "endpoint digits narrows them in allowed_inputs" in elsewhere.json()["message"]
    default_output = _invoke(api, folders)  # the job's own folder in the system's storage: not listed
    assert (default_output.status, default_output.json()["field"]) == (403, "output.path")
    assert ready.started() == []

    accepted = _invoke(api, folders, output=results)
    assert accepted.status == 202, accepted.text
    assert ready.started() == [accepted.json()["id"]]


def test_an_endpoints_list_never_widens_the_systems(ready: Stack, api: Api, folders: Folders) -> None:
    ready.service.access = DataAccess(allowed_inputs=(folders.code,), allowed_outputs=None)
    widened = api("PATCH", "/endpoints/digits", {"allowed_inputs": [folders.inputs, folders.code]})
    assert widened.status == 200
    refused = _invoke(api, folders)
    assert (refused.status, refused.json()["field"]) == (403, "input")
    assert "BEP_ALLOWED_INPUTS" in refused.json()["message"]
    assert ready.started() == []


def test_an_empty_list_removes_the_narrowing(ready: Stack, api: Api, folders: Folders) -> None:
    assert api("PATCH", "/endpoints/digits", {"allowed_inputs": [folders.code]}).status == 200
    assert _invoke(api, folders).status == 403
    cleared = api("PATCH", "/endpoints/digits", {"allowed_inputs": []})
    assert cleared.json()["allowed_inputs"] == []
    assert _invoke(api, folders).status == 202


BAD_PREFIXES = [
    ("relative", "images/team-a"),
    ("traversal in s3", "s3://bucket/a/../b"),
    ("traversal in a path", "/data/../etc"),
    ("no bucket", "s3://"),
    ("a bucket name S3 refuses", "s3://Bad_Bucket"),
    ("another scheme", "https://example.com/x"),
    ("a NUL byte", "/data/x\x00y"),
    ("oversized", "s3://bucket/" + "x" * 2000),
    ("not a string", 7),
]


ROUTES = (("PATCH", "/endpoints/digits"), ("PUT", "/endpoints/digits"), ("PUT", "/endpoints/new-one"))
"""Changing an endpoint, replacing it, creating one."""


def test_a_bad_prefix_is_a_400_naming_the_field_and_changes_nothing(ready: Stack, api: Api) -> None:
    before = snapshot(ready)
    for field in ("allowed_inputs", "allowed_outputs"):
        for kind, value in BAD_PREFIXES:
            for method, path in ROUTES:
                response = api(method, path, {field: ["s3://fine-bucket/ok", value]})
                assert response.status == 400, (kind, method, path, response.text)
                assert response.json()["field"].startswith(field), (kind, response.json())
    assert snapshot(ready) == before


def test_a_list_of_too_many_prefixes_is_refused(ready: Stack, api: Api) -> None:
    response = api("PATCH", "/endpoints/digits", {"allowed_outputs": [f"s3://bucket/{n}" for n in range(101)]})
    assert (response.status, response.json()["field"]) == (400, "allowed_outputs")


def test_rerun_and_resume_are_held_to_the_endpoints_lists_as_they_are_now(
    ready: Stack, api: Api, folders: Folders
) -> None:
    job = _invoke(api, folders).json()
    if ready.kind == "aws":
        boto3.client("stepfunctions").stop_execution(executionArn=job["execution"])
    ready.service.repo.update_job(job["id"], lambda j: j.model_copy(update={"status": JobStatus.FAILED}))
    assert api("PATCH", "/endpoints/digits", {"allowed_inputs": [folders.code]}).status == 200
    started = ready.started()

    rerun = api("POST", f"/jobs/{job['id']}/rerun", {"failed": False})
    resume = api("POST", f"/jobs/{job['id']}/resume")

    assert (rerun.status, rerun.json()["field"]) == (403, "input"), rerun.text
    assert (resume.status, resume.json()["field"]) == (403, "input"), resume.text
    assert ready.started() == started
    assert ready.service.get_job(job["id"]).resumes == 0


def test_the_endpoint_yaml_declares_its_lists(bep, tmp_path: Path) -> None:
    inputs = tmp_path / "team-a"
    (inputs / "images").mkdir(parents=True)
    endpoint = tmp_path / "endpoint.yml"
    endpoint.write_text(f"name: digits\nallowed_inputs:\n  - {inputs}\nallowed_outputs: [s3://results/team-a]\n")
    shown = bep("endpoint", "create", "--file", endpoint).json()
    assert (shown["allowed_inputs"], shown["allowed_outputs"]) == ([str(inputs)], ["s3://results/team-a"])
    updated = bep("endpoint", "update", "--name", "digits", "--allowed-inputs", "s3://images/a", "/data/b").json()
    assert updated["allowed_inputs"] == ["s3://images/a", "/data/b"]
    assert bep("endpoint", "update", "--name", "digits", "--allowed-outputs").json()["allowed_outputs"] == []
    refused = bep("endpoint", "update", "--name", "digits", "--allowed-inputs", "../escape", ok=False)
    assert refused.code == 2 and "allowed_inputs" in refused.err
    assert bep("endpoint", "show", "--name", "digits").json()["allowed_inputs"] == ["s3://images/a", "/data/b"]


# ------------------------------------------------------------------------------------------------ who changed it
def test_who_changed_an_endpoint_last_is_recorded(ready: Stack, api: Api, folders: Folders) -> None:
    endpoint = api("GET", "/endpoints/digits").json()
    # The ready fixture created it and then made blue its default, both as ANN.
    assert endpoint["created_by"] == endpoint["updated_by"] == ANN and endpoint["updated_at"]

    changed = api("PATCH", "/endpoints/digits", {"description": "v2"}, caller=BOB).json()
    assert (changed["created_by"], changed["updated_by"]) == (ANN, BOB)
    assert changed["updated_at"] > endpoint["updated_at"]
    repeated = api("PATCH", "/endpoints/digits", {"description": "v2"}, caller=ANN).json()
    assert repeated["updated_by"] == BOB  # a request that changes nothing changes nothing


def test_who_updated_a_deployment_and_switched_the_default_is_recorded(
    ready: Stack, api: Api, folders: Folders
) -> None:
    blue = api("GET", "/endpoints/digits/deployments/blue").json()
    assert blue["created_by"] == blue["updated_by"] == ANN
    green, default = deployment_body(folders), {"set_default": "true"}
    put = api("PUT", "/endpoints/digits/deployments/green", green, query=default, caller=BOB)
    assert put.status == 200, put.text
    assert api("GET", "/endpoints/digits").json()["updated_by"] == BOB
    updated = api("PUT", "/endpoints/digits/deployments/blue", deployment_body(folders, description="x"), caller=BOB)
    assert (updated.json()["created_by"], updated.json()["updated_by"]) == (ANN, BOB)

    api("PATCH", "/endpoints/digits", {"defaults": {"deployment_name": "blue"}}, caller=ANN)
    assert api("GET", "/endpoints/digits").json()["updated_by"] == ANN
    assert api("DELETE", "/endpoints/digits/deployments/green", caller=BOB).status == 204
    api("DELETE", "/endpoints/digits/deployments/blue", caller=BOB)  # the last one: the default goes with it
    endpoint = api("GET", "/endpoints/digits").json()
    assert (endpoint["default_deployment"], endpoint["updated_by"]) == (None, BOB)


def test_who_canceled_and_resumed_a_job_is_shown(ready: Stack, api: Api, folders: Folders) -> None:
    job = _invoke(api, folders).json()
    assert (job["created_by"], job["canceled_by"], job["updated_by"]) == (ANN, None, "")

    canceled = api("POST", f"/jobs/{job['id']}/cancel", caller=BOB)
    assert canceled.status == 202, canceled.text
    shown = api("GET", f"/jobs/{job['id']}").json()
    assert (shown["created_by"], shown["canceled_by"], shown["updated_by"]) == (ANN, BOB, BOB)
    assert shown["updated_at"]


SLOW_SCRIPT = """\
import time


def run(mini_batch):
    time.sleep(60)
    return [0 for _ in mini_batch]
"""


def test_job_show_in_the_cli_says_who_created_and_canceled_it(
    bep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.core_fixtures import write_tree

    code = write_tree(tmp_path / "code", {"score.py": SLOW_SCRIPT})
    write_tree(tmp_path / "model", {"w.txt": "1"})
    write_tree(tmp_path / "inputs", {f"{n}.txt": n for n in "abc"})
    deployment = tmp_path / "deployment.yml"
    deployment.write_text(
        "name: blue\nendpoint_name: digits\nmodel:\n  path: model\n"
        f"code_configuration:\n  code: {code}\n  scoring_script: score.py\nretry_settings:\n  timeout: 120\n"
    )
    monkeypatch.setenv("USER", "ann")
    bep("endpoint", "create", "--name", "digits")
    bep("deployment", "create", "--file", deployment, "--set-default")
    job_id = bep("endpoint", "invoke", "--name", "digits", "--input", tmp_path / "inputs").out.strip()
    monkeypatch.setenv("USER", "bob")
    bep("job", "cancel", "--name", job_id)
    assert bep("job", "stream", "--name", job_id, ok=False).code == 1
    shown = bep("job", "show", "--name", job_id).json()
    assert (shown["status"], shown["created_by"], shown["canceled_by"], shown["updated_by"]) == (
        "Canceled",
        "ann",
        "bob",
        "bob",
    )
    endpoint = bep("endpoint", "show", "--name", "digits").json()
    assert (endpoint["created_by"], endpoint["updated_by"]) == ("ann", "ann")
