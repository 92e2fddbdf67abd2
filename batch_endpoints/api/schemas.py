"""The shapes of the REST API's requests and responses.

Request bodies follow Azure's YAML schemas as JSON (the same keys as endpoint.yml and deployment.yml), so a file
written for `az ml` or `bep` becomes a request body unchanged. They are checked here only for shape and type;
what they mean (names, settings, model references) is checked once, by the same core code the CLI uses.
Responses are the core's records, except jobs, which add live progress and links.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, model_validator

from batch_endpoints.paging import Page
from batch_endpoints.ports import LogPage
from batch_endpoints.specs import (
    Compute,
    DataAsset,
    Datastore,
    DataType,
    Deployment,
    Endpoint,
    EndpointName,
    Environment,
    InputName,
    InvokeOverrides,
    Job,
    JobCounts,
    JobInput,
    JobStatus,
    Model,
    NamedInput,
    NamedOutput,
    RunSettings,
)
from batch_endpoints.specs.components import Component
from batch_endpoints.specs.invocation import MODEL_OUTPUT
from batch_endpoints.specs.pipelines import PipelineRun
from batch_endpoints.yaml_files.schemas import (
    DeploymentFile,
    EndpointFile,
    PipelineDeploymentFile,
    PipelineJobFile,
    Resources,
)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorBody(BaseModel):
    """Every refusal and failure: a stable code, a message for people, and the request field at fault."""

    code: str = Field(examples=["ValidationError", "NotFound", "Conflict", "RequestTooLarge", "InternalError"])
    message: str
    field: str | None = None


# ---------------------------------------------------------------------------------------------- endpoints
class _NullIsOmitted(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _null_is_omitted(cls, data: Any) -> Any:
        # Every field of these bodies used to be nullable: clients that send null for "not given" keep working.
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, Mapping) else data


class EndpointBody(_NullIsOmitted, EndpointFile):
    """endpoint.yml as JSON, with `name` from the path: when the body gives it too, it must match."""

    name: EndpointName | None = None  # type: ignore[assignment]


class Paged(BaseModel):
    """One page of a listing: every list the API answers is paged (a Lambda's response is at most 6 MB)."""

    next_token: str | None = Field(None, description="pass as next_token for the next page; absent on the last")

    @classmethod
    def of(cls, page: Page[Any]) -> Self:
        # Each subclass declares its own `value`: validated as a mapping, since the base has no such field.
        return cls.model_validate({"value": page.items, "next_token": page.next_token})


class EndpointList(Paged):
    value: list[Endpoint]


# ---------------------------------------------------------------------------------------------- deployments
MODEL_SCHEMA = {
    "description": "a registered model, name:version or name@latest (an azureml: prefix is accepted), or an inline "
    "model: a folder or file already in storage, registered under `name` (default: <deployment>-model)",
    "oneOf": [
        {"type": "string", "examples": ["digits:1", "azureml:digits@latest"]},
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "examples": ["s3://bucket/uploads/models/digits/0f1e/"]},
                "name": {"type": "string"},
                "version": {"type": "string"},
                "description": {"type": "string"},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["path"],
        },
    ],
}
ENVIRONMENT_SCHEMA = {
    "description": "a registered environment, name:version or name@latest (an azureml: prefix is accepted), copied "
    "into the deployment as it is now; or an inline environment with an `image` and `pip_requirements` (conda files "
    "are not read from requests: register the environment with the file's text)",
    "oneOf": [
        {"type": "string", "examples": ["torch-env:1", "azureml:torch-env@latest"]},
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "image": {"type": "string"},
                "pip_requirements": {"type": "array", "items": {"type": "string"}},
            },
        },
    ],
}


class RetrySettingsBody(Body):
    max_retries: int | None = None
    timeout: int | None = None


class SettingsBody(Body):
    """Azure's batch deployment `settings`; omitted ones take Azure's defaults."""

    mini_batch_size: int | str | None = Field(None, description="files; for tabular inputs rows, or a size ('10MB')")
    max_concurrency_per_instance: int | None = None
    instance_count: int | None = Field(None, description="Azure's place for it is resources.instance_count")
    retry_settings: RetrySettingsBody | None = None
    error_threshold: int | None = None
    mini_batch_error_threshold: int | None = Field(None, description="mini-batches failed whole; -1 = any number")
    output_action: str | None = Field(None, examples=["append_row", "summary_only"])
    output_file_name: str | None = None
    logging_level: str | None = None
    environment_variables: dict[str, str] | None = None
    input_format: str | None = Field(None, examples=["auto", "files", "tables", "csv", "parquet", "jsonl"])
    output_format: str | None = Field(None, examples=["auto", "csv", "parquet", "jsonl", "azure_append_row"])
    keep_input_columns: list[str] | None = None
    max_mini_batches_per_worker: int | None = Field(None, description="0 = never replace a worker")
    max_worker_memory_mb: int | None = Field(None, description="0 = no memory ceiling")
    init_timeout: int | None = Field(None, description="seconds a worker's init() may take (default 600)")


class ResourcesBody(Resources):
    instance_count: int | None = None


class ModelDeploymentBody(_NullIsOmitted, DeploymentFile):
    """deployment.yml (Azure's `type: model`, settings nested) as JSON, with `name` and `endpoint_name` from the
    path: when the body gives them too, they must match. A code folder or inline model is already in storage."""

    name: EndpointName | None = None  # type: ignore[assignment]
    endpoint_name: EndpointName | None = None  # type: ignore[assignment]
    model: Annotated[Any, WithJsonSchema(MODEL_SCHEMA)]
    environment: Annotated[Any, WithJsonSchema(ENVIRONMENT_SCHEMA)] = None
    resources: ResourcesBody = Field(default_factory=ResourcesBody)
    settings: SettingsBody | None = None


PIPELINE_COMPONENT = (
    "the pipeline component it runs: a registered one, name:version or name@latest (an azureml: prefix is "
    "accepted), pinned to the version it names now; or one inline, as Azure's pipeline component YAML writes it, "
    "its steps' code folders already in storage (POST /code/uploads)"
)
PIPELINE_COMPONENT_SCHEMA = {
    "description": PIPELINE_COMPONENT,
    "oneOf": [
        {"type": "string", "examples": ["azureml:batch_scoring:1", "batch_scoring@latest"]},
        {
            "type": "object",
            "properties": {
                "inputs": {"type": "object"},
                "outputs": {"type": "object"},
                "jobs": {"type": "object", "description": "its steps, by name: command or parallel"},
            },
            "required": ["jobs"],
        },
    ],
}


class PipelineDeploymentBody(_NullIsOmitted, PipelineDeploymentFile):
    """Azure's pipeline component deployment (`type: pipeline`) as JSON, with `name` and `endpoint_name` from
    the path: when the body gives them too, they must match. Its steps run on `settings.default_compute`."""

    name: EndpointName | None = None  # type: ignore[assignment]
    endpoint_name: EndpointName | None = None  # type: ignore[assignment]
    component: Annotated[Any, WithJsonSchema(PIPELINE_COMPONENT_SCHEMA)]


# How pydantic names the member of DeploymentBody at fault, first in an error's location; the client wrote no such
# field, so the API leaves it out of the field it names.
MODEL_DEPLOYMENT = "(type: model)"
PIPELINE_DEPLOYMENT = "(type: pipeline)"
UNION_MEMBERS = frozenset({MODEL_DEPLOYMENT, PIPELINE_DEPLOYMENT})


def _deployment_type(body: Any) -> str:
    # Anything but a pipeline is checked as a model deployment, so an unknown `type` is refused naming `type`.
    kind = body.get("type") if isinstance(body, Mapping) else getattr(body, "type", None)
    return PIPELINE_DEPLOYMENT if kind == "pipeline" else MODEL_DEPLOYMENT


DeploymentBody = Annotated[
    Annotated[ModelDeploymentBody, Tag(MODEL_DEPLOYMENT)] | Annotated[PipelineDeploymentBody, Tag(PIPELINE_DEPLOYMENT)],
    Discriminator(_deployment_type),
]


class DeploymentList(Paged):
    value: list[Deployment]


# ---------------------------------------------------------------------------------------------- models
class ModelVersionBody(Body):
    path: str = Field(description="the model folder or file, already in storage; registered where it is")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class ModelList(Paged):
    value: list[Model]


# ---------------------------------------------------------------------------------------------- environments
class EnvironmentVersionBody(Body):
    """Azure's environment schema (`az ml environment create`), with the conda file given as its text."""

    image: str | None = Field(
        None,
        description="a container image built FROM the stack's scoring image; without one, the stack's image for "
        "the compute",
        examples=["123456789012.dkr.ecr.eu-west-1.amazonaws.com/bep-torch:2"],
    )
    conda_file: str | None = Field(
        None, description="the conda environment file's text (YAML); its pip packages join pip_requirements"
    )
    pip_requirements: list[str] = Field(default_factory=list)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class EnvironmentList(Paged):
    value: list[Environment]


# ---------------------------------------------------------------------------------------------- components
class ComponentVersionBody(Body):
    """Azure's component schema (`az ml component create`) as JSON: a command, parallel or pipeline component.
    Code folders are already in storage (POST /code/uploads); a pipeline's steps are inline or name registered
    components (`azureml:name:version`, `name@latest`)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["command", "parallel", "pipeline"] = "command"


class ComponentList(Paged):
    value: list[Component]


# ---------------------------------------------------------------------------------------------- data
class DataVersionBody(Body):
    """Azure's data asset schema (`az ml data create`): a folder or file already in storage."""

    path: str = Field(
        description="an s3:// URI or a datastore path (azureml://datastores/<name>/paths/<path>), registered in place",
        examples=["s3://bucket/datasets/digits/", "azureml://datastores/workspaceblobstore/paths/uploads/data/ab12/"],
    )
    type: DataType = "uri_folder"
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class DataList(Paged):
    value: list[DataAsset]


class DatastoreBody(Body):
    bucket: str | None = Field(None, description="the S3 bucket (required in the cloud)")
    prefix: str = Field("", description="key prefix inside the bucket")
    folder: str | None = Field(None, description="an absolute folder (local backend only)")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class DatastoreList(BaseModel):
    value: list[Datastore]


class UploadTarget(BaseModel):
    """Where a client uploads a folder before registering it: an S3 presigned POST (one policy, many files)."""

    path: str = Field(description="the folder's storage URI: give it as the model path or code folder afterwards")
    url: str = Field(description="POST each file here as multipart/form-data")
    fields: dict[str, str] = Field(description="form fields to send with every file, before the file itself")
    key_prefix: str = Field(description="each file's form field `key` is this prefix + the file's relative path")
    max_file_bytes: int
    expires_at: str


# ---------------------------------------------------------------------------------------------- computes
class ComputeList(BaseModel):
    value: list[Compute]


class ComputeBody(Body):
    """An AmlCompute cluster to create (Azure's compute YAML, without `name`: the path names it)."""

    type: Literal["amlcompute"] = "amlcompute"
    size: str = Field(examples=["Standard_DS3_v2", "Standard_NC6s_v3", "g5.xlarge"])
    min_instances: int = 0
    max_instances: int = 1
    tier: Literal["dedicated", "low_priority"] = "dedicated"
    idle_time_before_scale_down: int = Field(120, description="seconds")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- jobs
class InvokeInput(Body):
    uri: str = Field(
        description="a folder or file in storage (s3://...), a data asset (azureml:name:version, name@latest) or a "
        "datastore path (azureml://datastores/<name>/paths/<path>)",
        examples=["s3://bucket/inputs/digits/", "azureml:digits-images@latest"],
    )
    type: Literal["uri_folder", "uri_file"] | None = Field(None, description="default: inferred from the uri")
    exclude: list[str] = Field(
        default_factory=list,
        description="files of a folder input to leave out: glob patterns matched against each file's path relative "
        "to the folder (fnmatch rules, case-sensitive; '*' also matches '/'); default none: every file is input",
        examples=[["*.tmp", ".git/*"]],
    )


class InvokeOutput(Body):
    path: str | None = Field(
        None,
        description="the folder for the output file (s3://... or a datastore path); default: the job's own folder",
    )
    file_name: str | None = Field(None, description="default: the deployment's output_file_name")


class InvokeBody(Body):
    deployment_name: str | None = Field(None, description="default: the endpoint's default deployment")
    input: InvokeInput | None = Field(None, description="the data input; or name it under inputs, as Azure does")
    output: InvokeOutput | None = None
    overrides: InvokeOverrides = Field(default_factory=InvokeOverrides)
    inputs: dict[InputName, NamedInput] = Field(
        default_factory=dict,
        description="inputs by name, as Azure's invoke YAML writes them: a data input {type, path} (a model "
        "deployment takes one, of any name), a literal input {type, default} or its bare value, as the "
        "deployment declares it",
        examples=[{"heart_data": {"type": "uri_folder", "path": "s3://bucket/heart/"}, "threshold": 0.7}],
    )
    outputs: dict[InputName, NamedOutput] = Field(
        default_factory=dict,
        description=f"outputs by name, as Azure's invoke YAML writes them; a model deployment's one output is "
        f"{MODEL_OUTPUT}: {{type: uri_folder, path}} (the folder) or {{type: uri_file, path}} (the file)",
        examples=[{MODEL_OUTPUT: {"type": "uri_folder", "path": "s3://bucket/scores/"}}],
    )
    experiment_name: str | None = Field(None, description="groups jobs for listing; default: the endpoint's name")
    display_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict, description="the job's tags; jobs can be listed by them")


PIPELINE_JOB_COMPONENT_SCHEMA = {**PIPELINE_COMPONENT_SCHEMA, "description": f"{PIPELINE_COMPONENT}; or give jobs"}


class PipelineJobBody(_NullIsOmitted, PipelineJobFile):
    """Azure's pipeline job (`az ml job create --file pipeline-job.yml`) as JSON: a pipeline run once, outside any
    endpoint. Its pipeline is `component` (registered, or inline) or its steps under `jobs`, whose code folders are
    already in storage (POST /code/uploads); its inputs and outputs are by name, their paths in storage."""

    component: Annotated[Any, WithJsonSchema(PIPELINE_JOB_COMPONENT_SCHEMA)] = None
    jobs: Annotated[
        Any,
        WithJsonSchema(
            {
                "type": "object",
                "description": "the pipeline's steps, as a pipeline component's jobs (instead of component); its "
                "inputs and outputs are then those the job gives",
            }
        ),
    ] = None


class RerunBody(Body):
    failed: bool = Field(False, description="only the files that failed or were never scored; default: every file")
    output: InvokeOutput | None = None


class JobLinks(BaseModel):
    job: str = Field(description="this job in the API")
    output: str | None = Field(None, description="the output file once the job completes (none for summary_only)")
    console: str | None = Field(None, description="the Step Functions execution in the AWS console")


class JobView(BaseModel):
    id: str
    endpoint_name: str
    deployment_name: str
    status: JobStatus
    input: JobInput
    output_uri: str | None
    output_folder: str | None = Field(
        None, description="the output folder: the output file and the files the scoring script wrote there"
    )
    settings: RunSettings
    experiment_name: str
    display_name: str | None
    tags: dict[str, str]
    counts: JobCounts
    progress: dict[str, int] | None = Field(
        None, description="live counters while the job runs (job detail only): mini_batches_done, files_failed, ..."
    )
    error: str | None
    execution: str
    created_at: str
    started_at: str | None
    ended_at: str | None
    created_by: str
    canceled_by: str | None = None
    updated_at: str | None = None
    updated_by: str = ""
    rerun_of: str | None = None
    resumes: int = 0
    pipeline: PipelineRun | None = Field(
        None,
        description="a pipeline job's inputs, outputs and child step jobs; a started step's log_uri is its log "
        "file, or this API's logs route of its child job",
    )
    links: JobLinks

    @classmethod
    def of(cls, job: Job, *, api_base_url: str, progress: dict[str, int] | None = None) -> JobView:
        fields = job.model_dump(include=set(cls.model_fields) - {"progress", "links", "pipeline"})
        links = JobLinks(job=f"{api_base_url}/jobs/{job.id}", output=job.output_uri, console=console_url(job.execution))
        pipeline = job.pipeline and _with_log_routes(job.pipeline, api_base_url)
        return cls(**fields, pipeline=pipeline, progress=progress, links=links)


def _with_log_routes(pipeline: PipelineRun, api_base_url: str) -> PipelineRun:
    """A started step with no log file (on AWS its lines are in CloudWatch) is given its child job's logs route."""
    steps = [
        run.model_copy(update={"log_uri": f"{api_base_url}/jobs/{run.name}/logs"})
        if run.started_at and not run.log_uri
        else run
        for run in pipeline.steps
    ]
    return pipeline.model_copy(update={"steps": steps})


class JobList(Paged):
    value: list[JobView]


class LogLineView(BaseModel):
    timestamp_ms: int
    source: str
    message: str


class LogPageView(BaseModel):
    lines: list[LogLineView]
    next_token: str | None = None

    @classmethod
    def of(cls, page: LogPage) -> LogPageView:
        lines = [LogLineView(timestamp_ms=x.timestamp_ms, source=x.source, message=x.message) for x in page.lines]
        return cls(lines=lines, next_token=page.next_token)


def console_url(execution: str) -> str | None:
    """The AWS console page of a Step Functions execution; None for anything else (a local job's process)."""
    parts = execution.split(":")
    if len(parts) < 8 or parts[:3] != ["arn", "aws", "states"] or parts[5] != "execution":
        return None
    region = parts[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}"
