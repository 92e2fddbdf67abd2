"""What users declare and what the system records: models, environments, endpoints, deployments, jobs.

Field names, defaults and limits are Azure ML's (batch endpoints, CLI v2), so specs written for Azure read the
same here. Every model validates on construction; `parse` turns pydantic's errors into our ValidationError
naming the first field at fault.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from batch_endpoints.errors import ValidationError

ENDPOINT_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]+[a-zA-Z0-9]$")
# Azure limits endpoint names to 3-32 characters; deployment names follow the same pattern.
NAME_MAX = 32
TAG_MAX = 256
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# S3's bucket naming rules (3-63 lowercase letters, digits, '.' and '-'), and S3's 1,024-byte key limit.
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
STORAGE_PREFIX_MAX = 1024
MAX_ALLOWED_PREFIXES = 100
# An input's exclude patterns: few and short, as a job record is one DynamoDB item (400 KB).
MAX_EXCLUDE_PATTERNS = 100
EXCLUDE_PATTERN_MAX = 1024


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


def _storage_prefix(value: str) -> str:
    """An s3://bucket[/prefix] URI or an absolute local path (file:// accepted), without '.' or '..' segments: a
    prefix that says exactly where it is, so a check against it cannot be led elsewhere."""
    shown = value if len(value) <= 80 else f"{value[:80]}..."
    expected = f"{shown!r} must be an s3://bucket/prefix URI or an absolute local path, without '.' or '..' segments"
    if not value or len(value) > STORAGE_PREFIX_MAX or any(ord(c) < 32 or c == "\\" for c in value):
        raise ValueError(f"{expected}, at most {STORAGE_PREFIX_MAX} characters")
    if value.startswith("s3://"):
        bucket, _, key = value.removeprefix("s3://").partition("/")
        where, segments = S3_BUCKET.fullmatch(bucket) is not None, key.split("/")
    else:
        path = value.removeprefix("file://")
        where, segments = path.startswith("/"), path.split("/")
    if not where or any(segment in {".", ".."} for segment in segments):
        raise ValueError(expected)
    return value


EndpointName = Annotated[str, pydantic.AfterValidator(_endpoint_like_name)]
StoragePrefix = Annotated[str, pydantic.AfterValidator(_storage_prefix)]
AssetName = Annotated[str, pydantic.AfterValidator(_asset_name)]
Version = Annotated[str, pydantic.AfterValidator(_version)]


MAX_TIMEOUT_S = 7 * 24 * 3600
DEFAULT_INIT_TIMEOUT_S = 600


class RetrySettings(Spec):
    max_retries: int = Field(3, ge=0, le=100)
    timeout: int = Field(30, gt=0, le=MAX_TIMEOUT_S, description="seconds allowed for one run() call")


class OutputAction(StrEnum):
    APPEND_ROW = "append_row"
    SUMMARY_ONLY = "summary_only"


LoggingLevel = Literal["debug", "info", "warning", "error", "critical"]
# How inputs are read: "auto" reads CSV, Parquet and JSON lines files as tables (by extension) and passes
# anything else as file paths; "files" always passes paths; a format reads every input file as that format.
InputFormat = Literal["auto", "files", "csv", "parquet", "jsonl"]
# Azure writes append_row output as text whatever the name says; a name without an extension stays CSV.
OUTPUT_FORMATS = {"": "csv", ".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
OutputFormat = Literal["auto", "csv", "parquet", "jsonl"]
# A tabular mini-batch's size in bytes, as Azure writes it for tabular inputs: "10MB", "512KB", "1GB".
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)\s*$", re.IGNORECASE)
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
MAX_MINI_BATCH_ROWS = 100_000_000


def size_in_bytes(text: str) -> int:
    match = SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} must be a count (rows or files) or a size such as '10MB', '512KB' or '1GB'")
    size = int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])
    if size <= 0:
        raise ValueError(f"{text!r} must be a size greater than 0")
    return size


def _mini_batch_size(value: int | str) -> int | str:
    if isinstance(value, str) and not value.strip().isdigit():
        size_in_bytes(value)
        return value.strip().upper()
    value = int(value)
    if value <= 0:
        raise ValueError(f"Input should be greater than 0 (got {value})")
    if value > MAX_MINI_BATCH_ROWS:
        raise ValueError(f"Input should be at most {MAX_MINI_BATCH_ROWS:,} (got {value})")
    return value


MiniBatchSize = Annotated[int | str, pydantic.AfterValidator(_mini_batch_size)]

# A job's shards run as the child executions of one Distributed Map, MaxConcurrency = instance_count, and a
# Distributed Map runs at most 10,000 child executions at once (docs.aws.amazon.com/step-functions/latest/dg/
# state-map-distributed.html, "10,000 parallel child workflow executions"): more instances could never be busy.
MAX_INSTANCE_COUNT = 10_000


def _instance_count(value: int) -> int:
    if value > MAX_INSTANCE_COUNT:
        raise ValueError(
            f"Input should be at most {MAX_INSTANCE_COUNT:,} (got {value:,}): a job's shards run in a Step Functions "
            f"Distributed Map, which runs at most {MAX_INSTANCE_COUNT:,} at once"
        )
    return value


InstanceCount = Annotated[
    int, Field(gt=0, json_schema_extra={"maximum": MAX_INSTANCE_COUNT}), pydantic.AfterValidator(_instance_count)
]


class RunSettings(Spec):
    """How a deployment scores: Azure's batch deployment settings with Azure's defaults."""

    mini_batch_size: MiniBatchSize = Field(
        10, description="files per mini-batch; for tabular inputs rows, or a size such as '10MB'"
    )
    instance_count: InstanceCount = 1
    max_concurrency_per_instance: int = Field(1, gt=0, le=256)
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    error_threshold: int = Field(-1, ge=-1, description="failed files tolerated; -1 = any number")
    output_action: OutputAction = OutputAction.APPEND_ROW
    output_format: OutputFormat = Field("auto", description="auto: by output_file_name's extension")
    output_file_name: str = "predictions.csv"
    logging_level: LoggingLevel = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    input_format: InputFormat = Field("auto", description="auto: CSV, Parquet and JSON lines files are read as tables")
    keep_input_columns: list[str] = Field(
        default_factory=list, description="tabular inputs: input columns copied next to each prediction"
    )
    max_mini_batches_per_worker: int = Field(
        0, ge=0, description="replace a worker (and run init() again) after this many mini-batches; 0 = never"
    )
    max_worker_memory_mb: int = Field(
        0, ge=0, description="replace a worker whose resident memory is above this after a mini-batch; 0 = never"
    )
    # Not in Azure, where an init() that hangs keeps its job running until it is canceled. Ten minutes loads a
    # model of tens of GB from local disk onto a GPU; SageMaker's startup health checks allow 60 to 3600 s.
    init_timeout: int = Field(
        DEFAULT_INIT_TIMEOUT_S,
        gt=0,
        le=MAX_TIMEOUT_S,
        description="seconds a worker's init() may take; then the worker is killed and init() tried again",
    )

    @field_validator("output_file_name")
    @classmethod
    def _plain_file_name(cls, value: str, info: pydantic.ValidationInfo) -> str:
        if not value or "/" in value or "\\" in value or value in {".", ".."}:
            raise ValueError(f"{value!r} must be a plain file name, without folders")
        if info.data.get("output_format", "auto") == "auto":
            _format_of(value)
        return value

    @property
    def part_format(self) -> str:
        """The output's format, which is also its parts' format: "csv", "parquet" or "jsonl"."""
        return _format_of(self.output_file_name) if self.output_format == "auto" else self.output_format

    @field_validator("logging_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


def _format_of(file_name: str) -> str:
    extension = os.path.splitext(file_name)[1].lower()
    if extension not in OUTPUT_FORMATS:
        known = ", ".join(e for e in OUTPUT_FORMATS if e)
        raise ValueError(f"{file_name!r} must end in one of {known} (or set output_format)")
    return OUTPUT_FORMATS[extension]


class InvokeOverrides(Spec):
    """What one invocation may change of its deployment's settings (Azure's per-job overrides)."""

    mini_batch_size: MiniBatchSize | None = None
    instance_count: InstanceCount | None = None
    max_retries: int | None = Field(None, ge=0, le=100)
    timeout: int | None = Field(None, gt=0, le=MAX_TIMEOUT_S)
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
    allowed_inputs: list[StoragePrefix] = Field(
        default_factory=list,
        max_length=MAX_ALLOWED_PREFIXES,
        description="storage prefixes this endpoint's jobs may read, within the system's own list; empty: that list",
    )
    allowed_outputs: list[StoragePrefix] = Field(
        default_factory=list,
        max_length=MAX_ALLOWED_PREFIXES,
        description="storage prefixes this endpoint's jobs may write, within the system's own list; empty: that list",
    )
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
    model: str = Field(description="registered model reference, name:version")
    code_configuration: CodeConfiguration | None = Field(
        None, description="none: an MLflow model scored by the built-in scorer"
    )
    inputs: dict[InputName, LiteralInput] = Field(default_factory=dict, description="literal inputs it accepts")
    environment: Environment = Field(default_factory=Environment)
    compute: str = "cpu-cluster"
    settings: RunSettings = Field(default_factory=RunSettings)
    tags: dict[str, str] = Field(default_factory=dict)
    compute_handle: str = Field("", description="the compute's registration of this deployment")
    created_at: str = Field(default_factory=now)
    updated_at: str = Field(default_factory=now)
    created_by: str = ""
    updated_by: str = Field("", description="who created or updated it last")


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


def _exclude_pattern(value: str) -> str:
    if not 0 < len(value) <= EXCLUDE_PATTERN_MAX or any(ord(c) < 32 for c in value) or value.startswith("/"):
        raise ValueError(
            f"{value[:80]!r} must be a glob pattern of 1-{EXCLUDE_PATTERN_MAX} characters matched against paths "
            "relative to the input folder (no leading '/', no control characters), such as '*.tmp'"
        )
    return value


ExcludePattern = Annotated[str, pydantic.AfterValidator(_exclude_pattern)]


class JobInput(Spec):
    uri: str = Field(description="where the job reads: a folder or file in storage")
    type: DataType = "uri_folder"
    source: str | None = Field(
        None, description="the input as the caller gave it, when not the uri itself: a data asset or datastore path"
    )
    exclude: list[ExcludePattern] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDE_PATTERNS,
        description="files of a folder input to leave out: glob patterns matched against each file's path relative "
        "to the folder ('/'-separated, case-sensitive, fnmatch rules: '*' also matches '/'), e.g. ['*.tmp', "
        "'.git/*']; default none: every file is input",
    )

    @field_validator("exclude")
    @classmethod
    def _exclude_needs_a_folder(cls, exclude: list[str], info: pydantic.ValidationInfo) -> list[str]:
        # A field validator, not the model's, so that the error names `exclude` (type is validated before it).
        if exclude and info.data.get("type") != "uri_folder":
            raise ValueError("exclude applies to folder inputs (uri_folder); a uri_file input is one file")
        return exclude


class JobMetadata(Spec):
    """What a caller may say about a job to find it later (Azure's experiment, display name and tags)."""

    experiment_name: AssetName | None = Field(None, description="default: the endpoint's name, as in Azure")
    display_name: str | None = Field(None, max_length=256)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _tag_lengths(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if not 0 < len(key) <= TAG_MAX or len(value) > TAG_MAX:
                raise ValueError(f"tag {key!r}: keys must be 1-{TAG_MAX} characters and values at most {TAG_MAX}")
        return tags


class JobCounts(Spec):
    """Totals fixed by the plan, then the outcome counted by finalize from the mini-batch results."""

    unit: Literal["files", "rows"] = Field(
        "files",
        description="what files, files_succeeded, files_failed and files_not_scored count: files, or rows of "
        "tabular inputs",
    )
    files: int = 0
    mini_batches: int = 0
    shards: int = 0
    files_succeeded: int = 0
    files_failed: int = Field(0, description="scored and failed (run() raised, timed out, returned no row, ...)")
    files_not_scored: int = Field(
        0,
        description="never scored: the job stopped (canceled, error_threshold exceeded, a shard that never ended) "
        "before their mini-batch ran; not counted in files_failed",
    )
    mini_batches_failed: int = 0
    rows: int = 0

    def amount(self, number: int) -> str:
        """`number` in the counts' unit: "1 file", "17 files", "1 row"."""
        return f"{number} {self.unit[:-1] if number == 1 else self.unit}"


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
    inputs: dict[str, LiteralValue] = Field(default_factory=dict, description="literal inputs given at invoke")
    experiment_name: str = ""
    display_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    status: JobStatus = JobStatus.QUEUED
    counts: JobCounts = Field(default_factory=JobCounts)
    error: str | None = None
    execution: str = ""
    created_at: str = Field(default_factory=now)
    started_at: str | None = None
    ended_at: str | None = None
    created_by: str = ""
    canceled_by: str | None = Field(None, description="who asked to cancel it")
    updated_at: str | None = Field(None, description="when a caller last changed it (cancel, resume)")
    updated_by: str = Field("", description="who last changed it (cancel, resume); the workflow's own steps aside")
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
        raise validation_error(exc.errors(), prefix=prefix) from None


def validation_error(errors: Sequence[Mapping[str, Any]], *, prefix: str = "") -> ValidationError:
    """Ours for the first of pydantic's errors (`exc.errors()`, or a request's from the API's resolver), naming the
    field at fault under `prefix`: the one place where pydantic's words become the project's."""
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"])
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] not in {"value_error"}:
        message = f"{message} (got {first['input']!r})"
    return ValidationError(message, field=field or None)
