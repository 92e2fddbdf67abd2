"""A plan made in windows of the input's listing (`planning.PLAN_WINDOW_FILES` files a step): the windows here are
tiny, so a few thousand files take many steps, as 10^8 files take a hundred in the cloud."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch_endpoints import planning
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import JobFiles, MiniBatch, Shard
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import InvokeOverrides, Job
from batch_endpoints.workflow import Plan, plan_job, plan_step
from tests.core_fixtures import (  # noqa: F401 (pytest fixtures)
    code_dir_fixture,
    deployment_declaration,
    invoke,
    local_backend_fixture,
    model_dir_fixture,
    ready_service_fixture,
    recorder_fixture,
    service_fixture,
    write_tree,
)

FILES = 3_001
MINI_BATCH_SIZE = 7  # windows of 250 files end inside mini-batches
WINDOW = 250


@pytest.fixture(name="names")
def names_fixture() -> list[str]:
    return [f"d{n % 3}/scan-{n:05d}.png" for n in range(FILES)]


@pytest.fixture(name="big_input")
def big_input_fixture(tmp_path: Path, names: list[str]) -> Path:
    return write_tree(tmp_path / "big", dict.fromkeys(names, "x"))


def start(service: BatchEndpointService, input_dir: Path, instance_count: int = 2, **fields: object) -> Job:
    overrides = InvokeOverrides(mini_batch_size=MINI_BATCH_SIZE, instance_count=instance_count)
    return invoke(service, input_dir, overrides=overrides, **fields)


def shards_of(backend: Backend, plan: Plan) -> list[Shard]:
    return [Shard.from_json(backend.blobs.get_bytes(uri)) for uri in plan.shard_uris]


def mini_batches(shards: list[Shard]) -> list[MiniBatch]:
    return [mb for shard in shards for mb in shard.mini_batches]


def test_windows_cut_the_mini_batches_one_listing_would_into_shards_that_grow(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    big_input: Path,
    names: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", WINDOW)
    job = start(ready_service, big_input, instance_count=1)
    files = JobFiles(local_backend.blobs, job.scratch_uri)
    steps, largest_cursor = 0, 0

    while not (plan := plan_step(local_backend, job.id)).planned:
        steps += 1
        cursor = planning.PlanCursor.from_json(local_backend.blobs.get_bytes(files.plan_cursor))
        # Bounded: the names of the shard not yet cut, fewer than one shard's mini-batches.
        seen = cursor.mini_batches + -(-len(cursor.pending) // MINI_BATCH_SIZE)
        per_shard = planning.mini_batches_per_shard(seen, 1)
        assert len(cursor.pending) < (per_shard + 1) * MINI_BATCH_SIZE
        largest_cursor = max(largest_cursor, len(cursor.to_json()))
        assert len(plan.shard_uris) == cursor.shards

    shards = shards_of(local_backend, plan)
    expected = list(planning.cut_mini_batches(sorted(names), MINI_BATCH_SIZE))
    assert steps == FILES // WINDOW  # 12 windows of 250, and the last with one file
    assert mini_batches(shards) == expected
    assert [shard.index for shard in shards] == list(range(len(shards)))
    sizes = [len(shard.mini_batches) for shard in shards]
    assert sizes[:-1] == sorted(sizes[:-1]) and sizes[0] < sizes[-2], sizes
    assert max(sizes) <= planning.mini_batches_per_shard(len(expected), 1)
    assert largest_cursor < 100 * 35 * MINI_BATCH_SIZE  # ~35 bytes a name, far from the listing's size
    job = ready_service.get_job(job.id)
    assert (job.counts.files, job.counts.mini_batches, job.counts.shards) == (FILES, len(expected), len(shards))
    index = json.loads(local_backend.blobs.get_bytes(files.shard_index))
    assert index == [{"shard": uri} for uri in plan.shard_uris]


def test_a_listing_that_fits_one_window_is_planned_as_in_one_listing(
    ready_service: BatchEndpointService, local_backend: Backend, big_input: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", FILES)
    job = start(ready_service, big_input)

    plan = plan_step(local_backend, job.id)

    listing = planning.list_input(local_backend.blobs, job.input)
    assert plan.planned
    assert shards_of(local_backend, plan) == planning.plan_shards(job.id, listing, MINI_BATCH_SIZE, 2)


def test_a_window_run_again_after_a_crash_writes_the_same_plan(
    ready_service: BatchEndpointService, local_backend: Backend, big_input: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", WINDOW)
    whole = shards_of(local_backend, plan_job(local_backend, start(ready_service, big_input).id))
    job = start(ready_service, big_input)
    files = JobFiles(local_backend.blobs, job.scratch_uri)
    for _ in range(3):
        plan_step(local_backend, job.id)
    before = local_backend.blobs.get_bytes(files.plan_cursor)
    plan_step(local_backend, job.id)
    # The step wrote its shards but died before its cursor: the retry starts from the cursor before it.
    local_backend.blobs.put_bytes(files.plan_cursor, before)

    plan = plan_job(local_backend, job.id)
    again = plan_job(local_backend, job.id)

    def without_job(shards: list[Shard]) -> list[tuple[int, list[MiniBatch]]]:
        return [(shard.index, shard.mini_batches) for shard in shards]

    assert without_job(shards_of(local_backend, plan)) == without_job(whole)
    assert again == plan  # planned: the plan is kept


def test_a_tabular_input_larger_than_a_window_is_refused_saying_why_and_left_unplanned(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    code_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", 2)
    # The scoring script asks for rows; by default it would get the tables' paths, planned in windows.
    ready_service.update_deployment(deployment_declaration(code_dir, settings={"input_format": "tables"}))
    tables = write_tree(tmp_path / "tables", {f"t{n}.csv": "a\n1\n" for n in range(3)})
    job = invoke(ready_service, tables)

    with pytest.raises(ValidationError) as caught:
        plan_step(local_backend, job.id)

    assert caught.value.field == "input" and "2 tables at most" in str(caught.value)
    assert ready_service.get_job(job.id).counts.shards == 0
    assert not local_backend.blobs.exists(JobFiles(local_backend.blobs, job.scratch_uri).shard_index)


@pytest.fixture(name="windowed")
def windowed_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", WINDOW)


@pytest.mark.usefixtures("windowed")
def test_excluded_files_are_left_out_of_every_window_and_the_counts(
    ready_service: BatchEndpointService, local_backend: Backend, big_input: Path, names: list[str]
) -> None:
    job = start(ready_service, big_input, instance_count=1, exclude=["d1/*", "*-0000?.png"])

    plan = plan_job(local_backend, job.id)

    first_ten = tuple(f"-0000{digit}.png" for digit in range(10))
    kept = sorted(n for n in names if not n.startswith("d1/") and not n.endswith(first_ten))
    assert mini_batches(shards_of(local_backend, plan)) == list(planning.cut_mini_batches(kept, MINI_BATCH_SIZE))
    assert ready_service.get_job(job.id).counts.files == len(kept)


@pytest.mark.parametrize("window", [WINDOW, FILES])
def test_an_input_whose_every_file_is_excluded_is_refused_saying_so(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    big_input: Path,
    monkeypatch: pytest.MonkeyPatch,
    window: int,
) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", window)
    job = invoke(ready_service, big_input, exclude=["d?/*"])

    with pytest.raises(ValidationError, match="matches an exclude pattern: nothing is left to score") as refused:
        plan_job(local_backend, job.id)

    assert refused.value.field == "input"
    assert ready_service.get_job(job.id).counts.shards == 0
