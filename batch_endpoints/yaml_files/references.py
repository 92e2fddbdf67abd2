"""References to registered assets and to data in storage, as a user writes them in a file or on the command
line: `azureml:name:version`, `name@latest`, s3://..., a local path. These raise plain errors (field + problem);
the caller's `reported` block adds the file name.
"""

from __future__ import annotations

import os
import re
from typing import Final, Literal

from batch_endpoints import specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.yaml_files.declarations import ModelReference
from batch_endpoints.yaml_files.origins import reported

AZURE_PREFIX = "azureml:"
LATEST: Final = "latest"
# `name:version` or `name@label`, the short forms of a registered asset's reference.
ASSET_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(:[A-Za-z0-9][A-Za-z0-9_.-]*|@[A-Za-z]+)$")


def parse_model_reference(text: str, *, field: str = "model", source: str | None = None) -> ModelReference:
    """Read `azureml:name:version`, `name:version`, `azureml:name@latest` or `name@latest`."""
    with reported(source, {}):
        return model_reference(text, field)


def asset_reference(text: str, *, field: str, noun: str) -> tuple[str, str | None, Literal["latest"] | None]:
    """(name, version, label) of `azureml:name:version`, `name:version`, `azureml:name@latest` or `name@latest`."""
    reference = text.strip()
    if reference.startswith(("azureml://", "azureml:/")):
        raise ValidationError(
            f"{text!r}: registry and resource-id references are not supported; register the {noun} here and "
            "refer to it as name:version or name@latest",
            field=field,
        )
    reference = reference.removeprefix(AZURE_PREFIX)
    if "@" in reference:
        name, label = reference.split("@", 1)
        if label != LATEST:
            raise ValidationError(f"{text!r}: the only label is @latest (got @{label})", field=field)
        return _asset_name(name, text, field, noun), None, LATEST
    if ":" in reference:
        name, version = reference.split(":", 1)
        if not specs.VERSION.fullmatch(version):
            raise ValidationError(
                f"{text!r}: the version must be letters, digits and '_.-' (got {version!r})", field=field
            )
        return _asset_name(name, text, field, noun), version, None
    raise ValidationError(
        f"{text!r} names no version: write {reference or '<name>'}:<version> or {reference or '<name>'}@latest",
        field=field,
    )


def is_reference(text: str) -> bool:
    """True when `text` names data in storage (a URI, a data asset, a datastore path), not a local file."""
    value = text.strip()
    if "://" in value or value.startswith((AZURE_PREFIX, "/subscriptions/")):
        return True
    return bool(ASSET_REFERENCE.fullmatch(value))


def local_or_reference(text: str, base_dir: str) -> str:
    """A location as a user typed or wrote it: an existing local file or folder (made absolute against base_dir)
    wins; else a reference to data in storage as written; else the local path, which does not exist."""
    value = str(text).strip()
    path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(value.removeprefix("file://"))))
    if os.path.exists(path) or not is_reference(value) or value.startswith("file://"):
        return path
    return value


def model_reference(text: str, field: str) -> ModelReference:
    name, version, label = asset_reference(text, field=field, noun="model")
    return ModelReference(name=name, version=version, label=label)


def _asset_name(name: str, text: str, field: str, noun: str) -> str:
    if not specs.ASSET_NAME.fullmatch(name):
        raise ValidationError(
            f"{text!r}: the {noun} name must start with a letter or digit and contain only letters, digits and "
            f"'_.-' (got {name!r})",
            field=field,
        )
    return name
