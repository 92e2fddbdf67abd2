"""Conda environment files: recorded as their text, of which only the `pip:` section can be installed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from batch_endpoints.errors import ValidationError


def is_conda_text(value: str) -> bool:
    """True when `value` is a conda file's text (several lines, or a YAML mapping), False for a path to one."""
    if "\n" in value.strip():
        return True
    try:
        return isinstance(yaml.safe_load(value), Mapping)
    except yaml.YAMLError:
        return False


def read_conda_file(value: str, *, field: str = "conda_file") -> tuple[str, list[str]]:
    """A conda environment file, given as its text or as a local path (read here): its text and pip packages.

    The text is what gets recorded, so a registered environment does not depend on the file staying where it was.
    """
    if is_conda_text(value):
        text, where = value, "the conda file"
    else:
        where = os.path.abspath(os.path.expanduser(value.removeprefix("file:")))
        text = read_text(where, value, field)
    document = conda_document(text, where, field)
    if not isinstance(document, Mapping):
        raise ValidationError(
            f"{where} is not a conda environment file: expected a mapping with 'dependencies'", field=field
        )
    return text, pip_packages(document)


def read_text(path: str, written: str, field: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        resolved = "" if written == path else f" resolves to {path}, which"
        raise ValidationError(f"{written!r}{resolved} is not a readable text file", field=field) from None


def conda_document(text: str, where: str, field: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{where} is not valid YAML: {exc}", field=field) from None


def pip_packages(document: Any) -> list[str]:
    """The `pip:` section of a conda file: our images come with Python and without conda, so only it can be
    installed."""
    pip: list[str] = []
    dependencies = document.get("dependencies") if isinstance(document, Mapping) else None
    for dependency in dependencies if isinstance(dependencies, list) else []:
        if isinstance(dependency, Mapping) and isinstance(dependency.get("pip"), list):
            pip += [str(requirement) for requirement in dependency["pip"]]
    return pip
