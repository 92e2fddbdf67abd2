"""A local input on the local backend is read where it is, as it was at invoke (adapters/local/snapshots): no byte
is copied, the job's files are those listed at invoke, and a file changed since fails when read, naming it."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.adapters.local.snapshots import ChangedInputError
from batch_endpoints.planning import list_input
from batch_endpoints.specs import JobInput
from batch_endpoints.uploads import discard, upload_input
from tests.core_fixtures import EVERY_KIND_OF_NAME, write_tree
from tests.test_output_csv import HOSTILE

FILES = {"a.png": "a", "b.png": "bb", "sub/c.png": "ccc"}


@pytest.fixture
def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(str(tmp_path / "storage"))


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "images", FILES)


def read(blobs: FolderBlobStore, uri: str, name: str) -> bytes:
    with open(blobs.localize(blobs.join(uri, *name.split("/")), "unused"), "rb") as f:
        return f.read()


def test_a_local_folder_is_taken_in_without_copying_a_byte(
    blobs: FolderBlobStore, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_copy(*args: object, **kwargs: object) -> None:
        raise AssertionError("a byte was copied")

    monkeypatch.setattr(shutil, "copyfileobj", no_copy)
    monkeypatch.setattr(os, "link", no_copy)
    monkeypatch.setattr(FolderBlobStore, "write_stream", no_copy)

    uri = upload_input(blobs, str(images), field="input")

    assert uri.startswith(blobs.join(blobs.root, "uploads", "inputs"))
    assert list_input(blobs, JobInput(uri=uri)).files == sorted(FILES)
    assert {name: read(blobs, uri, name).decode() for name in FILES} == FILES
    assert os.stat(blobs.join(uri, "sub", "c.png")).st_ino == os.stat(images / "sub" / "c.png").st_ino


def test_the_job_lists_the_files_there_at_invoke_not_those_added_after(blobs: FolderBlobStore, images: Path) -> None:
    uri = upload_input(blobs, str(images), field="input")
    write_tree(images, {"late.png": "l", "sub/later.png": "l"})

    assert list_input(blobs, JobInput(uri=uri)).files == sorted(FILES)
    assert [blobs.relative(uri, f.uri) for f in blobs.list_files(blobs.join(uri, "sub"))] == ["sub/c.png"]
    assert [f.uri for f in blobs.list_files(uri, after=blobs.join(uri, "a.png"))] == [
        blobs.join(uri, "b.png"),
        blobs.join(uri, "sub", "c.png"),
    ]


def test_a_file_written_in_place_after_invoke_fails_naming_it_and_the_others_read_as_invoked(
    blobs: FolderBlobStore, images: Path
) -> None:
    uri = upload_input(blobs, str(images), field="input")
    with open(images / "b.png", "a") as f:
        f.write("more")

    with pytest.raises(
        ChangedInputError, match=r"b\.png was written after the job was invoked \(it was 2 bytes, now 6"
    ):
        read(blobs, uri, "b.png")
    assert read(blobs, uri, "a.png") == b"a" and read(blobs, uri, "sub/c.png") == b"ccc"


def test_a_write_in_place_that_keeps_the_size_is_seen_by_its_modification_time(
    blobs: FolderBlobStore, images: Path
) -> None:
    uri = upload_input(blobs, str(images), field="input")
    before = os.stat(images / "a.png")
    (images / "a.png").write_text("z")
    os.utime(
        images / "a.png", ns=(before.st_atime_ns, before.st_mtime_ns + 1)
    )  # a clock tick later, whatever the clock

    with pytest.raises(ChangedInputError, match=r"a\.png was written after the job was invoked"):
        read(blobs, uri, "a.png")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda file: os.replace(write_tree(file.parent.parent / "new", {"x": "xx"}) / "x", file), "was replaced"),
        (lambda file: os.unlink(file), "was removed"),
    ],
    ids=["replaced", "removed"],
)
def test_a_file_replaced_or_removed_after_invoke_fails_naming_it(
    blobs: FolderBlobStore, images: Path, change, says: str
) -> None:
    uri = upload_input(blobs, str(images), field="input")
    change(images / "sub" / "c.png")

    with pytest.raises(
        ChangedInputError, match=rf"sub/c\.png {says} .*invoke a new job to score the file as it is now"
    ):
        read(blobs, uri, "sub/c.png")
    assert read(blobs, uri, "b.png") == b"bb"


def test_a_single_file_is_checked_as_a_folders_files_are(blobs: FolderBlobStore, images: Path) -> None:
    uri = upload_input(blobs, str(images / "b.png"), field="input")
    assert uri.endswith("/b.png") and [f.size for f in blobs.list_files(uri)] == [2]
    assert blobs.get_bytes(uri) == b"bb"

    (images / "b.png").write_text("changed")

    with pytest.raises(ChangedInputError, match=r"b\.png was written after"):
        blobs.localize(uri, "unused")


def test_discard_removes_the_snapshot_and_never_the_users_files(blobs: FolderBlobStore, images: Path) -> None:
    folder = upload_input(blobs, str(images), field="input")
    file = upload_input(blobs, str(images / "a.png"), field="input")

    discard(blobs, folder)
    discard(blobs, file)

    assert not blobs.exists(folder) and not blobs.exists(file)
    assert list(blobs.list_files(blobs.root)) == []
    assert os.listdir(blobs.snapshots.folder) == ["uploads"] and not any(Path(blobs.snapshots.folder).rglob("*.json"))
    assert sorted(str(p.relative_to(images)) for p in images.rglob("*") if p.is_file()) == sorted(FILES)


def test_files_of_every_name_are_listed_read_and_checked(blobs: FolderBlobStore, tmp_path: Path) -> None:
    names = {**EVERY_KIND_OF_NAME, **{f"hostile/{name}.txt": name for name in HOSTILE}, "manifest.json": "{}"}
    folder = write_tree(tmp_path / "data", names)
    uri = upload_input(blobs, str(folder), field="input")

    assert list_input(blobs, JobInput(uri=uri)).files == sorted(names)
    assert {name: read(blobs, uri, name).decode() for name in names} == names

    (folder / "hostile" / "line\nfeed.txt").write_text("longer than it was")
    with pytest.raises(ChangedInputError, match=re.escape("line\nfeed.txt was written after")):
        read(blobs, uri, "hostile/line\nfeed.txt")


def test_read_only_files_and_folders_are_taken_in_and_read(blobs: FolderBlobStore, images: Path) -> None:
    for path in [*images.rglob("*.png"), images / "sub", images]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        uri = upload_input(blobs, str(images), field="input")
        assert {name: read(blobs, uri, name).decode() for name in FILES} == FILES
    finally:
        for path in [images, images / "sub"]:
            path.chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_file_this_user_cannot_read_is_refused_before_anything_is_written(
    blobs: FolderBlobStore, images: Path
) -> None:
    (images / "b.png").chmod(0)

    with pytest.raises(Exception, match=r"b\.png cannot be read \(permission denied\)"):
        upload_input(blobs, str(images), field="input")
    assert list(blobs.list_files(blobs.root)) == [] and not os.path.exists(blobs.snapshots.folder)
