"""Cancel answers within API Gateway's 29 seconds whatever the job's size: through the API Lambda on moto, it makes
the same AWS requests for a job of 10 mini-batches as for one of 100,000 (counted as botocore sends them). The
jobs are planned by the real planner, so their records and shard files are what a running job has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.handlers
import pytest

from batch_endpoints import workflow
from batch_endpoints.jobfiles import JobFiles
from tests.api_fixtures import (  # noqa: F401
    Api,
    Folders,
    Stack,
    api_fixture,
    aws_fixture,
    aws_stack_fixture,
    folders_fixture,
    ready_fixture,
)

MINI_BATCH_SIZE = 3  # the deployment's (api_fixtures.deployment_body)


@pytest.fixture(name="aws_requests")
def aws_requests_fixture(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS API call of every client made from now on, as "<service>.<operation>"."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_id}.{model.name}")

    # Sessions register these on every client they make; the backend's clients are made after this.
    handlers = [*botocore.handlers.BUILTIN_HANDLERS, ("before-call", record)]
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
    return calls


@pytest.fixture(name="stack")
def counted_stack_fixture(aws_requests: list[str], aws_stack: Stack) -> Iterator[Stack]:
    yield aws_stack


def running_job(stack: Stack, api: Api, folders: Folders, mini_batches: int) -> str:
    """A job invoked through the API and planned over `mini_batches` mini-batches, as its workflow's Plan does."""
    invoked = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}})
    assert invoked.status == 202, invoked.text
    job = stack.service.get_job(invoked.json()["id"])
    names = [f"day-{n // 1000:03d}/scan-{n:07d}.png" for n in range(mini_batches * MINI_BATCH_SIZE)]
    listing = {"root": folders.inputs, "files": names}
    blobs = stack.backend.blobs
    blobs.put_bytes(JobFiles(blobs, job.scratch_uri).input_listing, json.dumps(listing).encode())
    workflow.plan_job(stack.backend, job.id)
    planned = stack.service.get_job(job.id)
    assert (planned.status.value, planned.counts.mini_batches) == ("Running", mini_batches)
    return job.id


def test_cancel_makes_the_same_requests_for_100000_mini_batches_as_for_10(
    ready: Stack, api: Api, folders: Folders, aws_requests: list[str]
) -> None:
    made = {}
    for mini_batches in (10, 100_000):
        job_id = running_job(ready, api, folders, mini_batches)
        aws_requests.clear()

        canceled = api("POST", f"/jobs/{job_id}/cancel")

        assert canceled.status == 202 and canceled.json()["status"] == "CancelRequested"
        made[mini_batches] = list(aws_requests)

    assert made[100_000] == made[10]
    assert made[10].count("SFN.StopExecution") == 1
    # Reading and updating the job record and stopping its execution: nothing per shard or mini-batch.
    assert len(made[10]) <= 6, made[10]
