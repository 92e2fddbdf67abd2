"""What every spec shares: the base model, the names and limits Azure gives them, and `parse`, which turns
pydantic's errors into our ValidationError naming the first field at fault."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from batch_endpoints.errors import ValidationError

ENDPOINT_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]+[a-zA-Z0-9]$")
# Azure limits endpoint names to 3-32 characters; deployment names follow the same pattern.
NAME_MAX = 32
TAG_MAX = 256
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# S3's bucket naming rules (3-63 lowercase letters, digits, '.' and '-'), and S3's 1,024-byte key limit.
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
STORAGE_PREFIX_MAX = 1024
MAX_ALLOWED_PREFIXES = 100
# An input's exclude patterns: few and short, as a job record is one DynamoDB item (400 KB).
MAX_EXCLUDE_PATTERNS = 100
EXCLUDE_PATTERN_MAX = 1024


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _endpoint_like_name(value: str) -> str:
    if len(value) > NAME_MAX or not ENDPOINT_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} must be 3-{NAME_MAX} characters, start with a letter, end with a letter or digit, "
            "and contain only letters, digits and '-'"
        )
    return value


def _asset_name(value: str) -> str:
    if not ASSET_NAME.fullmatch(value):
        raise ValueError(f"{value!r} must start with a letter or digit and contain only letters, digits, '_.-'")
    return value


def _version(value: str) -> str:
    if not VERSION.fullmatch(value):
        raise ValueError(f"{value!r} must start with a letter or digit and contain only letters, digits, '_.-'")
    return value


def _storage_prefix(value: str) -> str:
    """An s3://bucket[/prefix] URI or an absolute local path (file:// accepted), without '.' or '..' segments: a
    prefix that says exactly where it is, so a check against it cannot be led elsewhere."""
    shown = value if len(value) <= 80 else f"{value[:80]}..."
    expected = f"{shown!r} must be an s3://bucket/prefix URI or an absolute local path, without '.' or '..' segments"
    if not value or len(value) > STORAGE_PREFIX_MAX or any(ord(c) < 32 or c == "\\" for c in value):
        raise ValueError(f"{expected}, at most {STORAGE_PREFIX_MAX} characters")
    if value.startswith("s3://"):
        bucket, _, key = value.removeprefix("s3://").partition("/")
        where, segments = S3_BUCKET.fullmatch(bucket) is not None, key.split("/")
    else:
        path = value.removeprefix("file://")
        where, segments = path.startswith("/"), path.split("/")
    if not where or any(segment in {".", ".."} for segment in segments):
        raise ValueError(expected)
    return value


EndpointName = Annotated[str, pydantic.AfterValidator(_endpoint_like_name)]
StoragePrefix = Annotated[str, pydantic.AfterValidator(_storage_prefix)]
AssetName = Annotated[str, pydantic.AfterValidator(_asset_name)]
Version = Annotated[str, pydantic.AfterValidator(_version)]
SpecT = TypeVar("SpecT", bound=BaseModel)


def parse(model: type[SpecT], data: Any, *, prefix: str = "") -> SpecT:
    """Validate `data` as `model`, raising our ValidationError that names the first field at fault."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc.errors(), prefix=prefix) from None


def validation_error(errors: Sequence[Mapping[str, Any]], *, prefix: str = "") -> ValidationError:
    """Ours for the first of pydantic's errors (`exc.errors()`, or a request's from the API's resolver), naming the
    field at fault under `prefix`: the one place where pydantic's words become the project's."""
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"])
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] not in {"value_error"}:
        message = f"{message} (got {first['input']!r})"
    return ValidationError(message, field=field or None)
