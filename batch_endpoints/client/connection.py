"""One API base URL, signed: every request is signed with SigV4 for `execute-api`, sent, retried when the
failure may pass, and answered with its JSON or a typed error."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from batch_endpoints.client.errors import error_from_response
from batch_endpoints.client.retries import RetryPolicy, resendable
from batch_endpoints.client.transport import HttpRequest, HttpResponse, Transport
from batch_endpoints.errors import ValidationError

SERVICE = "execute-api"
DEFAULT_REGION = "us-east-1"
# https://<api id>.execute-api.<region>.amazonaws.com/<stage>: the region is in the URL of a deployed API.
API_GATEWAY_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def path(template: str, *names: str) -> str:
    """`template` with each `{}` replaced by a name, encoded as one path segment."""
    return template.format(*(quote(name, safe="") for name in names))


class Connection:
    def __init__(
        self,
        endpoint_url: str,
        *,
        session: Any,
        region: str | None,
        transport: Transport,
        retry: RetryPolicy,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValidationError(
                f"{endpoint_url!r} is not an http(s) URL; give the API's URL, e.g. the stack output ApiUrl",
                field="endpoint_url",
            )
        self.base_url = endpoint_url.rstrip("/")
        self.session = session
        self.region = region or _region_of(parts.hostname or "", session)
        self.transport = transport
        self.retry = retry

    def call(
        self,
        method: str,
        resource: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        resend_safe: bool = False,
    ) -> Any:
        """The response's JSON (None when it has no body), or the API's error raised as a typed exception.
        Each attempt is signed afresh: the signature holds the time, and credentials may have been refreshed.
        `resend_safe`: a POST that acts on nothing, so retrying it is safe (see `send`)."""
        params = {name: _query_value(value) for name, value in (query or {}).items() if value is not None}
        url = self.base_url + resource + (f"?{urlencode(params, doseq=True, quote_via=quote)}" if params else "")
        data = b"" if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if data else {})}
        all_headers.update(headers or {})
        response = self.send(lambda: self._signed(method, url, all_headers, data), resend_safe=resend_safe)
        if response.status >= 400:
            raise error_from_response(response)
        return json.loads(response.body) if response.body else None

    def send(self, request: Callable[[], HttpRequest], *, resend_safe: bool = False) -> HttpResponse:
        """The answer to `request()` (built afresh for each attempt), retried while the failure may pass and a
        second delivery cannot act twice (`retries.resendable`, or `resend_safe` from a caller that knows); the
        last answer when retries are spent or the request was refused; OSError when no answer ever came."""
        attempt = 1
        while True:
            response = None
            sent = request()
            last = attempt >= self.retry.max_attempts or not (resend_safe or resendable(sent.method, sent.headers))
            try:
                response = self.transport.send(sent)
            except OSError:
                if last:
                    raise
            else:
                if response.status < 400 or last:
                    return response
                code = error_from_response(response).code
                if not self.retry.retryable(response.status, code):
                    return response
            self.retry.wait(attempt, _retry_after(response))
            attempt += 1

    def pages(self, resource: str, items: str, *, query: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following `next_token` from page to page."""
        token = None
        while True:
            page = self.call("GET", resource, query={**(query or {}), "next_token": token})
            yield from page[items]
            token = page.get("next_token")
            if not token:
                return

    def _signed(self, method: str, url: str, headers: dict[str, str], body: bytes) -> HttpRequest:
        credentials = self.session.get_credentials()
        if credentials is None:
            raise ValidationError(
                "no AWS credentials found (environment, profile, SSO, instance role); configure some or pass a "
                "session that has them",
                field="session",
            )
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        return HttpRequest(method, url, dict(request.headers.items()), body)


def _region_of(host: str, session: Any) -> str:
    if match := API_GATEWAY_HOST.match(host):
        return match.group(1)
    configured = getattr(session, "region_name", None)  # a boto3 Session
    if configured is None and hasattr(session, "get_config_variable"):  # a botocore Session
        configured = session.get_config_variable("region")
    return configured or DEFAULT_REGION


def _query_value(value: Any) -> str | list[str]:
    if isinstance(value, list):
        return [_query_text(item) for item in value]  # a repeated parameter (?tag=a&tag=b)
    return _query_text(value)


def _query_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _retry_after(response: HttpResponse | None) -> float | None:
    value = response.headers.get("retry-after") if response else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from AWS; the backoff applies
