"""Fixtures for the core tests: a real local backend (SQLite file, storage folder) under tmp_path.

The one stand-in is the orchestrator, a port: `RecordingOrchestrator` records which jobs were started or
canceled and runs nothing, so service and workflow tests drive each step themselves.

A fixture is defined as `<name>_fixture` and used as `<name>`; test modules import the `_fixture` functions they
need, which is how pytest finds them outside conftest.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from batch_container.runner import ShardRunner
from batch_endpoints import workflow
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.backend import Backend
from batch_endpoints.repository import Repository
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import CodeConfiguration, Deployment, Endpoint, Environment, Job, JobInput, RunSettings
from batch_endpoints.yaml_specs import (
    DeploymentDeclaration,
    load_deployment_mapping,
    load_endpoint_mapping,
)

SCORING_SCRIPT = """\
def init():
    pass


def run(mini_batch):
    return [len(path) for path in mini_batch]
"""


class RecordingOrchestrator:
    """The orchestrator port, recording calls instead of running jobs."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.canceled: list[str] = []
        self.resumed: list[str] = []
        self.running: set[str] = set()
        """Jobs to report as still running."""

    def start(self, job: Job) -> str:
        self.started.append(job.id)
        return f"recorded:{job.id}"

    def cancel(self, job: Job) -> None:
        self.canceled.append(job.id)

    def is_running(self, job: Job) -> bool:
        return job.id in self.running

    def resume(self, job: Job) -> str:
        self.resumed.append(job.id)
        return f"recorded:{job.id}:resume-{job.resumes}"


# Names that caches, version control and temp files use, which are data all the same in an input folder: a job
# over this tree scores every one of its files.
EVERY_KIND_OF_NAME = {
    ".tmp-x": "temp-like",
    "a.pyc": "bytecode-like",
    "__pycache__/m.cpython-311.pyc": "cache-like",
    ".git/HEAD": "git-like",
    ".ipynb_checkpoints/n.txt": "checkpoint-like",
    ".hidden": "dotfile",
    "one.txt": "1",
    "sub/two.txt": "22",
    "three.txt": "333",
}


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Create `root` holding `files` (relative path -> content); returns root."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def endpoint_declaration(name: str = "digits", **fields: Any) -> Endpoint:
    return load_endpoint_mapping({"name": name, **fields})


def deployment_declaration(
    code_dir: Path,
    *,
    name: str = "blue",
    endpoint: str = "digits",
    model: str = "azureml:digits:1",
    compute: str = "cpu-cluster",
    settings: Mapping[str, Any] | None = None,
    **fields: Any,
) -> DeploymentDeclaration:
    mapping = {
        "name": name,
        "endpoint_name": endpoint,
        "model": model,
        "code_configuration": {"code": str(code_dir), "scoring_script": "score.py"},
        "compute": compute,
        "settings": dict(settings or {}),
        **fields,
    }
    return load_deployment_mapping(mapping, code_dir)


@pytest.fixture(name="recorder")
def recorder_fixture() -> RecordingOrchestrator:
    return RecordingOrchestrator()


@pytest.fixture(name="local_backend")
def local_backend_fixture(tmp_path: Path, recorder: RecordingOrchestrator) -> Backend:
    return dataclasses.replace(open_local_backend(str(tmp_path / "bep-core-home")), orchestrator=recorder)


@pytest.fixture(name="service")
def service_fixture(local_backend: Backend) -> BatchEndpointService:
    return BatchEndpointService(local_backend)


@pytest.fixture(name="code_dir")
def code_dir_fixture(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "code",
        {"score.py": SCORING_SCRIPT, "helpers/labels.txt": "zero\none\n", "__pycache__/score.cpython-311.pyc": b"\0"},
    )


@pytest.fixture(name="model_dir")
def model_dir_fixture(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "model", {"weights.txt": "0.5 0.25\n", "meta/config.json": '{"classes": 10}'})


@pytest.fixture(name="input_dir")
def input_dir_fixture(tmp_path: Path) -> Path:
    """Seven files in two levels, so mini-batches of 3 give sizes 3, 3, 1."""
    return write_tree(
        tmp_path / "inputs",
        {
            "a.txt": "a",
            "b.txt": "bb",
            "c.txt": "ccc",
            "d.txt": "dddd",
            "sub/e.txt": "eeeee",
            "sub/f.txt": "ffffff",
            "z.txt": "z",
        },
    )


@pytest.fixture(name="ready_service")
def ready_service_fixture(service: BatchEndpointService, code_dir: Path, model_dir: Path) -> BatchEndpointService:
    """Model digits:1, endpoint `digits` with deployment `blue` (mini_batch_size 3) as its default."""
    service.register_model("digits", str(model_dir))
    service.create_endpoint(endpoint_declaration("digits"))
    service.create_deployment(deployment_declaration(code_dir, settings={"mini_batch_size": 3}), set_default=True)
    return service


def invoke(service: BatchEndpointService, input_path: Path, **fields: Any) -> Job:
    return service.invoke(InvokeRequest(endpoint_name="digits", input=str(input_path), **fields))


def record_runner_job(
    backend: Backend, script: str, inputs: Path, settings: RunSettings, *, environment: Environment | None = None
) -> Job:
    """A job recorded straight in the backend's stores, as the service would record it, for a test that drives the
    plan, the runner and finalize itself: scoring code `script`, a one-file model, every file of `inputs`."""
    blobs = backend.blobs
    code = blobs.join(blobs.root, "code")
    blobs.put_bytes(blobs.join(code, "score.py"), script.encode())
    model = blobs.join(blobs.root, "models", "m")
    blobs.put_bytes(blobs.join(model, "weights.txt"), b"1")
    deployment = Deployment(
        name="blue",
        endpoint_name="runner-test",
        model="m:1",
        code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
        environment=environment or Environment(),
        settings=settings,
    )
    job = Job(
        id="job-1",
        endpoint_name="runner-test",
        deployment_name="blue",
        deployment=deployment,
        model_path=model,
        input=JobInput(uri=str(inputs)),
        output_uri=str(inputs.parent / "out" / settings.output_file_name),
        scratch_uri=blobs.join(blobs.root, "jobs", "job-1"),
        settings=settings,
    )
    Repository(backend.records).add_job(job)
    return job


def run_in_process(backend: Backend, job: Job) -> Job:
    """Plan, run every shard with one in-process runner, finalize; the job as it ended."""
    plan = workflow.plan_job(backend, job.id)
    with ShardRunner(backend.records, backend.blobs, job.id) as runner:
        for uri in plan.shard_uris:
            runner.run_shard(runner.load_shard(uri))
    return workflow.finalize_job(backend, job.id)
