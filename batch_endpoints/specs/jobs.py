"""Jobs: an invocation's input, output, settings, status and counts, as the record of it holds them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import pydantic
from pydantic import Field, field_validator

from batch_endpoints.specs.assets import DataType
from batch_endpoints.specs.base import EXCLUDE_PATTERN_MAX, MAX_EXCLUDE_PATTERNS, TAG_MAX, AssetName, Spec, now
from batch_endpoints.specs.endpoints import Deployment, LiteralValue
from batch_endpoints.specs.pipelines import PipelineRun
from batch_endpoints.specs.settings import RunSettings


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
    output_folder: str | None = Field(
        None,
        description="the job's output folder: the output file (append_row) and every file the scoring script "
        "wrote to AZUREML_BI_OUTPUT_PATH; None in jobs recorded before it existed",
    )
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
    pipeline: PipelineRun | None = Field(None, description="a pipeline job's inputs, outputs and child step jobs")
    parent_job_name: str | None = Field(None, description="the pipeline job whose parallel step this job runs")
    program_arguments: list[str] = Field(
        default_factory=list,
        description="a parallel step's task.program_arguments, rendered: in its entry script's sys.argv after the "
        "run settings",
    )


# Live progress counters, bumped by runners as mini-batches finish. Finalize recounts the truth from results.
PROGRESS_COUNTERS = ("mini_batches_done", "mini_batches_failed", "files_succeeded", "files_failed")
