"""Scoring code and model folders from users: zip-slip entries and links leading out of the folder are refused,
and nothing is stored."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from batch_endpoints import assets
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.errors import ValidationError


@pytest.fixture(name="blobs")
def blobs_fixture(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(str(tmp_path / "storage"))


def _stored(blobs: FolderBlobStore) -> list[str]:
    """Everything under the store's root but its (empty) staging folder."""
    root = Path(blobs.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if str(p) != blobs.staging)


def _zip(path: Path, entries: dict[str, str], link: str | None = None) -> str:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, text in entries.items():
            bundle.writestr(name, text)
        if link is not None:
            info = zipfile.ZipInfo("evil-link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, link)
    return str(path)


def test_a_zip_of_code_is_stored_like_its_folder(blobs: FolderBlobStore, tmp_path: Path) -> None:
    uri = assets.upload_code(blobs, _zip(tmp_path / "code.zip", {"score.py": "def run(b): return b\n"}), "code")
    assert (Path(uri) / "score.py").read_text() == "def run(b): return b\n"


@pytest.mark.parametrize("name", ["../outside.py", "a/../../outside.py", "/etc/cron.d/x", "C:/x.py"])
def test_a_zip_entry_that_would_land_outside_the_folder_is_refused(
    blobs: FolderBlobStore, tmp_path: Path, name: str
) -> None:
    archive = _zip(tmp_path / "code.zip", {"score.py": "", name: "boom"})
    with pytest.raises(ValidationError, match="outside the folder") as refused:
        assets.upload_code(blobs, archive, "code_configuration.code")
    assert refused.value.field == "code_configuration.code"
    assert _stored(blobs) == [] and not (tmp_path / "outside.py").exists()


def test_a_zip_holding_a_symbolic_link_is_refused(blobs: FolderBlobStore, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "code.zip", {"score.py": ""}, link="/etc/passwd")
    with pytest.raises(ValidationError, match="symbolic link"):
        assets.upload_code(blobs, archive, "code")
    assert _stored(blobs) == []


def test_a_code_folder_with_a_link_leading_out_is_refused(blobs: FolderBlobStore, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("")
    (tmp_path / "secret.txt").write_text("key")
    os.symlink(tmp_path / "secret.txt", code / "labels.txt")
    with pytest.raises(ValidationError, match="outside the folder") as refused:
        assets.upload_code(blobs, str(code), "code")
    assert refused.value.field == "code" and _stored(blobs) == []


def test_a_model_folder_with_a_link_leading_out_is_refused(blobs: FolderBlobStore, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    os.symlink("/", model / "root")
    with pytest.raises(ValidationError, match="outside the folder"):
        assets.upload_model(blobs, str(model), "digits", "1", "path")
    assert _stored(blobs) == []


def test_a_link_inside_the_folder_is_kept(blobs: FolderBlobStore, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("x = 1\n")
    os.symlink("score.py", code / "alias.py")
    uri = assets.upload_code(blobs, str(code), "code")
    assert (Path(uri) / "alias.py").read_text() == "x = 1\n"
