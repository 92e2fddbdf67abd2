"""What one client may hold of the local server: a connection thread for so long, and so many of them at once.

A socket's timeout bounds each read alone, so a client sending a byte just before every idle timeout would hold a
thread without end. Reads here also keep a deadline: a request's head must arrive whole within `head_timeout_s`
of its first byte, its body within `body_timeout_s` of the head's check, or the connection is dropped.
"""

from __future__ import annotations

import io
import json
import socket
import time
from dataclasses import dataclass

# How long a connection may wait for the client's next bytes (a request stalled half-sent, or an idle keep-alive
# connection). API Gateway's own idle timeout is longer (310 s), but it holds no thread per connection.
DEFAULT_IDLE_TIMEOUT_S = 60.0
# A head is a few hundred bytes (at most 64 KiB a line, 100 lines, as http.server reads it): seconds even on a slow
# link, so 30 s is slack for any client that means to send it.
DEFAULT_HEAD_TIMEOUT_S = 30.0
# A body is at most 10 MiB: 5 minutes is 35 KB/s, a slow mobile link.
DEFAULT_BODY_TIMEOUT_S = 300.0
# Threads, one per connection: a handful of clients (the CLI, the SDK, a notebook) use a few each.
DEFAULT_MAX_CONNECTIONS = 64
BUSY_RETRY_AFTER_S = 1
BUSY_DRAIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class ConnectionLimits:
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS


DEFAULT_LIMITS = ConnectionLimits()


class DeadlineReader(io.RawIOBase):
    """The connection's incoming bytes, each read waiting at most the idle timeout and never past the deadline
    set with `start` (none until then, and again after `stop`). A read that waits too long raises TimeoutError,
    on which http.server drops the connection."""

    def __init__(self, connection: socket.socket, idle_timeout_s: float) -> None:
        super().__init__()
        self._connection = connection
        self._idle_timeout_s = idle_timeout_s
        self._deadline: float | None = None

    def start(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def stop(self) -> None:
        """No deadline; the socket waits the idle timeout again (for writes too: a reply is not bound by what was
        left of a read's deadline)."""
        self._deadline = None
        self._connection.settimeout(self._idle_timeout_s)

    def readable(self) -> bool:
        return True

    # io hands readinto() a bytearray or a memoryview (sized, sliceable); typeshed allows any writable buffer.
    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wait = self._idle_timeout_s
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive whole before its deadline")
            wait = min(wait, left)
        self._connection.settimeout(wait)
        return self._connection.recv_into(buffer)


def refuse_busy(connection: socket.socket, max_connections: int) -> None:
    """Answer a connection over the limit with 503 and close it, from the thread that accepts connections, which
    must never wait on a client: the reply goes out at once into the new socket's empty send buffer, or not at
    all. The request, if it came already, is dropped unread, so nothing it asked for was done."""
    message = json.dumps({"message": f"Service Unavailable: the server holds {max_connections} connections at most"})
    body = message.encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "x-amzn-ErrorType: ServiceUnavailableException\r\n"
        f"Retry-After: {BUSY_RETRY_AFTER_S}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    connection.setblocking(False)
    try:
        connection.sendall(head.encode() + body)
        connection.shutdown(socket.SHUT_WR)
        # What the client sent already is read off (a request's worth), so that closing does not answer it with a
        # reset, which may destroy the reply before the client reads it.
        drained = 0
        while drained < BUSY_DRAIN_BYTES and (data := connection.recv(64 * 1024)):
            drained += len(data)
    except OSError:  # BlockingIOError included: nothing (more) to read, or a client already gone
        pass
    finally:
        connection.close()
