"""The habits of `az ml` scripts, through `bep`: `-o`/`--query` on every verb, `--yes` on deletes, Azure's model
and environment YAML, `deployment list-jobs`, `job show --web`, `job download --output-name`, a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = "def run(mini_batch):\n    return [len(open(path).read()) for path in mini_batch]\n"


@pytest.fixture
def deployed(bep, tmp_path: Path) -> Path:
    """Endpoint `shop` with deployment `blue` (the default) and `green`; inputs/ holds three files."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    (tmp_path / "model.bin").write_bytes(b"\0")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (inputs / name).write_text(name)
    bep("model", "create", "--name", "m", "--path", tmp_path / "model.bin")
    bep("endpoint", "create", "--name", "shop")
    for name in ("blue", "green"):
        (tmp_path / f"{name}.yml").write_text(
            f"name: {name}\nendpoint_name: shop\nmodel: azureml:m:1\n"
            f"code_configuration:\n  code: {code}\n  scoring_script: score.py\n"
        )
        bep("deployment", "create", "--file", tmp_path / f"{name}.yml", *(["--set-default"] if name == "blue" else []))
    return tmp_path


def _finished_job(bep, workspace: Path, *flags: str) -> str:
    job_id = bep(
        "endpoint", "invoke", "--name", "shop", "--input", workspace / "inputs", "--query", "name", "-o", "tsv", *flags
    ).out
    assert job_id.endswith("\n") and "\t" not in job_id
    bep("job", "stream", "--name", job_id.strip())
    return job_id.strip()


def test_query_and_output_formats_as_az_prints_them(bep, deployed: Path) -> None:
    job_id = _finished_job(bep, deployed)

    assert bep("job", "show", "-n", job_id, "--query", "status", "-o", "tsv").out == "Completed\n"
    assert bep("job", "show", "-n", job_id, "--query", "status").out == '"Completed"\n'
    shown = bep("job", "show", "-n", job_id, "-o", "json").json()
    assert (shown["name"], shown["id"], shown["counts"]["files"]) == (job_id, job_id, 3)
    assert yaml.safe_load(bep("job", "show", "-n", job_id, "-o", "yaml").out) == shown
    assert bep("deployment", "list", "-e", "shop", "--query", "[].name", "-o", "tsv").out == "blue\ngreen\n"
    assert json.loads(bep("deployment", "list", "-e", "shop", "--query", "[].name").out) == ["blue", "green"]
    # A record's values in field order, tab-separated; a list as its length, a mapping as an empty cell.
    row = bep("model", "list", "--query", "[].{n: name, v: version, t: tags, l: [name]}", "-o", "tsv").out
    assert row == "m\t1\t\t1\n"
    assert bep("endpoint", "show", "-n", "shop", "--query", "defaults", "-o", "tsv").out == ""  # nothing selected
    assert bep("job", "show", "-n", job_id, "--query", "counts.files", "-o", "yaml").out == "3\n...\n"


def test_table_output_is_azs_layout(bep, deployed: Path) -> None:
    table = bep("deployment", "list", "-e", "shop", "-o", "table").out.splitlines()
    assert table[0].split() == ["Name", "Default", "Model", "Compute", "Description"]
    assert set(table[1].replace(" ", "")) == {"-"}
    assert [line.split()[:3] for line in table[2:]] == [["blue", "*", "m:1"], ["green", "m:1", "cpu-cluster"]]
    # With a query, the item's scalar fields; a bare value under Result.
    queried = bep("endpoint", "show", "-n", "shop", "--query", "{Name: name, Tags: tags}", "-o", "table").out
    assert queried.splitlines() == ["Name", "----", "shop"]
    assert bep("endpoint", "show", "-n", "shop", "--query", "name", "-o", "table").out.splitlines()[::2] == [
        "Result",
        "shop",
    ]
    # The default stays the aligned table of a list's columns.
    assert bep("deployment", "list", "-e", "shop").out.split()[:2] == ["NAME", "DEFAULT"]


def test_bad_query_or_format_is_refused_naming_the_flag(bep, deployed: Path) -> None:
    bad = bep("endpoint", "show", "-n", "shop", "--query", "[?", ok=False)
    assert bad.code == 2 and "--query" in bad.err and bad.out == ""
    with pytest.raises(SystemExit) as refused:
        bep("endpoint", "show", "-n", "shop", "-o", "xml")
    assert refused.value.code == 2
    nothing = bep("endpoint", "show", "-n", "shop", "--query", "tags", "-o", "table", ok=False)
    assert nothing.code == 2 and "--output" in nothing.err


def test_deletes_take_yes_and_never_prompt(bep, deployed: Path) -> None:
    bep("deployment", "delete", "-e", "shop", "-n", "green", "--yes")
    assert bep("deployment", "list", "-e", "shop", "--query", "[].name", "-o", "tsv").out == "blue\n"
    bep("endpoint", "delete", "-n", "shop", "-y")
    assert bep("endpoint", "show", "-n", "shop", ok=False).code == 3


def test_jobs_of_a_deleted_endpoint_are_still_listed(bep, deployed: Path) -> None:
    job_id = _finished_job(bep, deployed)
    bep("endpoint", "delete", "-n", "shop", "--yes")

    assert bep("job", "list", "--endpoint-name", "shop", "--query", "[].name", "-o", "tsv").out == f"{job_id}\n"
    assert bep("job", "list", "--endpoint-name", "never-was", ok=False).code == 3


def test_deployment_list_jobs_lists_that_deployments_jobs(bep, deployed: Path) -> None:
    blue = _finished_job(bep, deployed)
    green = _finished_job(bep, deployed, "--deployment-name", "green")

    listed = bep("deployment", "list-jobs", "-e", "shop", "-n", "green", "--query", "[].name", "-o", "tsv").out
    assert listed == f"{green}\n"
    assert blue in bep("deployment", "list-jobs", "-e", "shop", "-n", "blue").out
    assert bep("deployment", "list-jobs", "-e", "shop", "-n", "red", ok=False).code == 3


def test_endpoint_update_sets_the_default_deployment_as_azure_writes_it(bep, deployed: Path) -> None:
    updated = bep("endpoint", "update", "-n", "shop", "--set", "defaults.deployment_name=green").json()
    assert updated["default_deployment"] == "green"

    other = bep("endpoint", "update", "-n", "shop", "--set", "description=x", ok=False)
    assert other.code == 2 and "--set" in other.err and "defaults.deployment_name" in other.err
    clash = bep(
        "endpoint",
        "update",
        "-n",
        "shop",
        "--set",
        "defaults.deployment_name=blue",
        "--default-deployment",
        "green",
        ok=False,
    )
    assert clash.code == 2 and "--set" in clash.err
    assert bep("endpoint", "show", "-n", "shop", "--query", "default_deployment", "-o", "tsv").out == "green\n"


def test_job_show_web_shows_a_local_job_and_says_it_has_no_console_page(bep, deployed: Path) -> None:
    job_id = _finished_job(bep, deployed)
    local = bep("job", "show", "-n", job_id, "--web")
    assert "--web" in local.err and "no console page" in local.err
    assert local.json()["name"] == job_id


def test_job_show_web_prints_the_step_functions_console_page(bep, deployed: Path) -> None:
    job_id = _finished_job(bep, deployed)
    arn = f"arn:aws:states:eu-west-1:123456789012:execution:BatchJobs:{job_id}"
    service = bep.service
    service.repo.update_job(job_id, lambda job: job.model_copy(update={"execution": arn}))

    shown = bep("job", "show", "-n", job_id, "--web").out
    assert shown == (
        f"https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{arn}\n"
    )


def test_job_download_takes_azures_output_name_and_layout(bep, deployed: Path) -> None:
    job_id = _finished_job(bep, deployed)
    out = deployed / "out"
    paths = bep("job", "download", "-n", job_id, "--output-name", "score", "--download-path", out).out.splitlines()
    assert paths == [str(out / "named-outputs" / "score" / "predictions.csv")]
    listed = json.loads(bep("job", "download", "-n", job_id, "--download-path", deployed / "again", "-o", "json").out)
    assert str(deployed / "again" / "named-outputs" / "score" / "predictions.csv") in listed
    assert str(deployed / "again" / "artifacts" / "summary.json") in listed
    every = bep("job", "download", "-n", job_id, "--all", "--download-path", deployed / "again", "-o", "json").out
    assert json.loads(every) == listed

    other = bep("job", "download", "-n", job_id, "--output-name", "scores", "--download-path", deployed / "x", ok=False)
    assert other.code == 2 and "--output-name" in other.err and "'score'" in other.err
    assert not (deployed / "x").exists()


def test_model_type_and_azures_model_yaml(bep, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "clf").mkdir(parents=True)
    (folder / "clf" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "model.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
        "name: clf\nversion: 3\npath: model\ntype: mlflow_model\ndescription: a classifier\ntags:\n  team: ml\n"
    )
    registered = bep("model", "create", "--file", tmp_path / "model.yml").json()
    assert (registered["name"], registered["version"], registered["description"]) == ("clf", "3", "a classifier")
    assert registered["tags"] == {"team": "ml"}
    assert (
        bep(
            "model", "create", "--file", tmp_path / "model.yml", "--version", "4", "-o", "tsv", "--query", "version"
        ).out
        == "4\n"
    )
    assert bep("model", "create", "-n", "plain", "-p", folder, "--type", "custom_model").json()["version"] == "1"
    assert bep("model", "create", "-n", "flow", "-p", folder, "--type", "mlflow_model").json()["version"] == "1"

    (tmp_path / "empty").mkdir()
    not_mlflow = bep("model", "create", "-n", "x", "-p", tmp_path / "empty", "--type", "mlflow_model", ok=False)
    assert not_mlflow.code == 2 and "--type" in not_mlflow.err and "MLmodel" in not_mlflow.err
    triton = bep("model", "create", "-n", "x", "-p", folder, "--type", "triton_model", ok=False)
    assert triton.code == 2 and "--type" in triton.err and "Triton" in triton.err
    (tmp_path / "triton.yml").write_text("name: t\npath: model\ntype: triton_model\n")
    in_file = bep("model", "create", "--file", tmp_path / "triton.yml", ok=False)
    assert in_file.code == 2 and "type" in in_file.err and "Triton" in in_file.err
    (tmp_path / "unnamed.yml").write_text("path: model\n")
    assert "name" in bep("model", "create", "--file", tmp_path / "unnamed.yml", ok=False).err
    assert bep("model", "create", "--name", "x", ok=False).code == 2
    assert bep("model", "list", "--query", "length(@)").out == "4\n"


def test_azures_environment_yaml(bep, tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text("name: e\ndependencies:\n  - python=3.11\n  - pip:\n    - pillow\n")
    (tmp_path / "env.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: torch-env\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n"
        "conda_file: conda.yaml\ndescription: cpu\ntags:\n  team: ml\n"
    )
    registered = bep("environment", "create", "--file", tmp_path / "env.yml").json()
    assert (registered["name"], registered["version"], registered["pip_requirements"]) == ("torch-env", "1", ["pillow"])
    assert (registered["description"], registered["tags"]) == ("cpu", {"team": "ml"})
    assert registered["conda_file"].startswith("name: e")

    (tmp_path / "build.yml").write_text("name: built\nbuild:\n  path: docker-context\n")
    built = bep("environment", "create", "--file", tmp_path / "build.yml", ok=False)
    assert built.code == 2 and "build" in built.err and "image" in built.err
    both = bep(
        "environment", "create", "--file", tmp_path / "env.yml", "--conda-file", tmp_path / "conda.yaml", ok=False
    )
    assert both.code == 2 and "--conda-file" in both.err
    assert bep("environment", "create", "--image", "img:1", ok=False).code == 2
    assert bep("environment", "list", "--query", "[].name", "-o", "tsv").out == "torch-env\n"


def test_a_closed_pipe_ends_bep_quietly(home: Path, tmp_path: Path) -> None:
    # The reader is gone before bep writes a byte, as when `| head` has read what it wanted.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    ended = subprocess.run(
        [sys.executable, "-m", "batch_endpoints.cli.main", "model", "list"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        check=False,
    )
    os.close(write_end)
    assert ended.stderr == "" and ended.returncode == 141


def test_deployment_create_updates_a_deployment_that_exists_as_azs_does(bep, deployed: Path) -> None:
    first = bep("deployment", "show", "-e", "shop", "-n", "green").json()

    again = bep("deployment", "create", "--file", deployed / "green.yml", "--set", "description=rolled out again")

    shown = bep("deployment", "show", "-e", "shop", "-n", "green").json()
    assert again.json()["description"] == shown["description"] == "rolled out again"
    assert shown["created_at"] == first["created_at"]
    assert bep("deployment", "list", "-e", "shop", "--query", "[].name", "-o", "tsv").out == "blue\ngreen\n"
    # update still needs the deployment: it never creates one.
    (deployed / "red.yml").write_text((deployed / "green.yml").read_text().replace("name: green", "name: red"))
    missing = bep("deployment", "update", "--file", deployed / "red.yml", ok=False)
    assert missing.code == 3 and "create it first" in missing.err
