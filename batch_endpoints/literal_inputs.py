"""Literal inputs given at invoke time, checked against what the deployment declares, and how they reach the
scoring script: as a dict passed to init() when it takes a parameter, and as environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import LiteralInput, LiteralValue, literal_value

ENVIRONMENT_PREFIX = "BEP_INPUT_"


def resolve(declared: Mapping[str, LiteralInput], given: Mapping[str, Any]) -> dict[str, LiteralValue]:
    """Every declared input's value: the given one read as its type, else its default. An undeclared, mistyped
    or missing required input is refused, naming `inputs.NAME`."""
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ValidationError(f"is not an input of this deployment (declared: {known})", field=f"inputs.{name}")
    values: dict[str, LiteralValue] = {}
    for name, spec in declared.items():
        if name in given and given[name] is not None:
            try:
                values[name] = literal_value(spec.type, given[name])
            except ValueError as exc:
                raise ValidationError(str(exc), field=f"inputs.{name}") from None
        elif spec.default is not None:
            values[name] = spec.default
        elif spec.required:
            raise ValidationError(f"is required ({spec.type})", field=f"inputs.{name}")
    return values


def environment(values: Mapping[str, LiteralValue]) -> dict[str, str]:
    """`BEP_INPUT_<NAME>` (upper case) for each input; booleans as true/false, as they were written."""
    return {
        f"{ENVIRONMENT_PREFIX}{name.upper()}": ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in values.items()
    }
