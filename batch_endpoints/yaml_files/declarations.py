"""What a file declares, validated, with its local paths made absolute: what the loaders return and the service
takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from batch_endpoints import specs
from batch_endpoints.specs.components import ComponentT
from batch_endpoints.specs.invocation import NamedInput, NamedOutput

DEFAULT_COMPUTE: str = specs.Deployment.model_fields["compute"].default


@dataclass(frozen=True)
class ModelReference:
    """A registered model (`name` + `version`, or `name` + label "latest"), or an inline local `path`."""

    name: str | None = None
    version: str | None = None
    label: Literal["latest"] | None = None
    path: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_inline(self) -> bool:
        return self.path is not None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        return f"{self.name}@{self.label}" if self.label else f"{self.name}:{self.version}"


@dataclass(frozen=True)
class EnvironmentReference:
    """A registered environment: `name` + `version`, or `name` + label "latest". The service resolves it when a
    deployment is created or updated, and the deployment keeps the version it found."""

    name: str
    version: str | None = None
    label: Literal["latest"] | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.label}" if self.label else f"{self.name}:{self.version}"


@dataclass(frozen=True)
class DeploymentDeclaration:
    """A deployment as declared: a model deployment's model, code and run settings, or a pipeline deployment's
    component and pipeline settings (model, code and scoring_script None). `code` is an absolute local folder or
    a storage URI (s3://...); `scoring_script` is relative to it; both None for an MLflow model scored without
    code. `environment` is inline, or a reference to a registered version."""

    name: str
    endpoint_name: str
    model: ModelReference | None
    code: str | None
    scoring_script: str | None
    environment: specs.Environment | EnvironmentReference = field(default_factory=specs.Environment)
    compute: str = DEFAULT_COMPUTE
    settings: specs.RunSettings = field(default_factory=specs.RunSettings)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, specs.LiteralInput] = field(default_factory=dict)
    component: ComponentT | str | None = None
    """A pipeline deployment's pipeline component: inline (from its file or written in the deployment), or a
    registered one's reference (name:version, name@latest)."""
    pipeline_settings: specs.PipelineSettings | None = None
    job_definition: str | None = None
    """A pipeline deployment made from an earlier pipeline job: the job's name."""


@dataclass(frozen=True)
class PipelineJobDeclaration:
    """A standalone pipeline job as declared (Azure's pipeline-job.yml): its pipeline component (inline, or a
    registered one's reference), its inputs and outputs as an invocation names them, and its settings."""

    component: ComponentT | str
    invocation: InvokeDeclaration
    settings: specs.PipelineSettings
    name: str | None = None
    description: str = ""


@dataclass(frozen=True)
class DataDeclaration:
    """A data asset version as declared (Azure's data.yml): `path` is an absolute local path or a reference to
    data in storage (s3://..., azureml://datastores/<name>/paths/<path>)."""

    name: str
    path: str
    type: specs.DataType = "uri_folder"
    version: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelDeclaration:
    """A model version as declared (Azure's model YAML): `path` is an absolute local path or a storage URI."""

    name: str
    path: str
    type: str = "custom_model"
    version: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InvokeDeclaration:
    """An invocation as Azure's `az ml batch-endpoint invoke --file/--set` gives it (inputs.yml,
    inputs-and-outputs.yml, `--set inputs.NAME.path=...`). Paths are absolute local paths or references to data in
    storage, as `local_or_reference` returns them."""

    inputs: dict[str, NamedInput] = field(default_factory=dict)
    outputs: dict[str, NamedOutput] = field(default_factory=dict)
    experiment_name: str | None = None
    display_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
