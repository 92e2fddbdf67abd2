"""Azure's entity classes (`azure.ai.ml.entities`), with Azure's constructor keywords.

Each is a plain record of what the caller wrote. An operation turns it into the mapping Azure's YAML file would
hold (`yaml_mapping`) and hands that to the same loader `bep` uses for the file, so a keyword the project cannot
honour is refused there, naming it, exactly as in YAML. A keyword Azure has and this class lacks is a TypeError
naming it; the keywords marked "accepted, no effect" are Azure's and change nothing here (docs/sdk.md lists them).

Entities that operations return carry `id`: `azureml:<name>:<version>` for a registered asset, which is also how a
deployment or an invocation refers to it (Azure's ids are resource paths; ours are the references our YAML takes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batch_endpoints.azure.constants import AssetTypes

Tags = dict[str, str]


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _text(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


@dataclass(kw_only=True)
class SystemData:
    """Azure's `creation_context`: who made a record and when."""

    created_at: datetime | None = None
    created_by: str | None = None
    last_modified_at: datetime | None = None
    last_modified_by: str | None = None

    @classmethod
    def of(cls, created_at: str, created_by: str, modified_at: str | None, modified_by: str) -> SystemData:
        """From a record's ISO 8601 timestamps; a record never changed was last modified when it was made."""
        return cls(
            created_at=_moment(created_at),
            created_by=created_by,
            last_modified_at=_moment(modified_at or created_at),
            last_modified_by=modified_by or created_by,
        )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------------- assets
@dataclass(kw_only=True)
class _Asset:
    """What Azure's versioned assets share; `id` and `creation_context` are set on registered versions."""

    name: str | None = None
    version: str | None = None
    description: str | None = None
    tags: Tags = field(default_factory=dict)
    # Accepted, no effect: Azure's registry metadata and storage account.
    properties: dict[str, Any] = field(default_factory=dict)
    datastore: str | None = None
    id: str | None = field(default=None, init=False)
    creation_context: SystemData | None = field(default=None, init=False)

    def yaml_mapping(self) -> dict[str, Any]:
        return _without_none(
            {"name": self.name, "version": self.version, "description": self.description, "tags": self.tags}
        )


@dataclass(kw_only=True)
class Model(_Asset):
    type: str = AssetTypes.CUSTOM_MODEL
    path: str | os.PathLike[str] | None = None
    # Accepted, no effect.
    flavors: dict[str, Any] | None = None
    stage: str | None = None
    utc_time_created: str | None = None
    job_name: str | None = None

    def yaml_mapping(self) -> dict[str, Any]:
        return _without_none({**super().yaml_mapping(), "type": self.type, "path": _text(self.path)})


@dataclass(kw_only=True)
class BuildContext:
    """A Docker build context: refused by the loader (build the image, then give it as `image`)."""

    path: str | os.PathLike[str] | None = None
    dockerfile_path: str | None = None


@dataclass(kw_only=True)
class Environment(_Asset):
    image: str | None = None
    conda_file: str | os.PathLike[str] | None = None
    build: BuildContext | None = None
    # Accepted, no effect.
    os_type: str | None = None
    inference_config: dict[str, Any] | None = None

    def yaml_mapping(self) -> dict[str, Any]:
        build = None
        if self.build is not None:
            build = _without_none({"path": _text(self.build.path), "dockerfile_path": self.build.dockerfile_path})
        own = {"image": self.image, "conda_file": _text(self.conda_file), "build": build, "os_type": self.os_type}
        return _without_none({**super().yaml_mapping(), **own})


@dataclass(kw_only=True)
class Data(_Asset):
    path: str | os.PathLike[str] | None = None
    type: str = AssetTypes.URI_FOLDER

    def yaml_mapping(self) -> dict[str, Any]:
        return _without_none({**super().yaml_mapping(), "path": _text(self.path), "type": self.type})


@dataclass(kw_only=True)
class AmlCompute:
    """A compute cluster (Azure's compute YAML, `type: amlcompute`): the backend's own (cpu-cluster, gpu-cluster) or
    one `compute.begin_create_or_update` creates. `size` is an Azure VM size or an EC2 instance type (default
    Azure's, Standard_DS3_v2); `tier: low_priority` runs on Spot instances on AWS."""

    name: str
    description: str | None = None
    size: str | None = None
    tags: Tags = field(default_factory=dict)
    min_instances: int | None = None
    max_instances: int | None = None
    idle_time_before_scale_down: int | None = None
    tier: str | None = None
    # Accepted, no effect: Azure's networking and access settings.
    location: str | None = None
    ssh_public_access_enabled: bool | None = None
    ssh_settings: Any = None
    network_settings: Any = None
    identity: Any = None
    enable_node_public_ip: bool = True
    type: str = field(default="amlcompute", init=False)
    provisioning_state: str | None = field(default=None, init=False)

    def yaml_mapping(self) -> dict[str, Any]:
        return _without_none(
            {
                "name": self.name,
                "type": self.type,
                "size": self.size,
                "min_instances": self.min_instances,
                "max_instances": self.max_instances,
                "idle_time_before_scale_down": self.idle_time_before_scale_down,
                "tier": self.tier,
                "description": self.description,
                "tags": self.tags,
                "location": self.location,
            }
        )


# ---------------------------------------------------------------------------------------------------- jobs' data
@dataclass(kw_only=True)
class Input:
    """A job's input: data (`type` uri_folder or uri_file, `path`) or a literal (`type` string, integer, number or
    boolean, `default`)."""

    type: str = AssetTypes.URI_FOLDER
    path: str | os.PathLike[str] | None = None
    default: Any = None
    # Accepted, no effect: jobs read storage directly, and the deployment declares its literal inputs.
    mode: str | None = None
    optional: bool | None = None
    min: float | None = None
    max: float | None = None
    enum: Any = None
    description: str | None = None
    datastore: str | None = None


@dataclass(kw_only=True)
class Output:
    """A job's output: the folder (uri_folder) or file (uri_file) its predictions go to."""

    type: str = AssetTypes.URI_FOLDER
    path: str | os.PathLike[str] | None = None
    # Accepted, no effect.
    mode: str | None = None
    description: str | None = None
    name: str | None = None
    version: str | None = None


# ---------------------------------------------------------------------------------------------------- endpoints
@dataclass(kw_only=True)
class BatchEndpointDefaults:
    deployment_name: str | None = None


@dataclass(kw_only=True)
class BatchEndpoint:
    name: str | None = None
    description: str | None = None
    tags: Tags = field(default_factory=dict)
    auth_mode: str = "aad_token"
    defaults: BatchEndpointDefaults | dict[str, str] | None = None
    default_deployment_name: str | None = None
    # Accepted, no effect (the last two are set on the endpoints operations return).
    properties: dict[str, Any] = field(default_factory=dict)
    location: str | None = None
    scoring_uri: str | None = None
    openapi_uri: str | None = None
    id: str | None = field(default=None, init=False)
    provisioning_state: str | None = field(default=None, init=False)
    creation_context: SystemData | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Azure takes defaults as a dict or an object, and notebooks set `endpoint.defaults.deployment_name`.
        if isinstance(self.defaults, dict):
            self.defaults = BatchEndpointDefaults(**self.defaults)
        elif self.defaults is None:
            self.defaults = BatchEndpointDefaults(deployment_name=self.default_deployment_name)

    @property
    def default_deployment(self) -> str | None:
        if isinstance(self.defaults, BatchEndpointDefaults) and self.defaults.deployment_name:
            return self.defaults.deployment_name
        return self.default_deployment_name

    def yaml_mapping(self) -> dict[str, Any]:
        default = self.default_deployment
        return _without_none(
            {
                "name": self.name,
                "description": self.description,
                "tags": self.tags,
                "auth_mode": self.auth_mode,
                "defaults": None if default is None else {"deployment_name": default},
            }
        )


# ---------------------------------------------------------------------------------------------------- deployments
@dataclass
class CodeConfiguration:
    code: str | os.PathLike[str] | None = None
    scoring_script: str | os.PathLike[str] | None = None


@dataclass(kw_only=True)
class BatchRetrySettings:
    max_retries: int | None = None
    timeout: int | None = None


@dataclass(kw_only=True)
class ResourceConfiguration:
    instance_count: int | None = None
    # Accepted, no effect: the compute decides the instance type.
    instance_type: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class _RunSettings:
    """Azure's batch run settings; None leaves Azure's default (docs/run-settings.md)."""

    mini_batch_size: int | str | None = None
    instance_count: int | None = None
    max_concurrency_per_instance: int | None = None
    output_action: str | None = None
    output_file_name: str | None = None
    retry_settings: BatchRetrySettings | None = None
    environment_variables: dict[str, str] | None = None
    error_threshold: int | None = None
    logging_level: str | None = None

    def settings_mapping(self) -> dict[str, Any]:
        retry = self.retry_settings
        return _without_none(
            {
                "mini_batch_size": self.mini_batch_size,
                "instance_count": self.instance_count,
                "max_concurrency_per_instance": self.max_concurrency_per_instance,
                "output_action": self.output_action,
                "output_file_name": self.output_file_name,
                "retry_settings": None
                if retry is None
                else _without_none({"max_retries": retry.max_retries, "timeout": retry.timeout}),
                "environment_variables": self.environment_variables,
                "error_threshold": self.error_threshold,
                "logging_level": self.logging_level,
            }
        )


@dataclass(kw_only=True)
class ModelBatchDeploymentSettings(_RunSettings):
    pass


@dataclass(kw_only=True)
class _DeploymentFields:
    name: str
    endpoint_name: str | None = None
    description: str | None = None
    tags: Tags = field(default_factory=dict)
    model: Model | str | None = None
    code_configuration: CodeConfiguration | None = None
    code_path: str | os.PathLike[str] | None = None
    scoring_script: str | os.PathLike[str] | None = None
    environment: Environment | str | None = None
    compute: str | None = None
    resources: ResourceConfiguration | None = None
    # Accepted, no effect.
    properties: dict[str, Any] = field(default_factory=dict)
    provisioning_state: str | None = field(default=None, init=False)
    creation_context: SystemData | None = field(default=None, init=False)

    def deployment_mapping(self) -> dict[str, Any]:
        """Azure's deployment YAML for this deployment, without its run settings."""
        code = self.code_configuration
        if code is None and (self.code_path is not None or self.scoring_script is not None):
            code = CodeConfiguration(code=self.code_path, scoring_script=self.scoring_script)
        return _without_none(
            {
                "name": self.name,
                "endpoint_name": self.endpoint_name,
                "description": self.description,
                "tags": self.tags,
                "type": "model",
                "model": _reference_or_inline(self.model),
                "code_configuration": None
                if code is None
                else _without_none({"code": _text(code.code), "scoring_script": _text(code.scoring_script)}),
                "environment": _reference_or_inline(self.environment),
                "compute": self.compute,
                "resources": None
                if self.resources is None
                else _without_none({"instance_count": self.resources.instance_count}),
            }
        )


@dataclass(kw_only=True)
class BatchDeployment(_DeploymentFields, _RunSettings):
    """Azure's original batch deployment: the run settings are keywords of the deployment itself."""

    def yaml_mapping(self) -> dict[str, Any]:
        return {**self.deployment_mapping(), **self.settings_mapping()}


@dataclass(kw_only=True)
class ModelBatchDeployment(_DeploymentFields):
    """Azure's model deployment (CLI 1.7+): the run settings in `settings`."""

    settings: ModelBatchDeploymentSettings | None = None

    def yaml_mapping(self) -> dict[str, Any]:
        settings = self.settings.settings_mapping() if self.settings is not None else {}
        return {**self.deployment_mapping(), "settings": settings}


def _reference_or_inline(asset: Model | Environment | str | None) -> str | dict[str, Any] | None:
    """A registered asset by its id (azureml:name:version), an unregistered one inline, a string as written."""
    if asset is None or isinstance(asset, str):
        return asset
    return asset.id or asset.yaml_mapping()


@dataclass(kw_only=True)
class PipelineComponentBatchDeployment:
    """Azure's pipeline component deployment: `component` (a registered one's reference, `azureml:name:version` or
    `name@latest`; a component file's path; or a component `load_component` read), or `job_definition`, an earlier
    pipeline job (the job `jobs.create_or_update` returned, or its name), and `settings` as Azure's YAML writes them
    (`default_compute`, `continue_on_step_failure`, `default_datastore`)."""

    name: str
    endpoint_name: str | None = None
    description: str | None = None
    tags: Tags = field(default_factory=dict)
    component: Any = None
    job_definition: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    type: str = field(default="pipeline", init=False)
    provisioning_state: str | None = field(default=None, init=False)
    creation_context: SystemData | None = field(default=None, init=False)

    def yaml_mapping(self) -> dict[str, Any]:
        component = self.component
        if isinstance(component, os.PathLike):
            component = os.fspath(component)
        elif hasattr(component, "model_dump"):  # a component load_component read, or a deployment returned
            component = component.model_dump(mode="json", exclude={"created_at", "created_by"}, exclude_none=True)
        job = self.job_definition
        job_name = getattr(job, "name", job)
        return _without_none(
            {
                "name": self.name,
                "endpoint_name": self.endpoint_name,
                "description": self.description,
                "tags": self.tags,
                "type": "pipeline",
                "component": component,
                "job_definition": None if job_name is None else f"azureml:{str(job_name).removeprefix('azureml:')}",
                "settings": self.settings,
            }
        )
