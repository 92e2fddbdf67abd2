"""The local job host starts the job's first instance before anything else it needs (batch_endpoints.adapters.local.
job_host): the instance's start, not the host's own imports, is on the path from invoke to the first part."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.adapters.local import job_host
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import JobStatus
from tests.core_fixtures import RecordingOrchestrator
from tests.faults import deploy, workspace_fixture  # noqa: F401 (a fixture)


def test_the_job_host_imports_planning_and_finalizing_only_after_it_started_the_first_instance() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, batch_endpoints.adapters.local.job_host; print(sorted(m for m in sys.modules "
            "if m in ('batch_endpoints.workflow', 'batch_endpoints.planning', 'batch_endpoints.merging')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == "[]"


def test_a_first_instance_that_cannot_start_fails_the_job_saying_why(
    bep: Any, workspace: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(bep, workspace, "ok")
    backend = from_environment()
    queued = BatchEndpointService(dataclasses.replace(backend, orchestrator=RecordingOrchestrator())).invoke(
        InvokeRequest(endpoint_name="echo-endpoint", input=str(workspace["inputs"]))
    )

    def no_interpreter(*args: object, **kwargs: object) -> subprocess.Popen[str]:
        raise FileNotFoundError(2, "No such file or directory", "python")

    monkeypatch.setattr(subprocess, "Popen", no_interpreter)  # the job host starts its instances with it
    job = job_host.run_job(backend, queued.id)

    assert job.status == JobStatus.FAILED
    assert job.error == "FileNotFoundError: [Errno 2] No such file or directory: 'python'"
    assert not bep.service.get_job(queued.id).started_at, "nothing was planned"
