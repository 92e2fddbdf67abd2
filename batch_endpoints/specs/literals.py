"""Literal inputs and input names: the values a job takes by name (`--set inputs.NAME=VALUE`), shared by
deployments, components and invocations."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import pydantic

InputType = Literal["string", "number", "integer", "boolean"]
INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# bool first: in pydantic's smart union True must stay a boolean, not become 1.
LiteralValue = bool | int | float | str
INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


def literal_value(kind: str, value: Any) -> LiteralValue:
    """`value` as an input of type `kind`. Text (from a command line) is read as the type; other values must
    already be of it. Raises ValueError saying what was expected."""
    expected = f"expected {'an' if kind == 'integer' else 'a'} {kind} (got {value!r})"
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
        expected = f"expected a boolean, true or false (got {value!r})"
    elif isinstance(value, bool):
        pass
    elif kind == "integer":
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and INTEGER_TEXT.fullmatch(value.strip()):
            return int(value)
    elif kind == "number":
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if isinstance(number, int | float) and math.isfinite(number):
            return number
    raise ValueError(expected)


def _input_name(value: str) -> str:
    if not INPUT_NAME.fullmatch(value):
        raise ValueError(f"{value!r} must be a letter or '_', then letters, digits or '_' (at most 64)")
    return value


InputName = Annotated[str, pydantic.AfterValidator(_input_name)]
