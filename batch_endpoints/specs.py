"""What users declare and what the system records: models, environments, endpoints, deployments, jobs.

Field names, defaults and limits are Azure ML's (batch endpoints, CLI v2), so specs written for Azure read the
same here. Every model validates on construction; `parse` turns pydantic's errors into our ValidationError
naming the first field at fault.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from batch_endpoints.errors import ValidationError

ENDPOINT_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]+[a-zA-Z0-9]$")
# Azure limits endpoint names to 3-32 characters; deployment names follow the same pattern.
NAME_MAX = 32
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _endpoint_like_name(value: str) -> str:
    if len(value) > NAME_MAX or not ENDPOINT_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} must be 3-{NAME_MAX} characters, start with a letter, end with a letter or digit, "
            "and contain only letters, digits and '-'"
        )
    return value


def _asset_name(value: str) -> str:
    if not ASSET_NAME.fullmatch(value):
        raise ValueError(f"{value!r} must start with a letter or digit and contain only letters, digits, '_.-'")
    return value


def _version(value: str) -> str:
    if not VERSION.fullmatch(value):
        raise ValueError(f"{value!r} must start with a letter or digit and contain only letters, digits, '_.-'")
    return value


EndpointName = Annotated[str, pydantic.AfterValidator(_endpoint_like_name)]
AssetName = Annotated[str, pydantic.AfterValidator(_asset_name)]
Version = Annotated[str, pydantic.AfterValidator(_version)]


class RetrySettings(Spec):
    max_retries: int = Field(3, ge=0, le=100)
    timeout: int = Field(30, gt=0, le=7 * 24 * 3600, description="seconds allowed for one run() call")


class OutputAction(StrEnum):
    APPEND_ROW = "append_row"
    SUMMARY_ONLY = "summary_only"


LoggingLevel = Literal["debug", "info", "warning", "error", "critical"]


class RunSettings(Spec):
    """How a deployment scores: Azure's batch deployment settings with Azure's defaults."""

    mini_batch_size: int = Field(10, gt=0, le=1_000_000)
    instance_count: int = Field(1, gt=0, le=1000)
    max_concurrency_per_instance: int = Field(1, gt=0, le=256)
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    error_threshold: int = Field(-1, ge=-1, description="failed files tolerated; -1 = any number")
    output_action: OutputAction = OutputAction.APPEND_ROW
    output_file_name: str = "predictions.csv"
    logging_level: LoggingLevel = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("output_file_name")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value in {".", ".."}:
            raise ValueError(f"{value!r} must be a plain file name, without folders")
        return value

    @field_validator("logging_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class InvokeOverrides(Spec):
    """What one invocation may change of its deployment's settings (Azure's per-job overrides)."""

    mini_batch_size: int | None = Field(None, gt=0, le=1_000_000)
    instance_count: int | None = Field(None, gt=0, le=1000)
    max_retries: int | None = Field(None, ge=0, le=100)
    timeout: int | None = Field(None, gt=0, le=7 * 24 * 3600)
    error_threshold: int | None = Field(None, ge=-1)
    output_file_name: str | None = None

    def apply(self, settings: RunSettings) -> RunSettings:
        retry = settings.retry_settings.model_copy(
            update={
                k: v for k, v in {"max_retries": self.max_retries, "timeout": self.timeout}.items() if v is not None
            }
        )
        changes = {
            k: v
            for k, v in {
                "mini_batch_size": self.mini_batch_size,
                "instance_count": self.instance_count,
                "error_threshold": self.error_threshold,
                "output_file_name": self.output_file_name,
            }.items()
            if v is not None
        }
        # Validate through the model so an override obeys the same rules as a deployment setting.
        return parse(RunSettings, {**settings.model_dump(), **changes, "retry_settings": retry.model_dump()})


class Model(Spec):
    name: AssetName
    version: str
    path: str = Field(description="storage URI of the registered copy")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now)
    created_by: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


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


class AssetVersion(Spec):
    """The name and version of a registered asset, as Azure accepts them."""

    name: AssetName
    version: Version


class Compute(Spec):
    name: str
    kind: Literal["cpu", "gpu"]
    description: str = ""
    max_instances: int = 1
    details: dict[str, Any] = Field(default_factory=dict)


class Endpoint(Spec):
    name: EndpointName
    description: str = ""
    auth_mode: Literal["aws_iam"] = "aws_iam"
    default_deployment: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    scoring_uri: str = ""
    created_at: str = Field(default_factory=now)
    created_by: str = ""

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


class Deployment(Spec):
    name: EndpointName
    endpoint_name: EndpointName
    description: str = ""
    model: str = Field(description="registered model reference, name:version")
    code_configuration: CodeConfiguration
    environment: Environment = Field(default_factory=Environment)
    compute: str = "cpu-cluster"
    settings: RunSettings = Field(default_factory=RunSettings)
    tags: dict[str, str] = Field(default_factory=dict)
    compute_handle: str = Field("", description="the compute's registration of this deployment")
    created_at: str = Field(default_factory=now)
    updated_at: str = Field(default_factory=now)
    created_by: str = ""


class JobStatus(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_final(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}


class JobInput(Spec):
    uri: str
    type: Literal["uri_folder", "uri_file"] = "uri_folder"


class JobCounts(Spec):
    """Totals fixed by the plan, then the outcome counted by finalize from the mini-batch results."""

    files: int = 0
    mini_batches: int = 0
    shards: int = 0
    files_succeeded: int = 0
    files_failed: int = 0
    mini_batches_failed: int = 0
    rows: int = 0


class Job(Spec):
    """One invocation. `deployment` is a snapshot: later edits to the deployment never change a running job."""

    id: str
    endpoint_name: str
    deployment_name: str
    deployment: Deployment
    model_path: str
    input: JobInput
    output_uri: str | None = Field(description="the merged output file; None for summary_only")
    scratch_uri: str
    settings: RunSettings
    status: JobStatus = JobStatus.QUEUED
    counts: JobCounts = Field(default_factory=JobCounts)
    error: str | None = None
    execution: str = ""
    created_at: str = Field(default_factory=now)
    started_at: str | None = None
    ended_at: str | None = None
    created_by: str = ""
    rerun_of: str | None = Field(None, description="the job whose failed (or all) files this job scores again")
    resumes: int = Field(0, description="how often the job was resumed after its workflow stopped")


# Live progress counters, bumped by runners as mini-batches finish. Finalize recounts the truth from results.
PROGRESS_COUNTERS = ("mini_batches_done", "mini_batches_failed", "files_succeeded", "files_failed")

SpecT = TypeVar("SpecT", bound=BaseModel)


def parse(model: type[SpecT], data: Any, *, prefix: str = "") -> SpecT:
    """Validate `data` as `model`, raising our ValidationError that names the first field at fault."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, prefix=prefix) from None


def validation_error(exc: pydantic.ValidationError, *, prefix: str = "") -> ValidationError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    elif "input" in first and first["type"] not in {"value_error"}:
        message = f"{message} (got {first['input']!r})"
    return ValidationError(message, field=field or None)
