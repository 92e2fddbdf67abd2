"""Copying user folders (models, scoring code) into the system's storage, content-addressed where it pays."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile

from batch_endpoints import local_files
from batch_endpoints.errors import ValidationError
from batch_endpoints.ports import BlobStore


def folder_digest(path: str) -> str:
    """A hash of the folder's relative paths and contents, so an unchanged folder maps to the same key."""
    digest = hashlib.sha256()
    for rel in local_files.code_files(path, field=None):
        digest.update(rel.encode() + b"\0")
        with open(os.path.join(path, rel), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


# Where registration copies models and code to, under the storage root.
MODELS_FOLDER, CODE_FOLDER = "models", "code"
ASSET_FOLDERS = (MODELS_FOLDER, CODE_FOLDER)


def is_stored(location: str) -> bool:
    """True for a URI in a blob store (s3://...), False for a path on this machine."""
    return "://" in location and not location.startswith("file://")


def check_scoring_script(blobs: BlobStore, code: str, scoring_script: str) -> None:
    if is_stored(code):
        found = blobs.exists(blobs.join(code, scoring_script))
        where = blobs.join(code, scoring_script)
    else:
        where = os.path.join(code, scoring_script)
        found = os.path.isfile(where)
    if not found:
        raise ValidationError(f"{where} does not exist", field="code_configuration.scoring_script")


def check_links_stay_inside(folder: str, field: str) -> None:
    """Refuse a folder holding a symbolic link that leads out of it: copying it would copy whatever the link
    names (another user's files, /etc) into storage that others can read."""
    root = os.path.realpath(folder)
    for parent, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if os.path.commonpath([root, target]) != root:
                    raise ValidationError(
                        f"{path} is a link to {os.readlink(path)}, outside the folder; copy the file in instead",
                        field=field,
                    )


def extract_archive(archive: str, destination: str, field: str) -> None:
    """Unpack a .zip of scoring code, refusing entries that would land outside `destination` (zip-slip: absolute
    names, "../") and symbolic links, which a zip can carry and which could point anywhere."""
    with zipfile.ZipFile(archive) as bundle:
        for entry in bundle.infolist():
            name = entry.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
                raise ValidationError(
                    f"{archive} holds {name!r}, which would be written outside the folder", field=field
                )
            if stat.S_ISLNK(entry.external_attr >> 16):
                raise ValidationError(
                    f"{archive} holds {name!r}, a symbolic link; archives may hold files only", field=field
                )
        bundle.extractall(destination)


def upload_code(blobs: BlobStore, local_dir: str, field: str) -> str:
    """The stored URI of a code folder: a folder already in storage is used where it is (clients upload code
    before calling the API); a local folder (or a .zip of one) is copied under its content hash, once."""
    if is_stored(local_dir):
        return local_dir
    if os.path.isfile(local_dir) and zipfile.is_zipfile(local_dir):
        with tempfile.TemporaryDirectory() as unpacked:
            extract_archive(local_dir, unpacked, field)
            return upload_code(blobs, unpacked, field)
    if not os.path.isdir(local_dir):
        raise ValidationError(f"{local_dir} is not a folder", field=field)
    check_links_stay_inside(local_dir, field)
    uri = blobs.join(blobs.root, CODE_FOLDER, folder_digest(local_dir))
    if not blobs.exists(uri):
        blobs.upload_folder(local_dir, uri, local_files.code_files(local_dir, field=field))
    return uri


def upload_model(blobs: BlobStore, local_path: str, name: str, version: str, field: str) -> str:
    """Copy a model folder or a single model file into storage, under the model's version and by its own name,
    and return where it now lies (the folder, or the file).

    Azure lays a registered model out the same way: AZUREML_MODEL_DIR is the version's folder and the model is
    in it under its own name, which is why Azure's scoring scripts look in `AZUREML_MODEL_DIR/*/`. A model
    already in storage is registered where it is: its URI is recorded, nothing is copied."""
    if is_stored(local_path):
        if not blobs.exists(local_path) and not blobs.is_folder(local_path):
            raise ValidationError(f"{local_path} does not exist", field=field)
        return local_path
    version_uri = blobs.join(blobs.root, MODELS_FOLDER, name, version)
    own_name = os.path.basename(os.path.abspath(local_path))
    if os.path.isdir(local_path):
        check_links_stay_inside(local_path, field)
        blobs.upload_folder(
            local_path, blobs.join(version_uri, own_name), local_files.code_files(local_path, field=field)
        )
    elif os.path.isfile(local_path):
        with tempfile.TemporaryDirectory() as staging:
            shutil.copy2(local_path, os.path.join(staging, own_name))
            blobs.upload_folder(staging, version_uri)
    else:
        raise ValidationError(f"{local_path} does not exist", field=field)
    return blobs.join(version_uri, own_name)
