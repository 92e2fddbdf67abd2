"""Components, as Azure ML declares them (`az ml component create`): a command component runs one command, a
parallel component runs init()/run() over mini-batches, and a pipeline component wires steps of both kinds
together with `${{parent...}}` bindings. A registered component is a versioned, immutable asset.

Field names and defaults are Azure's (commandComponent, parallelComponent and pipelineComponent schemas), so its
files read the same here. The checks that span fields (placeholders in a command, the step graph) live in
batch_endpoints/component_commands.py and batch_endpoints/pipeline_graph.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from batch_endpoints.specs.assets import DataMode, Environment
from batch_endpoints.specs.base import AssetName, Spec, Version
from batch_endpoints.specs.literals import InputName, LiteralValue, literal_value
from batch_endpoints.specs.settings import LoggingLevel, MiniBatchSize, RetrySettings

LITERAL_TYPES = ("string", "number", "integer", "boolean")
# Data types a folder holds: Azure hands each to a command as a folder path, so one may feed another
# (Azure's own training example writes a custom_model output into a uri_folder pipeline output).
FOLDER_TYPES = ("uri_folder", "custom_model", "mlflow_model", "mltable")
DATA_TYPES = (*FOLDER_TYPES, "uri_file")
ComponentInputType = Literal[
    "uri_folder", "uri_file", "mlflow_model", "custom_model", "mltable", "string", "number", "integer", "boolean"
]
ComponentOutputType = Literal["uri_folder", "uri_file", "mltable", "mlflow_model", "custom_model"]

BINDING = re.compile(r"^\$\{\{\s*parent\.(?:(inputs|outputs)\.(\w+)|jobs\.(\w+)\.outputs\.(\w+))\s*\}\}$")


def fits(source: str, target: str) -> bool:
    """Whether a value of type `source` may be bound to an input or output of type `target`: the same type, an
    integer where a number is expected, or one folder type for another."""
    if source == target or (source, target) == ("integer", "number"):
        return True
    return source in FOLDER_TYPES and target in FOLDER_TYPES


class ComponentInput(Spec):
    type: ComponentInputType
    default: LiteralValue | None = None
    optional: bool = False
    description: str = ""
    min: float | None = None
    max: float | None = None
    enum: list[LiteralValue] | None = None
    mode: DataMode | None = None

    @pydantic.model_validator(mode="after")
    def _default_of_its_type(self) -> ComponentInput:
        if self.default is not None:
            if self.type in LITERAL_TYPES:
                self.__dict__["default"] = literal_value(self.type, self.default)
            elif not isinstance(self.default, str):
                raise ValueError(f"the default of a {self.type} input is a path (got {self.default!r})")
        return self

    @property
    def required(self) -> bool:
        return not self.optional and self.default is None


class ComponentOutput(Spec):
    type: ComponentOutputType = "uri_folder"
    description: str = ""
    mode: DataMode | None = None


class ComponentBase(Spec):
    """What every component declares: its name, version, and the inputs and outputs it takes and makes."""

    name: AssetName | None = Field(None, description="none for a component written inline in a pipeline")
    version: Version | None = None
    display_name: str = ""
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    is_deterministic: bool = True
    inputs: dict[InputName, ComponentInput] = Field(default_factory=dict)
    outputs: dict[InputName, ComponentOutput] = Field(default_factory=dict)
    created_at: str | None = Field(None, description="when the version was registered; none for an inline one")
    created_by: str = ""

    @property
    def ref(self) -> str | None:
        return f"{self.name}:{self.version}" if self.name and self.version else self.name


# An environment as a component names it: a reference (`azureml:name@latest`), kept as written and pinned to the
# version it names when a pipeline is deployed (or run as a job), or an inline one.
ComponentEnvironment = str | Environment


class CommandComponent(ComponentBase):
    type: Literal["command"] = "command"
    command: str = Field(min_length=1, description="the command line, with ${{inputs.x}} and ${{outputs.y}}")
    code: str | None = Field(None, description="the code folder: a local path when declared, a storage URI stored")
    environment: ComponentEnvironment | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, Any] = Field(default_factory=dict, description="accepted as Azure writes it")


class ParallelTask(Spec):
    type: Literal["run_function"] = "run_function"
    code: str | None = None
    entry_script: str = Field(min_length=1)
    environment: ComponentEnvironment | None = None
    program_arguments: str = ""
    append_row_to: str | None = Field(None, description="${{outputs.y}}: the output run() results are appended to")


class ParallelResources(Spec):
    instance_count: int = Field(1, ge=1)
    instance_type: str | None = None


class ParallelComponent(ComponentBase):
    type: Literal["parallel"] = "parallel"
    input_data: str = Field(description="${{inputs.x}}: the data input cut into mini-batches")
    mini_batch_size: MiniBatchSize = 10
    task: ParallelTask
    resources: ParallelResources = Field(default_factory=ParallelResources)
    max_concurrency_per_instance: int = Field(1, ge=1)
    error_threshold: int = Field(-1, ge=-1)
    mini_batch_error_threshold: int = Field(-1, ge=-1)
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    logging_level: LoggingLevel = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    partition_keys: list[str] | None = None

    @pydantic.field_validator("logging_level", mode="before")
    @classmethod
    def _azure_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class StepInput(Spec):
    """What a step's input is given: a literal `value`, or data by `path` (a binding such as
    `${{parent.inputs.x}}`, a registered asset, a storage URI)."""

    value: LiteralValue | None = None
    path: str | None = None
    type: ComponentInputType | None = None
    mode: DataMode | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _as_written(cls, value: Any) -> Any:
        if isinstance(value, str) and "${{" in value:
            return {"path": value}
        if isinstance(value, bool | int | float | str):
            return {"value": value}
        return value

    @property
    def binding(self) -> tuple[str, ...] | None:
        return binding(self.path)


class StepOutput(Spec):
    """Where a step's output goes: a pipeline output (`${{parent.outputs.z}}`), or a default path of its own."""

    path: str | None = None
    type: ComponentOutputType | None = None
    mode: DataMode | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _as_written(cls, value: Any) -> Any:
        if value is None:
            return {}
        return {"path": value} if isinstance(value, str) else value

    @property
    def binding(self) -> tuple[str, ...] | None:
        return binding(self.path)


def binding(text: str | None) -> tuple[str, ...] | None:
    """("inputs", x), ("outputs", z) or ("jobs", step, y) for `${{parent.inputs.x}}`, `${{parent.outputs.z}}` or
    `${{parent.jobs.step.outputs.y}}`; None for anything else."""
    match = BINDING.fullmatch(text or "")
    if match is None:
        return None
    scope, name, step, output = match.groups()
    return (scope, name) if scope else ("jobs", step, output)


PARALLEL_OVERRIDES = (
    "mini_batch_size",
    "max_concurrency_per_instance",
    "error_threshold",
    "mini_batch_error_threshold",
    "retry_settings",
    "logging_level",
)

StepComponent = CommandComponent | ParallelComponent
# What a step's `component:` holds when it is written inline: told apart by its `type`.
_InlineStepComponent = Annotated[StepComponent, Field(discriminator="type")]


class PipelineStep(Spec):
    type: Literal["command", "parallel"]
    component: str | _InlineStepComponent = Field(description="a registered component, name:version, or one inline")
    inputs: dict[InputName, StepInput] = Field(default_factory=dict)
    outputs: dict[InputName, StepOutput] = Field(default_factory=dict)
    display_name: str = ""
    compute: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, Any] = Field(default_factory=dict, description="accepted as Azure writes it")
    # A parallel step may override its component's run settings, as Azure's parallel nodes do.
    mini_batch_size: MiniBatchSize | None = None
    max_concurrency_per_instance: int | None = Field(None, ge=1)
    error_threshold: int | None = Field(None, ge=-1)
    mini_batch_error_threshold: int | None = Field(None, ge=-1)
    retry_settings: RetrySettings | None = None
    logging_level: LoggingLevel | None = None

    @pydantic.model_validator(mode="before")
    @classmethod
    def _inline_of_the_step_type(cls, value: Any) -> Any:
        # Azure's inline components may leave out `type`: the step's type says what they are.
        if isinstance(value, dict) and isinstance(value.get("component"), dict):
            value = {**value, "component": {"type": value.get("type"), **value["component"]}}
        if isinstance(value, dict) and isinstance(value.get("logging_level"), str):
            value = {**value, "logging_level": value["logging_level"].lower()}
        return value

    @pydantic.model_validator(mode="after")
    def _run_settings_on_parallel_steps(self) -> PipelineStep:
        if self.type != "parallel":
            for name in PARALLEL_OVERRIDES:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is a parallel step's setting; this step's type is {self.type}")
        return self


class PipelineComponent(ComponentBase):
    type: Literal["pipeline"] = "pipeline"
    jobs: dict[InputName, PipelineStep] = Field(min_length=1)


Component = Annotated[CommandComponent | ParallelComponent | PipelineComponent, Field(discriminator="type")]
ComponentT = CommandComponent | ParallelComponent | PipelineComponent
COMPONENT_ADAPTER: pydantic.TypeAdapter[ComponentT] = pydantic.TypeAdapter(Component)


CodeChange = Callable[[str, str], str]


def with_code(component: ComponentT, change: CodeChange) -> ComponentT:
    """A copy of the component whose code folders (its own, or its inline steps') are `change(field, folder)`:
    how the service stores them, the API checks where they are, and the SDK uploads them."""
    if not isinstance(component, PipelineComponent):
        return _step_with_code(component, change, prefix="")
    jobs = {
        name: step
        if isinstance(step.component, str)
        else step.model_copy(update={"component": _step_with_code(step.component, change, f"jobs.{name}.component.")})
        for name, step in component.jobs.items()
    }
    return component.model_copy(update={"jobs": jobs})


def _step_with_code(component: StepComponent, change: CodeChange, prefix: str) -> StepComponent:
    if isinstance(component, CommandComponent):
        code = component.code and change(f"{prefix}code", component.code)
        return component.model_copy(update={"code": code})
    task = component.task
    code = task.code and change(f"{prefix}task.code", task.code)
    return component.model_copy(update={"task": task.model_copy(update={"code": code})})
