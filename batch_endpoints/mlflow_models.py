"""What the control plane needs to know of an MLflow model: that a folder is one, and the packages it needs."""

from __future__ import annotations

import os
from pathlib import Path

from batch_endpoints import assets
from batch_endpoints.ports import BlobStore
from batch_endpoints.yaml_files.conda import conda_document, pip_packages

MLMODEL = "MLmodel"
# MLflow writes both next to MLmodel. Azure builds an MLflow model's environment from conda.yaml, whose pip section
# lists what the model needs; requirements.txt is the fallback for a model saved without one.
CONDA_FILE = "conda.yaml"
REQUIREMENTS_FILE = "requirements.txt"


def find(blobs: BlobStore, location: str) -> str | None:
    """The folder holding the MLmodel file: the model folder itself or a folder in it; None if not MLflow."""
    if not assets.is_stored(location):
        return find_local(location)
    if blobs.exists(blobs.join(location, MLMODEL)):
        return location
    relative = [blobs.relative(location, info.uri) for info in blobs.list_files(location)]
    candidates = [
        blobs.join(location, rel.split("/")[0]) for rel in relative if rel.count("/") == 1 and rel.endswith(MLMODEL)
    ]
    return candidates[0] if candidates else None


def find_local(location: str) -> str | None:
    """`find`, for a folder on this machine."""
    if os.path.isfile(os.path.join(location, MLMODEL)):
        return location
    if not os.path.isdir(location):
        return None
    candidates = [os.path.join(location, name) for name in sorted(os.listdir(location))]
    candidates = [c for c in candidates if os.path.isfile(os.path.join(c, MLMODEL))]
    return candidates[0] if candidates else None


def pip_requirements(blobs: BlobStore, model_dir: str) -> list[str]:
    """The model's pip requirements, taken as Azure takes them (see model_requirements)."""

    def read(name: str) -> str | None:
        uri = _join(blobs, model_dir, name)
        if not _exists(blobs, uri):
            return None
        return blobs.get_bytes(uri).decode() if assets.is_stored(uri) else Path(uri).read_text(encoding="utf-8")

    return model_requirements(read(CONDA_FILE), read(REQUIREMENTS_FILE), where=model_dir)


def model_requirements(conda_text: str | None, requirements_text: str | None, *, where: str) -> list[str]:
    """The pip section of the model's conda.yaml, as Azure builds the environment from it; else its
    requirements.txt; else none. `where` names the model folder in the error for a conda.yaml that is not YAML."""
    if conda_text is not None:
        document = conda_document(conda_text, f"{where}/{CONDA_FILE}", "model")
        return requirement_lines("\n".join(pip_packages(document)))
    return requirement_lines(requirements_text or "")


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements.txt: comments, blank lines and pip options (`-r`, `--index-url`) left out."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _join(blobs: BlobStore, location: str, name: str) -> str:
    return blobs.join(location, name) if assets.is_stored(location) else os.path.join(location, name)


def _exists(blobs: BlobStore, location: str) -> bool:
    return blobs.exists(location) if assets.is_stored(location) else os.path.isfile(location)
