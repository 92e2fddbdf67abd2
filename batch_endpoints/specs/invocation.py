"""What an invocation names, as Azure's batch jobs name it: data inputs and literal inputs by name under `inputs`,
outputs by name under `outputs`. One shape for the invoke YAML, `--set inputs.NAME.path=...`, the API's body and
the SDK, so that a deployment taking several of each reads them all the same way.

A data input is `{type: uri_folder|uri_file, path, mode}`; a literal input is `{type: string|integer|number|
boolean, default}` (Azure's inputs.yml spelling of the value) or the bare value. A model deployment takes exactly
one data input, whatever its name, and writes one output, which Azure calls `score`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import pydantic
from pydantic import Field, field_validator

from batch_endpoints.errors import ValidationError
from batch_endpoints.specs.assets import DataMode, DataType
from batch_endpoints.specs.base import MAX_EXCLUDE_PATTERNS, Spec, parse
from batch_endpoints.specs.components import LITERAL_TYPES as COMPONENT_LITERAL_TYPES
from batch_endpoints.specs.components import PipelineComponent, fits
from batch_endpoints.specs.endpoints import InputName, InputType, LiteralValue, literal_value
from batch_endpoints.specs.jobs import ExcludePattern

DATA_TYPES: tuple[str, ...] = get_args(DataType)
LITERAL_TYPES: tuple[str, ...] = get_args(InputType)
# One Literal, not a union of DataType and InputType, so that a wrong type is one error naming `inputs.NAME.type`
# (a union's errors name each member). It must stay the two together:
NamedInputType = Literal[
    "uri_folder", "uri_file", "mlflow_model", "custom_model", "string", "integer", "number", "boolean"
]
MODEL_INPUT_TYPES = ("mlflow_model", "custom_model")
"""A pipeline's model inputs: a registered model (azureml:name:version, name@latest) or a folder."""
assert set(get_args(NamedInputType)) == {*DATA_TYPES, *MODEL_INPUT_TYPES, *LITERAL_TYPES}, (
    "NamedInputType lags DataType or InputType"
)
MODEL_OUTPUT = "score"
"""The one output of a model deployment, as Azure names it."""


class NamedInput(Spec):
    """One entry of an invocation's `inputs`: a data input (a `path`) or a literal input (a `default`)."""

    type: NamedInputType | None = Field(
        None,
        description="uri_folder or uri_file for data (default: inferred from the path); string, integer, "
        "number or boolean for a literal",
    )
    path: str | None = Field(
        None,
        validate_default=True,
        description="a data input's location: s3://..., a data asset (azureml:name:version, name@latest) or a "
        "datastore path (azureml://datastores/<name>/paths/<path>)",
    )
    mode: DataMode | None = Field(None, description="accepted as Azure writes it; jobs read storage directly")
    exclude: list[ExcludePattern] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDE_PATTERNS,
        description="a folder input's files to leave out, as glob patterns (not Azure's)",
    )
    default: Any = Field(
        None, validate_default=True, description="a literal input's value (Azure's inputs.yml calls it default)"
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _bare_value(cls, value: Any) -> Any:
        # `inputs.threshold=0.7` and `threshold: 0.7`: a literal given by its value alone.
        return value if isinstance(value, Mapping | NamedInput) else {"default": value}

    @field_validator("path")
    @classmethod
    def _path_of_data_only(cls, path: str | None, info: pydantic.ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind in LITERAL_TYPES and path is not None:
            raise ValueError(f"a {kind} input is a literal and has no path; give its value as default")
        if kind in (*DATA_TYPES, *MODEL_INPUT_TYPES) and path is None:
            raise ValueError(f"is required: where the {kind} input is")
        return path

    @field_validator("default")
    @classmethod
    def _value_of_literals_only(cls, value: Any, info: pydantic.ValidationInfo) -> LiteralValue | None:
        if "path" not in info.data:
            return None  # the path was refused: that error is the one to read
        kind = info.data.get("type")
        if info.data["path"] is not None:
            if value is not None:
                raise ValueError("a data input has a path, not a default")
            return None
        if value is None:
            if kind is None:
                raise ValueError("is required: give a path (a data input) or a default (a literal input)")
            raise ValueError(f"is required: the value of this {kind} input")
        if not isinstance(value, LiteralValue):
            raise ValueError(f"must be text, a number or a boolean (got a {type(value).__name__})")
        return literal_value(kind, value) if kind is not None else value

    @field_validator("mode", "exclude")
    @classmethod
    def _data_only(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if value and info.data.get("type") in LITERAL_TYPES:
            raise ValueError("applies to data inputs only")
        return value

    @property
    def is_data(self) -> bool:
        return self.path is not None


class NamedOutput(Spec):
    """One entry of an invocation's `outputs`: where an output goes. No path: the job's own location."""

    type: DataType | None = Field(None, description="uri_folder: path is a folder; uri_file: path ends in the file")
    path: str | None = Field(None, description="s3://... or a datastore path; default: under the job's own folder")
    mode: DataMode | None = Field(None, description="accepted as Azure writes it; jobs write storage directly")


def named_inputs(given: Mapping[str, Any] | None) -> dict[str, NamedInput]:
    """`given` (name -> a data input, a literal input or a bare value) validated; errors name `inputs.NAME.FIELD`."""
    return parse(_Inputs, {"inputs": dict(given or {})}).inputs


def named_outputs(given: Mapping[str, Any] | None) -> dict[str, NamedOutput]:
    """`given` (name -> an output) validated; errors name `outputs.NAME.FIELD`."""
    return parse(_Outputs, {"outputs": dict(given or {})}).outputs


class _Inputs(Spec):
    inputs: dict[InputName, NamedInput]


class _Outputs(Spec):
    outputs: dict[InputName, NamedOutput]


def with_data_input(
    inputs: Mapping[str, NamedInput],
    path: str | None = None,
    *,
    type: str | None = None,
    exclude: list[str] | None = None,
    field: str | None = None,
) -> dict[str, NamedInput]:
    """`inputs` with a data input given apart from the map (`--input`, `--input-type`, `--exclude`; the API's
    `input`): it changes the one data input the map names, or is added as `input`. What is not given is kept.
    Errors name `field` (default: the input in the map)."""
    changes = {k: v for k, v in {"path": path, "type": type, "exclude": exclude}.items() if v is not None}
    if not changes:
        return dict(inputs)
    data = [name for name, given in inputs.items() if given.is_data]
    name = data[0] if len(data) == 1 else "input"
    before = inputs[name].model_dump(exclude_unset=True) if name in inputs else {}
    return {**inputs, name: parse(NamedInput, {**before, **changes}, prefix=field or f"inputs.{name}")}


@dataclass(frozen=True)
class ModelInvocation:
    """What a model deployment takes of an invocation's inputs and outputs."""

    input: str
    input_type: DataType | None = None
    exclude: list[str] = field(default_factory=list)
    literals: dict[str, LiteralValue] = field(default_factory=dict)
    output_path: str | None = None
    """The folder the output file goes to; None: the job's own."""
    output_file_name: str | None = None
    """Set when the output is declared as a file (type uri_file): the path's last segment."""


def for_model_deployment(inputs: Mapping[str, NamedInput], outputs: Mapping[str, NamedOutput]) -> ModelInvocation:
    """The one data input (any name), the literal values and the `score` output's location; a second data input or
    another output is refused, naming it."""
    data = {name: given for name, given in inputs.items() if given.is_data}
    if not data:
        raise ValidationError(
            "is required: one data input, e.g. inputs.data.type=uri_folder inputs.data.path=<folder>", field="inputs"
        )
    (input_name, data_input), *more = data.items()
    if more:
        raise ValidationError(
            f"a model deployment takes one data input, and {input_name} is given already", field=f"inputs.{more[0][0]}"
        )
    for name in outputs:
        if name != MODEL_OUTPUT:
            raise ValidationError(
                f"is not an output of a model deployment: its one output is {MODEL_OUTPUT}", field=f"outputs.{name}"
            )
    output = outputs.get(MODEL_OUTPUT, NamedOutput())
    output_path, file_name = output.path, None
    if output_path is not None and output.type == "uri_file":
        output_path, _, file_name = output_path.rstrip("/").rpartition("/")
    return ModelInvocation(
        input=str(data_input.path),
        input_type=cast("DataType | None", data_input.type),  # a data input's type: uri_folder, uri_file or None
        exclude=list(data_input.exclude),
        literals={name: given.default for name, given in inputs.items() if given.default is not None},
        output_path=output_path,
        output_file_name=file_name,
    )


@dataclass(frozen=True)
class PipelineInvocation:
    """What a pipeline deployment takes of an invocation: every input its pipeline declares, by name."""

    data_inputs: dict[str, NamedInput] = field(default_factory=dict)
    literals: dict[str, LiteralValue] = field(default_factory=dict)
    output_paths: dict[str, str | None] = field(default_factory=dict)
    """Every output the pipeline declares; None: a folder of its own under the job."""


def for_pipeline_deployment(
    pipeline: PipelineComponent, inputs: Mapping[str, NamedInput], outputs: Mapping[str, NamedOutput]
) -> PipelineInvocation:
    """The inputs and outputs checked against the pipeline's declarations, defaults filled in. An unknown name,
    a missing required input, or a value or data type that does not fit is refused naming `inputs.NAME`."""
    for name in inputs:
        if name not in pipeline.inputs:
            raise ValidationError(_not_declared("input", pipeline.inputs), field=f"inputs.{name}")
    for name in outputs:
        if name not in pipeline.outputs:
            raise ValidationError(_not_declared("output", pipeline.outputs), field=f"outputs.{name}")
    invocation = PipelineInvocation(
        output_paths={name: outputs[name].path if name in outputs else None for name in pipeline.outputs}
    )
    for name, declared in pipeline.inputs.items():
        field_name = f"inputs.{name}"
        given = inputs.get(name)
        if declared.type in COMPONENT_LITERAL_TYPES:
            if given is not None and given.is_data:
                raise ValidationError(f"is a {declared.type} input: give its value, not data", field=field_name)
            value = given.default if given is not None else declared.default
            if value is not None:
                try:
                    invocation.literals[name] = literal_value(declared.type, value)
                except ValueError as exc:
                    raise ValidationError(str(exc), field=field_name) from None
                if declared.enum is not None and invocation.literals[name] not in declared.enum:
                    allowed = ", ".join(map(str, declared.enum))
                    raise ValidationError(f"must be one of {allowed} (got {value!r})", field=field_name)
        elif given is not None:
            if not given.is_data:
                raise ValidationError(
                    f"is a {declared.type} input: give data (inputs.{name}.path), not the value {given.default!r}",
                    field=field_name,
                )
            if given.type is not None and not fits(given.type, declared.type):
                raise ValidationError(f"is a {declared.type} input; a {given.type} does not fit it", field=field_name)
            invocation.data_inputs[name] = given
        elif isinstance(declared.default, str):
            invocation.data_inputs[name] = NamedInput(path=declared.default)
        if declared.required and name not in invocation.literals and name not in invocation.data_inputs:
            raise ValidationError(f"is required: the pipeline's {declared.type} input", field=field_name)
    return invocation


def refuse_model_options(given: Mapping[str, object], why: str) -> None:
    """Refuse, naming it, the first option of a model deployment's job (an input apart from the map, run settings,
    an output file) given to a pipeline deployment's."""
    for option, value in given.items():
        if value:
            raise ValidationError(why, field=option)


def _not_declared(what: str, declared: Mapping[str, object]) -> str:
    return f"is not an {what} of the pipeline (its {what}s: {', '.join(declared) or 'none'})"
