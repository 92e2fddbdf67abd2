"""The CLI against an API server over signed HTTP (`bep serve`, in a thread): the digits example from endpoint
create to downloaded predictions, with the same exit codes and messages as the local target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.server_fixtures import local_api_fixture, remote_fixture  # noqa: F401 (pytest fixtures)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"
FILES = 12


@pytest.mark.slow
def test_create_deploy_invoke_stream_and_download_over_http(remote, local_api, digits_models, tmp_path):
    requests = tmp_path / "requests"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_requests.py"), "--output", str(requests), "--count", str(FILES)],
        check=True,
        capture_output=True,
    )

    remote("model", "create", "--name", "digits", "--path", digits_models["standard"])
    endpoint = remote("endpoint", "create", "--file", EXAMPLE / "endpoint.yml").json()
    deployment = remote("deployment", "create", "--file", EXAMPLE / "deployment.yml", "--set-default").json()
    job_id = remote("endpoint", "invoke", "--name", endpoint["name"], "--input", requests).out.strip()
    streamed = remote("job", "stream", "--name", job_id)
    shown = remote("job", "show", "--name", job_id).json()
    listed = remote("job", "list", "--endpoint-name", endpoint["name"]).out
    every_job = remote("job", "list").out
    logs = remote("job", "logs", "--name", job_id)
    downloaded = remote("job", "download", "--name", job_id, "--download-path", tmp_path / "download").out.split()

    assert endpoint["scoring_uri"].startswith(local_api.url)
    assert deployment["model"] == "digits:1"
    assert remote("endpoint", "show", "--name", endpoint["name"]).json()["default_deployment"] == deployment["name"]
    assert streamed.code == 0 and f"job {job_id} Completed" in streamed.err
    assert shown["status"] == "Completed" and shown["counts"]["files_succeeded"] == FILES
    assert shown["progress"]["files_succeeded"] == FILES
    assert job_id in listed and job_id in every_job
    assert logs.code == 0
    assert downloaded == [str(tmp_path / "download" / "named-outputs" / "score" / "predictions.csv")]
    assert len(pd.read_csv(downloaded[0])) == FILES
    # The server's backend did the work: the CLI's own home holds no records.
    assert remote("--target", "local", "endpoint", "list").out.split() == [
        "NAME",
        "DEFAULT_DEPLOYMENT",
        "DESCRIPTION",
        "SCORING_URI",
    ]


def test_remote_refusals_keep_the_local_exit_codes_and_messages(remote, local_api):
    remote("endpoint", "create", "--name", "refusals")

    missing = remote("endpoint", "show", "--name", "no-such-endpoint", ok=False)
    duplicate = remote("endpoint", "create", "--name", "refusals", ok=False)
    invalid = remote("endpoint", "create", "--name", "1-bad", ok=False)
    no_deployment = remote("endpoint", "invoke", "--name", "refusals", "--input", local_api.home, ok=False)
    local_only = remote("serve", "--show-credentials")

    assert (missing.code, duplicate.code, invalid.code, no_deployment.code) == (3, 4, 2, 2)
    assert "no-such-endpoint" in missing.err
    assert "error: name: endpoint 'refusals' already exists" in duplicate.err
    assert "name" in invalid.err
    assert "has no default deployment" in no_deployment.err
    assert "AWS_ACCESS_KEY_ID" in local_only.out  # serve runs on this machine whatever the target


def test_flags_after_the_command_override_the_configured_target(remote, local_api, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")

    refused = remote("endpoint", "list", ok=False)
    local = remote("endpoint", "list", "--target", "local")

    assert refused.code == 1 and "signature" in refused.err.lower()
    assert local.code == 0


@pytest.mark.slow
def test_rerun_of_the_failed_files_and_resume_over_http(remote, local_api, digits_models, tmp_path):
    requests = tmp_path / "requests"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_requests.py"), "--output", str(requests), "--count", "4"],
        check=True,
        capture_output=True,
    )
    (requests / "not-an-image.png").write_text("the scoring script cannot decode this")
    # The server outlives a test: a name of this test's own.
    remote("model", "create", "--name", "digits", "--path", digits_models["standard"])
    endpoint = remote("endpoint", "create", "--file", EXAMPLE / "endpoint.yml", "--name", "rerun-digits").json()["name"]
    remote("deployment", "create", "--file", EXAMPLE / "deployment.yml", "--endpoint-name", endpoint, "--set-default")
    first = remote("endpoint", "invoke", "--name", endpoint, "--input", requests, "--stream").out.split()[0]

    rerun = remote("job", "rerun", "--name", first, "--failed", "--stream", ok=False)
    second = rerun.out.split()[0]
    resumed = remote("job", "resume", "--name", first, ok=False)

    shown = remote("job", "show", "--name", second).json()
    assert shown["rerun_of"] == first
    assert shown["counts"]["files"] == 1 and shown["counts"]["files_failed"] == 1  # only the failed file, again
    assert resumed.code == 4 and first in resumed.err  # a completed job has nothing to resume, as locally


def test_lists_show_every_page(remote, local_api, monkeypatch, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("0.5\n")
    for _ in range(3):
        remote("model", "create", "--name", "paged", "--path", model)
    names = ["paged-a", "paged-b", "paged-c"]
    for name in names:
        remote("endpoint", "create", "--name", name)
    monkeypatch.setattr("batch_endpoints.client.operations.LIST_PAGE", 2)

    models = remote("model", "list", "--name", "paged").out.splitlines()[1:]
    endpoints = remote("endpoint", "list").out.splitlines()[1:]

    assert sorted(line.split()[1] for line in models) == ["1", "2", "3"]
    assert [line.split()[0] for line in endpoints if line.startswith("paged-")] == names
