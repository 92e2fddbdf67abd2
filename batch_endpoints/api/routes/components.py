"""Routes of components (`az ml component create|list|show`): versions of command, parallel and pipeline
components, registered with their code already in storage."""

from __future__ import annotations

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
from batch_endpoints.api.schemas import ComponentList, ComponentVersionBody
from batch_endpoints.paging import paged
from batch_endpoints.specs.components import ComponentT, with_code
from batch_endpoints.yaml_files.components import component_from_mapping
from batch_endpoints.yaml_files.references import LATEST

router = new_router()


@router.put(
    "/components/<component_name>/versions/<version>",
    status_code=201,
    tags=["components"],
    summary="Register a version",
)
def put_component_version(
    component_name: str, version: str, body: ComponentVersionBody, service: Service, caller: Caller
) -> ComponentT:
    """Checks the component whole (its command, a pipeline's step graph) before anything is stored; code folders
    must already be in this backend's storage. Versions are immutable."""
    declared = component_from_mapping(with_path_names(body, name=component_name, version=version), None)
    declared = with_code(declared, lambda field, code: storage_location(service, code, field))
    return service.create_component(declared, version=version, caller=caller)


@router.get("/components", tags=["components"], summary="List every component version")
def list_components(service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None) -> ComponentList:
    return ComponentList.of(paged(lambda _: service.list_components(), limit=limit, next_token=next_token))


@router.get("/components/<component_name>/versions", tags=["components"], summary="List a component's versions")
def list_component_versions(
    component_name: str, service: Service, limit: PageLimit = LIST_PAGE, next_token: PageToken = None
) -> ComponentList:
    listing = paged(lambda _: service.list_components(component_name), limit=limit, next_token=next_token)
    return ComponentList.of(listing)


@router.get(
    "/components/<component_name>/versions/<version>", tags=["components"], summary="Show a version (or `latest`)"
)
def get_component_version(component_name: str, version: str, service: Service) -> ComponentT:
    return service.get_component(component_name, version, LATEST if version == LATEST else None)
