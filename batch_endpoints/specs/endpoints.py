"""Endpoints and their deployments: the model, scoring code, environment, compute, declared inputs and run
settings a deployment records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field, field_validator

from batch_endpoints.specs.assets import Environment
from batch_endpoints.specs.base import MAX_ALLOWED_PREFIXES, EndpointName, Spec, StoragePrefix, now
from batch_endpoints.specs.components import PipelineComponent
from batch_endpoints.specs.literals import INPUT_NAME, INTEGER_TEXT, InputName, InputType, LiteralValue, literal_value
from batch_endpoints.specs.pipelines import PipelineSettings
from batch_endpoints.specs.settings import RunSettings

# Where an endpoint's jobs may read and write (batch_endpoints.data_access): the one type endpoint.yml, the API's
# bodies and the endpoint's record give these fields, so all three check them alike.
AllowedPrefixes = Annotated[list[StoragePrefix], Field(max_length=MAX_ALLOWED_PREFIXES)]
ALLOWED_INPUTS = (
    "s3:// prefixes (locally, absolute folders) this endpoint's jobs may read; they narrow the system's own list, "
    "never widen it; empty: that list"
)
ALLOWED_OUTPUTS = (
    "s3:// prefixes (locally, absolute folders) this endpoint's jobs may write; they narrow the system's own list, "
    "never widen it; empty: that list"
)


class Endpoint(Spec):
    name: EndpointName
    description: str = ""
    auth_mode: Literal["aws_iam"] = "aws_iam"
    default_deployment: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    allowed_inputs: AllowedPrefixes = Field(default_factory=list, description=ALLOWED_INPUTS)
    allowed_outputs: AllowedPrefixes = Field(default_factory=list, description=ALLOWED_OUTPUTS)
    scoring_uri: str = ""
    created_at: str = Field(default_factory=now)
    created_by: str = ""
    updated_at: str | None = Field(None, description="when it was last changed (created, updated, default switched)")
    updated_by: str = Field("", description="who changed it last")

    @field_validator("auth_mode", mode="before")
    @classmethod
    def _azure_auth_modes(cls, value: Any) -> Any:
        # Azure's token modes map onto the one mode we have: SigV4 with the caller's IAM identity.
        return "aws_iam" if value in {"aad_token", "aml_token", "key"} else value


class CodeConfiguration(Spec):
    code: str = Field(description="storage URI of the registered copy of the code folder")
    scoring_script: str

    @field_validator("scoring_script")
    @classmethod
    def _relative_script(cls, value: str) -> str:
        if not value.endswith(".py") or value.startswith(("/", "\\")) or ".." in value.split("/"):
            raise ValueError(f"{value!r} must be a .py file inside the code folder")
        return value


class LiteralInput(Spec):
    """A value a deployment accepts at invoke time (`--set inputs.NAME=VALUE`, the API's `inputs` map)."""

    type: InputType = "string"
    default: LiteralValue | None = None
    required: bool = False
    description: str = ""

    @pydantic.model_validator(mode="after")
    def _default_of_its_type(self) -> LiteralInput:
        if self.default is not None:
            self.__dict__["default"] = literal_value(self.type, self.default)
        return self


class Deployment(Spec):
    name: EndpointName
    endpoint_name: EndpointName
    description: str = ""
    type: Literal["model", "pipeline"] = "model"
    model: str | None = Field(None, description="registered model reference, name:version; none for a pipeline")
    code_configuration: CodeConfiguration | None = Field(
        None, description="none: an MLflow model scored by the built-in scorer"
    )
    inputs: dict[InputName, LiteralInput] = Field(default_factory=dict, description="literal inputs it accepts")
    environment: Environment = Field(default_factory=Environment)
    compute: str = "cpu-cluster"
    settings: RunSettings = Field(default_factory=RunSettings)
    tags: dict[str, str] = Field(default_factory=dict)
    component: PipelineComponent | None = Field(
        None, description="a pipeline deployment's pipeline, its steps' components pinned and written inline"
    )
    component_ref: str | None = Field(None, description="the registered pipeline component it runs, name:version")
    pipeline_settings: PipelineSettings | None = None
    compute_handle: str = Field("", description="the compute's registration of this deployment")
    step_handles: dict[str, str] = Field(
        default_factory=dict,
        description="a pipeline's command steps that run in an image of their own, with the compute's registration "
        "of that image; the other steps run on compute_handle",
    )
    created_at: str = Field(default_factory=now)
    updated_at: str = Field(default_factory=now)
    created_by: str = ""
    updated_by: str = Field("", description="who created or updated it last")

    @pydantic.model_validator(mode="after")
    def _what_its_type_runs(self) -> Deployment:
        if self.type == "model" and self.model is None:
            raise ValueError("a model deployment names its model")
        if self.type == "pipeline" and (self.component is None or self.pipeline_settings is None):
            raise ValueError("a pipeline deployment has a component and its settings")
        return self


__all__ = ["INPUT_NAME", "INTEGER_TEXT", "InputName", "InputType", "LiteralValue", "literal_value"]
