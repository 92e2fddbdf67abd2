"""The workflow's Plan step (the Lambda handler, on moto's S3 and DynamoDB) over an input folder in S3 whose names
look like caches, version control and temp files: every object is planned, in one listing or in windows of it,
and an invocation's `exclude` leaves out exactly the files its patterns match."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from batch_endpoints import planning
from batch_endpoints.backend import Backend
from batch_endpoints.jobfiles import Shard
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import InvokeOverrides, JobStatus
from lambdas.workflow import handlers
from tests.aws_fixtures import INPUT_BUCKET, aws_fixture, put_objects, ready  # noqa: F401
from tests.core_fixtures import EVERY_KIND_OF_NAME
from tests.test_workflow_lambdas import CONTEXT, backend_fixture, read_s3  # noqa: F401

FOLDER = f"s3://{INPUT_BUCKET}/odd"
# Windows of two files: the listing resumes after names such as '.git/HEAD' and '__pycache__/...' (S3's StartAfter).
WINDOWS = {"one listing": 1_000_000, "windows of 2": 2}


@pytest.fixture(name="service")
def service_fixture(backend: Backend, tmp_path: Path) -> BatchEndpointService:
    service = ready(BatchEndpointService(backend), tmp_path / "aws", mini_batch_size=2)
    put_objects(INPUT_BUCKET, {f"odd/{name}": content.encode() for name, content in EVERY_KIND_OF_NAME.items()})
    return service


@pytest.fixture(name="window", params=list(WINDOWS))
def window_fixture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", WINDOWS[request.param])
    return WINDOWS[request.param]


def plan_to_the_end(service: BatchEndpointService, exclude: list[str]) -> tuple[list[str], str]:
    """Invoke on FOLDER, run the Plan step as the state machine does (again while not planned): the files of every
    shard's mini-batches in order, and the job's id."""
    request = InvokeRequest(
        endpoint_name="digits", input=FOLDER, exclude=exclude, overrides=InvokeOverrides(instance_count=2)
    )
    job = service.invoke(request)
    with warnings.catch_warnings():
        # Powertools Metrics warns on a step that published none (a plan step that is not the last).
        warnings.filterwarnings("ignore", "No application metrics to publish")
        while not (result := handlers.plan({"job_id": job.id}, CONTEXT))["planned"]:
            pass
    items = json.loads(read_s3(result["shards_bucket"], result["shards_key"]))
    shards = [Shard.from_json(service.blobs.get_bytes(item["shard"])) for item in items]
    return [name for shard in shards for mb in shard.mini_batches for name in mb.files], job.id


def test_every_object_of_an_s3_folder_is_planned_whatever_its_name(service: BatchEndpointService, window: int) -> None:
    planned, job_id = plan_to_the_end(service, exclude=[])

    assert sorted(planned) == sorted(EVERY_KIND_OF_NAME)
    assert len(planned) == len(set(planned))
    job = service.get_job(job_id)
    assert job.status == JobStatus.RUNNING
    assert job.counts.files == len(EVERY_KIND_OF_NAME)


@pytest.mark.parametrize(
    ("exclude", "left_out"),
    [
        # fnmatch's '*' also matches '/': '.*' takes the dotted folders' files as well.
        ([".*"], {".tmp-x", ".git/HEAD", ".ipynb_checkpoints/n.txt", ".hidden"}),
        (["*.pyc"], {"a.pyc", "__pycache__/m.cpython-311.pyc"}),
        (["__pycache__/*", ".git/*"], {"__pycache__/m.cpython-311.pyc", ".git/HEAD"}),
        (["sub/*", "*.txt"], {"sub/two.txt", "one.txt", "three.txt", ".ipynb_checkpoints/n.txt"}),
        (["ONE.TXT", "nothing-matches"], set()),  # case-sensitive
    ],
)
def test_an_exclude_leaves_out_exactly_the_objects_it_matches(
    service: BatchEndpointService, window: int, exclude: list[str], left_out: set[str]
) -> None:
    planned, job_id = plan_to_the_end(service, exclude=exclude)

    assert sorted(planned) == sorted(set(EVERY_KIND_OF_NAME) - left_out)
    assert service.get_job(job_id).counts.files == len(EVERY_KIND_OF_NAME) - len(left_out)
