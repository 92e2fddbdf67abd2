"""Cut a job's input into mini-batches and group them into shards. Pure and deterministic.

A shard is what one compute job (an AWS Batch job, a local instance's unit of work) runs. Batch schedules in
tens of seconds and AWS advises jobs of minutes, so a shard holds many mini-batches; but every instance should
get several shards, so a slow shard (skewed files, a slow host) does not hold the whole job back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from batch_endpoints import tabular
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import MiniBatch, Shard
from batch_endpoints.ports import BlobStore
from batch_endpoints.specs import JobInput, RunSettings

SHARDS_PER_INSTANCE = 4
MAX_MINI_BATCHES_PER_SHARD = 1000


@dataclass(frozen=True)
class InputListing:
    root: str
    """Folder the listed paths are relative to (the parent folder for a single-file input)."""
    files: list[str]


def list_input(blobs: BlobStore, job_input: JobInput) -> InputListing:
    """Every input file, relative to the input root, in lexicographic order (the mini-batch order)."""
    if not blobs.exists(job_input.uri) and not blobs.is_folder(job_input.uri):
        raise ValidationError(f"{job_input.uri} does not exist", field="input")
    folder = blobs.is_folder(job_input.uri)
    if job_input.type == "uri_file" and folder:
        raise ValidationError(f"{job_input.uri} is a folder, but the input type is uri_file", field="input")
    if job_input.type == "uri_folder" and not folder:
        raise ValidationError(f"{job_input.uri} is a file, but the input type is uri_folder", field="input")
    if folder:
        root = job_input.uri
        files = [blobs.relative(root, info.uri) for info in blobs.list_files(root)]
    else:
        root, _, name = job_input.uri.rstrip("/").rpartition("/")
        files = [name]
    if not files:
        raise ValidationError(f"{job_input.uri} holds no files to score", field="input")
    return InputListing(root, files)


def cut_mini_batches(files: Iterable[str], mini_batch_size: int) -> Iterator[MiniBatch]:
    batch: list[str] = []
    index = 0
    for name in files:
        batch.append(name)
        if len(batch) == mini_batch_size:
            yield MiniBatch(index, batch)
            index, batch = index + 1, []
    if batch:
        yield MiniBatch(index, batch)


def mini_batches_per_shard(mini_batch_count: int, instance_count: int) -> int:
    wanted_shards = instance_count * SHARDS_PER_INSTANCE
    return max(1, min(MAX_MINI_BATCHES_PER_SHARD, math.ceil(mini_batch_count / wanted_shards)))


def plan_shards(job_id: str, listing: InputListing, mini_batch_size: int, instance_count: int) -> list[Shard]:
    mini_batches = list(cut_mini_batches(listing.files, mini_batch_size))
    return group_shards(job_id, listing.root, mini_batches, instance_count)


def group_shards(job_id: str, root: str, mini_batches: list[MiniBatch], instance_count: int) -> list[Shard]:
    per_shard = mini_batches_per_shard(len(mini_batches), instance_count)
    return [
        Shard(job_id, number, root, mini_batches[start : start + per_shard])
        for number, start in enumerate(range(0, len(mini_batches), per_shard))
    ]


@dataclass(frozen=True)
class JobPlan:
    shards: list[Shard]
    inputs: int
    """How many files, or rows for tabular inputs (`unit`)."""
    unit: str = "files"


def plan_input(blobs: BlobStore, job_id: str, listing: InputListing, settings: RunSettings) -> JobPlan:
    """Files in mini-batches of `mini_batch_size` files, or for tabular inputs rows in row-based mini-batches."""
    if tabular.is_tabular(listing.files, settings.input_format):
        mini_batches, rows = tabular.cut_tables(
            blobs, listing.root, listing.files, settings.mini_batch_size, settings.input_format
        )
        if not rows:
            raise ValidationError("the input's tables hold no rows to score", field="input")
        return JobPlan(group_shards(job_id, listing.root, mini_batches, settings.instance_count), rows, "rows")
    if not isinstance(settings.mini_batch_size, int):
        raise ValidationError(
            f"a size ({settings.mini_batch_size}) applies to tabular inputs (CSV, Parquet, JSON lines) only; "
            "give a number of files",
            field="settings.mini_batch_size",
        )
    return JobPlan(plan_shards(job_id, listing, settings.mini_batch_size, settings.instance_count), len(listing.files))
