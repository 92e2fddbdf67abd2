"""The local API server under clients that do not play by the rules: bodies larger than the limit or without end,
requests stalled half-sent, framing that lies. The server reads no body it would refuse, never holds more than
its limit, and lets a stalled connection go after its idle timeout."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.server import bodies, credentials, gateway
from batch_endpoints.server.connections import ConnectionLimits
from tests.server_fixtures import LocalApi, chunked_flood, raw_head, read_reply, serving

# Long enough that no well-behaved request here stalls that long between its bytes, short enough to wait out.
IDLE_TIMEOUT_S = 2.0
MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
CHUNKED = {"Transfer-Encoding": "chunked"}


@pytest.fixture(name="local_api", scope="module")
def local_api_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    home = tmp_path_factory.mktemp("bep-home")
    with serving(
        open_local_backend(str(home)), home, limits=ConnectionLimits(idle_timeout_s=IDLE_TIMEOUT_S)
    ) as local_api:
        yield local_api


def chunked(body: bytes, pieces: int = 3) -> bytes:
    size = -(-len(body) // pieces)
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def assert_not_created(local_api: LocalApi, name: str) -> None:
    assert local_api.call("GET", f"/endpoints/{name}").status == 404


# ---------------------------------------------------------------------------------------------- bodies
def test_an_unsigned_chunked_flood_is_refused_unread_and_the_servers_memory_does_not_grow(local_api: LocalApi) -> None:
    head = raw_head("PUT", "/endpoints/flooded", {"Host": "localhost", **JSON, **CHUNKED})
    tracemalloc.start()
    try:
        flood = chunked_flood(local_api, head, total_bytes=24 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert flood.reply.status == 403 and flood.reply.json() == {"message": "Missing Authentication Token"}
    assert flood.reply.headers["connection"] == "close"
    assert flood.sent_bytes < 24 * MIB, "the server took the whole body"
    assert peak < 4 * MIB, f"{peak} bytes allocated while flooded"
    assert_not_created(local_api, "flooded")


def test_an_unsigned_request_is_refused_before_its_body_is_sent(local_api: LocalApi) -> None:
    # Only the head goes out: an answer proves the server did not wait for the body.
    for framing in (CHUNKED, {"Content-Length": str(5 * MIB)}):
        with local_api.connect() as connection:
            connection.sendall(raw_head("PUT", "/endpoints/unsent", {"Host": "localhost", **JSON, **framing}))

            reply = read_reply(connection)

        assert reply.status == 403 and reply.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_a_wrong_signature_over_a_declared_body_hash_is_refused_before_the_body_is_sent(local_api: LocalApi) -> None:
    body = json.dumps({"description": "declared"}).encode()
    declared = {**JSON, "Content-Length": str(len(body)), "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    signed = local_api.signed_headers("PUT", "/endpoints/declared", body, headers=declared, secret="not-the-secret")
    with local_api.connect() as connection:
        connection.sendall(raw_head("PUT", "/endpoints/declared", {"Host": urlsplit(local_api.url).netloc, **signed}))

        reply = read_reply(connection)

    assert reply.status == 403 and reply.json()["message"].startswith("The request signature we calculated")


def test_a_signed_chunk_announcing_more_than_the_limit_is_refused_before_it_is_sent(local_api: LocalApi) -> None:
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("PUT", "/endpoints/huge", b"", {**JSON, **CHUNKED}))
        connection.sendall(b"%x\r\n" % (24 * MIB))

        reply = read_reply(connection)

    assert reply.status == 413 and reply.json()["message"] == bodies.too_large(gateway.MAX_BODY_BYTES)
    assert reply.headers["connection"] == "close"


def test_a_signed_chunked_body_past_the_limit_is_refused_at_the_chunk_that_passes_it(local_api: LocalApi) -> None:
    head = local_api.sign_in_head("PUT", "/endpoints/too-long", b"", {**JSON, **CHUNKED})

    flood = chunked_flood(local_api, head, total_bytes=gateway.MAX_BODY_BYTES + MIB)

    assert flood.reply.status == 413
    assert_not_created(local_api, "too-long")


def test_a_declared_length_past_the_limit_is_refused_before_the_body_is_sent(local_api: LocalApi) -> None:
    headers = {**JSON, "Content-Length": str(gateway.MAX_BODY_BYTES + 1)}
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("PUT", "/endpoints/declared-long", b"", headers))

        reply = read_reply(connection)

    assert reply.status == 413 and reply.json()["message"].startswith("Request Too Long")


def test_a_signed_chunked_body_is_read_whole_and_served(local_api: LocalApi) -> None:
    body = json.dumps({"description": "sent in chunks"}).encode()
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("PUT", "/endpoints/chunked-ok", body, {**JSON, **CHUNKED}))
        connection.sendall(chunked(body))

        reply = read_reply(connection)

    assert reply.status == 200, reply.body
    assert local_api.call("GET", "/endpoints/chunked-ok").json()["description"] == "sent in chunks"


def test_a_chunked_body_changed_after_signing_is_refused(local_api: LocalApi) -> None:
    body = json.dumps({"description": "signed"}).encode()
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("PUT", "/endpoints/chunked-evil", body, {**JSON, **CHUNKED}))
        connection.sendall(chunked(body.replace(b"signed", b"evil!!")))

        reply = read_reply(connection)

    assert reply.status == 403 and reply.json()["message"].startswith("The request signature we calculated")
    assert_not_created(local_api, "chunked-evil")


@pytest.mark.parametrize(
    ("case", "headers", "body", "status", "message"),
    [
        ("both-framings", {**CHUNKED, "Content-Length": "5"}, b"0\r\n\r\n", 400, "a request has Transfer-Encoding"),
        ("gzip", {"Transfer-Encoding": "gzip, chunked"}, b"0\r\n\r\n", 501, "Transfer-Encoding 'gzip, chunked'"),
        ("not-a-length", {"Content-Length": "12abc"}, b"", 400, "Content-Length must be one number"),
        ("bad-chunk-size", CHUNKED, b"zz\r\nxx\r\n0\r\n\r\n", 400, "a chunk must start with its size in hex"),
        ("short-chunk", CHUNKED, b"5\r\nabcdefgh\r\n0\r\n\r\n", 400, "a chunk ended before its size"),
    ],
)
def test_a_body_whose_framing_lies_is_refused(
    local_api: LocalApi, case: str, headers: dict, body: bytes, status: int, message: str
) -> None:
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("PUT", f"/endpoints/{case}", b"", {**JSON, **headers}) + body)

        reply = read_reply(connection)

    assert reply.status == status and reply.json()["message"].startswith(message)
    assert_not_created(local_api, case)


def test_expect_100_continue_is_answered_only_once_the_signature_passed(local_api: LocalApi) -> None:
    body = json.dumps({"description": "expected"}).encode()
    expect = {**JSON, "Expect": "100-continue", "Content-Length": str(len(body))}

    with local_api.connect() as connection:
        connection.sendall(raw_head("PUT", "/endpoints/expected", {"Host": "localhost", **expect}))
        refused = read_reply(connection)
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("PUT", "/endpoints/expected", body, expect))
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):  # read by hand: http.client skips a 100 while it waits
            interim += connection.recv(1)
        connection.sendall(body)
        created = read_reply(connection)

    assert refused.status == 403  # a final answer instead of "100 Continue": the body is never sent
    assert interim.startswith(b"HTTP/1.1 100 ") and created.status == 200


# ---------------------------------------------------------------------------------------------- headers
def test_two_authorization_headers_are_a_bad_request(local_api: LocalApi) -> None:
    body = json.dumps({"description": "twice"}).encode()
    signed = local_api.signed_headers("PUT", "/endpoints/twice", body, headers=JSON)
    head = local_api.sign_in_head("PUT", "/endpoints/twice", body, JSON)
    head = head.replace(b"\r\n\r\n", f"\r\nAuthorization: {signed['Authorization']}\r\n\r\n".encode())

    with local_api.connect() as connection:
        connection.sendall(head + body)
        reply = read_reply(connection)

    assert reply.status == 400 and reply.headers["x-amzn-errortype"] == "BadRequestException"
    assert reply.json()["message"] == "A request carries one Authorization header; this one carries 2."
    assert_not_created(local_api, "twice")


# ---------------------------------------------------------------------------------------------- idle timeout
STALLED = {
    "request line": lambda api: b"PUT /endpoints/stalled HT",
    "headers": lambda api: b"PUT /endpoints/stalled HTTP/1.1\r\nHost: localhost\r\nContent-Ty",
    # A signed head, so that the server goes on to read the body.
    "chunked body": lambda api: api.sign_in_head("PUT", "/endpoints/stalled", b"", {**JSON, **CHUNKED}) + b"5\r\nab",
}


@pytest.mark.parametrize("stage", list(STALLED))
def test_a_request_stalled_half_sent_is_let_go_after_the_idle_timeout(local_api: LocalApi, stage: str) -> None:
    sent = STALLED[stage](local_api)
    with local_api.connect() as connection:
        connection.sendall(sent)

        # The server closes its end (recv answers b""), ending the thread that held the connection; the client's
        # own 30 s timeout only guards the test from hanging.
        assert connection.recv(65536) == b""
    assert local_api.call("GET", "/endpoints").status == 200, "the server goes on serving"


def test_an_idle_keep_alive_connection_is_let_go_too(local_api: LocalApi) -> None:
    with local_api.connect() as connection:
        connection.sendall(local_api.sign_in_head("GET", "/endpoints", b""))
        assert read_reply(connection).status == 200

        assert connection.recv(65536) == b""


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_bep_serve_refuses_an_idle_timeout_that_is_not_a_positive_number_of_seconds(bep, home, seconds: str) -> None:
    refused = bep("serve", "--port", "0", "--idle-timeout", seconds, ok=False)

    assert refused.code == 2
    assert refused.err.startswith(f"error: --idle-timeout: must be a number of seconds above 0, not {float(seconds)}")
    assert not (home / credentials.FILE_NAME).exists(), "no key pair written"
