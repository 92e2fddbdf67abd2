"""A deployment's run settings and what an invocation may override of them, with Azure's names and defaults."""

from __future__ import annotations

import os
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field, field_validator

from batch_endpoints.specs.base import Spec, parse

MAX_TIMEOUT_S = 7 * 24 * 3600
DEFAULT_INIT_TIMEOUT_S = 600


class RetrySettings(Spec):
    max_retries: int = Field(3, ge=0, le=100)
    timeout: int = Field(30, gt=0, le=MAX_TIMEOUT_S, description="seconds allowed for one run() call")


class OutputAction(StrEnum):
    APPEND_ROW = "append_row"
    SUMMARY_ONLY = "summary_only"


LoggingLevel = Literal["debug", "info", "warning", "error", "critical"]
# How inputs are read. "auto" is Azure's: a scoring script gets file paths (mini_batch_size counts files) unless
# mini_batch_size is a size; an MLflow model without a script reads tables. "tables" reads CSV, Parquet and JSON
# lines files as tables by extension; a format reads every input file as a table of that format; "files" always
# passes paths.
InputFormat = Literal["auto", "files", "tables", "csv", "parquet", "jsonl"]
# Azure writes append_row output as text whatever the name says; a name without an extension stays CSV.
OUTPUT_FORMATS = {"": "csv", ".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
# Azure's append_row layout: no header, each row's values joined by a space (see docs/tabular.md).
AZURE_APPEND_ROW = "azure_append_row"
OutputFormat = Literal["auto", "csv", "parquet", "jsonl", "azure_append_row"]
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
    mini_batch_error_threshold: int = Field(
        -1,
        ge=-1,
        description="failed mini-batches (none of whose files was scored) tolerated; -1 = any number. A parallel "
        "pipeline step's setting, as Azure's",
    )
    output_action: OutputAction = OutputAction.APPEND_ROW
    output_format: OutputFormat = Field(
        "auto",
        description="auto: by output_file_name's extension; azure_append_row: Azure's layout, no header and "
        "each row's values joined by a space",
    )
    output_file_name: str = "predictions.csv"
    logging_level: LoggingLevel = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    input_format: InputFormat = Field(
        "auto",
        description="auto: files, as on Azure (a scoring script gets paths; an MLflow model without one reads each "
        "file whole), or tables when mini_batch_size is a size or keep_input_columns is set; tables: CSV, Parquet "
        "and JSON lines files read in row mini-batches by extension; csv, parquet or jsonl: tables of that format; "
        "files: always files",
    )
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
