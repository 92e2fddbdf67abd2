"""The schemas of Azure ML CLI v2 files (endpoint, deployment, data asset, invoke), read as Azure writes them.

Keys Azure knows but that mean nothing here (`$schema`, `resources.instance_type`, ...) are accepted and ignored;
any other key is an error, because a typo such as `mini_batch_szie` silently falling back to the default is worse
than a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from batch_endpoints import specs
from batch_endpoints.specs.invocation import NamedInput, NamedOutput
from batch_endpoints.yaml_files.declarations import DEFAULT_COMPUTE
from batch_endpoints.yaml_files.references import AZURE_PREFIX

# The run settings Azure's pre-1.7 layout puts at the top level of deployment.yml. `instance_count` is not
# among them: Azure keeps it under `resources:` in both layouts.
FLAT_SETTINGS = (
    "mini_batch_size",
    "max_concurrency_per_instance",
    "retry_settings",
    "error_threshold",
    "output_action",
    "output_file_name",
    "logging_level",
    "environment_variables",
    "input_format",
    "output_format",
    "keep_input_columns",
    "max_mini_batches_per_worker",
    "max_worker_memory_mb",
    "init_timeout",
)


ModelType = Literal["custom_model", "mlflow_model", "triton_model"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)


def text_values(value: Any) -> Any:
    # YAML reads `epochs: 10` as an int; Azure's tags and environment variables are strings.
    if isinstance(value, Mapping):
        return {k: scalar_text(v) for k, v in value.items()}
    return value


def scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _version_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _azure_reference(value: Any) -> Any:
    return value.removeprefix(AZURE_PREFIX) if isinstance(value, str) else value


_Tags = Annotated[dict[str, str], pydantic.BeforeValidator(text_values)]
# `--set description=2024` or `--description 2024` reads as a number; a description is text whatever it says.
_Text = Annotated[str, pydantic.BeforeValidator(scalar_text)]


class _AzureFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str | None = Field(None, alias="$schema")


class EndpointDefaults(_AzureFile):
    deployment_name: specs.EndpointName | None = None


class EndpointFile(_AzureFile):
    """Azure's batch endpoint schema (endpoint.yml); the API's body for an endpoint is the same, as JSON."""

    name: specs.EndpointName
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    auth_mode: str = Field("aad_token", description="Azure's modes are accepted; every endpoint uses AWS IAM")
    defaults: EndpointDefaults | None = Field(
        None, description="the default deployment; only for an endpoint that exists and has that deployment"
    )
    # Not Azure's: where this endpoint's jobs may read and write (batch_endpoints.data_access).
    allowed_inputs: specs.AllowedPrefixes = Field(default_factory=list, description=specs.ALLOWED_INPUTS)
    allowed_outputs: specs.AllowedPrefixes = Field(default_factory=list, description=specs.ALLOWED_OUTPUTS)


class EndpointPatch(BaseModel):
    """The fields of endpoint.yml an update may change (the API's PATCH body): one not given (or null) stays as it is;
    an empty allow-list removes the endpoint's narrowing."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    tags: dict[str, str] | None = None
    defaults: EndpointDefaults | None = None
    allowed_inputs: specs.AllowedPrefixes | None = Field(
        None, description=f"{specs.ALLOWED_INPUTS}; [] removes the narrowing"
    )
    allowed_outputs: specs.AllowedPrefixes | None = Field(
        None, description=f"{specs.ALLOWED_OUTPUTS}; [] removes the narrowing"
    )

    @classmethod
    def default_deployment(cls, name: str) -> EndpointPatch:
        return cls(defaults=EndpointDefaults(deployment_name=name))

    @classmethod
    def every_field_of(cls, endpoint: specs.Endpoint) -> EndpointPatch:
        """What gives an endpoint that exists every field `endpoint` declares (its default deployment when it
        names one)."""
        document = endpoint_document(endpoint)
        return cls.model_validate({key: value for key, value in document.items() if key in cls.model_fields})

    def updates(self) -> dict[str, Any]:
        """The given fields, as the endpoint's record names them."""
        given = self.model_dump(exclude_none=True, exclude={"defaults"})
        if self.defaults is not None and self.defaults.deployment_name is not None:
            given["default_deployment"] = self.defaults.deployment_name
        return given


def endpoint_document(endpoint: specs.Endpoint) -> dict[str, Any]:
    """The endpoint as endpoint.yml declares it: what a client sends as the API's body to create it, or to give it
    these fields. Not validated here: the API checks the body, and names the field at fault."""
    document = endpoint.model_dump(include=set(EndpointFile.model_fields))
    if endpoint.default_deployment:
        document["defaults"] = {"deployment_name": endpoint.default_deployment}
    return document


class Resources(_AzureFile):
    # Azure sizes instances by VM type; here the compute decides the instance type. instance_count has been
    # moved into the run settings before this model sees the mapping.
    instance_type: str | None = Field(None, description="accepted and ignored: the compute decides")
    properties: dict[str, Any] = Field(default_factory=dict)


class CodeConfiguration(_AzureFile):
    code: str = Field(
        description="the code folder: in a file, relative to it; in the API's body, already in storage",
        examples=["s3://bucket/uploads/code/7c2a/"],
    )
    scoring_script: str = Field(examples=["score.py"])


class InlineModel(_AzureFile):
    """Azure's model schema, inline in a deployment: only a local `path` makes sense here."""

    path: str
    name: specs.AssetName | None = None
    version: Annotated[str | None, pydantic.BeforeValidator(_version_text)] = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: ModelType = "custom_model"
    properties: dict[str, Any] = Field(default_factory=dict)
    stage: str | None = None


class InlineEnvironment(_AzureFile):
    """Azure's environment schema, inline in a deployment, plus our `pip_requirements`."""

    name: str | None = None
    version: Annotated[str | None, pydantic.BeforeValidator(_version_text)] = None
    image: str | None = None
    conda_file: str | None = None
    pip_requirements: list[str] = Field(default_factory=list)
    build: Any = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    os_type: Literal["linux", "Linux"] = "linux"
    inference_config: dict[str, Any] = Field(default_factory=dict)


class ModelFile(InlineModel):
    """Azure's model YAML (`az ml model create --file`): a model version of its own, so it names itself."""

    name: specs.AssetName


class EnvironmentFile(InlineEnvironment):
    """Azure's environment YAML (`az ml environment create --file`)."""

    name: specs.AssetName


class DeploymentFile(_AzureFile):
    name: specs.EndpointName
    endpoint_name: specs.EndpointName
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: Literal["model"] = "model"
    model: Any
    # None: an MLflow model, scored by the built-in scorer (Azure's no-code deployment).
    code_configuration: CodeConfiguration | None = Field(None, description="omit for an MLflow model")
    inputs: dict[specs.InputName, specs.LiteralInput] = Field(
        default_factory=dict, description="literal inputs accepted at invoke"
    )
    environment: Any = None
    compute: Annotated[specs.AssetName, pydantic.BeforeValidator(_azure_reference)] = Field(
        DEFAULT_COMPUTE, examples=["cpu-cluster", "gpu-cluster"]
    )
    resources: Resources = Field(default_factory=Resources)
    properties: dict[str, Any] = Field(default_factory=dict)


class ComputeFile(_AzureFile):
    """Azure's compute YAML (`az ml compute create --file`) for an AmlCompute cluster. `location` is accepted and
    ignored: a stack's computes are in the stack's region. Azure's other keys (ssh, network settings, identity)
    have no meaning here and are refused."""

    name: specs.EndpointName
    type: Literal["amlcompute"]
    # Azure's default when a cluster is created without one (`az ml compute create -n NAME --type amlcompute`).
    size: str = "Standard_DS3_v2"
    min_instances: int = 0
    max_instances: int = 1
    tier: specs.ComputeTier = "dedicated"
    idle_time_before_scale_down: int = specs.DEFAULT_IDLE_SECONDS
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    location: str | None = None


class PipelineDeploymentFile(_AzureFile):
    """Azure's pipeline component deployment (`type: pipeline`): a pipeline component and where its steps run."""

    name: specs.EndpointName
    endpoint_name: specs.EndpointName
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: Literal["pipeline"]
    component: Any = Field(
        description="a component file, a mapping, or a registered component (azureml:name:version); none when "
        "made from a job"
    )
    job_definition: str | None = Field(
        None, description="an earlier pipeline job (azureml:JOB_NAME) whose pipeline, inputs and settings it takes"
    )
    settings: specs.PipelineSettings = Field(default_factory=specs.PipelineSettings)
    properties: dict[str, Any] = Field(default_factory=dict)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _component_or_job(cls, value: Any) -> Any:
        # Without a job_definition, a missing component is the error to report, named `component`.
        if isinstance(value, Mapping) and value.get("job_definition") is not None:
            return {"component": None, **value}
        return value

    @pydantic.field_validator("settings", mode="before")
    @classmethod
    def _azure_compute_reference(cls, value: Any) -> Any:
        return _pipeline_settings(value)


def _pipeline_settings(value: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(value.get("default_compute"), str):
        return {**value, "default_compute": _azure_reference(value["default_compute"])}
    return value


class PipelineJobFile(_AzureFile):
    """Azure's standalone pipeline job (pipelineJob schema, `az ml job create`): a pipeline component (`component:`)
    or its steps (`jobs:`), the job's inputs and outputs by name, and where its steps run."""

    type: Literal["pipeline"]
    name: specs.EndpointName | None = Field(None, description="the job's name; default: a new one")
    display_name: str | None = None
    description: _Text = ""
    experiment_name: specs.AssetName | None = None
    tags: _Tags = Field(default_factory=dict)
    compute: str | None = Field(None, description="where steps without a compute run (settings.default_compute)")
    settings: specs.PipelineSettings | None = None
    component: Any = None
    jobs: Any = None
    inputs: dict[specs.InputName, NamedInput] = Field(default_factory=dict)
    outputs: dict[specs.InputName, NamedOutput] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)

    @pydantic.field_validator("settings", mode="before")
    @classmethod
    def _azure_compute_reference(cls, value: Any) -> Any:
        return _pipeline_settings(value)

    @pydantic.field_validator("compute", mode="before")
    @classmethod
    def _azure_compute(cls, value: Any) -> Any:
        return _azure_reference(value)


class DataFile(_AzureFile):
    """Azure's data asset schema (data.yml). mltable assets are Azure's tabular format, which has no reader here."""

    name: specs.AssetName
    version: Annotated[str | None, pydantic.BeforeValidator(_version_text)] = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: specs.DataType = "uri_folder"
    path: str
    properties: dict[str, Any] = Field(default_factory=dict)


class InvokeFile(_AzureFile):
    """Azure's batch invoke file: the job's inputs and outputs by name, and what names the job."""

    inputs: dict[specs.InputName, NamedInput] = Field(default_factory=dict)
    outputs: dict[specs.InputName, NamedOutput] = Field(default_factory=dict)
    experiment_name: specs.AssetName | None = None
    display_name: str | None = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
