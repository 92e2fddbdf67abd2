"""The `--set key=value` language: dotted keys, values read as YAML scalars, applied after a file is read and
before anything is validated, exactly like Azure's CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from batch_endpoints.errors import ValidationError
from batch_endpoints.yaml_files.origins import error, kind
from batch_endpoints.yaml_files.schemas import FLAT_SETTINGS


def parse_overrides(items: Iterable[str], *, field: str = "--set") -> dict[str, str]:
    """Turn `--set` arguments (`key=value`) into the overrides mapping the loaders take; also `--tag key=value`."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            example = "settings.mini_batch_size=5" if field == "--set" else "team=vision"
            raise ValidationError(f"{item!r}: write key=value, e.g. {example}", field=field)
        overrides[key.strip()] = value
    return overrides


def internal_key(key: str) -> str:
    if key == "resources.instance_count":
        return "settings.instance_count"
    if key.split(".", 1)[0] in FLAT_SETTINGS:
        return f"settings.{key}"
    return key


def override_value(raw: Any) -> Any:
    """Read a `--set` value as a YAML scalar: `5` -> 5, `true` -> True, `null` -> back to the default."""
    if not isinstance(raw, str):
        return raw
    if raw == "":
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    # A value such as `Scores: digits` or `2024-01-01` is text to the user, not a mapping or a date.
    return value if value is None or isinstance(value, str | int | float | bool) else raw


def set_dotted(data: dict[str, Any], key: str, value: Any, written: str, source: str) -> None:
    parts = key.split(".")
    if not all(part.strip() for part in parts):
        raise error(source, written, "is not a valid override key; write dotted names, e.g. settings.timeout")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, Mapping):
            child = node[part] = dict(child)
        else:
            parent = ".".join(parts[: depth + 1])
            raise error(source, written, f"cannot be set: '{parent}' is a {kind(child)}, not a mapping")
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
