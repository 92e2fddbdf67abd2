"""Routes of jobs: invoke an endpoint (and upload its local input first), follow, list, cancel, rerun, resume and
read the logs of a job."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from batch_endpoints import yaml_specs
from batch_endpoints.api import uploads
from batch_endpoints.api.route_inputs import Caller, IdempotencyKey, PageLimit, PageToken, Service, storage_location
from batch_endpoints.api.routes import new_router
from batch_endpoints.api.schemas import (
    InvokeBody,
    InvokeOutput,
    JobList,
    JobView,
    LogPageView,
    PipelineJobBody,
    RerunBody,
    UploadTarget,
)
from batch_endpoints.errors import ValidationError
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import Job, for_model_deployment, with_data_input
from batch_endpoints.specs.components import with_code
from batch_endpoints.specs.invocation import refuse_model_options

router = new_router()


@router.post("/endpoints/<endpoint_name>/jobs", status_code=202, tags=["jobs"], summary="Invoke: start a job")
def invoke(
    endpoint_name: str,
    body: InvokeBody,
    service: Service,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response[JobView]:
    """Scores the input with the given deployment (default: the endpoint's default deployment). The job runs
    on; follow it at links.job."""
    if service.deployment_to_invoke(endpoint_name, body.deployment_name).type == "pipeline":
        request = _pipeline_request(endpoint_name, body, caller)
    else:
        request = _model_request(endpoint_name, body, caller)
    job = service.invoke(request) if idempotency_key is None else service.invoke_idempotent(request, idempotency_key)
    return _accepted(service, job)


def _pipeline_request(endpoint_name: str, body: InvokeBody, caller: str) -> InvokeRequest:
    """A pipeline deployment takes its inputs and outputs by name only; a model's fields are refused."""
    model_fields = {
        "input": body.input,
        "output": body.output,
        "overrides": body.overrides.model_dump(exclude_none=True),
    }
    refuse_model_options(
        model_fields,
        "a pipeline deployment takes its inputs and outputs by name (inputs.NAME, outputs.NAME) and its steps have "
        "their own run settings",
    )
    return InvokeRequest(
        endpoint_name=endpoint_name,
        deployment_name=body.deployment_name,
        named_inputs=body.inputs,
        named_outputs=body.outputs,
        caller=caller,
        experiment_name=body.experiment_name,
        display_name=body.display_name,
        tags=body.tags,
    )


def _model_request(endpoint_name: str, body: InvokeBody, caller: str) -> InvokeRequest:
    given = body.input
    inputs = with_data_input(
        body.inputs,
        given.uri if given else None,
        type=given.type if given else None,
        exclude=given.exclude or None if given else None,
        field="input",
    )
    invocation = for_model_deployment(inputs, body.outputs)
    overrides = body.overrides
    output = body.output or InvokeOutput()
    file_name = output.file_name or invocation.output_file_name
    if file_name is not None:
        if overrides.output_file_name not in (None, file_name):
            raise ValidationError("conflicts with overrides.output_file_name; give one", field="output.file_name")
        overrides = overrides.model_copy(update={"output_file_name": file_name})
    return InvokeRequest(
        endpoint_name=endpoint_name,
        input=invocation.input,
        input_type=invocation.input_type,
        exclude=invocation.exclude,
        deployment_name=body.deployment_name,
        output_path=output.path or invocation.output_path,
        overrides=overrides,
        inputs=invocation.literals,
        caller=caller,
        experiment_name=body.experiment_name,
        display_name=body.display_name,
        tags=body.tags,
    )


@router.post("/jobs", status_code=202, tags=["jobs"], summary="Create a pipeline job outside any endpoint")
def create_pipeline_job(
    body: PipelineJobBody, service: Service, caller: Caller, idempotency_key: IdempotencyKey = None
) -> Response[JobView]:
    """Runs a pipeline once, as `az ml job create --file pipeline-job.yml` does: checked as a pipeline deployment
    and its invocation are, then run as an invoked pipeline job is. A deployment can then be made from it
    (`job_definition: azureml:JOB`). The job is filed under no endpoint: follow it at links.job. Retries with one
    Idempotency-Key answer with the job the first request started."""
    declaration = yaml_specs.load_pipeline_job_mapping(body.model_dump(by_alias=True, exclude_none=True), None)
    if not isinstance(declaration.component, str):
        prefix = "" if body.jobs is not None else "component."
        inline = with_code(
            declaration.component, lambda field, code: storage_location(service, code, f"{prefix}{field}")
        )
        declaration = dataclasses.replace(declaration, component=inline)
    return _accepted(service, service.create_pipeline_job(declaration, caller=caller, idempotency_key=idempotency_key))


def _accepted(service: BatchEndpointService, job: Job) -> Response[JobView]:
    """202 with the new job, and its address in Location."""
    view = JobView.of(job, api_base_url=service.backend.api_base_url)
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=view, headers={"Location": view.links.job}
    )


@router.post("/inputs/uploads", tags=["jobs"], summary="Get a presigned upload for a local input folder or file")
def upload_input(service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "inputs")


@router.get("/jobs/<job_id>", tags=["jobs"], summary="Show a job and its progress")
def get_job(job_id: str, service: Service) -> JobView:
    job = service.get_job(job_id)
    return JobView.of(job, api_base_url=service.backend.api_base_url, progress=service.job_progress(job_id))


@router.get("/jobs", tags=["jobs"], summary="List every job, or an endpoint's, newest first")
@router.get("/endpoints/<endpoint_name>/jobs", tags=["jobs"], summary="List an endpoint's jobs, newest first")
def list_jobs(
    service: Service,
    endpoint_name: str | None = None,
    limit: PageLimit = 20,
    next_token: PageToken = None,
    experiment_name: Annotated[str | None, Query(description="only the jobs of this experiment")] = None,
    tag: Annotated[list[str] | None, Query(description="only jobs with this tag, key=value; repeatable")] = None,
) -> JobList:
    """`GET /jobs` lists every endpoint's jobs and the pipeline jobs run outside any endpoint (`POST /jobs`), as
    `bep job list` without an endpoint does; pipeline steps' own jobs are listed with their pipeline job only."""
    tags = yaml_specs.parse_overrides(tag or [], field="tag")
    page = service.list_jobs_page(
        endpoint_name, limit=limit, next_token=next_token, experiment_name=experiment_name, tags=tags
    )
    base = service.backend.api_base_url
    return JobList(value=[JobView.of(job, api_base_url=base) for job in page.items], next_token=page.next_token)


@router.post("/jobs/<job_id>/cancel", status_code=202, tags=["jobs"], summary="Cancel a job")
def cancel_job(job_id: str, service: Service, caller: Caller) -> JobView:
    """Asks the job to stop; it ends Canceled within seconds. A job that has ended is a conflict."""
    return JobView.of(service.cancel_job(job_id, caller=caller), api_base_url=service.backend.api_base_url)


@router.post("/jobs/<job_id>/rerun", status_code=202, tags=["jobs"], summary="Rerun an ended job's (failed) files")
def rerun_job(
    job_id: str, body: RerunBody, service: Service, caller: Caller, idempotency_key: IdempotencyKey = None
) -> Response[JobView]:
    """Starts a new job with the ended job's deployment and settings, over its failed and never-scored files
    (`failed: true`) or its whole input. The new job writes its own output; its `rerun_of` names the job."""
    output = body.output or InvokeOutput()
    job = service.rerun_job(
        job_id,
        failed_only=body.failed,
        output_path=storage_location(service, output.path, "output.path") if output.path else None,
        output_file_name=output.file_name,
        caller=caller,
        idempotency_key=idempotency_key,
    )
    return _accepted(service, job)


@router.post("/jobs/<job_id>/resume", status_code=202, tags=["jobs"], summary="Resume a job whose run stopped")
def resume_job(job_id: str, service: Service, caller: Caller, idempotency_key: IdempotencyKey = None) -> JobView:
    """Runs the workflow of a job whose execution stopped (failed, aborted, its host gone) again, keeping every
    finished mini-batch. A job still running, completed or canceled is a conflict; the caller must be allowed
    the job's input and output, as for an invoke. Retries with one Idempotency-Key resume the job once."""
    job = service.resume_job(job_id, caller=caller, idempotency_key=idempotency_key)
    return JobView.of(job, api_base_url=service.backend.api_base_url)


@router.get("/jobs/<job_id>/logs", tags=["jobs"], summary="What the job's scoring code printed, oldest first")
def get_job_logs(
    job_id: str,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    next_token: Annotated[str | None, Query(description="from the previous page")] = None,
) -> LogPageView:
    return LogPageView.of(service.job_logs(job_id, next_token=next_token, limit=limit))
