"""Hostile scripts against AZUREML_BI_OUTPUT_PATH: what a worker's run() leaves in its folder is uploaded only as
regular files and folders under printable UTF-8 names that fit the output folder's storage. A link (to a file
outside, to /etc/passwd, to a folder, dangling, a loop), a FIFO, a socket, a name with CR, LF or bytes that are
not UTF-8, a path too long for S3 and a file still open for writing fail the attempt naming it, and leave the
folder empty; nothing outside the worker's folder is read, even when the staged folder is changed after it was
checked."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_container.custom_outputs import CustomOutputs as Outputs
from batch_container.custom_outputs import RefusedOutput, commit, path_budget
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from tests.conftest import Bep
from tests.core_fixtures import write_tree
from tests.test_custom_outputs import deploy, files_under, run_job

SECRET = "root:x:0:0:not for the output folder\n"


@pytest.fixture
def outputs(tmp_path: Path) -> Iterator[Outputs]:
    saved = os.environ.get("AZUREML_BI_OUTPUT_PATH")
    opened = Outputs.open(str(tmp_path / "staging"), ["predictions.csv"], path_budget(str(tmp_path / "out")))
    yield opened
    if saved is None:
        os.environ.pop("AZUREML_BI_OUTPUT_PATH", None)
    else:
        os.environ["AZUREML_BI_OUTPUT_PATH"] = saved


def uploaded(tmp_path: Path, outputs: Outputs, index: int = 0) -> dict[str, bytes]:
    """Stage and commit an attempt into tmp_path/out; the files there, by relative path."""
    staged = outputs.stage(index)
    out = tmp_path / "out"
    if staged is not None:
        commit(FolderBlobStore(str(tmp_path / "blobs")), staged, str(out))
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def refused(outputs: Outputs, match: str) -> None:
    with pytest.raises(RefusedOutput, match=match):
        outputs.stage(0)
    assert os.listdir(outputs.folder) == [], "a refused attempt's files are dropped"
    assert not [name for name in os.listdir(outputs.staging) if name.startswith("mb-")], "and nothing is staged"


@pytest.mark.parametrize(
    "link",
    [
        "outside-file",
        "/etc/passwd",
        "outside-folder",
        "dangling",
        "loop",
        "nested",
    ],
)
def test_a_link_fails_the_attempt_naming_it_and_what_it_leads_to_is_never_read(
    tmp_path: Path, outputs: Outputs, link: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    folder = Path(outputs.folder)
    (folder / "real.csv").write_text("a,b\n")
    target = {
        "outside-file": str(secret),
        "/etc/passwd": "/etc/passwd",
        "outside-folder": str(tmp_path),
        "dangling": str(tmp_path / "nothing-here"),
        "loop": str(folder / "loop.txt"),
    }.get(link)
    if link == "nested":
        (folder / "sub" / "deeper").mkdir(parents=True)
        (folder / "sub" / "deeper" / "loop.txt").symlink_to(secret)
        name = "sub/deeper/loop.txt"
    else:
        assert target is not None
        (folder / "loop.txt").symlink_to(target)
        name = "loop.txt"
    refused(outputs, f"symbolic link '{name}' in AZUREML_BI_OUTPUT_PATH; links are not followed or uploaded")
    assert secret.read_text() == SECRET
    assert not (tmp_path / "out").exists()


def test_a_fifo_fails_the_attempt_at_once_instead_of_waiting_for_a_writer(outputs: Outputs) -> None:
    os.mkfifo(os.path.join(outputs.folder, "pipe"))
    refused(outputs, "left a FIFO 'pipe' in AZUREML_BI_OUTPUT_PATH; only regular files and folders are uploaded")


def test_a_socket_fails_the_attempt(outputs: Outputs) -> None:
    # AF_UNIX paths are limited to 108 bytes: bind from inside the folder by a relative name.
    here = os.getcwd()
    os.chdir(outputs.folder)
    try:
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind("sock")
            refused(outputs, "left a socket 'sock'")
    finally:
        os.chdir(here)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        (b"line\nbreak.csv", "a name with a control character"),
        (b"carriage\rreturn.csv", "a name with a control character"),
        (b"tab\there.csv", "a name with a control character"),
        (b"latin-\xe9.csv", "a name that is not UTF-8"),
    ],
)
def test_a_name_storage_cannot_carry_fails_the_attempt_naming_it(outputs: Outputs, name: bytes, match: str) -> None:
    with open(os.path.join(os.fsencode(outputs.folder), name), "wb") as file:
        file.write(b"x")
    refused(outputs, match)


def test_a_name_of_255_bytes_and_a_folder_nested_500_deep_upload_under_their_paths(
    tmp_path: Path, outputs: Outputs
) -> None:
    longest = "é" * 127 + "x"  # 255 bytes of UTF-8, Linux's limit for one name
    deep = "/".join(["d"] * 500)
    Path(outputs.folder, longest).write_text("long")
    Path(outputs.folder, deep).mkdir(parents=True)
    Path(outputs.folder, deep, "f.txt").write_text("deep")
    assert uploaded(tmp_path, outputs) == {longest: b"long", f"{deep}/f.txt": b"deep"}


def test_a_path_longer_than_s3_takes_under_the_output_folder_fails_the_attempt(tmp_path: Path) -> None:
    budget = path_budget("s3://bucket/outputs/endpoint/" + "j" * 800)
    assert budget == 1024 - len("outputs/endpoint/" + "j" * 800) - 1
    outputs = Outputs.open(str(tmp_path / "staging"), [], budget)
    Path(outputs.folder, "a" * 200).mkdir()
    Path(outputs.folder, "a" * 200, "b" * 30).write_text("x")
    refused(outputs, f"a path of 231 bytes; under the job's output folder a path may take {budget}")


def test_path_budgets_follow_s3s_key_limit_and_linuxs_path_limit() -> None:
    assert path_budget("s3://bucket") == 1024
    assert path_budget("s3://bucket/out/") == 1024 - len("out/")
    assert path_budget("/data/out") == 4096 - len("/data/out/")


def test_an_empty_folder_uploads_nothing_and_a_reserved_name_is_still_refused(tmp_path: Path, outputs: Outputs) -> None:
    Path(outputs.folder, "empty", "inside").mkdir(parents=True)
    assert uploaded(tmp_path, outputs) == {}
    Path(outputs.folder, "predictions.csv").write_text("mine")
    refused(outputs, "the name of the job's output file")


def test_a_file_a_thread_still_writes_fails_the_attempt_and_a_closed_one_uploads(
    tmp_path: Path, outputs: Outputs
) -> None:
    started, finish = threading.Event(), threading.Event()

    def write_in_background() -> None:
        with open(os.path.join(outputs.folder, "growing.log"), "w") as log:
            log.write("first line\n")
            log.flush()
            started.set()
            finish.wait()

    thread = threading.Thread(target=write_in_background)
    thread.start()
    try:
        started.wait()
        refused(outputs, "returned while 'growing.log' in AZUREML_BI_OUTPUT_PATH was still open for writing")
    finally:
        finish.set()
        thread.join()
    with open(os.path.join(outputs.folder, "read-only.txt"), "w") as file:
        file.write("done\n")
    with open(os.path.join(outputs.folder, "read-only.txt")) as reading:
        assert uploaded(tmp_path, outputs) == {"read-only.txt": b"done\n"}
        assert reading.read() == "done\n"


def test_many_small_files_upload_one_write_each(tmp_path: Path, outputs: Outputs) -> None:
    for n in range(2000):
        Path(outputs.folder, f"{n % 20:02d}").mkdir(exist_ok=True)
        Path(outputs.folder, f"{n % 20:02d}", f"{n}.txt").write_text(str(n))
    staged = outputs.stage(0)
    assert staged is not None
    assert commit(FolderBlobStore(str(tmp_path / "blobs")), staged, str(tmp_path / "out")) == 2000
    assert len(list((tmp_path / "out").rglob("*.txt"))) == 2000


@pytest.mark.parametrize("swap", ["link to a secret", "link to a folder", "fifo"])
def test_a_staged_file_swapped_after_its_check_is_refused_unread(tmp_path: Path, outputs: Outputs, swap: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    Path(outputs.folder, "sub").mkdir()
    Path(outputs.folder, "sub", "a.txt").write_text("a")
    staged = outputs.stage(0)
    assert staged is not None
    victim = Path(staged, "sub", "a.txt")
    victim.unlink()
    if swap == "fifo":
        os.mkfifo(victim)
    else:
        victim.symlink_to(secret if swap == "link to a secret" else tmp_path)
    with pytest.raises(RefusedOutput, match=r"'a\.txt' in AZUREML_BI_OUTPUT_PATH changed after its attempt"):
        commit(FolderBlobStore(str(tmp_path / "blobs")), staged, str(tmp_path / "out"))
    assert SECRET.encode() not in [path.read_bytes() for path in tmp_path.glob("out/**/*") if path.is_file()]


def test_a_staged_folder_swapped_for_a_link_is_not_entered(tmp_path: Path, outputs: Outputs) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    Path(outputs.folder, "sub").mkdir()
    Path(outputs.folder, "sub", "a.txt").write_text("a")
    staged = outputs.stage(0)
    assert staged is not None
    os.rename(Path(staged, "sub"), tmp_path / "moved")
    Path(staged, "sub").symlink_to(outside)
    with pytest.raises(RefusedOutput, match="'sub' in AZUREML_BI_OUTPUT_PATH changed after its attempt was checked"):
        commit(FolderBlobStore(str(tmp_path / "blobs")), staged, str(tmp_path / "out"))
    assert not list(tmp_path.glob("out/**/secret.txt"))


# Any name Linux allows (any character but "/" and NUL, not "." or ".."), at any depth.
NAMES = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12).filter(
    lambda name: name not in {".", ".."} and len(name.encode()) <= 255
)
TREES = st.dictionaries(st.lists(NAMES, min_size=1, max_size=3).map(tuple), st.binary(max_size=64), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=TREES)
def test_any_tree_either_uploads_exactly_as_written_or_is_refused_naming_a_control_character(
    tmp_path_factory: pytest.TempPathFactory, tree: dict[tuple[str, ...], bytes]
) -> None:
    root = tmp_path_factory.mktemp("tree")
    outputs = Outputs.open(str(root / "staging"), [], path_budget(str(root / "out")))
    written: dict[str, bytes] = {}
    for parts, data in tree.items():
        path = Path(outputs.folder, *parts)
        if any(Path(outputs.folder, *parts[:n]).is_file() for n in range(1, len(parts) + 1)) or path.is_dir():
            continue  # a file where a folder is wanted, or the reverse: not a tree
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written["/".join(parts)] = data
    if any(ord(c) < 32 or ord(c) == 127 for name in written for c in name):
        with pytest.raises(RefusedOutput, match="a name with a control character"):
            outputs.stage(0)
    else:
        assert uploaded(root, outputs) == written
    assert os.listdir(outputs.folder) == []


# Writes a link to /etc/passwd beside a file of its own, for one input.
LINKS_A_SECRET = """\
import os
from pathlib import Path


def run(mini_batch):
    folder = os.environ["AZUREML_BI_OUTPUT_PATH"]
    for path in mini_batch:
        Path(folder, Path(path).stem + ".out").write_text("mine")
        if Path(path).name == "a.txt":
            os.symlink("/etc/passwd", os.path.join(folder, "passwd"))
    return mini_batch
"""


@pytest.mark.slow
def test_a_jobs_mini_batch_that_leaves_a_link_fails_naming_it_and_the_others_files_arrive(
    bep: Bep, home: Path, tmp_path: Path
) -> None:
    settings = {"mini_batch_size": 1, "retry_settings": {"max_retries": 0, "timeout": 30}}
    deploy(bep, tmp_path, LINKS_A_SECRET, settings)
    inputs = write_tree(tmp_path / "inputs", {"a.txt": "a", "b.txt": "b"})

    job = run_job(bep, inputs)

    assert job.status == "Completed", job.error
    assert job.counts.files_failed == 1
    errors = [json.loads(line) for line in Path(job.scratch_uri, "errors.jsonl").read_text().splitlines()]
    assert "symbolic link 'passwd'" in errors[0]["error"]
    assert files_under(Path(job.output_folder)) == ["b.out", "predictions.csv"]


def test_a_folder_that_cannot_be_read_fails_the_attempt_naming_it(
    outputs: Outputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(outputs.folder, "locked").mkdir()
    real_scandir = os.scandir

    def refusing(path: str | int) -> object:
        if isinstance(path, str) and path.endswith(
            "locked"
        ):  # what chmod 000 does to anyone but root, who runs these tests in containers
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    refused(outputs, r"locked' in AZUREML_BI_OUTPUT_PATH, which cannot be read \(Permission denied\)")


def test_files_named_as_the_jobs_summary_and_errors_upload_as_theirs(tmp_path: Path, outputs: Outputs) -> None:
    # The job keeps its summary and errors in its own folder (jobs/<id>/), never in the output folder: no clash.
    Path(outputs.folder, "summary.json").write_text("{}")
    Path(outputs.folder, "errors.jsonl").write_text("")
    Path(outputs.folder, "sub").mkdir()
    Path(outputs.folder, "sub", "predictions.csv").write_text("a\n")  # only the output file's own path is the job's
    assert uploaded(tmp_path, outputs) == {
        "errors.jsonl": b"",
        "sub/predictions.csv": b"a\n",
        "summary.json": b"{}",
    }
