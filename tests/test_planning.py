"""Planning: listing a job's input, cutting it into mini-batches and grouping those into shards."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import MiniBatch, Shard
from batch_endpoints.planning import (
    MAX_MINI_BATCHES_PER_SHARD,
    SHARDS_PER_INSTANCE,
    InputListing,
    cut_mini_batches,
    list_input,
    mini_batches_per_shard,
    plan_shards,
)
from batch_endpoints.specs import JobInput
from tests.core_fixtures import write_tree


@pytest.fixture
def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(str(tmp_path / "storage"))


def listing_of(count: int) -> InputListing:
    return InputListing("/data/in", [f"f{i:06d}.png" for i in range(count)])


# ------------------------------------------------------------------------------------------------ listing
def test_folder_listing_is_recursive_in_lexicographic_path_order(blobs: FolderBlobStore, tmp_path: Path) -> None:
    names = ["b.txt", "a/z.txt", "a/b/c.txt", "a-b.txt", "A.txt", "9.txt", "10.txt", "a/b/d/e.txt"]
    root = write_tree(tmp_path / "in", {name: name for name in names})

    listing = list_input(blobs, JobInput(uri=str(root)))

    assert listing.root == str(root)
    # Byte order of the whole path, as S3 lists keys: '-' (0x2d) sorts before '/' (0x2f), digits before letters.
    assert listing.files == ["10.txt", "9.txt", "A.txt", "a-b.txt", "a/b/c.txt", "a/b/d/e.txt", "a/z.txt", "b.txt"]


def test_listed_files_resolve_against_the_root(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {"x/1.csv": "1", "x/y/2.csv": "22"})

    listing = list_input(blobs, JobInput(uri=str(root)))

    assert [Path(blobs.join(listing.root, name)).read_text() for name in listing.files] == ["1", "22"]


def test_single_file_input_is_listed_as_its_name_under_its_parent_folder(
    blobs: FolderBlobStore, tmp_path: Path
) -> None:
    root = write_tree(tmp_path / "in", {"table.csv": "a,b\n1,2\n", "other.csv": "x\n"})

    listing = list_input(blobs, JobInput(uri=str(root / "table.csv"), type="uri_file"))

    assert listing.root == str(root)
    assert listing.files == ["table.csv"]


def test_single_file_input_plans_one_shard_with_one_mini_batch(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {"table.csv": "a\n1\n"})
    listing = list_input(blobs, JobInput(uri=str(root / "table.csv"), type="uri_file"))

    shards = plan_shards("job-1", listing, mini_batch_size=10, instance_count=4)

    assert shards == [Shard("job-1", 0, str(root), [MiniBatch(0, ["table.csv"])])]


@pytest.mark.parametrize("layout", [{}, {"sub/deeper": None}])
def test_empty_input_folder_is_refused_naming_input(
    blobs: FolderBlobStore, tmp_path: Path, layout: dict[str, None]
) -> None:
    root = tmp_path / "in"
    root.mkdir()
    for relative in layout:
        (root / relative).mkdir(parents=True)  # folders, but no file anywhere

    with pytest.raises(ValidationError) as caught:
        list_input(blobs, JobInput(uri=str(root)))

    assert caught.value.field == "input"
    assert "no files" in caught.value.message


def test_missing_input_is_refused_naming_input(blobs: FolderBlobStore, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        list_input(blobs, JobInput(uri=str(tmp_path / "nowhere")))

    assert caught.value.field == "input"
    assert "does not exist" in caught.value.message


def test_folder_given_as_uri_file_is_refused(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {"a.txt": "a"})

    with pytest.raises(ValidationError) as caught:
        list_input(blobs, JobInput(uri=str(root), type="uri_file"))

    assert caught.value.field == "input"
    assert "is a folder" in caught.value.message


def test_file_given_as_uri_folder_is_refused(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {"a.txt": "a"})

    with pytest.raises(ValidationError) as caught:
        list_input(blobs, JobInput(uri=str(root / "a.txt"), type="uri_folder"))

    assert caught.value.field == "input"
    assert "is a file" in caught.value.message


# ------------------------------------------------------------------------------------------------ mini-batches
@pytest.mark.parametrize(
    ("file_count", "size", "expected_sizes"),
    [
        (1, 10, [1]),
        (10, 10, [10]),
        (11, 10, [10, 1]),
        (7, 3, [3, 3, 1]),
        (9, 3, [3, 3, 3]),
        (5, 1, [1, 1, 1, 1, 1]),
        (3, 1_000_000, [3]),
    ],
)
def test_mini_batches_are_full_except_the_last(file_count: int, size: int, expected_sizes: list[int]) -> None:
    files = [f"f{i}" for i in range(file_count)]

    batches = list(cut_mini_batches(files, size))

    assert [len(b.files) for b in batches] == expected_sizes
    assert [b.index for b in batches] == list(range(len(expected_sizes)))
    assert [name for b in batches for name in b.files] == files


def test_no_files_cut_into_no_mini_batches() -> None:
    assert list(cut_mini_batches([], 5)) == []


# ------------------------------------------------------------------------------------------------ shards
@pytest.mark.parametrize(
    ("mini_batch_count", "instance_count"),
    [(1, 1), (3, 1), (4, 1), (5, 1), (17, 2), (8, 8), (100, 3), (1001, 10), (999, 1), (7, 50)],
)
def test_shards_cover_every_mini_batch_exactly_once_in_order(mini_batch_count: int, instance_count: int) -> None:
    listing = listing_of(mini_batch_count * 2)

    shards = plan_shards("job-1", listing, mini_batch_size=2, instance_count=instance_count)

    indices = [mb.index for shard in shards for mb in shard.mini_batches]
    assert indices == list(range(mini_batch_count))
    assert [name for shard in shards for mb in shard.mini_batches for name in mb.files] == listing.files
    assert [shard.index for shard in shards] == list(range(len(shards)))
    assert all(shard.job_id == "job-1" and shard.input_root == "/data/in" for shard in shards)
    per_shard = math.ceil(mini_batch_count / (SHARDS_PER_INSTANCE * instance_count))
    assert [len(s.mini_batches) for s in shards[:-1]] == [per_shard] * (len(shards) - 1)
    assert 1 <= len(shards[-1].mini_batches) <= per_shard
    # Every instance gets up to SHARDS_PER_INSTANCE shards, so one slow shard does not hold the job back.
    assert len(shards) <= SHARDS_PER_INSTANCE * instance_count


@pytest.mark.parametrize(("mini_batch_count", "instance_count"), [(1, 1), (17, 2), (1001, 10)])
def test_shard_plan_is_deterministic(mini_batch_count: int, instance_count: int) -> None:
    listing = listing_of(mini_batch_count)

    first = plan_shards("job-1", listing, mini_batch_size=1, instance_count=instance_count)
    second = plan_shards("job-1", InputListing(listing.root, list(listing.files)), 1, instance_count)

    assert first == second
    assert [s.to_json() for s in first] == [s.to_json() for s in second]


def test_many_instances_with_few_mini_batches_give_one_mini_batch_per_shard() -> None:
    shards = plan_shards("job-1", listing_of(3), mini_batch_size=1, instance_count=100)

    assert [[mb.index for mb in s.mini_batches] for s in shards] == [[0], [1], [2]]


def test_shards_never_exceed_the_mini_batch_cap() -> None:
    mini_batch_count = SHARDS_PER_INSTANCE * MAX_MINI_BATCHES_PER_SHARD + 500

    shards = plan_shards("job-1", listing_of(mini_batch_count), mini_batch_size=1, instance_count=1)

    assert [len(s.mini_batches) for s in shards] == [MAX_MINI_BATCHES_PER_SHARD] * SHARDS_PER_INSTANCE + [500]
    assert mini_batches_per_shard(10**7, 1) == MAX_MINI_BATCHES_PER_SHARD


def test_mini_batches_per_shard_is_at_least_one() -> None:
    assert mini_batches_per_shard(0, 1) == 1
    assert mini_batches_per_shard(1, 1000) == 1


def test_shard_json_round_trips() -> None:
    shard = Shard(
        "ep-0123456789ab",
        7,
        "/data/in put",
        [MiniBatch(70, ["a.png", "dir/ü b.png", 'quote".png']), MiniBatch(71, ["z.png"])],
    )

    raw = shard.to_json()
    again = Shard.from_json(raw)

    assert again == shard
    assert isinstance(raw, bytes)
    assert again.to_json() == raw


def test_planned_shards_round_trip_from_a_real_folder(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {f"d{i % 3}/{i:03d}.bin": bytes([i]) for i in range(25)})
    listing = list_input(blobs, JobInput(uri=str(root)))

    shards = plan_shards("job-9", listing, mini_batch_size=4, instance_count=2)

    assert [Shard.from_json(s.to_json()) for s in shards] == shards
    planned = [os.path.join(s.input_root, name) for s in shards for mb in s.mini_batches for name in mb.files]
    assert sorted(planned) == sorted(str(p) for p in root.rglob("*.bin"))


@pytest.mark.parametrize(
    ("patterns", "kept"),
    [
        ([], ["a.tmp", "keep.txt", "sub/b.tmp", "sub/keep.TMP"]),
        (["*.tmp"], ["keep.txt", "sub/keep.TMP"]),  # '*' crosses '/', and case counts
        (["sub/*"], ["a.tmp", "keep.txt"]),
        (["?.tmp", "sub/keep.*"], ["keep.txt", "sub/b.tmp"]),
        (["[ks]*"], ["a.tmp"]),
    ],
)
def test_exclude_patterns_match_relative_paths_as_fnmatch_does(
    blobs: FolderBlobStore, tmp_path: Path, patterns: list[str], kept: list[str]
) -> None:
    root = write_tree(tmp_path / "in", dict.fromkeys(["a.tmp", "keep.txt", "sub/b.tmp", "sub/keep.TMP"], "x"))

    assert list_input(blobs, JobInput(uri=str(root), exclude=patterns)).files == kept
