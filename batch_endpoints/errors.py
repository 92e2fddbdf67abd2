"""The one error hierarchy of the project.

Every failure a user can cause is one of these. The CLI maps them to exit codes and the API to HTTP statuses,
each in one place, from `status` and `code`.
"""

from __future__ import annotations

import re


class BatchEndpointError(Exception):
    """Base of every error a user can act on: carries a stable code, a message and the field at fault."""

    status = 500
    code = "InternalError"
    request_id: str | None = None
    """Names the failed request in the server's logs, when the error is the API's answer."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body

    def __str__(self) -> str:
        # Messages from YAML loading already say where the problem is; others get the field in front. The field
        # must appear as a name of its own: a path such as /data/inputs/x does not name the field `input`.
        if self.field and not re.search(rf"(?<![\w./-]){re.escape(self.field)}(?![\w/-])", self.message):
            return f"{self.field}: {self.message}"
        return self.message


class ValidationError(BatchEndpointError):
    status = 400
    code = "ValidationError"


class ForbiddenError(BatchEndpointError):
    """The caller may not make the system touch that data: an input or output outside what the caller may use."""

    status = 403
    code = "Forbidden"


class NotFoundError(BatchEndpointError):
    status = 404
    code = "NotFound"


class ConflictError(BatchEndpointError):
    """A name in use, an output that already exists, or a record changed by someone else meanwhile."""

    status = 409
    code = "Conflict"


class AlreadyExistsError(ConflictError):
    """A write that must not overwrite found its target already there."""

    code = "AlreadyExists"
