"""The local API server (`bep serve`) on an ephemeral port in a thread, over a fresh local backend, and ways to
sign requests to it as any client would, or to break the signature on purpose."""

from __future__ import annotations

import http.client
import json
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


@pytest.fixture(name="local_api", scope="module")
def local_api_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    home = tmp_path_factory.mktemp("bep-home")
    credentials = generate("ann")
    with running(open_local_backend(str(home)), credentials, port=0, region=REGION) as server:
        yield LocalApi(server, credentials, home)
