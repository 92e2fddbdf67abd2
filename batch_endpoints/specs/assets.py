"""Registered assets: model, environment and data asset versions, datastores, and the computes deployments name."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from batch_endpoints.specs.base import AssetName, EndpointName, Spec, Version, now


class RegisteredAsset(Spec):
    """What every registered, immutable asset version carries (models, data assets)."""

    name: AssetName
    version: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now)
    created_by: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


class Model(RegisteredAsset):
    path: str = Field(description="storage URI of the registered copy")


class Environment(Spec):
    """The container a deployment runs in: a registered version (`name:version`, immutable), or one declared
    inline in a deployment. A deployment keeps its own copy (`as_deployed`), so registering a newer version never
    changes it. Locally, scoring runs in the current Python environment.

    `name` is unconstrained here because deployments recorded before environments were registered keep the
    reference as written ("my-env:1"); the service checks a registered name and version as Azure does.
    """

    name: str | None = None
    version: str | None = None
    image: str | None = None
    conda_file: str | None = Field(None, description="the conda file's text")
    pip_requirements: list[str] = Field(default_factory=list)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: str | None = Field(None, description="when the version was registered; none for an inline one")
    created_by: str = ""

    @property
    def ref(self) -> str | None:
        return f"{self.name}:{self.version}" if self.name and self.version else self.name

    def as_deployed(self) -> Environment:
        """What a deployment keeps: the container and its packages, not the registry's bookkeeping."""
        return Environment(
            name=self.name,
            version=self.version,
            image=self.image,
            conda_file=self.conda_file,
            pip_requirements=list(self.pip_requirements),
        )


DataType = Literal["uri_folder", "uri_file"]
# Azure's data modes. Jobs here read and write storage directly, so every mode reads the same; it is accepted so
# that Azure's files load unchanged.
DataMode = Literal["ro_mount", "download", "direct", "rw_mount", "upload", "eval_mount", "eval_download"]


class DataAsset(RegisteredAsset):
    """A registered data asset version (`az ml data create`): a folder or file in storage, referred to by
    invocations as `azureml:name:version` or `name@latest`. Versions are immutable, like models."""

    type: DataType = "uri_folder"
    path: str = Field(description="storage URI of the folder or file")


class Datastore(Spec):
    """A named storage location that paths are written against: `azureml://datastores/<name>/paths/<path>`.

    In the cloud a datastore is an S3 bucket and key prefix. On the local backend it is a folder; a `bucket`
    there says which S3 bucket the folder stands in for, so s3:// URIs written for the cloud read it locally.
    """

    name: AssetName
    bucket: str | None = Field(None, description="the S3 bucket (cloud), or the bucket a local folder stands in for")
    prefix: str = Field("", description="key prefix inside the bucket (cloud)")
    folder: str | None = Field(None, description="the folder (local backend)")
    root: str = Field(description="storage URI the datastore's paths are relative to")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    is_default: bool = False
    created_at: str | None = Field(default_factory=now, description="none for the default datastore")
    created_by: str = ""


class AssetVersion(Spec):
    """The name and version of a registered asset, as Azure accepts them."""

    name: AssetName
    version: Version


ComputeTier = Literal["dedicated", "low_priority"]
ProvisioningState = Literal["Creating", "Succeeded", "Deleting", "Failed"]
# Azure's default for an AmlCompute cluster's idle time, in seconds.
DEFAULT_IDLE_SECONDS = 120


class ComputeDeclaration(Spec):
    """An AmlCompute cluster as a user declares it (Azure's compute YAML, `az ml compute create` flags)."""

    name: EndpointName
    size: str = Field(min_length=1, description="an Azure VM size (Standard_DS3_v2) or an EC2 instance type")
    min_instances: int = Field(0, ge=0)
    max_instances: int = Field(1, ge=1)
    tier: ComputeTier = "dedicated"
    idle_time_before_scale_down: int = Field(DEFAULT_IDLE_SECONDS, ge=0, description="seconds")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("max_instances")
    @classmethod
    def _instances_in_order(cls, max_instances: int, info: ValidationInfo) -> int:
        """Checked on max_instances, so the error names a field (min_instances, declared first, is in `info`)."""
        min_instances = info.data.get("min_instances")
        if min_instances is not None and min_instances > max_instances:
            raise ValueError(f"min_instances ({min_instances}) must not exceed max_instances ({max_instances})")
        return max_instances


class ComputeUpdate(Spec):
    """What an existing compute may change (None: unchanged). Its size is fixed, as in Azure: another size is
    another compute."""

    min_instances: int | None = None
    max_instances: int | None = None
    idle_time_before_scale_down: int | None = None
    description: str | None = None
    tags: dict[str, str] | None = None


class Compute(Spec):
    """A named cluster deployments run on: one of the backend's own (`built_in`, e.g. cpu-cluster), or one a user
    created. `details` is what the backend needs to run on it (on AWS: its job queue and a shard's resources)."""

    name: str
    kind: Literal["cpu", "gpu"]
    type: Literal["amlcompute"] = "amlcompute"
    size: str = ""
    description: str = ""
    min_instances: int = 0
    max_instances: int = 1
    tier: ComputeTier = "dedicated"
    idle_time_before_scale_down: int = DEFAULT_IDLE_SECONDS
    tags: dict[str, str] = Field(default_factory=dict)
    built_in: bool = Field(False, description="one of the backend's own computes: always there, never deleted")
    provisioning_state: ProvisioningState = "Succeeded"
    created_at: str | None = None
    created_by: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
