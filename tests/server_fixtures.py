"""The local API server (`bep serve`) on an ephemeral port in a thread, over a fresh local backend, and ways to
sign requests to it as any client would, or to break the signature on purpose, or to send it what no well-behaved
client sends (raw bytes, a body without end)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.backend import Backend
from batch_endpoints.server.credentials import LocalCredentials, generate
from batch_endpoints.server.gateway import GatewayServer
from batch_endpoints.server.local_api import running

REGION = "us-east-1"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class LocalApi:
    server: GatewayServer
    credentials: LocalCredentials
    home: Path

    @property
    def url(self) -> str:
        return self.server.url

    def session(self, secret: str | None = None) -> botocore.session.Session:
        """A botocore session holding the server's key pair (or a wrong secret), as a client configures one."""
        session = botocore.session.Session()
        session.set_credentials(self.credentials.access_key_id, secret or self.credentials.secret_access_key)
        return session

    def signed_headers(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
        secret: str | None = None,
        region: str = REGION,
        service: str = "execute-api",
        at: datetime | None = None,
    ) -> dict[str, str]:
        """The headers botocore's signer adds for this request, signed at `at` (default: now)."""
        request = AWSRequest(method=method, url=self.url + target, data=body, headers=dict(headers or {}))
        credentials = Credentials(key or self.credentials.access_key_id, secret or self.credentials.secret_access_key)
        signer = SigV4Auth(credentials, service, region)
        if at is None:
            signer.add_auth(request)
        else:
            with mock.patch("botocore.auth.get_current_datetime", return_value=at):
                signer.add_auth(request)
        return dict(request.headers.items())

    def send(self, method: str, target: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Reply:
        """One raw HTTP request, exactly as given (no signing, no retries)."""
        address = urlsplit(self.url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        try:
            connection.request(method, target, body=body, headers=dict(headers or {}))
            answer = connection.getresponse()
            return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()

    def call(self, method: str, target: str, body: Any = None) -> Reply:
        """A correctly signed request with a JSON body."""
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        return self.send(method, target, data, self.signed_headers(method, target, data, headers=headers))

    def connect(self) -> socket.socket:
        """A raw connection to the server, for bytes no HTTP client would send."""
        return socket.create_connection(self.server.server_address[:2], timeout=30)

    def sign_in_head(self, method: str, target: str, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """A request's head, signed over `body`, as raw bytes (the body is the caller's to send, or not)."""
        signed = self.signed_headers(method, target, body, headers=headers)
        return raw_head(method, target, {"Host": urlsplit(self.url).netloc, **signed})


def raw_head(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def read_reply(connection: socket.socket) -> Reply:
    """The reply to a request sent on `connection` by hand."""
    answer = http.client.HTTPResponse(connection)
    answer.begin()
    return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())


@dataclass
class Flood:
    reply: Reply
    sent_bytes: int


def chunked_flood(api: LocalApi, head: bytes, total_bytes: int, chunk_bytes: int = 64 * 1024) -> Flood:
    """Send `head` and then a chunked body of `total_bytes` as fast as the server takes it, reading the reply
    meanwhile, as a client that does not wait to be answered; how many body bytes went out before the server shut
    the connection."""
    chunk = b"%x\r\n" % chunk_bytes + b"x" * chunk_bytes + b"\r\n"
    replies: list[Reply] = []
    with api.connect() as connection:
        connection.sendall(head)
        reader = threading.Thread(target=lambda: replies.append(read_reply(connection)))
        reader.start()
        sent = 0
        # A reset or a broken pipe is the server refusing the rest; a timeout (it neither reads nor closes) is not.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < total_bytes:
                connection.sendall(chunk)
                sent += chunk_bytes
            connection.sendall(b"0\r\n\r\n")
        reader.join()
    assert replies, "no reply came back"
    return Flood(replies[0], sent)


@contextlib.contextmanager
def serving(backend: Backend, home: Path, **options: Any) -> Iterator[LocalApi]:
    """The server over `backend`, with a fresh key pair, until the block ends; `options` as for open_local_api."""
    credentials = generate("ann")
    with running(backend, credentials, port=0, region=REGION, **options) as server:
        yield LocalApi(server, credentials, home)


@pytest.fixture(name="local_api", scope="module")
def local_api_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    home = tmp_path_factory.mktemp("bep-home")
    with serving(open_local_backend(str(home)), home) as local_api:
        yield local_api


@pytest.fixture(name="remote")
def remote_fixture(bep: Any, local_api: LocalApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`bep` configured for the server, signing with its key pair as `bep serve --show-credentials` prints it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_api.credentials.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_api.credentials.secret_access_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "BEP_TARGET"):
        monkeypatch.delenv(name, raising=False)
    bep("configure", "--defaults", "target=http", f"api_url={local_api.url}", f"region={REGION}")
    return bep
