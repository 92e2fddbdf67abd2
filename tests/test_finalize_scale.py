"""Finalize's cost grows with shards, not mini-batches: its S3 and DynamoDB requests, counted on moto with a
botocore event hook, for jobs of the same shard count and 12 or 1,000 mini-batches; projected from the count per
shard to a job of 1,000,000 files against the 15 minutes of a Lambda and our own 5-minute target.

The runner is played by hand (parts and results written straight into moto's S3, then each shard sealed with
the runner's own code), so a job of 1,000 mini-batches takes seconds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batch_endpoints import planning, shard_journals
from batch_endpoints.adapters.aws.blobs import parse
from batch_endpoints.backend import Backend
from batch_endpoints.jobfiles import FileError, JobFiles, MiniBatchResult, Shard
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import InvokeOverrides, JobStatus
from batch_endpoints.workflow import READ_THREADS, finalize_job, plan_job, unscored_files
from tests.aws_fixtures import BUCKET, INPUT_BUCKET, aws_backend, aws_fixture, put_objects, ready  # noqa: F401
from tests.core_fixtures import RecordingOrchestrator

# Stated latencies, as the issue sets them; concurrency is finalize's own (READ_THREADS).
S3_REQUEST_S = 0.020
DYNAMODB_REQUEST_S = 0.010
TARGET_S = 5 * 60
ONE_MILLION = 1_000_000


@dataclass
class Requests:
    """Requests sent by the backend's clients while counting, by service and operation, with the S3 keys."""

    operations: Counter[tuple[str, str]]
    keys: list[str]

    @property
    def s3(self) -> int:
        return sum(n for (service, _), n in self.operations.items() if service == "s3")

    @property
    def dynamodb(self) -> int:
        return sum(n for (service, _), n in self.operations.items() if service == "dynamodb")


class RequestCounter:
    def __init__(self, backend: Backend) -> None:
        self.counting = False
        self.requests = Requests(Counter(), [])
        for client in (backend.blobs.client, backend.records.client):
            client.meta.events.register("before-call.*.*", self._seen)

    def _seen(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self.counting:
            self.requests.operations[(model.service_model.endpoint_prefix, model.name)] += 1
            if "Key" in params:
                self.requests.keys.append(params["Key"])

    def during(self) -> _Counting:
        return _Counting(self)


class _Counting:
    def __init__(self, counter: RequestCounter) -> None:
        self.counter = counter

    def __enter__(self) -> Requests:
        self.counter.requests = Requests(Counter(), [])
        self.counter.counting = True
        return self.counter.requests

    def __exit__(self, *_: object) -> None:
        self.counter.counting = False


@pytest.fixture
def cloud(aws: None, tmp_path: Path) -> Iterator[tuple[Backend, RequestCounter]]:
    backend = aws_backend(RecordingOrchestrator())
    ready(BatchEndpointService(backend), tmp_path, mini_batch_size=1)
    yield backend, RequestCounter(backend)


def scored_job(backend: Backend, files: int, *, instance_count: int = 1) -> tuple[str, list[Shard]]:
    """A job over `files` inputs, one a mini-batch, run by hand: each mini-batch writes its part and result,
    the first mini-batch of every shard fails its file, and every shard is sealed as the runner seals it."""
    folder = f"inputs-{files}-{instance_count}"
    put_objects(INPUT_BUCKET, {f"{folder}/{n:07d}.txt": b"x" for n in range(files)})
    job = BatchEndpointService(backend).invoke(
        InvokeRequest(
            endpoint_name="digits",
            input=f"s3://{INPUT_BUCKET}/{folder}",
            overrides=InvokeOverrides(instance_count=instance_count),
        )
    )
    plan = plan_job(backend, job.id)
    shards = [Shard.from_json(backend.blobs.get_bytes(uri)) for uri in plan.shard_uris]
    files_of = JobFiles(backend.blobs, job.scratch_uri)
    _, scratch = parse(job.scratch_uri)
    objects: dict[str, bytes] = {}
    results: dict[int, dict[int, MiniBatchResult]] = {}
    for shard in shards:
        results[shard.index] = {}
        for number, mini_batch in enumerate(shard.mini_batches):
            (name,) = mini_batch.files
            failed = number == 0
            result = MiniBatchResult(
                index=mini_batch.index,
                files=1,
                succeeded=0 if failed else 1,
                rows=0 if failed else 1,
                attempts=1,
                failed=[FileError(name, "cannot read it")] if failed else [],
                columns=[] if failed else ["file", "score"],
            )
            results[shard.index][mini_batch.index] = result
            if not failed:
                objects[f"{scratch}/parts/mb-{mini_batch.index:08d}.csv"] = f"file,score\n{name},1\n".encode()
            objects[f"{scratch}/results/mb-{mini_batch.index:08d}.json"] = result.to_json()
    put_objects(BUCKET, objects)
    for shard in shards:
        shard_journals.seal(backend.blobs, files_of, shard, results[shard.index], append_rows=True)
    return job.id, shards


def finalized(backend: Backend, counter: RequestCounter, files: int, **options: Any) -> tuple[Requests, int]:
    job_id, shards = scored_job(backend, files, **options)
    with counter.during() as requests:
        job = finalize_job(backend, job_id)
    assert job.status == JobStatus.COMPLETED
    assert job.counts.files_succeeded == files - len(shards) and job.counts.rows == files - len(shards)
    assert job.output_uri is not None
    rows = backend.blobs.get_bytes(job.output_uri).decode().splitlines()
    names = [name for shard in shards for mb in shard.mini_batches[1:] for name in mb.files]
    assert rows == ["file,score", *(f"{name},1" for name in names)]  # every row once, in mini-batch order
    errors = backend.blobs.get_bytes(JobFiles(backend.blobs, job.scratch_uri).errors).decode().splitlines()
    assert [json.loads(line)["file"] for line in errors] == [shard.mini_batches[0].files[0] for shard in shards]
    return requests, len(shards)


def test_finalize_requests_are_the_same_for_12_or_1000_mini_batches_in_as_many_shards(
    cloud: tuple[Backend, RequestCounter],
) -> None:
    backend, counter = cloud

    small, small_shards = finalized(backend, counter, 12)
    large, large_shards = finalized(backend, counter, 1000)

    assert small_shards == large_shards == planning.SHARDS_PER_INSTANCE
    assert large.operations == small.operations
    # Nothing per mini-batch is read: no result, no part, no HEAD of either.
    assert not [key for key in large.keys if "/results/" in key or "/parts/" in key]


def test_finalize_of_a_million_files_is_projected_within_five_minutes(cloud: tuple[Backend, RequestCounter]) -> None:
    backend, counter = cloud
    four, four_shards = finalized(backend, counter, 12, instance_count=1)
    eight, eight_shards = finalized(backend, counter, 48, instance_count=2)
    per_shard_s3 = (eight.s3 - four.s3) / (eight_shards - four_shards)
    per_shard_dynamodb = (eight.dynamodb - four.dynamodb) / (eight_shards - four_shards)
    fixed_s3 = four.s3 - per_shard_s3 * four_shards
    fixed_dynamodb = four.dynamodb - per_shard_dynamodb * four_shards

    # The most shards a job of a million files can have: mini_batch_size 10, instance_count at the Distributed
    # Map's limit of 10,000 children (4 shards an instance, at least one mini-batch a shard).
    mini_batches = ONE_MILLION // 10
    shards = math.ceil(mini_batches / planning.mini_batches_per_shard(mini_batches, 10_000))
    projected_s = (
        fixed_s3 * S3_REQUEST_S
        + fixed_dynamodb * DYNAMODB_REQUEST_S
        + shards * (per_shard_s3 * S3_REQUEST_S + per_shard_dynamodb * DYNAMODB_REQUEST_S) / READ_THREADS
        # Listings page 1,000 keys at a time, one page after another.
        + math.ceil(shards / 1000) * S3_REQUEST_S
    )

    assert per_shard_dynamodb == 0
    assert per_shard_s3 <= 3, eight.operations  # a journal, its shard's output and its error lines
    assert projected_s <= TARGET_S, f"{shards} shards: {projected_s:.0f} s"


def test_unscored_files_of_a_done_job_read_one_errors_file_a_shard(cloud: tuple[Backend, RequestCounter]) -> None:
    backend, counter = cloud
    job_id, shards = scored_job(backend, 1000)
    job = finalize_job(backend, job_id)

    with counter.during() as requests:
        listing = unscored_files(backend, job)

    assert listing.files == [shard.mini_batches[0].files[0] for shard in shards]
    assert requests.operations[("s3", "GetObject")] == 2 * len(shards) + 1  # journals, errors, shard 0's root
    assert not [key for key in requests.keys if "/results/" in key or "/parts/" in key]


def test_rerun_failed_asks_storage_the_same_for_12_or_1000_mini_batches(cloud: tuple[Backend, RequestCounter]) -> None:
    backend, counter = cloud
    service = BatchEndpointService(backend)
    asked = []
    for files in (12, 1000):
        job_id, _ = scored_job(backend, files)
        finalize_job(backend, job_id)
        with counter.during() as requests:
            service.rerun_job(job_id, failed_only=True)
        asked.append(requests.operations)

    assert asked[0] == asked[1]
    assert asked[1][("s3", "GetObject")] == 0  # nothing of the first job is read: its plan lists the files
