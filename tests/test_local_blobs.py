"""The folder blob store: all-or-nothing writes, never overwriting with if_absent, listing and folder copies."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_endpoints.adapters.local import blobs as local_blobs
from batch_endpoints.adapters.local.blobs import STALE_STAGED_SECONDS, FolderBlobStore, to_path
from batch_endpoints.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from batch_endpoints.ports import BlobInfo
from tests.core_fixtures import write_tree


@pytest.fixture
def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(str(tmp_path / "storage"))


def leftovers(blobs: FolderBlobStore, folder: Path) -> list[str]:
    """Files being written, or left by a write: in the store's staging folder, or beside the target."""
    return sorted([p.name for p in Path(blobs.staging).iterdir()] + [p.name for p in folder.rglob(".tmp-*")])


# ------------------------------------------------------------------------------------------------ bytes
def test_put_then_get_round_trips_and_creates_folders(blobs: FolderBlobStore) -> None:
    uri = blobs.join(blobs.root, "jobs", "j1", "summary.json")

    blobs.put_bytes(uri, b'{"ok": true}')

    assert blobs.get_bytes(uri) == b'{"ok": true}'
    assert Path(uri).read_bytes() == b'{"ok": true}'
    assert blobs.exists(uri) and not blobs.is_folder(uri)
    assert blobs.is_folder(blobs.join(blobs.root, "jobs", "j1"))


def test_put_without_if_absent_replaces_the_file(blobs: FolderBlobStore) -> None:
    uri = blobs.join(blobs.root, "x.bin")
    blobs.put_bytes(uri, b"first, longer content")

    blobs.put_bytes(uri, b"second")

    assert blobs.get_bytes(uri) == b"second"


def test_get_of_a_missing_file_is_not_found(blobs: FolderBlobStore) -> None:
    with pytest.raises(NotFoundError):
        blobs.get_bytes(blobs.join(blobs.root, "nothing.bin"))


def test_write_stream_joins_the_chunks_and_returns_the_size(blobs: FolderBlobStore) -> None:
    uri = blobs.join(blobs.root, "out", "predictions.csv")

    size = blobs.write_stream(uri, iter([b"file,score\n", b"a,1\n", b"", b"b,2\n"]))

    assert size == 19
    assert blobs.get_bytes(uri) == b"file,score\na,1\nb,2\n"


def test_write_stream_if_absent_refuses_an_existing_file_and_leaves_it_untouched(
    blobs: FolderBlobStore, tmp_path: Path
) -> None:
    target = tmp_path / "results" / "predictions.csv"
    target.parent.mkdir()
    target.write_bytes(b"someone else's results\n")

    with pytest.raises(AlreadyExistsError) as caught:
        blobs.write_stream(str(target), [b"ours\n"], if_absent=True)

    assert caught.value.field == "output"
    assert isinstance(caught.value, ConflictError)
    assert target.read_bytes() == b"someone else's results\n"
    assert leftovers(blobs, target.parent) == []


def test_put_bytes_if_absent_writes_a_new_file_once(blobs: FolderBlobStore) -> None:
    uri = blobs.join(blobs.root, "once.txt")

    blobs.put_bytes(uri, b"first", if_absent=True)
    with pytest.raises(AlreadyExistsError):
        blobs.put_bytes(uri, b"second", if_absent=True)

    assert blobs.get_bytes(uri) == b"first"


def test_two_writers_if_absent_at_once_leave_one_whole_file(blobs: FolderBlobStore) -> None:
    uri = blobs.join(blobs.root, "out", "predictions.csv")
    both_writing = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def chunks(name: str) -> Iterator[bytes]:
        yield f"{name}-part-1\n".encode()
        both_writing.wait(timeout=10)  # both are past the up-front check: only the publish step can decide
        yield f"{name}-part-2\n".encode()

    def write(name: str) -> None:
        try:
            outcomes[name] = blobs.write_stream(uri, chunks(name), if_absent=True)
        except AlreadyExistsError as error:
            outcomes[name] = error

    threads = [threading.Thread(target=write, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [name for name, outcome in outcomes.items() if isinstance(outcome, int)]
    assert len(winners) == 1
    assert sum(isinstance(o, AlreadyExistsError) for o in outcomes.values()) == 1
    assert blobs.get_bytes(uri) == f"{winners[0]}-part-1\n{winners[0]}-part-2\n".encode()
    assert leftovers(blobs, Path(blobs.root)) == []


@pytest.mark.parametrize("if_absent", [False, True])
def test_writes_leave_no_temporary_files(blobs: FolderBlobStore, if_absent: bool) -> None:
    folder = blobs.join(blobs.root, "parts")
    for number in range(3):
        blobs.write_stream(blobs.join(folder, f"mb-{number}.csv"), [b"a\n", b"1\n"], if_absent=if_absent)

    assert sorted(p.name for p in Path(folder).iterdir()) == ["mb-0.csv", "mb-1.csv", "mb-2.csv"]
    assert leftovers(blobs, Path(blobs.root)) == []


def test_a_failed_write_leaves_no_temporary_file_behind(blobs: FolderBlobStore) -> None:
    """What a failed write publishes is the store contract's; this is about the disk underneath."""
    uri = blobs.join(blobs.root, "out", "data.csv")
    blobs.put_bytes(uri, b"old\n")

    def broken() -> Iterator[bytes]:
        yield b"half of the new"
        raise OSError("disk went away")

    for target, if_absent in ((uri, False), (blobs.join(blobs.root, "out", "new.csv"), True)):
        with pytest.raises(OSError, match="disk went away"):
            blobs.write_stream(target, broken(), if_absent=if_absent)
    assert sorted(p.name for p in Path(uri).parent.iterdir()) == ["data.csv"]
    assert leftovers(blobs, Path(blobs.root)) == []


def test_a_file_being_written_is_in_no_listing_of_any_folder(blobs: FolderBlobStore) -> None:
    target = blobs.join(blobs.root, "jobs", "j1", "parts", "mb-0.csv")
    seen: dict[str, list[str]] = {}

    def chunks() -> Iterator[bytes]:
        yield b"half"
        for folder in (blobs.root, blobs.join(blobs.root, "jobs"), blobs.join(blobs.root, "jobs", "j1", "parts")):
            seen[folder] = [info.uri for info in blobs.list_files(folder)]
        yield b" and the rest"

    blobs.write_stream(target, chunks())

    assert len(seen) == 3 and all(listed == [] for listed in seen.values())
    assert [info.uri for info in blobs.list_files(blobs.root)] == [target]


def test_a_store_removes_what_a_crashed_writer_left_in_staging(tmp_path: Path) -> None:
    first = FolderBlobStore(str(tmp_path / "storage"))
    crashed, live = Path(first.staging) / "4242-1-0", Path(first.staging) / "4243-1-0"
    crashed.write_bytes(b"half")
    live.write_bytes(b"being written")
    (Path(first.staging) / "copy-in-progress").mkdir()
    long_ago = time.time() - STALE_STAGED_SECONDS - 60
    for stale in (crashed, Path(first.staging) / "copy-in-progress"):
        os.utime(stale, (long_ago, long_ago))

    FolderBlobStore(str(tmp_path / "storage"))

    assert sorted(p.name for p in Path(first.staging).iterdir()) == ["4243-1-0"]


def other_file_system(tmp_path: Path) -> Path:
    """A folder on another file system than tmp_path (a tmpfs), where this machine has one."""
    shared_memory = Path("/dev/shm")
    if not shared_memory.is_dir() or shared_memory.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to write to")
    folder = Path(tempfile.mkdtemp(dir=shared_memory))
    return folder


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    folder = other_file_system(tmp_path)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("if_absent", [False, True])
def test_a_write_to_another_file_system_is_whole_and_leaves_nothing(
    blobs: FolderBlobStore, elsewhere: Path, if_absent: bool
) -> None:
    target = elsewhere / "results" / "predictions.csv"
    seen: list[str] = []

    def chunks() -> Iterator[bytes]:
        yield b"file,score\n"
        seen.extend(p.name for p in elsewhere.rglob("*"))
        yield b"a,1\n"

    size = blobs.write_stream(str(target), chunks(), if_absent=if_absent)

    assert size == 15 and target.read_bytes() == b"file,score\na,1\n"
    assert seen == []  # nothing but the folder the file goes to, made once the file is whole
    assert leftovers(blobs, elsewhere) == []


def test_an_output_on_another_file_system_is_never_overwritten(blobs: FolderBlobStore, elsewhere: Path) -> None:
    target = elsewhere / "predictions.csv"
    target.write_bytes(b"theirs")
    real_exists = os.path.exists

    def racing_exists(path: str) -> bool:  # the file appears after the up-front check: the link decides
        return False if path == str(target) else real_exists(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os.path, "exists", racing_exists)
        with pytest.raises(AlreadyExistsError):
            blobs.write_stream(str(target), [b"ours"], if_absent=True)

    assert target.read_bytes() == b"theirs"
    assert leftovers(blobs, elsewhere) == []


def test_without_unnamed_files_a_write_elsewhere_goes_through_a_name_aside(
    blobs: FolderBlobStore, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_blobs, "_unnamed_file", lambda folder: None)
    target = elsewhere / "predictions.csv"

    blobs.write_stream(str(target), [b"a\n"], if_absent=True)

    assert target.read_bytes() == b"a\n"
    assert leftovers(blobs, elsewhere) == []


# ------------------------------------------------------------------------------------------------ listing
def test_list_files_is_recursive_sorted_and_sized(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {"b.txt": "bb", "a/c.txt": "c", "a/b/d.txt": "dddd", "a-z.txt": ""})

    listed = list(blobs.list_files(str(root)))

    assert listed == [
        BlobInfo(str(root / "a-z.txt"), 0),
        BlobInfo(str(root / "a" / "b" / "d.txt"), 4),
        BlobInfo(str(root / "a" / "c.txt"), 1),
        BlobInfo(str(root / "b.txt"), 2),
    ]


def test_list_files_lists_every_file_whatever_its_name(blobs: FolderBlobStore, tmp_path: Path) -> None:
    names = [".hidden", ".staging/x", ".tmp-abc123", "__pycache__/m.cpython-311.pyc", "a.pyc", "sub/.tmp-x", "z.txt"]
    root = write_tree(tmp_path / "in", dict.fromkeys(names, "data"))

    listed = [blobs.relative(str(root), info.uri) for info in blobs.list_files(str(root))]

    assert listed == names


def test_list_files_of_a_file_is_that_file(blobs: FolderBlobStore, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "in", {"one.csv": "x,y\n"})

    assert list(blobs.list_files(str(root / "one.csv"))) == [BlobInfo(str(root / "one.csv"), 4)]


def test_list_files_of_an_empty_folder_is_empty(blobs: FolderBlobStore, tmp_path: Path) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)

    assert list(blobs.list_files(str(tmp_path / "empty"))) == []


# ------------------------------------------------------------------------------------------------ addressing
def test_join_and_relative_are_inverse(blobs: FolderBlobStore) -> None:
    base = blobs.join(blobs.root, "jobs", "j1")

    uri = blobs.join(base, "parts", "", "mb-00000001.csv")

    assert uri == str(Path(blobs.root) / "jobs" / "j1" / "parts" / "mb-00000001.csv")
    assert blobs.relative(base, uri) == "parts/mb-00000001.csv"
    assert blobs.relative(base, base) == ""


def test_file_scheme_is_the_same_path(blobs: FolderBlobStore, tmp_path: Path) -> None:
    blobs.put_bytes(f"file://{tmp_path}/x.txt", b"x")

    assert (tmp_path / "x.txt").read_bytes() == b"x"
    assert blobs.relative(f"file://{tmp_path}", str(tmp_path / "x.txt")) == "x.txt"


@pytest.mark.parametrize("uri", ["s3://bucket/key.csv", "https://example.com/a.csv", "azureml://datastores/x"])
def test_non_local_uris_are_refused(blobs: FolderBlobStore, uri: str) -> None:
    with pytest.raises(ValidationError, match="not a local path"):
        to_path(uri)
    with pytest.raises(ValidationError):
        blobs.exists(uri)
    with pytest.raises(ValidationError):
        blobs.put_bytes(uri, b"x")
    with pytest.raises(ValidationError):
        list(blobs.list_files(uri))
    with pytest.raises(ValidationError):
        FolderBlobStore(uri)


# ------------------------------------------------------------------------------------------------ folders
def test_upload_folder_replaces_what_was_there(blobs: FolderBlobStore, tmp_path: Path) -> None:
    target = blobs.join(blobs.root, "models", "m", "1")
    blobs.upload_folder(str(write_tree(tmp_path / "v1", {"old.bin": "old"})), target)

    blobs.upload_folder(str(write_tree(tmp_path / "v2", {"new.bin": "new"})), target)

    assert [blobs.relative(target, i.uri) for i in blobs.list_files(target)] == ["new.bin"]


def test_local_folders_and_files_are_used_in_place(blobs: FolderBlobStore, tmp_path: Path) -> None:
    stored = blobs.join(blobs.root, "models", "m", "1")
    blobs.put_bytes(blobs.join(stored, "w.bin"), b"w")

    assert blobs.download_folder(stored, str(tmp_path / "scratch")) == stored
    assert blobs.localize(blobs.join(stored, "w.bin"), str(tmp_path / "scratch")) == blobs.join(stored, "w.bin")


def test_delete_prefix_removes_a_folder_or_a_file(blobs: FolderBlobStore) -> None:
    folder = blobs.join(blobs.root, "jobs", "j1")
    blobs.put_bytes(blobs.join(folder, "parts", "mb-0.csv"), b"a\n")
    single = blobs.join(blobs.root, "jobs", "keep.txt")
    blobs.put_bytes(single, b"k")

    blobs.delete_prefix(folder)
    blobs.delete_prefix(blobs.join(blobs.root, "jobs", "never-existed"))

    assert not blobs.exists(folder)
    assert blobs.exists(single)
    blobs.delete_prefix(single)
    assert not blobs.exists(single)
