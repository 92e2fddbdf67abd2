"""The local API server under clients that hold its threads: a request trickled a byte at a time, each byte in time
for the idle timeout, is dropped at its head's or its body's deadline while others are served; and connections
beyond the limit are answered 503 at once instead of taking a thread each."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.server import credentials
from batch_endpoints.server.connections import ConnectionLimits
from tests.server_fixtures import LocalApi, raw_head, read_reply, serving

# The deadlines are short to wait out; the idle timeout is far longer than the trickle's pauses, so that only a
# deadline can cut a trickle, and a trickle of the whole request would take many times the deadline.
LIMITS = ConnectionLimits(idle_timeout_s=10.0, head_timeout_s=1.0, body_timeout_s=1.0, max_connections=6)
PAUSE_S = 0.05
JSON = {"Content-Type": "application/json"}


@pytest.fixture(name="local_api", scope="module")
def local_api_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    home = tmp_path_factory.mktemp("bep-home")
    with serving(open_local_backend(str(home)), home, limits=LIMITS) as local_api:
        yield local_api


def closed_by_server(connection: socket.socket) -> bool:
    readable, _, _ = select.select([connection], [], [], 0)
    return bool(readable) and connection.recv(65536) == b""


def trickle(connection: socket.socket, data: bytes, *, meanwhile: Callable[[], object]) -> int:
    """Send `data` a byte at a time, PAUSE_S apart, until the server closes the connection; calls `meanwhile`
    after the first few bytes. How many bytes went out."""
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for byte in data:
            if closed_by_server(connection):
                break
            connection.sendall(bytes([byte]))
            sent += 1
            if sent == 5:
                meanwhile()
            time.sleep(PAUSE_S)
    return sent


def padded(headers: dict[str, str]) -> dict[str, str]:
    """`headers` and enough more that sent at PAUSE_S a byte they take 20 s, twenty times the deadline."""
    return {**headers, "X-Padding": "p" * int(20 / PAUSE_S)}


def test_a_head_trickled_in_time_for_every_idle_timeout_is_dropped_at_its_deadline(local_api: LocalApi) -> None:
    head = raw_head("GET", "/endpoints", padded({"Host": "localhost"}))
    answers = []

    with local_api.connect() as connection:
        sent = trickle(connection, head, meanwhile=lambda: answers.append(local_api.call("GET", "/endpoints")))

    assert sent < len(head), "the server waited for the whole trickled head"
    assert [answer.status for answer in answers] == [200], "the server answered others meanwhile"


def test_a_body_trickled_in_time_for_every_idle_timeout_is_dropped_at_its_deadline(local_api: LocalApi) -> None:
    body = json.dumps({"description": "x" * int(20 / PAUSE_S)}).encode()
    answers = []

    with local_api.connect() as connection:
        connection.sendall(
            local_api.sign_in_head("PUT", "/endpoints/trickled", body, {**JSON, "Content-Length": str(len(body))})
        )
        sent = trickle(connection, body, meanwhile=lambda: answers.append(local_api.call("GET", "/endpoints")))

    assert sent < len(body), "the server waited for the whole trickled body"
    assert [answer.status for answer in answers] == [200], "the server answered others meanwhile"
    assert local_api.call("GET", "/endpoints/trickled").status == 404


def test_the_heads_deadline_runs_from_its_first_byte_not_from_an_idle_keep_alive(local_api: LocalApi) -> None:
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("GET", "/endpoints", b""))
        assert read_reply(connection).status == 200
        time.sleep(LIMITS.head_timeout_s * 2)  # idle, within the idle timeout

        connection.sendall(local_api.sign_in_head("GET", "/endpoints", b""))
        assert read_reply(connection).status == 200


def test_connections_beyond_the_limit_are_answered_503_at_once_and_served_again_once_others_end(
    local_api: LocalApi,
) -> None:
    with contextlib.ExitStack() as held:
        # Three times the limit of idle connections: the first ones take every thread the server has.
        idle = [held.enter_context(local_api.connect()) for _ in range(LIMITS.max_connections * 3)]
        refused = [read_reply(connection) for connection in idle[LIMITS.max_connections :]]
        busy = local_api.call("GET", "/endpoints")

        assert {reply.status for reply in refused} == {503}
        assert busy.status == 503 and busy.headers["retry-after"] == "1"
        assert busy.headers["x-amzn-errortype"] == "ServiceUnavailableException"
        assert busy.json() == {
            "message": f"Service Unavailable: the server holds {LIMITS.max_connections} connections at most"
        }
        for connection in idle[: LIMITS.max_connections]:
            assert not closed_by_server(connection), "an admitted connection was dropped"

    # The held connections' threads end as their clients leave; the server takes new ones again.
    answers = []
    while len(answers) < 100 and (not answers or answers[-1] == 503):
        answers.append(local_api.call("GET", "/endpoints").status)
        time.sleep(PAUSE_S)
    assert answers[-1] == 200, answers


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--head-timeout", "0", "must be a number of seconds above 0, not 0.0"),
        ("--body-timeout", "nan", "must be a number of seconds above 0, not nan"),
        ("--body-timeout", "-5", "must be a number of seconds above 0, not -5.0"),
        ("--max-connections", "0", "must be at least 1, not 0"),
    ],
)
def test_bep_serve_refuses_a_limit_that_is_no_limit(bep, home, flag: str, value: str, says: str) -> None:
    refused = bep("serve", "--port", "0", flag, value, ok=False)

    assert refused.code == 2
    assert refused.err.startswith(f"error: {flag}: {says}")
    assert not (home / credentials.FILE_NAME).exists(), "no key pair written"
