"""Cut a job's input into mini-batches and group them into shards. Pure and deterministic.

A shard is what one compute job (an AWS Batch job, a local instance's unit of work) runs. Batch schedules in
tens of seconds and AWS advises jobs of minutes, so a shard holds many mini-batches; but every instance should
get several shards, so a slow shard (skewed files, a slow host) does not hold the whole job back.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Literal

from batch_endpoints import tabular
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import MiniBatch, Shard
from batch_endpoints.ports import BlobStore
from batch_endpoints.specs import JobInput, RunSettings

SHARDS_PER_INSTANCE = 4
MAX_MINI_BATCHES_PER_SHARD = 1000
PLAN_WINDOW_FILES = 1_000_000
"""Most files one plan step lists. The cloud's plan is a Lambda (15 minutes, 1,024 MB here): a window of a million
keys is 1,000 ListObjectsV2 pages (about 20 s at 20 ms a request) and holds what planning 10^6 names takes today
(about 170 MB), plus its shard files; a job of 10^8 files is planned in 100 steps, a few hundred state transitions."""


@dataclass(frozen=True)
class InputListing:
    root: str
    """Folder the listed paths are relative to (the parent folder for a single-file input)."""
    files: list[str]


@dataclass(frozen=True)
class ListedWindow:
    listing: InputListing
    last_uri: str
    """Where the next window resumes (the URI of this one's last file)."""
    exhausted: bool


def list_input(blobs: BlobStore, job_input: JobInput) -> InputListing:
    """Every input file, relative to the input root, in lexicographic order (the mini-batch order)."""
    return list_window(blobs, job_input, after="", limit=None).listing


def list_window(blobs: BlobStore, job_input: JobInput, *, after: str, limit: int | None) -> ListedWindow:
    """The input's files after the URI `after` ("" = from the start), `limit` of them at most (None = all), in
    lexicographic order. Listing one more tells whether the listing goes on, at no more than a page's cost."""
    if not after:
        _check_input(blobs, job_input)
    if not blobs.is_folder(job_input.uri):
        root, _, name = job_input.uri.rstrip("/").rpartition("/")
        return ListedWindow(InputListing(root, [name]), job_input.uri, exhausted=True)
    root = job_input.uri
    listed = list(islice(blobs.list_files(root, after=after), None if limit is None else limit + 1))
    exhausted = limit is None or len(listed) <= limit
    listed = listed[:limit]
    if not listed and not after:
        raise ValidationError(f"{job_input.uri} holds no files to score", field="input")
    files = not_excluded([blobs.relative(root, info.uri) for info in listed], job_input.exclude)
    if not files and not after and exhausted:
        raise _all_excluded(job_input.uri)
    return ListedWindow(InputListing(root, files), listed[-1].uri if listed else after, exhausted)


def not_excluded(files: list[str], patterns: Sequence[str]) -> list[str]:
    """The relative paths that match none of the input's `exclude` patterns (fnmatch's rules, case-sensitive)."""
    if not patterns:
        return files
    excluded = _exclusion(tuple(patterns))
    return [name for name in files if not excluded.match(name)]


@functools.lru_cache(maxsize=16)
def _exclusion(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns))


def _all_excluded(uri: str) -> ValidationError:
    return ValidationError(f"every file of {uri} matches an exclude pattern: nothing is left to score", field="input")


def _check_input(blobs: BlobStore, job_input: JobInput) -> None:
    if not blobs.exists(job_input.uri) and not blobs.is_folder(job_input.uri):
        raise ValidationError(f"{job_input.uri} does not exist", field="input")
    folder = blobs.is_folder(job_input.uri)
    if job_input.type == "uri_file" and folder:
        raise ValidationError(f"{job_input.uri} is a folder, but the input type is uri_file", field="input")
    if job_input.type == "uri_folder" and not folder:
        raise ValidationError(f"{job_input.uri} is a file, but the input type is uri_folder", field="input")


def cut_mini_batches(files: Iterable[str], mini_batch_size: int, first_index: int = 0) -> Iterator[MiniBatch]:
    batch: list[str] = []
    index = first_index
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
    unit: Literal["files", "rows"] = "files"


def plan_input(blobs: BlobStore, job_id: str, listing: InputListing, settings: RunSettings) -> JobPlan:
    """Files in mini-batches of `mini_batch_size` files, or for tabular inputs rows in row-based mini-batches."""
    input_format = tabular.job_input_format(settings)
    if tabular.is_tabular(listing.files, input_format):
        mini_batches, rows = tabular.cut_tables(
            blobs, listing.root, listing.files, settings.mini_batch_size, input_format
        )
        if not rows:
            raise ValidationError("the input's tables hold no rows to score", field="input")
        return JobPlan(group_shards(job_id, listing.root, mini_batches, settings.instance_count), rows, "rows")
    return JobPlan(
        plan_shards(job_id, listing, files_per_mini_batch(settings), settings.instance_count), len(listing.files)
    )


def files_per_mini_batch(settings: RunSettings) -> int:
    if not isinstance(settings.mini_batch_size, int):
        raise ValidationError(
            f"a size ({settings.mini_batch_size}) applies to tabular inputs (CSV, Parquet, JSON lines) only; "
            "give a number of files",
            field="settings.mini_batch_size",
        )
    return settings.mini_batch_size


@dataclass(frozen=True)
class PlanCursor:
    """Where a plan made in windows stands between steps. Its size is bounded: the names it holds are those of
    the shard not yet cut, fewer than one shard's mini-batches (at most 1,000) times `mini_batch_size`."""

    after: str = ""
    """URI of the last file listed: the next window's listing resumes after it."""
    files: int = 0
    """Files listed so far."""
    mini_batches: int = 0
    """Mini-batches in the shards written so far; the next one's number."""
    shards: int = 0
    """Shards written so far; the next one's number."""
    pending: list[str] = field(default_factory=list)
    """Listed files in no shard yet, from a mini-batch's first file on."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PlanCursor:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class PlannedWindow:
    shards: list[Shard]
    """The shards this window completed, numbered on from the cursor's."""
    cursor: PlanCursor


def cut_window(
    job_id: str, window: ListedWindow, cursor: PlanCursor, mini_batch_size: int, instance_count: int
) -> PlannedWindow:
    """Cut the window's files, after the cursor's pending ones, into mini-batches and whole shards, all of them
    if the listing is exhausted. Mini-batches are those one listing would give; a shard's size follows
    `mini_batches_per_shard` of the mini-batches seen so far, so shards grow as the listing proves the job big. A
    job listed in one window is planned as `plan_shards` plans it."""
    names = window.listing.files
    mini_batches = list(cut_mini_batches(cursor.pending + names, mini_batch_size, first_index=cursor.mini_batches))
    per_shard = mini_batches_per_shard(cursor.mini_batches + len(mini_batches), instance_count)
    if window.exhausted:
        ready = len(mini_batches)
    else:
        whole = len(mini_batches) - (1 if mini_batches and len(mini_batches[-1].files) < mini_batch_size else 0)
        ready = whole - whole % per_shard
    shards = [
        Shard(job_id, cursor.shards + number, window.listing.root, mini_batches[start : min(start + per_shard, ready)])
        for number, start in enumerate(range(0, ready, per_shard))
    ]
    if window.exhausted and not cursor.files + len(names):
        raise _all_excluded(window.listing.root)  # something was listed (the first window says so): all excluded
    following = PlanCursor(
        after=window.last_uri,
        files=cursor.files + len(names),
        mini_batches=cursor.mini_batches + ready,
        shards=cursor.shards + len(shards),
        pending=[name for batch in mini_batches[ready:] for name in batch.files],
    )
    return PlannedWindow(shards, following)
