"""The files of a local folder (batch_endpoints/local_files.py): every file of data, links followed, and a clear
refusal naming the path for whatever cannot be read as files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batch_endpoints import local_files
from batch_endpoints.errors import ValidationError
from tests.core_fixtures import EVERY_KIND_OF_NAME, write_tree


def relatives(found: list[local_files.LocalFile]) -> list[str]:
    return [f.relative for f in found]


def test_every_file_is_data_whatever_its_name(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "data", EVERY_KIND_OF_NAME)

    found = local_files.input_files(str(folder))

    assert relatives(found) == sorted(EVERY_KIND_OF_NAME)
    assert {f.relative: f.size for f in found}["three.txt"] == 3


def test_code_leaves_caches_version_control_and_bytecode_out(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "code", EVERY_KIND_OF_NAME)

    assert local_files.code_files(str(folder), field="code") == [
        ".hidden",
        ".tmp-x",
        "one.txt",
        "sub/two.txt",
        "three.txt",
    ]


def test_links_to_files_and_folders_are_followed_under_their_own_names(tmp_path: Path) -> None:
    elsewhere = write_tree(tmp_path / "elsewhere", {"big.bin": "12345", "nested/x.txt": "x"})
    folder = write_tree(tmp_path / "data", {"a.txt": "a"})
    (folder / "link.bin").symlink_to(elsewhere / "big.bin")
    (folder / "linked").symlink_to(elsewhere)
    (folder / "again").symlink_to(elsewhere)  # the same folder twice is no loop: its files under both names

    found = local_files.input_files(str(folder))

    assert relatives(found) == [
        "a.txt",
        "again/big.bin",
        "again/nested/x.txt",
        "link.bin",
        "linked/big.bin",
        "linked/nested/x.txt",
    ]
    assert {f.relative: f.size for f in found}["link.bin"] == 5
    assert {f.relative: f.path for f in found}["linked/nested/x.txt"] == str(folder / "linked" / "nested" / "x.txt")


def test_a_single_file_or_a_link_to_one_is_itself(tmp_path: Path) -> None:
    file = write_tree(tmp_path, {"one.csv": "x,y\n"}) / "one.csv"
    (tmp_path / "link.csv").symlink_to(file)

    assert local_files.input_files(str(file)) == [local_files.LocalFile("one.csv", str(file), 4)]
    assert local_files.input_files(str(tmp_path / "link.csv")) == [
        local_files.LocalFile("link.csv", str(tmp_path / "link.csv"), 4)
    ]


def refusal(path: Path, field: str | None = "input") -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        local_files.input_files(str(path), field=field)
    assert refused.value.field == field
    return refused.value


def test_a_link_to_nothing_is_refused_naming_it(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a"})
    (folder / "sub").mkdir()
    (folder / "sub" / "gone.txt").symlink_to(tmp_path / "deleted.txt")

    error = refusal(folder)

    assert error.message == (
        f"{folder / 'sub' / 'gone.txt'} is a link to {str(tmp_path / 'deleted.txt')!r}, which does not exist; "
        "expected a file or a folder"
    )
    assert refusal(folder / "sub" / "gone.txt").message == error.message  # given itself, the same words


@pytest.mark.parametrize("target", ["self.txt", "other.txt"])
def test_a_link_to_itself_or_a_circle_of_links_is_refused(tmp_path: Path, target: str) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a"})
    (folder / "self.txt").symlink_to(folder / target)
    if target == "other.txt":
        (folder / "other.txt").symlink_to(folder / "self.txt")

    error = refusal(folder)

    assert "leads back to itself (a loop of links); expected a file or a folder" in error.message
    assert error.message.startswith((f"{folder / 'self.txt'} is a link", f"{folder / 'other.txt'} is a link"))


def test_a_link_to_a_folder_it_is_in_is_refused_as_a_loop(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a", "deep/b.txt": "b"})
    (folder / "deep" / "up").symlink_to(folder)

    error = refusal(folder)

    assert error.message == (
        f"{folder / 'deep' / 'up'} is a link to {str(folder)!r}, a folder it is in (a loop); expected a file or a "
        "folder that does not contain the link"
    )


def test_what_is_neither_file_nor_folder_is_refused(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a"})
    os.mkfifo(folder / "pipe")

    assert (
        refusal(folder).message
        == f"{folder / 'pipe'} is neither a file nor a folder (a FIFO, socket or device); expected a file"
    )


def test_a_file_this_user_may_not_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a", "secret.txt": "s"})
    secret = folder / "secret.txt"
    secret.chmod(0)
    real_access = os.access
    # The suite may run as root, whom permissions never stop: the answer for the unreadable file is the kernel's
    # for any other user.
    monkeypatch.setattr(os, "access", lambda path, mode: False if path == str(secret) else real_access(path, mode))

    assert refusal(folder, "path").message == (
        f"{secret} cannot be read (permission denied); expected a file this user can read"
    )


def test_a_folder_this_user_may_not_list_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a", "locked/b.txt": "b"})
    real_scandir = os.scandir

    def scandir(path: str):  # as root would not be refused: the kernel's answer for any other user
        if path == str(folder / "locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)

    assert refusal(folder).message == (
        f"{folder / 'locked'} cannot be read (permission denied); expected a folder this user can read"
    )


def test_folders_never_entered_are_left_out_wherever_they_are_reached(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "data", {"a.txt": "a", "private/b.txt": "b"})
    (folder / "alias").symlink_to(folder / "private")
    private = os.stat(folder / "private")

    found = local_files.folder_files(str(folder), never_enter={(private.st_dev, private.st_ino)})

    assert relatives(found) == ["a.txt"]


def test_a_path_that_merely_contains_the_field_name_still_gets_the_field_in_front(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "x").symlink_to(tmp_path / "nowhere")

    with pytest.raises(ValidationError) as refused:
        local_files.input_files(str(tmp_path / "inputs"))

    assert str(refused.value).startswith(f"input: {tmp_path / 'inputs' / 'x'} is a link to ")


def test_a_name_too_long_for_the_file_system_is_refused_naming_it(tmp_path: Path) -> None:
    too_long = str(tmp_path / ("x" * 300))

    with pytest.raises(ValidationError, match=r"/x{300} cannot be read \(File name too long\)") as refused:
        local_files.input_files(too_long)

    assert refused.value.field == "input"
