"""An HTTP server that plays API Gateway for a Lambda proxy integration: check SigV4, build the proxy event,
call the integration, send its answer. What the integration is (the API's resolver) is the caller's choice."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batch_endpoints.server.credentials import LocalCredentials
from batch_endpoints.server.events import HttpReply, http_reply, proxy_event
from batch_endpoints.server.sigv4 import SignatureError, SignedRequest, verify

Integration = Callable[[dict[str, Any]], dict[str, Any]]
OPENAPI_PATH = "/openapi.json"
# API Gateway's own limit on a request body (10 MB); the API refuses anything over 1 MiB itself.
MAX_BODY_BYTES = 10 * 1024 * 1024


class GatewayServer(ThreadingHTTPServer):
    """Serves `integration` at http://host:port/, every request signed with `credentials` for `region`.
    `/openapi.json` is served unsigned, as a public description of the API (it holds no data)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        integration: Integration,
        credentials: LocalCredentials,
        region: str,
        openapi: bytes,
    ) -> None:
        super().__init__(address, _GatewayHandler)
        self.integration = integration
        self.credentials = credentials
        self.region = region
        self.openapi = openapi
        # The resolver keeps the request being handled on itself (app.current_event), as a Lambda runtime runs
        # one request at a time per instance; so do we, while reading and checking requests in parallel.
        self.integration_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _GatewayHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "bep-local-api"

    def do_GET(self) -> None:
        self._answer()

    do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _answer(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body()
        if body is None:
            return
        if self.command == "GET" and path == OPENAPI_PATH:
            self._send(HttpReply(200, [("Content-Type", "application/json")], self.server.openapi))
            return
        request = SignedRequest(self.command, path, query, list(self.headers.items()), body)
        try:
            identity = verify(request, self.server.credentials, region=self.server.region)
        except SignatureError as refused:
            message = json.dumps({"message": refused.message}, separators=(",", ":")).encode()
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", refused.error_type)]
            self._send(HttpReply(refused.status, headers, message))
            return
        event = proxy_event(
            self.command, path, query, request.headers, body, identity=identity, source_ip=self.client_address[0]
        )
        with self.server.integration_lock:
            result = self.server.integration(event)
        self._send(http_reply(result), request_id=event["requestContext"]["requestId"])

    def _body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None when the request was refused for it."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            message = {"message": f"Content-Length must be a number of bytes up to {MAX_BODY_BYTES}"}
            self._send(
                HttpReply(
                    413 if length > 0 else 400, [("Content-Type", "application/json")], json.dumps(message).encode()
                )
            )
            return None
        return self.rfile.read(length)

    def _send(self, reply: HttpReply, request_id: str | None = None) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            # The framing is this server's to decide, not the integration's.
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
