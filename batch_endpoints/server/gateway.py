"""An HTTP server that plays API Gateway for a Lambda proxy integration: check SigV4, build the proxy event,
call the integration, send its answer. What the integration is (the API's resolver) is the caller's choice."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batch_endpoints.server import bodies
from batch_endpoints.server.connections import DEFAULT_LIMITS, ConnectionLimits, DeadlineReader, refuse_busy
from batch_endpoints.server.credentials import LocalCredentials
from batch_endpoints.server.events import HttpReply, http_reply, proxy_event
from batch_endpoints.server.refusals import Refusal
from batch_endpoints.server.sigv4 import SignedRequest, authenticate

Integration = Callable[[dict[str, Any]], dict[str, Any]]
OPENAPI_PATH = "/openapi.json"
# API Gateway's own limit on a request body (10 MB); the API refuses anything over 1 MiB itself.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Closing a connection whose request body was not read makes the kernel answer the client's next bytes with a
# reset, which may destroy the reply before the client reads it. So, as web servers do ("lingering close"), the
# reply is ended (FIN) and what the client still sends is read and dropped, this much at most, before closing.
LINGER_BYTES = 1024 * 1024
LINGER_S = 1.0
PRESIGNED_SECRETS = re.compile(r"(X-Amz-Signature|X-Amz-Security-Token)=[^&\s]*", re.IGNORECASE)


class GatewayServer(ThreadingHTTPServer):
    """Serves `integration` at http://host:port/, every request signed with `credentials` for `region`.
    `/openapi.json` is served unsigned, as a public description of the API (it holds no data).

    Each connection has a thread for as long as `limits` allow, and at most `limits.max_connections` at once.
    Beyond that a connection is refused with 503 and Retry-After, not queued: a queued client would wait
    unanswered for as long as the connections ahead of it are held (a minute for an idle one, minutes for a slow
    body), where a 503 tells it at once, its request undone, and the SDK retries it."""

    daemon_threads = True
    # socketserver listens with a backlog of 5: a burst of connections beyond it waits out TCP's 1 s SYN
    # retransmission before it is even accepted (and refused, if over the limit). The kernel caps it at somaxconn.
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self,
        address: tuple[str, int],
        *,
        integration: Integration,
        credentials: LocalCredentials,
        region: str,
        openapi: bytes,
        limits: ConnectionLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(address, _GatewayHandler)
        self.integration = integration
        self.credentials = credentials
        self.region = region
        self.openapi = openapi
        self.limits = limits
        self._connection_slots = threading.BoundedSemaphore(limits.max_connections)
        # The resolver keeps the request being handled on itself (app.current_event), as a Lambda runtime runs
        # one request at a time per instance; so do we, while reading and checking requests in parallel.
        self.integration_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connection_slots.acquire(blocking=False):
            refuse_busy(request, self.limits.max_connections)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connection_slots.release()  # no thread started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connection_slots.release()


class _GatewayHandler(BaseHTTPRequestHandler):
    """One connection: each request's head is checked (framing, SigV4) before its body is read, the body is read
    within MAX_BODY_BYTES, and a read that waits longer than the idle timeout, or past the head's or the body's
    deadline, drops the connection (http.server closes it on the TimeoutError)."""

    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "bep-local-api"

    def setup(self) -> None:
        # typeshed declares `timeout` a class variable; StreamRequestHandler.setup() reads it from the instance.
        self.timeout = self.server.limits.idle_timeout_s  # type: ignore[misc]
        super().setup()
        self.rfile.close()  # the stream http.server made, replaced by one that keeps deadlines
        self.reader = DeadlineReader(self.connection, self.timeout)
        self.buffered = io.BufferedReader(self.reader)
        self.rfile = self.buffered

    def handle_one_request(self) -> None:
        # The head's deadline runs from its first byte: until then, waiting for a request is the idle timeout's.
        self.reader.stop()
        try:
            if not self.buffered.peek(1):
                self.close_connection = True
                return
        except TimeoutError:
            self.close_connection = True
            return
        self.reader.start(self.server.limits.head_timeout_s)
        super().handle_one_request()

    def do_GET(self) -> None:
        self._answer()

    do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A presigned URL is a credential for its lifetime (up to a week): its signature stays out of the log.
        self.log_message('"%s" %s %s', PRESIGNED_SECRETS.sub(r"\1=REDACTED", self.requestline), code, size)

    def handle_expect_100(self) -> bool:
        # "100 Continue" waits until the signature passed (in _answer): a refused client never sends its body.
        return True

    def _answer(self) -> None:
        path, _, query = self.path.partition("?")
        body_unread = True  # what a refusal leaves on the wire decides whether the connection can go on
        try:
            framing = bodies.framing(self.headers, MAX_BODY_BYTES)
            body_unread = not framing.empty
            if self.command == "GET" and path == OPENAPI_PATH:
                reply = HttpReply(200, [("Content-Type", "application/json")], self.server.openapi)
                self._send(reply, body_unread=body_unread)
                return
            head = SignedRequest(self.command, path, query, list(self.headers.items()))
            authenticated = authenticate(head, self.server.credentials, region=self.server.region)
            if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version != "HTTP/1.0":
                self.send_response_only(100)
                self.end_headers()
            self.reader.start(self.server.limits.body_timeout_s)
            body = bodies.read(self.rfile, framing, MAX_BODY_BYTES)
            body_unread = False
            identity = authenticated.check_body(body)
        except Refusal as refused:
            message = json.dumps({"message": refused.message}, separators=(",", ":")).encode()
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", refused.error_type)]
            self._send(HttpReply(refused.status, headers, message), body_unread=body_unread)
            return
        event = proxy_event(
            self.command, path, query, head.headers, body, identity=identity, source_ip=self.client_address[0]
        )
        with self.server.integration_lock:
            result = self.server.integration(event)
        self._send(http_reply(result), request_id=event["requestContext"]["requestId"], body_unread=False)

    def _close_unread(self) -> None:
        """End this connection after the reply (see LINGER_BYTES); `Connection: close` said so already."""
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            dropped = 0
            while dropped < LINGER_BYTES and (data := self.connection.recv(64 * 1024)):
                dropped += len(data)

    def _send(self, reply: HttpReply, *, body_unread: bool, request_id: str | None = None) -> None:
        """Send `reply`; when the request's body was left (partly) unread, the connection ends after it."""
        self.reader.stop()
        self.send_response(reply.status)
        for name, value in reply.headers:
            # The framing is this server's to decide, not the integration's.
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(reply.body)))
        if body_unread:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        if body_unread:
            self._close_unread()
