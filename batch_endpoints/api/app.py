"""The REST API: a Powertools resolver whose routes (one router a noun, in routes/) translate HTTP to one
BatchEndpointService call and back.

The CLI is the other edge over the same service, so a route does what the matching `bep` command does. Route
functions hold no rules of their own: validation comes from the type hints (request shapes in schemas.py, their
meaning from the core), errors from the exception handlers here, the service from `get_service`
(route_inputs.py), which tests replace through `app.dependency_overrides`. The module imports nothing from AWS,
so the same `app` can be served by Lambda (handler.py) or by a local HTTP server.

Writes are idempotent where HTTP says they are: PUT creates or replaces, and an invoke, rerun or resume with an
Idempotency-Key header answers every retry with the job the first request started (or resumed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from batch_endpoints.api.route_inputs import get_service
from batch_endpoints.api.routes import assets as asset_routes
from batch_endpoints.api.routes import components as component_routes
from batch_endpoints.api.routes import endpoints as endpoint_routes
from batch_endpoints.api.routes import jobs as job_routes
from batch_endpoints.api.schemas import UNION_MEMBERS, ErrorBody
from batch_endpoints.errors import BatchEndpointError, NotFoundError, ValidationError
from batch_endpoints.specs import validation_error

__all__ = ["MAX_BODY_BYTES", "SERVICE_NAME", "app", "get_service"]

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
            openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
        )
    },
    security=[{"sigv4": []}],
)
for routes in (endpoint_routes, asset_routes, component_routes, job_routes):
    app.include_router(routes.router)


ErrorResponse = Response[dict[str, Any]]
_ErrorT = TypeVar("_ErrorT", bound=Exception)


def _handles(
    error_class: type[_ErrorT],
) -> Callable[[Callable[[_ErrorT], ErrorResponse]], Callable[[_ErrorT], ErrorResponse]]:
    """`app.exception_handler`, typed. Powertools leaves that decorator's result unannotated, so to the type checker
    every handler under it would lose its signature; it registers the handler and returns it unchanged."""
    register: Callable[[Callable[[_ErrorT], ErrorResponse]], Callable[[_ErrorT], ErrorResponse]]
    register = app.exception_handler(error_class)
    return register


def _error_response(error: BatchEndpointError) -> ErrorResponse:
    body = ErrorBody(code=error.code, message=error.message, field=error.field)
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(exclude_none=True),
    )


@_handles(BatchEndpointError)
def _refused(error: BatchEndpointError) -> ErrorResponse:
    return _error_response(error)


@_handles(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> ErrorResponse:
    return _error_response(_validation_error(error.errors()))


@_handles(RequestUnsupportedContentType)
def _unsupported_content_type(error: RequestUnsupportedContentType) -> ErrorResponse:
    return _error_response(UnsupportedMediaType("send the body as application/json", field="Content-Type"))


@app.not_found
def _no_route(_: Exception) -> ErrorResponse:
    event = app.current_event
    return _error_response(NotFoundError(f"no route for {event.http_method} {event.path}"))


@_handles(Exception)
def _unexpected(error: Exception) -> ErrorResponse:
    # Logged whole (with the traceback) for the operator; the client learns only where to look.
    logger.exception("unexpected error")
    request_id = (app.current_event.raw_event.get("requestContext") or {}).get("requestId")
    reference = f" (request id {request_id})" if request_id else ""
    body = ErrorBody(code="InternalError", message=f"internal error; the API's log has the details{reference}")
    return Response(status_code=500, content_type=content_types.APPLICATION_JSON, body=body.model_dump())


# Where a request value lives, in Powertools' error locations; the field is named as the client wrote it.
_PLACES = {"body", "query", "path", "header"}


def _validation_error(errors: Sequence[Mapping[str, Any]]) -> ValidationError:
    """The first problem of a request that did not match its shape, in the words the core uses for its own."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        return ValidationError("is not valid JSON", field="body")
    location = tuple(first.get("loc", ())) or ("body",)
    if len(location) > 1 and location[0] in _PLACES:
        location = location[1:]
    if location and location[0] in UNION_MEMBERS:
        # The whole body did not fit the member it was checked as (a list, say): the body is at fault.
        location = location[1:] or ("body",)
    return validation_error([{**first, "loc": location}])
