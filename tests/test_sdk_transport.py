"""The SDK's HTTP transport: one pooled connection for a polling loop, TLS verified, redirects surfaced, the
environment's proxies honoured, and every way of getting no answer raised as the OSError the retries look for."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from batch_endpoints.client import BatchEndpointsClient, HttpRequest, PooledTransport
from batch_endpoints.specs import Endpoint
from tests.server_fixtures import LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)

POLLS = 5


class CountingServer(ThreadingHTTPServer):
    """Answers every request with `status` and `headers`, keeping connections alive (HTTP/1.1); counts the
    connections it accepted and records each request's target (the path, or the whole URL sent to a proxy)."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Counting)
        self.status = status
        self.headers = headers or {}
        self.connections = 0
        self.targets: list[str] = []
        self.hang_up = False
        """Close each connection after its answer, without saying so (no `Connection: close`)."""
        self.hung_up = threading.Event()

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.hung_up.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Counting(BaseHTTPRequestHandler):
    server: CountingServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        self.server.targets.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.server.status)
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = self.server.hang_up

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass  # the test reads `targets`, not the log


@pytest.fixture(name="counting")
def counting_fixture() -> Iterator[CountingServer]:
    yield from _served(CountingServer())


def _served(server: ThreadingHTTPServer) -> Iterator[Any]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_polling_loop_on_bep_serve_keeps_one_connection(local_api: LocalApi, monkeypatch: pytest.MonkeyPatch) -> None:
    accepted: list[object] = []
    accept = local_api.server.process_request
    monkeypatch.setattr(local_api.server, "process_request", lambda *args: (accepted.append(args), accept(*args)))
    client = BatchEndpointsClient(local_api.url, session=local_api.session())
    client.batch_endpoints.create_or_update(Endpoint(name="polled"))

    seen = [client.batch_endpoints.get("polled").name for _ in range(POLLS)]

    assert seen == ["polled"] * POLLS
    assert len(accepted) == 1


def test_requests_to_one_host_share_a_connection(counting: CountingServer) -> None:
    transport = PooledTransport()

    answers = [transport.send(HttpRequest("GET", f"{counting.url}/jobs/{n}", {})) for n in range(POLLS)]

    assert [a.status for a in answers] == [200] * POLLS
    assert counting.targets == [f"/jobs/{n}" for n in range(POLLS)]
    assert counting.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(counting: CountingServer) -> None:
    counting.hang_up = True
    transport = PooledTransport()
    first = transport.send(HttpRequest("GET", f"{counting.url}/jobs/1", {}))
    assert counting.hung_up.wait(timeout=30), "the server kept the connection"

    second = transport.send(HttpRequest("POST", f"{counting.url}/jobs/1/cancel", {}))

    assert (first.status, second.status) == (200, 200)
    assert counting.targets == ["/jobs/1", "/jobs/1/cancel"]
    assert counting.connections == 2


def test_a_post_body_arrives_and_its_answer_comes_back(counting: CountingServer) -> None:
    counting.headers = {"X-Request-Id": "r-1"}

    answer = PooledTransport().send(HttpRequest("POST", f"{counting.url}/jobs", {"Content-Type": "x"}, b"body"))

    assert (answer.status, answer.headers["x-request-id"], answer.body) == (200, "r-1", b"{}")


def test_a_redirect_is_the_answer_and_is_not_followed(counting: CountingServer) -> None:
    counting.status, counting.headers = 302, {"Location": "/elsewhere"}

    answer = PooledTransport().send(HttpRequest("GET", f"{counting.url}/jobs/1", {}))

    assert (answer.status, answer.headers["location"]) == (302, "/elsewhere")
    assert counting.targets == ["/jobs/1"]


def test_the_environments_proxy_carries_requests_unless_no_proxy_names_the_host(
    counting: CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", counting.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = PooledTransport()

    through_proxy = transport.send(HttpRequest("GET", "http://api.example.com/prod/jobs", {}))
    direct = transport.send(HttpRequest("GET", f"{counting.url}/jobs", {}))

    assert (through_proxy.status, direct.status) == (200, 200)
    # A proxy is sent the whole URL; a server, its path.
    assert counting.targets == ["http://api.example.com/prod/jobs", "/jobs"]


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there once it closes

    with pytest.raises(ConnectionRefusedError):
        PooledTransport().send(HttpRequest("GET", f"http://127.0.0.1:{port}/jobs", {}))


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent, pytest.raises(TimeoutError):  # connections queue, unread
        PooledTransport(timeout_s=0.2).send(HttpRequest("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/", {}))


def test_a_connection_closed_before_the_answer_is_a_connection_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:

        def drop() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)

        dropper = threading.Thread(target=drop)
        dropper.start()
        with pytest.raises(ConnectionError):
            PooledTransport().send(HttpRequest("GET", f"http://127.0.0.1:{server.getsockname()[1]}/", {}))
        dropper.join()


def test_a_certificate_no_authority_signed_is_refused(tmp_path: Path) -> None:
    server = CountingServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(tmp_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for running in _served(server):
        url = f"https://127.0.0.1:{running.server_address[1]}/jobs"

        with pytest.raises(ssl.SSLCertVerificationError):
            PooledTransport().send(HttpRequest("GET", url, {}))

        assert running.targets == []


def _self_signed(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)
