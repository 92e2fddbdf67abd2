"""The REST API: a Powertools resolver whose routes translate HTTP to one BatchEndpointService call and back.

The CLI is the other edge over the same service, so a route does what the matching `bep` command does. Route
functions hold no rules of their own: validation comes from the type hints (request shapes in schemas.py, their
meaning from the core), errors from the exception handlers at the end, the service from `get_service`, which
tests replace through `app.dependency_overrides`. The module imports nothing from AWS, so the same `app` can be
served by Lambda (handler.py) or by a local HTTP server.

Writes are idempotent where HTTP says they are: PUT creates or replaces, and an invoke, rerun or resume with an
Idempotency-Key header answers every retry with the job the first request started (or resumed).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.request import Request
from pydantic import BaseModel

from batch_endpoints import assets, yaml_specs
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.api import uploads
from batch_endpoints.api.schemas import (
    ComputeList,
    DataList,
    DatastoreBody,
    DatastoreList,
    DataVersionBody,
    DeploymentBody,
    DeploymentList,
    EndpointBody,
    EndpointList,
    EndpointPatch,
    EnvironmentList,
    EnvironmentVersionBody,
    ErrorBody,
    InvokeBody,
    InvokeOutput,
    JobList,
    JobView,
    LogPageView,
    ModelList,
    ModelVersionBody,
    RerunBody,
    UploadTarget,
)
from batch_endpoints.errors import BatchEndpointError, NotFoundError, ValidationError
from batch_endpoints.idempotency import HEADER as IDEMPOTENCY_HEADER
from batch_endpoints.paging import paged
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import (
    AssetVersion,
    DataAsset,
    Datastore,
    Deployment,
    Endpoint,
    Environment,
    Job,
    Model,
    parse,
)

SERVICE_NAME = "batch-endpoints-api"
# Requests carry specs and URIs, never data (files go to S3 directly, through presigned uploads), so a body over
# 1 MiB is a mistake; refusing it before parsing keeps the Lambda's memory and time for real requests.
MAX_BODY_BYTES = 1024 * 1024

logger = Logger(service=SERVICE_NAME, child=True)


class RequestTooLarge(BatchEndpointError):
    status = 413
    code = "RequestTooLarge"


class UnsupportedMediaType(BatchEndpointError):
    status = 415
    code = "UnsupportedMediaType"


def _json_body(text: str) -> Any:
    """Powertools' body parser, with the size limit applied before the body is parsed."""
    size = len(text.encode())
    if size > MAX_BODY_BYTES:
        raise RequestTooLarge(f"the body is {size} bytes; the limit is {MAX_BODY_BYTES} (1 MiB)", field="body")
    return json.loads(text)


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_json_body)
app.configure_openapi(
    title="Batch endpoints",
    version="1",
    description="Azure-ML-style batch endpoints on AWS: models, environments, endpoints, deployments and jobs. "
    "Every request is signed with AWS SigV4 (API Gateway IAM authorization); errors are {code, message, field}.",
    security_schemes={
        "sigv4": APIKey(
            name="Authorization",
            in_=APIKeyIn.header,
            description="AWS Signature Version 4 (e.g. curl --aws-sigv4 aws:amz:<region>:execute-api)",
            **{"x-amazon-apigateway-authtype": "awsSigv4"},
        )
    },
    security=[{"sigv4": []}],
)


# ------------------------------------------------------------------------------------------ dependencies
@functools.cache
def get_service() -> BatchEndpointService:
    """One service per process, over the backend the environment names (built on the first request)."""
    try:
        backend = from_environment()
    except BatchEndpointError as error:
        # The server's configuration is at fault, not the request: a 500 for the client, the reason in the log.
        raise RuntimeError(f"cannot open the backend: {error}") from error
    return BatchEndpointService(backend)


def get_caller(request: Request) -> str:
    """Who signed the request, as API Gateway's IAM authorization found it: recorded as `created_by`."""
    identity = (request.resolved_event.raw_event.get("requestContext") or {}).get("identity") or {}
    return identity.get("userArn") or identity.get("caller") or identity.get("user") or ""


Service = Annotated[BatchEndpointService, Depends(get_service)]
Caller = Annotated[str, Depends(get_caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias=IDEMPOTENCY_HEADER, description="retries with the same key answer with the same job"),
]
# Every list answers a page: `limit` items, and a next_token while more follow (batch_endpoints.paging).
PageLimit = Annotated[int, Query(ge=1, le=100, description="the most items on this page")]
PageToken = Annotated[str | None, Query(description="from the previous page")]
LIST_PAGE = 100


def _storage_location(service: BatchEndpointService, location: str, field: str) -> str:
    """`location` when it is in the backend's own kind of storage: s3:// URIs in the cloud, absolute paths (or
    file:// URIs) on the local backend. Refusing the rest keeps a request from making the server read its disk."""
    root = service.blobs.root
    if assets.is_stored(root):
        scheme = root.partition("://")[0]
        if location.startswith(f"{scheme}://"):
            return location
        wanted = f"a {scheme}://bucket/key URI"
    else:
        path = location.removeprefix("file://")
        if "://" not in path and os.path.isabs(path):
            return path
        wanted = "an absolute path"
    raise ValidationError(f"{location!r} is not in this backend's storage; give {wanted}", field=field)


def _with_path_names(body: BaseModel, **names: str) -> dict[str, Any]:
    """The body as the YAML loaders read it, with the names from the path (a body may repeat, not change them)."""
    mapping = body.model_dump(by_alias=True, exclude_none=True)
    for field, value in names.items():
        if mapping.get(field, value) != value:
            raise ValidationError(f"is {mapping[field]!r}, but the path says {value!r}", field=field)
        mapping[field] = value
    return mapping


# ------------------------------------------------------------------------------------------ endpoints
@app.put("/endpoints/<endpoint_name>", tags=["endpoints"], summary="Create an endpoint, or update it")
def put_endpoint(endpoint_name: str, body: EndpointBody, service: Service, caller: Caller) -> Endpoint:
    """Creates the endpoint, or sets the description and tags of an existing one (omitted = empty), so sending
    the same body twice changes nothing. `defaults.deployment_name` sets the default of an existing endpoint."""
    declaration = yaml_specs.load_endpoint_mapping(_with_path_names(body, name=endpoint_name), source="")
    return service.put_endpoint(declaration, caller=caller)


@app.get("/endpoints/<endpoint_name>", tags=["endpoints"], summary="Show an endpoint")
def get_endpoint(endpoint_name: str, service: Service) -> Endpoint:
    return service.get_endpoint(endpoint_name)


@app.patch("/endpoints/<endpoint_name>", tags=["endpoints"], summary="Change the default deployment or description")
def patch_endpoint(endpoint_name: str, body: EndpointPatch, service: Service, caller: Caller) -> Endpoint:
    """Changes what the body gives; `allowed_inputs` or `allowed_outputs` given as [] removes that narrowing."""
    return service.update_endpoint(
        endpoint_name,
        description=body.description,
        tags=body.tags,
        default_deployment=body.defaults.deployment_name if body.defaults else None,
        allowed_inputs=body.allowed_inputs,
        allowed_outputs=body.allowed_outputs,
        caller=caller,
    )


@app.delete("/endpoints/<endpoint_name>", status_code=204, tags=["endpoints"], summary="Delete an endpoint")
def delete_endpoint(endpoint_name: str, service: Service) -> Response[None]:
    """Deletes the endpoint and its deployments; its jobs and their outputs are kept."""
    service.delete_endpoint(endpoint_name)
    return Response(status_code=204)


@app.get("/endpoints", tags=["endpoints"], summary="List endpoints")
def list_endpoints(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> EndpointList:
    return EndpointList.of(paged(lambda _: service.list_endpoints(), limit=limit, next_token=next_token))


# ------------------------------------------------------------------------------------------ deployments
@app.put(
    "/endpoints/<endpoint_name>/deployments/<deployment_name>",
    tags=["deployments"],
    summary="Create a deployment, or update it",
)
def put_deployment(
    endpoint_name: str,
    deployment_name: str,
    body: DeploymentBody,
    service: Service,
    caller: Caller,
    set_default: Annotated[bool, Query(description="make it the endpoint's default deployment")] = False,
) -> Deployment:
    """The body is deployment.yml as JSON; its code folder (and an inline model) must already be in storage."""
    mapping = _with_path_names(body, name=deployment_name, endpoint_name=endpoint_name)
    declaration = yaml_specs.load_deployment_mapping(mapping, None, source="")
    if declaration.code is not None:
        _storage_location(service, declaration.code, "code_configuration.code")
    if declaration.model.path is not None:
        _storage_location(service, declaration.model.path, "model.path")
    return service.put_deployment(declaration, set_default=set_default, caller=caller)


@app.get("/endpoints/<endpoint_name>/deployments/<deployment_name>", tags=["deployments"], summary="Show one")
def get_deployment(endpoint_name: str, deployment_name: str, service: Service) -> Deployment:
    return service.get_deployment(endpoint_name, deployment_name)


@app.delete(
    "/endpoints/<endpoint_name>/deployments/<deployment_name>",
    status_code=204,
    tags=["deployments"],
    summary="Delete a deployment",
)
def delete_deployment(endpoint_name: str, deployment_name: str, service: Service, caller: Caller) -> Response[None]:
    """The default deployment can be deleted only when it is the endpoint's last one."""
    service.delete_deployment(endpoint_name, deployment_name, caller=caller)
    return Response(status_code=204)


@app.get("/endpoints/<endpoint_name>/deployments", tags=["deployments"], summary="List an endpoint's deployments")
def list_deployments(
    endpoint_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> DeploymentList:
    listing = paged(lambda _: service.list_deployments(endpoint_name), limit=limit, next_token=next_token)
    return DeploymentList.of(listing)


# ------------------------------------------------------------------------------------------ models
@app.put("/models/<model_name>/versions/<version>", status_code=201, tags=["models"], summary="Register a version")
def put_model_version(model_name: str, version: str, body: ModelVersionBody, service: Service, caller: Caller) -> Model:
    """Registers the folder or file at `path` (already in storage) where it is. Versions are immutable."""
    return service.register_model(
        model_name,
        _storage_location(service, body.path, "path"),
        version=version,
        description=body.description,
        tags=body.tags,
        caller=caller,
    )


@app.post("/models/<model_name>/uploads", tags=["models"], summary="Get a presigned upload for a model folder")
def upload_model(model_name: str, service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "models", _asset_name(model_name))


def _asset_name(name: str) -> str:
    """The name becomes part of an upload's key prefix: only a name an asset may have ("../" would climb out)."""
    return parse(AssetVersion, {"name": name, "version": "1"}).name


@app.post("/code/uploads", tags=["deployments"], summary="Get a presigned upload for a scoring code folder")
def upload_code(service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "code")


@app.get("/models", tags=["models"], summary="List every model version")
def list_models(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> ModelList:
    return ModelList.of(paged(lambda _: service.list_models(), limit=limit, next_token=next_token))


@app.get("/models/<model_name>/versions", tags=["models"], summary="List a model's versions")
def list_model_versions(
    model_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> ModelList:
    return ModelList.of(paged(lambda _: service.list_models(model_name), limit=limit, next_token=next_token))


@app.get("/models/<model_name>/versions/<version>", tags=["models"], summary="Show a version (or `latest`)")
def get_model_version(model_name: str, version: str, service: Service) -> Model:
    label = yaml_specs.LATEST if version == yaml_specs.LATEST else None
    return service.get_model(model_name, version, label)


# ------------------------------------------------------------------------------------------ environments
@app.put(
    "/environments/<environment_name>/versions/<version>",
    status_code=201,
    tags=["environments"],
    summary="Register a version",
)
def put_environment_version(
    environment_name: str, version: str, body: EnvironmentVersionBody, service: Service, caller: Caller
) -> Environment:
    """An image, a conda file (its text), or both. Versions are immutable: a deployment that names one keeps it."""
    if body.conda_file is not None and not yaml_specs.is_conda_text(body.conda_file):
        # The service would read a path from this machine's disk; a request gives the file's text.
        raise ValidationError("give the conda file's text (YAML), not a path to it", field="conda_file")
    return service.register_environment(
        environment_name,
        version=version,
        image=body.image,
        conda_file=body.conda_file,
        pip_requirements=body.pip_requirements,
        description=body.description,
        tags=body.tags,
        caller=caller,
    )


@app.get("/environments", tags=["environments"], summary="List every environment version")
def list_environments(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> EnvironmentList:
    return EnvironmentList.of(paged(lambda _: service.list_environments(), limit=limit, next_token=next_token))


@app.get("/environments/<environment_name>/versions", tags=["environments"], summary="List an environment's versions")
def list_environment_versions(
    environment_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> EnvironmentList:
    listing = paged(lambda _: service.list_environments(environment_name), limit=limit, next_token=next_token)
    return EnvironmentList.of(listing)


@app.get(
    "/environments/<environment_name>/versions/<version>",
    tags=["environments"],
    summary="Show a version (or `latest`)",
)
def get_environment_version(environment_name: str, version: str, service: Service) -> Environment:
    label = yaml_specs.LATEST if version == yaml_specs.LATEST else None
    return service.get_environment(environment_name, version, label)


# ------------------------------------------------------------------------------------------ data assets
@app.put("/data/<data_name>/versions/<version>", status_code=201, tags=["data"], summary="Register a version")
def put_data_version(
    data_name: str, version: str, body: DataVersionBody, service: Service, caller: Caller
) -> DataAsset:
    """Registers the folder (uri_folder) or file (uri_file) at `path` where it is. Versions are immutable."""
    if not yaml_specs.is_reference(body.path):
        # A local path would make the server copy from its own disk; a client uploads first (POST .../uploads).
        _storage_location(service, body.path, "path")
    return service.register_data(
        data_name,
        body.path,
        data_type=body.type,
        version=version,
        description=body.description,
        tags=body.tags,
        caller=caller,
    )


@app.post("/inputs/uploads", tags=["jobs"], summary="Get a presigned upload for a local input folder or file")
def upload_input(service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "inputs")


@app.post("/data/<data_name>/uploads", tags=["data"], summary="Get a presigned upload for a data folder")
def upload_data(data_name: str, service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "data", _asset_name(data_name))


@app.get("/data", tags=["data"], summary="List every data asset version")
def list_data(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> DataList:
    return DataList.of(paged(lambda _: service.list_data(), limit=limit, next_token=next_token))


@app.get("/data/<data_name>/versions", tags=["data"], summary="List a data asset's versions")
def list_data_versions(
    data_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> DataList:
    return DataList.of(paged(lambda _: service.list_data(data_name), limit=limit, next_token=next_token))


@app.get("/data/<data_name>/versions/<version>", tags=["data"], summary="Show a version (or `latest`)")
def get_data_version(data_name: str, version: str, service: Service) -> DataAsset:
    label = yaml_specs.LATEST if version == yaml_specs.LATEST else None
    return service.get_data(data_name, version, label)


# ------------------------------------------------------------------------------------------ datastores
@app.put("/datastores/<datastore_name>", status_code=201, tags=["datastores"], summary="Register a datastore")
def put_datastore(datastore_name: str, body: DatastoreBody, service: Service, caller: Caller) -> Datastore:
    """Names an S3 bucket and prefix, so paths can be written azureml://datastores/<name>/paths/<path>. The
    stack's own bucket is `workspaceblobstore`. The stack reads only the buckets its data_buckets setting names."""
    return service.create_datastore(
        datastore_name,
        bucket=body.bucket,
        prefix=body.prefix,
        folder=body.folder,
        description=body.description,
        tags=body.tags,
        caller=caller,
    )


@app.get("/datastores", tags=["datastores"], summary="List datastores, the default first")
def list_datastores(service: Service) -> DatastoreList:
    return DatastoreList(value=service.list_datastores())


@app.get("/datastores/<datastore_name>", tags=["datastores"], summary="Show a datastore")
def get_datastore(datastore_name: str, service: Service) -> Datastore:
    return service.get_datastore(datastore_name)


# ------------------------------------------------------------------------------------------ computes
@app.get("/computes", tags=["computes"], summary="List computes")
def list_computes(service: Service) -> ComputeList:
    return ComputeList(value=service.backend.computes.list())


# ------------------------------------------------------------------------------------------ jobs
@app.post("/endpoints/<endpoint_name>/jobs", status_code=202, tags=["jobs"], summary="Invoke: start a job")
def invoke(
    endpoint_name: str,
    body: InvokeBody,
    service: Service,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> Response[JobView]:
    """Scores the input with the given deployment (default: the endpoint's default deployment). The job runs
    on; follow it at links.job."""
    overrides = body.overrides
    output = body.output
    if output is not None and output.file_name is not None:
        if overrides.output_file_name not in (None, output.file_name):
            raise ValidationError("conflicts with overrides.output_file_name; give one", field="output.file_name")
        overrides = overrides.model_copy(update={"output_file_name": output.file_name})
    request = InvokeRequest(
        endpoint_name=endpoint_name,
        input=body.input.uri,
        input_type=body.input.type,
        exclude=body.input.exclude,
        deployment_name=body.deployment_name,
        output_path=output.path if output else None,
        overrides=overrides,
        inputs=body.inputs,
        caller=caller,
        experiment_name=body.experiment_name,
        display_name=body.display_name,
        tags=body.tags,
    )
    job = service.invoke(request) if idempotency_key is None else service.invoke_idempotent(request, idempotency_key)
    return _accepted(service, job)


def _accepted(service: BatchEndpointService, job: Job) -> Response[JobView]:
    """202 with the new job, and its address in Location."""
    view = JobView.of(job, api_base_url=service.backend.api_base_url)
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=view, headers={"Location": view.links.job}
    )


@app.get("/jobs/<job_id>", tags=["jobs"], summary="Show a job and its progress")
def get_job(job_id: str, service: Service) -> JobView:
    job = service.get_job(job_id)
    return JobView.of(job, api_base_url=service.backend.api_base_url, progress=service.job_progress(job_id))


@app.get("/endpoints/<endpoint_name>/jobs", tags=["jobs"], summary="List an endpoint's jobs, newest first")
def list_jobs(
    endpoint_name: str,
    service: Service,
    limit: PageLimit = 20,
    next_token: PageToken = None,
    experiment_name: Annotated[str | None, Query(description="only the jobs of this experiment")] = None,
    tag: Annotated[list[str] | None, Query(description="only jobs with this tag, key=value; repeatable")] = None,
) -> JobList:
    tags = yaml_specs.parse_overrides(tag or [], field="tag")
    page = service.list_jobs_page(
        endpoint_name, limit=limit, next_token=next_token, experiment_name=experiment_name, tags=tags
    )
    base = service.backend.api_base_url
    return JobList(value=[JobView.of(job, api_base_url=base) for job in page.items], next_token=page.next_token)


@app.post("/jobs/<job_id>/cancel", status_code=202, tags=["jobs"], summary="Cancel a job")
def cancel_job(job_id: str, service: Service, caller: Caller) -> JobView:
    """Asks the job to stop; it ends Canceled within seconds. A job that has ended is a conflict."""
    return JobView.of(service.cancel_job(job_id, caller=caller), api_base_url=service.backend.api_base_url)


@app.post("/jobs/<job_id>/rerun", status_code=202, tags=["jobs"], summary="Rerun an ended job's (failed) files")
def rerun_job(
    job_id: str, body: RerunBody, service: Service, caller: Caller, idempotency_key: IdempotencyKey = None
) -> Response[JobView]:
    """Starts a new job with the ended job's deployment and settings, over its failed and never-scored files
    (`failed: true`) or its whole input. The new job writes its own output; its `rerun_of` names the job."""
    output = body.output or InvokeOutput()
    job = service.rerun_job(
        job_id,
        failed_only=body.failed,
        output_path=_storage_location(service, output.path, "output.path") if output.path else None,
        output_file_name=output.file_name,
        caller=caller,
        idempotency_key=idempotency_key,
    )
    return _accepted(service, job)


@app.post("/jobs/<job_id>/resume", status_code=202, tags=["jobs"], summary="Resume a job whose run stopped")
def resume_job(job_id: str, service: Service, caller: Caller, idempotency_key: IdempotencyKey = None) -> JobView:
    """Runs the workflow of a job whose execution stopped (failed, aborted, its host gone) again, keeping every
    finished mini-batch. A job still running, completed or canceled is a conflict; the caller must be allowed
    the job's input and output, as for an invoke. Retries with one Idempotency-Key resume the job once."""
    job = service.resume_job(job_id, caller=caller, idempotency_key=idempotency_key)
    return JobView.of(job, api_base_url=service.backend.api_base_url)


@app.get("/jobs/<job_id>/logs", tags=["jobs"], summary="What the job's scoring code printed, oldest first")
def get_job_logs(
    job_id: str,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    next_token: Annotated[str | None, Query(description="from the previous page")] = None,
) -> LogPageView:
    return LogPageView.of(service.job_logs(job_id, next_token=next_token, limit=limit))


# ------------------------------------------------------------------------------------------ errors
def _error_response(error: BatchEndpointError) -> Response:
    body = ErrorBody(code=error.code, message=error.message, field=error.field)
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(exclude_none=True),
    )


@app.exception_handler(BatchEndpointError)
def _refused(error: BatchEndpointError) -> Response:
    return _error_response(error)


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response:
    return _error_response(_validation_error(error.errors()))


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(error: RequestUnsupportedContentType) -> Response:
    return _error_response(UnsupportedMediaType("send the body as application/json", field="Content-Type"))


@app.not_found
def _no_route(_: Exception) -> Response:
    event = app.current_event
    return _error_response(NotFoundError(f"no route for {event.http_method} {event.path}"))


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    # Logged whole (with the traceback) for the operator; the client learns only where to look.
    logger.exception("unexpected error")
    request_id = (app.current_event.raw_event.get("requestContext") or {}).get("requestId")
    reference = f" (request id {request_id})" if request_id else ""
    body = ErrorBody(code="InternalError", message=f"internal error; the API's log has the details{reference}")
    return Response(status_code=500, content_type=content_types.APPLICATION_JSON, body=body.model_dump())


# Where a request value lives, in Powertools' error locations; the field is named as the client wrote it.
_PLACES = {"body", "query", "path", "header"}


def _validation_error(errors: list[dict[str, Any]]) -> ValidationError:
    """The first problem of a request that did not match its shape, in the words the core uses for its own."""
    first = errors[0]
    location = [str(part) for part in first.get("loc", ())]
    if location and location[0] in _PLACES:
        location = location[1:]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ValidationError("is not valid JSON", field="body")
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known field"
    else:
        message = str(first.get("msg", "is not valid"))
    return ValidationError(message, field=".".join(location) or "body")
