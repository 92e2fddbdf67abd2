"""Routes of endpoints and their deployments (and the upload of a deployment's scoring code)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from batch_endpoints import yaml_specs
from batch_endpoints.api import uploads
from batch_endpoints.api.route_inputs import (
    LIST_PAGE,
    Caller,
    PageLimit,
    PageToken,
    Service,
    storage_location,
    with_path_names,
)
from batch_endpoints.api.routes import new_router
from batch_endpoints.api.schemas import (
    DeploymentBody,
    DeploymentList,
    EndpointBody,
    EndpointList,
    UploadTarget,
)
from batch_endpoints.paging import paged
from batch_endpoints.specs import Deployment, Endpoint
from batch_endpoints.specs.components import with_code
from batch_endpoints.yaml_specs import EndpointPatch

router = new_router()


@router.put("/endpoints/<endpoint_name>", tags=["endpoints"], summary="Create an endpoint, or update it")
def put_endpoint(endpoint_name: str, body: EndpointBody, service: Service, caller: Caller) -> Endpoint:
    """Creates the endpoint, or sets the description and tags of an existing one (omitted = empty), so sending
    the same body twice changes nothing. `defaults.deployment_name` sets the default of an existing endpoint."""
    declaration = yaml_specs.load_endpoint_mapping(with_path_names(body, name=endpoint_name), source="")
    return service.put_endpoint(declaration, caller=caller)


@router.get("/endpoints/<endpoint_name>", tags=["endpoints"], summary="Show an endpoint")
def get_endpoint(endpoint_name: str, service: Service) -> Endpoint:
    return service.get_endpoint(endpoint_name)


@router.patch("/endpoints/<endpoint_name>", tags=["endpoints"], summary="Change the default deployment or description")
def patch_endpoint(endpoint_name: str, body: EndpointPatch, service: Service, caller: Caller) -> Endpoint:
    """Changes what the body gives; `allowed_inputs` or `allowed_outputs` given as [] removes that narrowing."""
    return service.update_endpoint(endpoint_name, body, caller=caller)


@router.delete("/endpoints/<endpoint_name>", status_code=204, tags=["endpoints"], summary="Delete an endpoint")
def delete_endpoint(endpoint_name: str, service: Service) -> Response[None]:
    """Deletes the endpoint and its deployments; its jobs and their outputs are kept."""
    service.delete_endpoint(endpoint_name)
    return Response(status_code=204)


@router.get("/endpoints", tags=["endpoints"], summary="List endpoints")
def list_endpoints(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> EndpointList:
    return EndpointList.of(paged(lambda _: service.list_endpoints(), limit=limit, next_token=next_token))


@router.put(
    "/endpoints/<endpoint_name>/deployments/<deployment_name>",
    tags=["deployments"],
    summary="Create a deployment, or update it",
)
def put_deployment(
    endpoint_name: str,
    deployment_name: str,
    body: Annotated[DeploymentBody, Body()],
    service: Service,
    caller: Caller,
    set_default: Annotated[bool, Query(description="make it the endpoint's default deployment")] = False,
) -> Deployment:
    """The body is deployment.yml as JSON; its code folder (and an inline model) must already be in storage."""
    mapping = with_path_names(body, name=deployment_name, endpoint_name=endpoint_name)
    declaration = yaml_specs.load_deployment_mapping(mapping, None, source="")
    if declaration.code is not None:
        storage_location(service, declaration.code, "code_configuration.code")
    if declaration.model is not None and declaration.model.path is not None:
        storage_location(service, declaration.model.path, "model.path")
    if declaration.component is not None and not isinstance(declaration.component, str):
        inline = with_code(
            declaration.component, lambda field, code: storage_location(service, code, f"component.{field}")
        )
        declaration = dataclasses.replace(declaration, component=inline)
    return service.put_deployment(declaration, set_default=set_default, caller=caller)


@router.get("/endpoints/<endpoint_name>/deployments/<deployment_name>", tags=["deployments"], summary="Show one")
def get_deployment(endpoint_name: str, deployment_name: str, service: Service) -> Deployment:
    return service.get_deployment(endpoint_name, deployment_name)


@router.delete(
    "/endpoints/<endpoint_name>/deployments/<deployment_name>",
    status_code=204,
    tags=["deployments"],
    summary="Delete a deployment",
)
def delete_deployment(endpoint_name: str, deployment_name: str, service: Service, caller: Caller) -> Response[None]:
    """The default deployment can be deleted only when it is the endpoint's last one."""
    service.delete_deployment(endpoint_name, deployment_name, caller=caller)
    return Response(status_code=204)


@router.get("/endpoints/<endpoint_name>/deployments", tags=["deployments"], summary="List an endpoint's deployments")
def list_deployments(
    endpoint_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> DeploymentList:
    listing = paged(lambda _: service.list_deployments(endpoint_name), limit=limit, next_token=next_token)
    return DeploymentList.of(listing)


@router.post("/code/uploads", tags=["deployments"], summary="Get a presigned upload for a scoring code folder")
def upload_code(service: Service) -> UploadTarget:
    return uploads.presigned_folder_upload(service.blobs.root, "code")
