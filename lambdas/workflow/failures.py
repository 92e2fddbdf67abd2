"""One readable line from what a Step Functions Catch hands over: {"Error": name, "Cause": text}.

The Cause is JSON for the two failures a job usually meets: a Lambda step's exception
({"errorMessage", "errorType", "stackTrace", ...}) and a Batch job that failed every attempt (the job's
description, keys in PascalCase from Step Functions). Anything else is passed on as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from batch_endpoints.errors import BatchEndpointError

MAX_MESSAGE = 2000


def _error_names(cls: type[BaseException]) -> set[str]:
    return {cls.__name__}.union(*(_error_names(sub) for sub in cls.__subclasses__()))


# The project's own errors read as sentences a user can act on; other exceptions keep their type in front.
OWN_ERRORS = _error_names(BatchEndpointError)


def describe_failure(error: Mapping[str, Any] | None) -> str:
    error = error or {}
    name = str(error.get("Error") or "an unknown error")
    cause = error.get("Cause")
    try:
        detail = json.loads(cause) if isinstance(cause, str) else cause
    except ValueError:
        detail = None
    if isinstance(detail, Mapping):
        if "errorMessage" in detail:
            return _short(_lambda_error(detail))
        if _field(detail, "JobId"):
            return _short(_batch_job(detail))
    return _short(f"{name}: {cause}" if cause else name)


def _lambda_error(detail: Mapping[str, Any]) -> str:
    message, kind = str(detail["errorMessage"]), str(detail.get("errorType") or "")
    return message if kind in OWN_ERRORS or not kind else f"{kind}: {message}"


def _batch_job(detail: Mapping[str, Any]) -> str:
    container = _field(detail, "Container") or {}
    reason = _field(detail, "StatusReason") or _field(container, "Reason") or "no reason given"
    exit_code = _field(container, "ExitCode")
    stream = _field(container, "LogStreamName")
    text = f"AWS Batch job {_field(detail, 'JobName')} ({_field(detail, 'JobId')}) failed: {reason}"
    if exit_code is not None:
        text += f" (exit code {exit_code})"
    return text + (f"; its log stream is {stream}" if stream else "")


def _field(data: Mapping[str, Any], name: str) -> Any:
    """A key as Step Functions writes it (PascalCase) or as the Batch API does (camelCase)."""
    return data.get(name, data.get(name[0].lower() + name[1:]))


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
