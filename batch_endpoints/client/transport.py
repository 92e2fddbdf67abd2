"""How the SDK's signed requests reach the API: over HTTP(S) through urllib3's connection pools, or any `Transport`
(tests hand them to the API Lambda's handler instead, as API Gateway would).

A pool keeps a host's connection open between requests, so `job stream`, which polls every few seconds, makes
one TCP connection and one TLS handshake, not one a poll."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3 import exceptions as urllib3_errors


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


# What urllib3 raises when no answer came whole: the connection failed or dropped, a read timed out, TLS or a proxy
# refused. Anything else it raises (a URL it cannot parse, say) is the request's fault, and no resend would help.
_UNANSWERED = (
    urllib3_errors.TimeoutError,
    urllib3_errors.ProtocolError,
    urllib3_errors.SSLError,
    urllib3_errors.ProxyError,
)


class PooledTransport:
    """Requests over urllib3's pools: TLS verified against the system's certificate store, `timeout_s` for the
    connection and for each read, and the proxies the environment names (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        # retries=False: what is sent again is the RetryPolicy's to say (client/retries.py), never the pool's. It
        # also leaves redirects unfollowed: one would be followed unsigned for the new URL, and the API never
        # redirects, so the 3xx is the answer.
        self._direct = urllib3.PoolManager(timeout=timeout_s, retries=False)
        self._proxies = urllib.request.getproxies()
        self._proxied: dict[str, urllib3.ProxyManager] = {}

    def send(self, request: HttpRequest) -> HttpResponse:
        try:
            answer = self._pool_for(request.url).request(
                request.method, request.url, body=request.body or None, headers=request.headers
            )
        except _UNANSWERED as error:
            raise _unanswered(error) from error
        return HttpResponse(answer.status, _lower(answer.headers.items()), answer.data)

    def _pool_for(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
            return self._direct
        if proxy not in self._proxied:
            self._proxied[proxy] = _proxy_manager(proxy, self.timeout_s)
        return self._proxied[proxy]


def _proxy_manager(proxy: str, timeout_s: float) -> urllib3.ProxyManager:
    # A proxy's user and password ride in its URL, as urllib reads them; urllib3 wants them as a header.
    auth = urllib3.util.parse_url(proxy).auth
    headers = urllib3.make_headers(proxy_basic_auth=unquote(auth)) if auth else None
    return urllib3.ProxyManager(proxy, proxy_headers=headers, timeout=timeout_s, retries=False)


def _unanswered(error: Exception) -> OSError:
    """The OSError beneath urllib3's error (a refused or reset connection, a socket timeout, a certificate that
    does not verify), as the standard library raises them; else a TimeoutError or ConnectionError saying it."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError):
            return cause
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, urllib3_errors.TimeoutError):
        return TimeoutError(str(error))
    return ConnectionError(str(error))


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}
