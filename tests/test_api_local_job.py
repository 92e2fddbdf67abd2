"""A client's whole session against the API on the local backend, with the job really running to its end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.service import BatchEndpointService
from tests.api_fixtures import Api, Stack, api_fixture, serve  # noqa: F401 (pytest fixtures)
from tests.core_fixtures import write_tree

SCORING_SCRIPT = """\
import glob
import os


def init():
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    print("model files:", sorted(os.path.relpath(p, model_dir) for p in glob.glob(f"{model_dir}/*/*")))


def run(mini_batch):
    return [open(path).read().strip().upper() for path in mini_batch]
"""


@pytest.fixture(name="running_stack")
def running_stack_fixture(tmp_path: Path) -> Iterator[Stack]:
    """The local backend as `bep` uses it: jobs run in job-host and runner processes."""
    backend = open_local_backend(str(tmp_path / "bep-home"))
    service = BatchEndpointService(backend)
    yield from serve(Stack("local", backend, service, str, lambda: []))


def follow(api: Api, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = api("GET", f"/jobs/{job_id}").json()
        if job["status"] in {"Completed", "Failed", "Canceled"}:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end within {timeout_s}s: {job}")


@pytest.mark.slow
def test_register_deploy_invoke_and_follow_a_job_to_its_output(running_stack: Stack, api: Api, tmp_path: Path) -> None:
    code = write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT})
    model = write_tree(tmp_path / "model", {"weights.txt": "1\n"})
    inputs = write_tree(tmp_path / "inputs", {f"{n:02d}.txt": f"file {n}" for n in range(7)})

    assert api("PUT", "/models/letters/versions/1", {"path": str(model)}).status == 201
    assert api("PUT", "/endpoints/letters", {"description": "upper-cases text files"}).status == 200
    deployment = {
        "model": "letters@latest",
        "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        "settings": {"mini_batch_size": 3, "max_concurrency_per_instance": 2},
    }
    put = api("PUT", "/endpoints/letters/deployments/blue", deployment, query={"set_default": "true"})
    assert put.status == 200, put.text
    key = {"Idempotency-Key": "first-run"}
    invoked = api("POST", "/endpoints/letters/jobs", {"input": {"uri": f"file://{inputs}"}}, headers=key)
    assert invoked.status == 202, invoked.text
    retried = api("POST", "/endpoints/letters/jobs", {"input": {"uri": f"file://{inputs}"}}, headers=key)

    job = follow(api, invoked.json()["id"])

    assert retried.json()["id"] == job["id"]
    assert [j["id"] for j in api("GET", "/endpoints/letters/jobs").json()["value"]] == [job["id"]]
    assert job["status"] == "Completed", job["error"]
    assert job["counts"]["files"] == 7 and job["counts"]["files_succeeded"] == 7
    assert job["progress"]["mini_batches_done"] == 3
    rows = pd.read_csv(job["links"]["output"])
    assert list(rows.columns) == ["file", "prediction"]
    assert sorted(rows["prediction"]) == [f"FILE {n}" for n in range(7)]
    logs = api("GET", f"/jobs/{job['id']}/logs").json()
    assert any("model files: ['model/weights.txt']" in line["message"] for line in logs["lines"])
