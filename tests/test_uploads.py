"""Local inputs into a backend's storage (batch_endpoints/uploads.py), on a folder store and on S3 (moto)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.errors import ValidationError
from batch_endpoints.planning import list_input
from batch_endpoints.ports import BlobStore
from batch_endpoints.specs import JobInput
from batch_endpoints.uploads import BLOCK, discard, upload_input
from tests.aws_fixtures import aws_fixture  # noqa: F401 (a fixture)
from tests.core_fixtures import EVERY_KIND_OF_NAME, write_tree


@pytest.fixture(params=["folder", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "s3":
        request.getfixturevalue("aws")
        boto3.client("s3").create_bucket(Bucket="bep-storage")
        return S3BlobStore("bep-storage", "stack")
    return FolderBlobStore(str(tmp_path / "storage"))


def test_a_folder_goes_under_a_fresh_prefix_with_progress_to_the_last_byte(blobs: BlobStore, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "images", {"a.png": b"a" * (BLOCK + 5), "sub/b.png": b"bb"})
    seen: list[tuple[int, int]] = []

    first = upload_input(blobs, str(folder), field="input", progress=lambda done, total: seen.append((done, total)))
    second = upload_input(blobs, str(folder), field="input")

    assert first != second
    assert first.startswith(blobs.join(blobs.root, "uploads", "inputs")) and first.endswith("/images")
    assert [blobs.relative(first, f.uri) for f in blobs.list_files(first)] == ["a.png", "sub/b.png"]
    assert blobs.get_bytes(blobs.join(first, "sub", "b.png")) == b"bb"
    total = BLOCK + 7
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_every_file_of_a_folder_is_uploaded_whatever_its_name(blobs: BlobStore, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "data", EVERY_KIND_OF_NAME)

    uri = upload_input(blobs, str(folder), field="input")

    assert [blobs.relative(uri, f.uri) for f in blobs.list_files(uri)] == sorted(EVERY_KIND_OF_NAME)
    assert blobs.get_bytes(blobs.join(uri, ".git", "HEAD")) == b"git-like"


def test_a_file_keeps_its_name_and_discard_removes_the_upload(blobs: BlobStore, tmp_path: Path) -> None:
    file = write_tree(tmp_path / "in", {"one.csv": "x,y\n"}) / "one.csv"

    uri = upload_input(blobs, str(file), field="input")

    assert uri.endswith("/one.csv") and blobs.get_bytes(uri) == b"x,y\n"
    discard(blobs, uri)
    assert not blobs.exists(uri)
    assert list(blobs.list_files(blobs.join(blobs.root, "uploads"))) == []


@pytest.mark.parametrize(("name", "says"), [("missing", "does not exist"), ("empty", "holds no files")])
def test_nothing_to_upload_is_refused_before_anything_is_written(blobs: BlobStore, tmp_path: Path, name, says) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)

    with pytest.raises(ValidationError, match=says) as refused:
        upload_input(blobs, str(tmp_path / name), field="input")

    assert refused.value.field == "input"
    assert list(blobs.list_files(blobs.root)) == []


def test_a_folder_that_cannot_be_read_whole_is_refused_before_anything_is_written(
    blobs: BlobStore, tmp_path: Path
) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a", "z.txt": "z"})
    (folder / "m.txt").symlink_to(tmp_path / "deleted.txt")

    with pytest.raises(ValidationError, match=r"m\.txt is a link to .*, which does not exist") as refused:
        upload_input(blobs, str(folder), field="input")

    assert refused.value.field == "input"
    assert list(blobs.list_files(blobs.root)) == []


def test_every_uploaded_file_is_planned_and_only_explicit_excludes_leave_files_out(
    blobs: BlobStore, tmp_path: Path
) -> None:
    uri = upload_input(blobs, str(write_tree(tmp_path / "data", EVERY_KIND_OF_NAME)), field="input")

    assert list_input(blobs, JobInput(uri=uri)).files == sorted(EVERY_KIND_OF_NAME)
    assert list_input(blobs, JobInput(uri=uri, exclude=[".*", "*.pyc"])).files == [
        "one.txt",
        "sub/two.txt",
        "three.txt",
    ]
