"""An HTTP request as API Gateway's REST API hands it to a Lambda proxy integration, and the Lambda's answer back.

Payload format 1.0: the decoded path, single- and multi-value headers and query parameters, the body as text
(base64 when it is not UTF-8), and requestContext.identity filled from the SigV4 check the way IAM
authorization fills it. The API's resolver then sees the same event locally as behind API Gateway.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from batch_endpoints.server.sigv4 import Identity

STAGE = "local"
API_ID = "local"


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def proxy_event(
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    identity: Identity | None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event for one request; `path` and `query` as sent (percent-encoded), `identity` from the SigV4 check."""
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    text, encoded = _body_text(body)
    decoded_path = unquote(path) or "/"
    user_agent = next((value for name, value in headers if name.lower() == "user-agent"), None)
    return {
        "resource": "/{proxy+}",
        "path": decoded_path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": dict(pairs) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": decoded_path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": decoded_path,
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "apiId": API_ID,
            "protocol": "HTTP/1.1",
            "identity": _identity(identity, source_ip, user_agent),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _identity(identity: Identity | None, source_ip: str, user_agent: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"sourceIp": source_ip, "userAgent": user_agent}
    if identity is not None:
        found.update(
            accessKey=identity.access_key,
            accountId=identity.account_id,
            caller=identity.user,
            user=identity.user,
            userArn=identity.user_arn,
        )
    return found


def _body_text(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode(), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True


def http_reply(result: Mapping[str, Any]) -> HttpReply:
    """The Lambda's proxy result as the HTTP response API Gateway sends."""
    headers = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    named = {name.lower() for name, _ in headers}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() not in named:
            headers += [(name, str(value)) for value in values]
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return HttpReply(int(result["statusCode"]), headers, data)
