"""What the routes take besides their bodies: the service and the caller (dependencies tests can replace), paging
and idempotency parameters, and the checks of the names and storage locations a request gives."""

from __future__ import annotations

import functools
import os
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.request import Request
from pydantic import BaseModel

from batch_endpoints import assets
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.errors import BatchEndpointError, ValidationError
from batch_endpoints.idempotency import HEADER as IDEMPOTENCY_HEADER
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import AssetVersion, parse


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


def storage_location(service: BatchEndpointService, location: str, field: str) -> str:
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


def with_path_names(body: BaseModel, **names: str) -> dict[str, Any]:
    """The body as the YAML loaders read it, with the names from the path (a body may repeat, not change them)."""
    mapping = body.model_dump(by_alias=True, exclude_none=True)
    for field, value in names.items():
        if mapping.get(field, value) != value:
            raise ValidationError(f"is {mapping[field]!r}, but the path says {value!r}", field=field)
        mapping[field] = value
    return mapping


def asset_name(name: str) -> str:
    """The name becomes part of an upload's key prefix: only a name an asset may have ("../" would climb out)."""
    return parse(AssetVersion, {"name": name, "version": "1"}).name
