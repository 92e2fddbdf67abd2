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
    if raw == "" or "\n" in raw or "\r" in raw:
        # YAML folds a plain scalar's line breaks into spaces ("a\nb" reads "a b"): text that holds one is kept
        # as written, never a different value.
        return raw
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


# The run settings `--set` may change at invoke, written as Azure's invoke and deployment files write them (with or
# without `settings.`), and the InvokeOverrides field each one sets. Azure sizes an invocation by
# `compute.instance_count`; its deployment files say `resources.instance_count`.
INVOKE_SETTINGS = {
    "mini_batch_size": "mini_batch_size",
    "instance_count": "instance_count",
    "resources.instance_count": "instance_count",
    "compute.instance_count": "instance_count",
    "max_retries": "max_retries",
    "retry_settings.max_retries": "max_retries",
    "timeout": "timeout",
    "retry_settings.timeout": "timeout",
    "error_threshold": "error_threshold",
    "output_file_name": "output_file_name",
}
INVOKE_DATA = ("inputs", "outputs")


def split_invoke_overrides(
    overrides: Mapping[str, Any], *, field: str = "--set "
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--set` at invoke, or the SDK's `params_override` (`field` is what errors name before the key): (the
    `inputs.*` and `outputs.*` keys as given, the run settings by InvokeOverrides field). A key that is neither, or a
    setting given twice under two spellings, is refused naming it."""
    data: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in overrides.items():
        if key.split(".", 1)[0] in INVOKE_DATA:
            data[key] = value
            continue
        setting = INVOKE_SETTINGS.get(key.removeprefix("settings."))
        if setting is None:
            known = ", ".join(sorted(k for k in INVOKE_SETTINGS if "." not in k))
            raise ValidationError(
                f"is not a setting an invocation can change ({known}, or inputs.NAME / outputs.NAME)",
                field=f"{field}{key}",
            )
        if setting in spelled:
            raise ValidationError(
                f"sets {setting} again (also set by {spelled[setting]}); give it once", field=f"{field}{key}"
            )
        spelled[setting] = key
        settings[setting] = value
    return data, settings
