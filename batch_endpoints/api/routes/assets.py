"""Routes of registered assets: model, environment and data asset versions (and their uploads), datastores, and
the computes deployments may name."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from batch_endpoints import yaml_specs
from batch_endpoints.api import uploads
from batch_endpoints.api.route_inputs import (
    LIST_PAGE,
    Caller,
    PageLimit,
    PageToken,
    Service,
    asset_name,
    storage_location,
)
from batch_endpoints.api.routes import new_router
from batch_endpoints.api.schemas import (
    ComputeBody,
    ComputeList,
    DataList,
    DatastoreBody,
    DatastoreList,
    DataVersionBody,
    EnvironmentList,
    EnvironmentVersionBody,
    ModelList,
    ModelVersionBody,
    UploadTarget,
)
from batch_endpoints.errors import ValidationError
from batch_endpoints.paging import paged
from batch_endpoints.specs import (
    Compute,
    ComputeDeclaration,
    ComputeUpdate,
    DataAsset,
    Datastore,
    Environment,
    Model,
    parse,
)

router = new_router()


@router.put("/models/<model_name>/versions/<version>", status_code=201, tags=["models"], summary="Register a version")
def put_model_version(model_name: str, version: str, body: ModelVersionBody, service: Service, caller: Caller) -> Model:
    """Registers the folder or file at `path` (already in storage) where it is. Versions are immutable."""
    location = storage_location(service, body.path, "path")
    return service.register_model(model_name, location, **_registration(version, body, caller))


@router.post("/models/<model_name>/uploads", tags=["models"], summary="Get a presigned upload for a model folder")
def upload_model(model_name: str, service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "models", asset_name(model_name))


@router.get("/models", tags=["models"], summary="List every model version")
def list_models(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> ModelList:
    return ModelList.of(paged(lambda _: service.list_models(), limit=limit, next_token=next_token))


@router.get("/models/<model_name>/versions", tags=["models"], summary="List a model's versions")
def list_model_versions(
    model_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> ModelList:
    return ModelList.of(paged(lambda _: service.list_models(model_name), limit=limit, next_token=next_token))


@router.get("/models/<model_name>/versions/<version>", tags=["models"], summary="Show a version (or `latest`)")
def get_model_version(model_name: str, version: str, service: Service) -> Model:
    return service.get_model(model_name, version, _label(version))


@router.put(
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
        image=body.image,
        conda_file=body.conda_file,
        pip_requirements=body.pip_requirements,
        **_registration(version, body, caller),
    )


@router.get("/environments", tags=["environments"], summary="List every environment version")
def list_environments(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> EnvironmentList:
    return EnvironmentList.of(paged(lambda _: service.list_environments(), limit=limit, next_token=next_token))


@router.get(
    "/environments/<environment_name>/versions", tags=["environments"], summary="List an environment's versions"
)
def list_environment_versions(
    environment_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> EnvironmentList:
    listing = paged(lambda _: service.list_environments(environment_name), limit=limit, next_token=next_token)
    return EnvironmentList.of(listing)


@router.get(
    "/environments/<environment_name>/versions/<version>",
    tags=["environments"],
    summary="Show a version (or `latest`)",
)
def get_environment_version(environment_name: str, version: str, service: Service) -> Environment:
    return service.get_environment(environment_name, version, _label(version))


@router.put("/data/<data_name>/versions/<version>", status_code=201, tags=["data"], summary="Register a version")
def put_data_version(
    data_name: str, version: str, body: DataVersionBody, service: Service, caller: Caller
) -> DataAsset:
    """Registers the folder (uri_folder) or file (uri_file) at `path` where it is. Versions are immutable."""
    if not yaml_specs.is_reference(body.path):
        # A local path would make the server copy from its own disk; a client uploads first (POST .../uploads).
        storage_location(service, body.path, "path")
    return service.register_data(data_name, body.path, data_type=body.type, **_registration(version, body, caller))


@router.post("/data/<data_name>/uploads", tags=["data"], summary="Get a presigned upload for a data folder")
def upload_data(data_name: str, service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "data", asset_name(data_name))


@router.get("/data", tags=["data"], summary="List every data asset version")
def list_data(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> DataList:
    return DataList.of(paged(lambda _: service.list_data(), limit=limit, next_token=next_token))


@router.get("/data/<data_name>/versions", tags=["data"], summary="List a data asset's versions")
def list_data_versions(
    data_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> DataList:
    return DataList.of(paged(lambda _: service.list_data(data_name), limit=limit, next_token=next_token))


@router.get("/data/<data_name>/versions/<version>", tags=["data"], summary="Show a version (or `latest`)")
def get_data_version(data_name: str, version: str, service: Service) -> DataAsset:
    return service.get_data(data_name, version, _label(version))


@router.put("/datastores/<datastore_name>", status_code=201, tags=["datastores"], summary="Register a datastore")
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


@router.get("/datastores", tags=["datastores"], summary="List datastores, the default first")
def list_datastores(service: Service) -> DatastoreList:
    return DatastoreList(value=service.list_datastores())


@router.get("/datastores/<datastore_name>", tags=["datastores"], summary="Show a datastore")
def get_datastore(datastore_name: str, service: Service) -> Datastore:
    return service.get_datastore(datastore_name)


@router.get("/computes", tags=["computes"], summary="List computes, the stack's own first")
def list_computes(service: Service) -> ComputeList:
    return ComputeList(value=service.list_computes())


@router.put("/computes/<compute_name>", status_code=201, tags=["computes"], summary="Create a compute cluster")
def put_compute(compute_name: str, body: ComputeBody, service: Service, caller: Caller) -> Compute:
    """Azure's `az ml compute create --type amlcompute`. On AWS: a Batch compute environment and job queue, which
    AWS makes in steps: the compute is Creating until its queue is ready (GET moves it on)."""
    declaration = parse(ComputeDeclaration, {"name": compute_name, **body.model_dump(exclude={"type"})})
    return service.create_compute(declaration, caller=caller)


@router.get("/computes/<compute_name>", tags=["computes"], summary="Show a compute")
def get_compute(compute_name: str, service: Service) -> Compute:
    return service.get_compute(compute_name)


@router.patch("/computes/<compute_name>", tags=["computes"], summary="Change a compute's instances or idle time")
def patch_compute(compute_name: str, body: ComputeUpdate, service: Service) -> Compute:
    return service.update_compute(compute_name, body)


@router.delete(
    "/computes/<compute_name>",
    status_code=202,
    tags=["computes"],
    summary="Delete a compute (in steps on AWS)",
    responses={
        202: {
            "description": "Deleting: AWS is removing its queue and compute environment; DELETE again to go on",
            "content": {"application/json": {"model": Compute}},
        },
        204: {"description": "The compute is gone"},
    },
)
def delete_compute(compute_name: str, service: Service) -> Response[Compute | None]:
    """204 once the compute is gone; 202 with the compute, Deleting, while AWS removes its queue and compute
    environment: DELETE again to go on. Refused (409) while a deployment uses it."""
    remaining = service.delete_compute(compute_name)
    if remaining is None:
        return Response(status_code=204)
    return Response(status_code=202, content_type="application/json", body=remaining)


def _registration(
    version: str, body: ModelVersionBody | EnvironmentVersionBody | DataVersionBody, caller: str
) -> dict[str, Any]:
    """What registering any asset version takes besides its content: version, description, tags, who."""
    return {"version": version, "description": body.description, "tags": body.tags, "caller": caller}


def _label(version: str) -> str | None:
    """`latest` in a version's place in the path is the label of the newest version."""
    return yaml_specs.LATEST if version == yaml_specs.LATEST else None
