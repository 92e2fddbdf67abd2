"""A component's command line: the checks made when it is registered, and the substitution made when it runs.

Azure's language: `${{inputs.x}}` is an input's value or path, `${{outputs.y}}` an output's path, and `$[[ ... ]]`
an optional part, dropped when an optional input in it is not given. Every value is quoted for the shell (shlex),
so a string input cannot add commands, whatever it holds.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from batch_endpoints.errors import ValidationError
from batch_endpoints.specs.components import (
    CommandComponent,
    ComponentInput,
    ComponentOutput,
    ParallelComponent,
    PipelineComponent,
)
from batch_endpoints.specs.endpoints import LiteralValue

PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")
# A part holds no `$[[` of its own: each match attempt stops at the next one, so the search is linear in the
# command's length (`.*?` alone went on to the end from every `$[[`: quadratic, a minute for 400 KB of them).
OPTIONAL_PART = re.compile(r"\$\[\[((?:(?!\$\[\[|\]\]).)*)\]\]", re.DOTALL)


def check_component(component: CommandComponent | ParallelComponent | PipelineComponent, prefix: str = "") -> None:
    """Refuse a command, or a parallel task's arguments, that names what the component does not declare."""
    if isinstance(component, CommandComponent):
        check_command(component.command, component.inputs, component.outputs, field=f"{prefix}command")
    elif isinstance(component, ParallelComponent):
        task = f"{prefix}task."
        check_command(
            component.task.program_arguments, component.inputs, component.outputs, field=f"{task}program_arguments"
        )
        _check_reference(component.input_data, "inputs", component.inputs, field=f"{prefix}input_data")
        if component.inputs[_name(component.input_data)].type not in ("uri_folder", "uri_file", "mltable"):
            raise ValidationError("must name a uri_folder, uri_file or mltable input", field=f"{prefix}input_data")
        if component.task.append_row_to is not None:
            _check_reference(component.task.append_row_to, "outputs", component.outputs, field=f"{task}append_row_to")


def check_command(
    command: str, inputs: Mapping[str, ComponentInput], outputs: Mapping[str, ComponentOutput], *, field: str
) -> None:
    """Every placeholder names a declared input or output; `$[[ ... ]]` parts hold optional inputs only, and an
    optional input without a default appears only in one (else the command would be cut short)."""
    outside = OPTIONAL_PART.sub(" ", command)
    if "$[[" in outside or "]]" in outside:
        raise ValidationError("has a '$[[' without its ']]' (or the reverse); optional parts cannot nest", field=field)
    for part in OPTIONAL_PART.findall(command):
        names = _placeholders(part, inputs, outputs, field=field)
        for scope, name in names:
            if scope == "outputs" or inputs[name].required:
                what = "an output" if scope == "outputs" else "a required input"
                raise ValidationError(
                    f"the optional part $[[{part}]] names {what}, {scope}.{name}; only optional inputs go in $[[ ]]",
                    field=field,
                )
        if not any(scope == "inputs" for scope, _ in names):
            raise ValidationError(f"the optional part $[[{part}]] names no input", field=field)
    for scope, name in _placeholders(outside, inputs, outputs, field=field):
        if scope == "inputs" and inputs[name].optional and inputs[name].default is None:
            raise ValidationError(
                f"the optional input {name} is used outside $[[ ]]; put the part that needs it in $[[ ... ]]",
                field=field,
            )


def render_command(
    command: str,
    declared: Mapping[str, ComponentInput],
    inputs: Mapping[str, LiteralValue],
    outputs: Mapping[str, str],
) -> str:
    """The command with each placeholder replaced by its input's value (or default) or its output's path, quoted
    for the shell; an optional part whose input has no value is dropped."""

    def value_of(scope: str, name: str) -> LiteralValue | None:
        if scope == "outputs":
            return outputs.get(name)
        given = inputs.get(name)
        return given if given is not None else declared[name].default if name in declared else None

    def substitute(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            value = value_of(*match.groups())
            if value is None:
                raise ValidationError("is required: the command needs it", field=".".join(match.groups()))
            return shlex.quote(str(value))

        return PLACEHOLDER.sub(one, text)

    def optional(match: re.Match[str]) -> str:
        part = match.group(1)
        if any(value_of(*names.groups()) is None for names in PLACEHOLDER.finditer(part)):
            return ""
        return substitute(part)

    return substitute(OPTIONAL_PART.sub(optional, command))


def _placeholders(
    text: str, inputs: Mapping[str, ComponentInput], outputs: Mapping[str, ComponentOutput], *, field: str
) -> list[tuple[str, str]]:
    names = [(scope, name) for scope, name in PLACEHOLDER.findall(text)]
    for scope, name in names:
        if name not in (inputs if scope == "inputs" else outputs):
            raise ValidationError(f"names ${{{{{scope}.{name}}}}}, which the component does not declare", field=field)
    stray = PLACEHOLDER.sub("", text)
    if "${{" in stray:
        expression = stray[stray.index("${{") :][:60]
        raise ValidationError(
            f"{expression!r}: only ${{{{inputs.NAME}}}} and ${{{{outputs.NAME}}}} may be used in a command",
            field=field,
        )
    return names


def _check_reference(text: str, scope: str, declared: Mapping[str, object], *, field: str) -> None:
    match = PLACEHOLDER.fullmatch(text.strip())
    if match is None or match.group(1) != scope:
        raise ValidationError(f"must be ${{{{{scope}.NAME}}}} (got {text!r})", field=field)
    if match.group(2) not in declared:
        raise ValidationError(f"names {scope}.{match.group(2)}, which the component does not declare", field=field)


def _name(text: str) -> str:
    match = PLACEHOLDER.fullmatch(text.strip())
    assert match is not None, "checked by _check_reference"
    return match.group(2)
