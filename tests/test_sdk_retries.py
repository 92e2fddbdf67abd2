"""The SDK retries what may pass (429, 5xx, no answer) with capped, jittered exponential backoff, and nothing
else; against a real HTTP server that answers from a script."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.session
import pytest

from batch_endpoints.client import BatchEndpointsClient, RetryPolicy, ServerError, ThrottlingError
from batch_endpoints.client.retries import resendable
from batch_endpoints.errors import ConflictError, ValidationError
from batch_endpoints.specs import PipelineSettings
from batch_endpoints.yaml_specs import InvokeDeclaration, PipelineJobDeclaration

SETTINGS = PipelineSettings(default_compute="cpu-cluster")
ENDPOINT = {"name": "digits", "description": "", "auth_mode": "aws_iam", "tags": {}, "created_at": "2026-01-01"}


class ScriptedServer(ThreadingHTTPServer):
    """Answers each request with the next (status, body) of `script`, recording what it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Scripted)
        self.script: list[tuple[int, dict]] = []
        self.received: list[dict[str, str]] = []


class _Scripted(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_GET(self) -> None:
        self.server.received.append({**self.headers, "method": self.command})
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.server.script.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, *args: object) -> None:
        pass  # the test reads `received`, not the log


@pytest.fixture(name="server")
def server_fixture() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def client(port: int, waits: list[float], **policy: object) -> BatchEndpointsClient:
    session = botocore.session.Session()
    session.set_credentials("BEPLOCALTESTKEY00000", "secret")
    retry = RetryPolicy(sleep=waits.append, random=lambda: 1.0, **policy)  # type: ignore[arg-type]
    return BatchEndpointsClient(f"http://127.0.0.1:{port}", session=session, retry=retry)


def test_throttled_twice_then_answered_succeeds_after_backing_off(server: ScriptedServer) -> None:
    server.script = [(429, {"message": "Too Many Requests"})] * 2 + [(200, ENDPOINT)]
    waits: list[float] = []

    endpoint = client(server.server_address[1], waits).batch_endpoints.get("digits")

    assert endpoint.name == "digits"
    assert waits == [0.5, 1.0]  # base 0.5 s, doubling (the jitter factor is pinned to its top)
    assert len(server.received) == 3
    assert all(
        h["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=BEPLOCALTESTKEY00000/") for h in server.received
    )


def test_a_bad_request_is_not_retried(server: ScriptedServer) -> None:
    server.script = [(400, {"code": "ValidationError", "message": "is not valid", "field": "name"})]
    waits: list[float] = []

    with pytest.raises(ValidationError) as refused:
        client(server.server_address[1], waits).batch_endpoints.get("digits")

    assert (refused.value.field, refused.value.message) == ("name", "is not valid")
    assert waits == [] and len(server.received) == 1


def test_server_errors_are_retried_up_to_the_bound_then_raised(server: ScriptedServer) -> None:
    server.script = [(503, {"code": "InternalError", "message": "try later"})] * 3
    waits: list[float] = []

    with pytest.raises(ServerError) as failed:
        client(server.server_address[1], waits, max_attempts=3).batch_endpoints.get("digits")

    assert (failed.value.status, failed.value.code, failed.value.message) == (503, "InternalError", "try later")
    assert len(server.received) == 3 and waits == [0.5, 1.0]


def test_backoff_is_capped_and_jittered_below_the_cap() -> None:
    waits: list[float] = []
    policy = RetryPolicy(base_s=1.0, max_wait_s=4.0, sleep=waits.append, random=lambda: 0.5)

    for attempt in range(1, 6):
        policy.wait(attempt)
    policy.wait(1, retry_after_s=3.0)

    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 3.0]


def test_throttling_is_raised_typed_once_retries_are_spent(server: ScriptedServer) -> None:
    server.script = [(429, {"message": "Too Many Requests"})]

    with pytest.raises(ThrottlingError) as throttled:
        client(server.server_address[1], [], max_attempts=1).batch_endpoints.list()

    assert throttled.value.status == 429 and throttled.value.message == "Too Many Requests"


def test_no_answer_at_all_is_retried_then_raised() -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    waits: list[float] = []

    with pytest.raises(ConnectionError):
        client(port, waits, max_attempts=2).batch_endpoints.list()

    assert waits == [0.5]


def test_an_invalid_retry_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    ("method", "headers", "resent"),
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("PUT", {}, True),
        ("DELETE", {}, True),
        ("OPTIONS", {}, True),
        ("POST", {}, False),
        ("PATCH", {}, False),
        ("POST", {"Idempotency-Key": "k-1"}, True),
        ("post", {"idempotency-key": "k-1"}, True),
        ("PATCH", {"Idempotency-Key": "k-1"}, True),
    ],
)
def test_only_a_request_that_cannot_act_twice_may_be_sent_again(method: str, headers: dict, resent: bool) -> None:
    assert resendable(method, headers) is resent


@pytest.mark.parametrize("call", ["cancel", "patch"])
def test_a_server_error_answering_a_post_without_a_key_is_raised_at_once(server: ScriptedServer, call: str) -> None:
    server.script = [(503, {"code": "InternalError", "message": "try later"})] * 2
    waits: list[float] = []
    sdk = client(server.server_address[1], waits)

    with pytest.raises(ServerError):
        if call == "cancel":
            sdk.jobs.cancel("digits-0123456789ab")
        else:
            sdk.connection.call("PATCH", "/endpoints/digits", body={"description": "x"})

    assert waits == [] and len(server.received) == 1


def test_a_retried_rerun_carries_one_key_and_the_next_call_another(server: ScriptedServer) -> None:
    refused = (409, {"code": "Conflict", "message": "is Running", "field": "job"})
    server.script = [(503, {"message": "try later"}), refused, (503, {"message": "try later"}), refused]
    sdk = client(server.server_address[1], [])

    for _ in range(2):
        with pytest.raises(ConflictError):
            sdk.jobs.rerun("digits-0123456789ab", failed_only=True)

    keys = [request["Idempotency-Key"] for request in server.received]
    assert [request["method"] for request in server.received] == ["POST"] * 4
    assert keys[0] == keys[1] != keys[2] == keys[3]


def test_a_retried_pipeline_job_carries_one_key(server: ScriptedServer) -> None:
    refused = (400, {"code": "ValidationError", "message": "is not registered", "field": "component"})
    server.script = [(503, {"message": "try later"}), refused]
    job = PipelineJobDeclaration(component="azureml:two_steps:1", invocation=InvokeDeclaration(), settings=SETTINGS)

    with pytest.raises(ValidationError):
        client(server.server_address[1], []).jobs.create(job)

    keys = [request["Idempotency-Key"] for request in server.received]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_given_key_is_sent_as_is(server: ScriptedServer) -> None:
    server.script = [(503, {"message": "try later"}), (409, {"code": "Conflict", "message": "x", "field": "job"})]

    with pytest.raises(ConflictError):
        client(server.server_address[1], []).jobs.resume("digits-0123456789ab", idempotency_key="resume-1")

    assert [request["Idempotency-Key"] for request in server.received] == ["resume-1", "resume-1"]
