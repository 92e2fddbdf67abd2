"""The README's main job through the CLI on the local backend, with the real digits model and PNG files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints.yaml_specs import load_deployment, load_endpoint

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"
FILES = 60


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, digits_models: dict[str, Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("digits")
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_requests.py"), "--output", str(root / "requests"), "--count", str(FILES)],
        check=True,
        capture_output=True,
    )
    return {
        "root": root,
        "model": digits_models["standard"],
        "model-small": digits_models["small"],
        "requests": root / "requests",
        "labels": root / "labels.csv",
    }


def accuracy(predictions: Path, labels_csv: Path) -> float:
    predicted = pd.read_csv(predictions)
    labels = pd.read_csv(labels_csv)
    joined = predicted.merge(labels, on="file", validate="one_to_one")
    assert len(joined) == len(predicted)
    return float((joined["class"] == joined["label"]).mean())


def test_register_deploy_invoke_switch_default_and_override(bep, digits, tmp_path):
    endpoint = load_endpoint(EXAMPLE / "endpoint.yml").name
    default = load_deployment(EXAMPLE / "deployment.yml").name
    other = load_deployment(EXAMPLE / "deployment-small.yml").name

    bep("model", "create", "--name", "digits", "--path", digits["model"])
    bep("model", "register", "--name", "digits-small", "--path", digits["model-small"])
    created = bep("endpoint", "create", "--file", EXAMPLE / "endpoint.yml").json()
    assert created["name"] == endpoint and created["scoring_uri"].endswith(f"/endpoints/{endpoint}/jobs")
    bep("deployment", "create", "--file", EXAMPLE / "deployment.yml", "--set-default")
    bep("deployment", "create", "--file", EXAMPLE / "deployment-small.yml")
    assert bep("endpoint", "show", "--name", endpoint).json()["default_deployment"] == default
    listing = bep("deployment", "list", "--endpoint-name", endpoint).out
    assert default in listing and other in listing

    # Invoke the default deployment; its settings come from deployment.yml.
    job_id = bep("endpoint", "invoke", "--name", endpoint, "--input", digits["requests"]).out.strip()
    assert bep("job", "stream", "--name", job_id).code == 0
    job = bep("job", "show", "--name", job_id).json()
    settings = load_deployment(EXAMPLE / "deployment.yml").settings
    assert job["status"] == "Completed" and job["deployment_name"] == default
    assert job["counts"]["files"] == FILES and job["counts"]["files_succeeded"] == FILES
    assert job["counts"]["mini_batches"] == -(-FILES // settings.mini_batch_size)
    predictions = Path(job["output_uri"])
    assert len(pd.read_csv(predictions)) == FILES
    assert accuracy(predictions, digits["labels"]) >= 0.9

    # Invoke the other deployment with per-invocation overrides and an output location of our own.
    out_dir = tmp_path / "out"
    other_id = bep(
        "endpoint",
        "invoke",
        "--name",
        endpoint,
        "--input",
        digits["requests"],
        "--deployment-name",
        other,
        "--mini-batch-size",
        "7",
        "--instance-count",
        "2",
        "--output-path",
        out_dir,
        "--output-file-name",
        "scores.csv",
        "--set",
        "max_retries=1",
        "--set",
        "timeout=20",
    ).out.strip()
    assert bep("job", "stream", "--name", other_id).code == 0
    other_job = bep("job", "show", "--name", other_id).json()
    assert other_job["deployment_name"] == other
    assert other_job["counts"]["mini_batches"] == -(-FILES // 7)
    assert other_job["settings"]["instance_count"] == 2
    assert other_job["settings"]["retry_settings"] == {"max_retries": 1, "timeout": 20}
    scores = pd.read_csv(out_dir / "scores.csv")
    assert len(scores) == FILES and scores["file"].is_unique
    assert accuracy(out_dir / "scores.csv", digits["labels"]) >= 0.85

    # Switch the default: a plain invoke now goes to the other deployment.
    bep("endpoint", "update", "--name", endpoint, "--default-deployment", other)
    third = bep("endpoint", "invoke", "--name", endpoint, "--input", digits["requests"], "--stream").out
    third_id = third.splitlines()[0]
    assert bep("job", "show", "--name", third_id).json()["deployment_name"] == other

    jobs = bep("job", "list", "--endpoint-name", endpoint).out.splitlines()
    assert [line.split()[0] for line in jobs[1:]] == [third_id, other_id, job_id]  # newest first

    downloaded = bep("job", "download", "--name", job_id, "--download-path", tmp_path / "dl").out.split()
    assert downloaded[0] == str(tmp_path / "dl" / "named-outputs" / "score" / "predictions.csv")
    assert Path(downloaded[0]).read_bytes() == predictions.read_bytes()
