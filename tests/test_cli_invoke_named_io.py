"""Invoke as Azure writes it, through the CLI on the local backend: `--set` with several pairs after one flag,
nested setting keys, data inputs and outputs by name (`inputs.NAME.path`, `outputs.score.path`), literal inputs as
`{type, default}` or bare values, in `--set` and in the inputs YAML. Every mistake is refused before anything is
uploaded or started, naming what the user wrote.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.server_fixtures import local_api_fixture  # noqa: F401 (pytest fixture)
from tests.test_cli_data_inputs import open_shop, refused
from tests.test_cli_http_target import remote_fixture  # noqa: F401 (pytest fixture)

SCRIPT = (
    "import os\n\n"
    "def run(mini_batch):\n"
    "    return [f\"{os.path.basename(p)}:{os.environ['BEP_INPUT_LABEL']}\" for p in mini_batch]\n"
)

DECLARED = "inputs:\n  label: {type: string, required: true}\n  limit: {type: integer, default: 10}\n"


@pytest.fixture
def shop(bep, home: Path, tmp_path: Path) -> Path:
    """The shop (tests.test_cli_data_inputs), whose deployment declares literal inputs `label` (required) and
    `limit` (integer, 10)."""
    return open_shop(bep, tmp_path, script=SCRIPT, deployment_lines=DECLARED)


def finished(bep, *args: object) -> dict:
    job_id = bep("endpoint", "invoke", "--name", "shop", *args, "--stream").out.split()[0]
    job = bep("job", "show", "--name", job_id).json()
    assert job["status"] == "Completed", job
    return job


def test_azures_set_names_the_data_input_the_output_and_a_literal_after_one_flag(bep, home, shop, monkeypatch):
    monkeypatch.chdir(shop)  # local paths given by --set are relative to where bep runs

    job = finished(
        bep,
        "--set",
        "inputs.heart_data.type=uri_folder",
        "inputs.heart_data.path=images",
        "inputs.heart_data.mode=ro_mount",
        "inputs.label=nightly",
        "outputs.score.path=results",
        "outputs.score.type=uri_folder",
    )

    assert job["output_uri"] == str(shop / "results" / "predictions.csv")
    assert job["inputs"] == {"label": "nightly", "limit": 10}
    rows = pd.read_csv(job["output_uri"])["prediction"]
    assert sorted(rows) == ["a.png:nightly", "b.png:nightly", "c.png:nightly"]


def test_a_uri_file_output_names_the_output_file(bep, home, shop):
    target = shop / "scores" / "run-1.csv"

    output = ["outputs.score.type=uri_file", f"outputs.score.path={target}"]

    job = finished(bep, "--input", shop / "images", "--set", "inputs.label=x", *output)

    assert job["output_uri"] == str(target)


def test_nested_setting_keys_several_per_flag_and_the_flag_repeated(bep, home, shop):
    first = ["inputs.label=x", "mini_batch_size=1", "retry_settings.max_retries=0"]
    then = ["settings.retry_settings.timeout=7", "compute.instance_count=2", "settings.error_threshold=1"]

    job = finished(bep, "--input", shop / "images", "--set", *first, "--set", *then)

    settings = job["settings"]
    assert (settings["mini_batch_size"], settings["instance_count"], settings["error_threshold"]) == (1, 2, 1)
    assert settings["retry_settings"] == {"max_retries": 0, "timeout": 7}
    assert job["counts"]["mini_batches"] == 3


def test_azures_inputs_yaml_with_literal_inputs_reaches_the_declared_inputs(bep, home, shop):
    spec = shop / "inputs.yml"
    spec.write_text(
        "inputs:\n"
        "  heart_data: {type: uri_folder, path: images}\n"
        "  label: {type: string, default: weekly}\n"
        "  limit: 5\n"
        "outputs:\n  score: {type: uri_folder, path: out}\n"
    )

    job = finished(bep, "--file", spec, "--set", "inputs.label.default=monthly")

    assert job["inputs"] == {"label": "monthly", "limit": 5}
    assert job["output_uri"] == str(shop / "out" / "predictions.csv")


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        (["inputs.one.path=s3://b/x", "inputs.two.path=s3://b/y"], "inputs.two", "takes one data input"),
        (["outputs.summary.path=s3://b/out"], "outputs.summary", "its one output is score"),
        (["inputs.d.type=uri_folder"], "inputs.d.path", "is required"),
        (["inputs.d.type=mltable", "inputs.d.path=s3://b/x"], "inputs.d.type", "uri_folder"),
        (["inputs.d.path=s3://b/x", "inputs.d.default=3"], "inputs.d.default", "has a path, not a default"),
        (["inputs.mode.type=string", "inputs.mode.path=s3://b/x"], "inputs.mode.path", "literal"),
        (["inputs.label.type=string"], "inputs.label.type", "is a string, not a mapping"),
        (["inputs.limit.type=integer", "inputs.limit.default=many"], "inputs.limit.default", "expected an integer"),
        (["inputs.limit=many"], "inputs.limit", "expected an integer"),
        (["inputs.colour=red"], "inputs.colour", "is not an input of this deployment"),
        (["inputs.d-x.path=s3://b/x"], "inputs.d-x", "letters, digits or '_'"),
        (["outputs.score.mode=sideways"], "outputs.score.mode", "rw_mount"),
        (["colour=red"], "--set colour", "not a setting an invocation can change"),
        (["mini_batch_size=1", "settings.mini_batch_size=2"], "settings.mini_batch_size", "give it once"),
        (["retry_settings.timeout=0"], "--set.timeout", "greater than 0"),
        (["inputs.label"], "--set", "write key=value"),
    ],
)
def test_a_mistake_in_set_is_refused_naming_it_before_anything_is_uploaded(bep, home, shop, given, field, says):
    refused(
        bep,
        home,
        *("endpoint", "invoke", "--name", "shop", "--input", shop / "images", "--set", "inputs.label=x", *given),
        code=2,
        field=field,
        says=says,
    )


def test_a_required_literal_input_left_out_is_refused(bep, home, shop):
    refused(bep, home, "endpoint", "invoke", "--name", "shop", "--input", shop / "images", code=2, field="inputs.label")


def test_deployment_create_takes_nested_keys_several_per_set(bep, home, shop, tmp_path):
    spec = tmp_path / "green.yml"
    spec.write_text((shop / "deployment.yml").read_text().replace("name: blue", "name: green"))

    bep(
        "deployment",
        "create",
        "--file",
        spec,
        "--set",
        "settings.mini_batch_size=3",
        "retry_settings.max_retries=1",
        "--set",
        "resources.instance_count=2",
        "settings.retry_settings.timeout=9",
        "description=tuned",
    )

    shown = bep("deployment", "show", "--endpoint-name", "shop", "--name", "green").json()
    assert shown["settings"]["mini_batch_size"] == 3 and shown["settings"]["instance_count"] == 2
    assert shown["settings"]["retry_settings"] == {"max_retries": 1, "timeout": 9}
    assert shown["description"] == "tuned"


def test_named_inputs_over_http_reach_the_servers_job(remote, local_api, tmp_path):
    open_shop(remote, tmp_path, script=SCRIPT, deployment_lines=DECLARED)
    named = [f"inputs.heart.path={tmp_path / 'images'}", "inputs.heart.type=uri_folder", "inputs.label=remote"]

    refused_remotely = remote("endpoint", "invoke", "--name", "shop", "--set", *named, "inputs.colour=red", ok=False)
    job_id = remote("endpoint", "invoke", "--name", "shop", "--set", *named, "--set", "inputs.limit=3").out.strip()
    remote("job", "stream", "--name", job_id)
    downloaded = remote("job", "download", "--name", job_id, "--download-path", tmp_path / "download").out.split()

    assert refused_remotely.code == 2 and "inputs.colour" in refused_remotely.err
    assert sorted(pd.read_csv(downloaded[0])["prediction"]) == ["a.png:remote", "b.png:remote", "c.png:remote"]
