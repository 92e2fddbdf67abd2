"""How the SDK's signed requests reach the API: over HTTP(S) with the standard library, or any `Transport`
(tests hand them to the API Lambda's handler instead, as API Gateway would)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    """Names in lower case."""
    body: bytes = b""


class Transport(Protocol):
    def send(self, request: HttpRequest) -> HttpResponse:
        """The server's answer, whatever its status; OSError (ConnectionError, TimeoutError...) when none came."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would be followed unsigned for the new URL; the API never redirects, so surface it instead.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class UrllibTransport:
    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(_NoRedirects())

    def send(self, request: HttpRequest) -> HttpResponse:
        outgoing = urllib.request.Request(
            request.url, data=request.body or None, headers=request.headers, method=request.method
        )
        try:
            with self._opener.open(outgoing, timeout=self.timeout_s) as answer:
                return HttpResponse(answer.status, _lower(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as answer:
            with answer:
                return HttpResponse(answer.code, _lower(answer.headers.items()), answer.read())
        except urllib.error.URLError as error:
            reason = error.reason if isinstance(error.reason, OSError) else None
            raise reason or ConnectionError(str(error.reason)) from error


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}
