"""The API's refusals as the project's error types, carrying the server's status, code, message and field.

400, 403 (code Forbidden), 404 and 409 become the core's own ValidationError, ForbiddenError, NotFoundError and
ConflictError (AlreadyExistsError), so code that handles the service's errors handles the API's the same way.
Statuses the core has no type for become ApiError subclasses: refused authentication (API Gateway's 403),
throttling, server failures.
"""

from __future__ import annotations

import json

from batch_endpoints.client.transport import HttpResponse
from batch_endpoints.errors import (
    AlreadyExistsError,
    BatchEndpointError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)

CORE_ERRORS = {
    kind.code: kind for kind in (ValidationError, ForbiddenError, NotFoundError, ConflictError, AlreadyExistsError)
}


class ApiError(BatchEndpointError):
    """A refusal or failure with no core type: its status and code are the server's."""

    def __init__(self, message: str, *, status: int, code: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.code = code


class AuthenticationError(ApiError):
    """403 from the gateway: unsigned, unknown key, wrong signature, clock skew, or not allowed."""


class ThrottlingError(ApiError):
    """429: the API's or the account's request rate is exceeded (raised once retries are spent)."""


class ServerError(ApiError):
    """5xx: the service failed (raised once retries are spent)."""


def error_from_response(response: HttpResponse) -> BatchEndpointError:
    """The error for a response of status 400 or more; `request_id` names it in the server's logs."""
    try:
        body = json.loads(response.body or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    # The API answers {code, message, field}; API Gateway answers {"message"} (or {"Message"}) with the code in
    # the x-amzn-ErrorType header ("Type:extra").
    gateway_type = response.headers.get("x-amzn-errortype", "").partition(":")[0]
    code = str(body.get("code") or gateway_type or f"Http{response.status}")
    message = str(body.get("message") or body.get("Message") or response.body.decode(errors="replace")[:500])
    field = body.get("field")
    core = CORE_ERRORS.get(code)
    if core is not None and core.status == response.status:
        error: BatchEndpointError = core(message, field=field)
    else:
        kind = ApiError
        if response.status == 403:
            kind = AuthenticationError
        elif response.status == 429:
            kind = ThrottlingError
        elif response.status >= 500:
            kind = ServerError
        error = kind(message, status=response.status, code=code, field=field)
    error.request_id = response.headers.get("x-amzn-requestid")
    return error
