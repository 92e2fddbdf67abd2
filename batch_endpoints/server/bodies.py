"""A request's body read off the connection within a limit, by Content-Length or chunked (RFC 9112 6 and 7.1).

The limit is enforced while reading: a declared length over it is refused before a byte is read, a chunked body
as soon as a chunk's size line says the next chunk would pass it, so no more than the limit is ever held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from io import BufferedIOBase

from batch_endpoints.server.refusals import Refusal

# A chunk's size line or a trailer line: the 64 KiB http.server allows a request line.
MAX_LINE = 65536
# Trailer fields after a chunked body: as many as http.client allows headers.
MAX_TRAILERS = 100
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BodyRefused(Refusal):
    """A body that cannot be read as sent: 400 malformed, 413 too large, 501 an encoding this server lacks."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message, "BadRequestException")


@dataclass(frozen=True)
class Framing:
    """How the body is delimited, from the request's headers."""

    length: int
    chunked: bool

    @property
    def empty(self) -> bool:
        return not self.chunked and self.length == 0


def framing(headers: Message, limit: int) -> Framing:
    """The body's framing, or BodyRefused before any of it is read."""
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if encodings and lengths:
        # Both at once is how requests are smuggled past a proxy that reads the other one (RFC 9112 6.3).
        raise BodyRefused(400, "a request has Transfer-Encoding or Content-Length, not both")
    if encodings:
        if [coding.strip().lower() for coding in ",".join(encodings).split(",")] != ["chunked"]:
            raise BodyRefused(501, f"Transfer-Encoding {', '.join(encodings)!r} is not supported; send it chunked")
        return Framing(0, chunked=True)
    if len(set(lengths)) > 1 or not all(text.strip().isascii() and text.strip().isdigit() for text in lengths):
        raise BodyRefused(400, f"Content-Length must be one number of bytes, not {', '.join(lengths)!r}")
    length = int(lengths[0]) if lengths else 0
    if length > limit:
        raise BodyRefused(413, too_large(limit))
    return Framing(length, chunked=False)


def read(stream: BufferedIOBase, framing: Framing, limit: int) -> bytes:
    """The body, or BodyRefused with the rest of it unread."""
    if not framing.chunked:
        body = stream.read(framing.length)
        if len(body) < framing.length:
            raise BodyRefused(400, f"the body ended after {len(body)} of its {framing.length} bytes")
        return body
    chunks: list[bytes] = []
    size_so_far = 0
    while size := _chunk_size(stream):
        if size_so_far + size > limit:
            raise BodyRefused(413, too_large(limit))
        chunk = stream.read(size)
        if len(chunk) < size or stream.read(2) != b"\r\n":
            raise BodyRefused(400, "a chunk ended before its size or without its CRLF")
        chunks.append(chunk)
        size_so_far += size
    _skip_trailers(stream)
    return b"".join(chunks)


def too_large(limit: int) -> str:
    return f"Request Too Long: a body is at most {limit} bytes"


def _chunk_size(stream: BufferedIOBase) -> int:
    line = stream.readline(MAX_LINE + 1)
    size = line.split(b";")[0].strip()
    if not line.endswith(b"\n") or not CHUNK_SIZE.fullmatch(size):
        raise BodyRefused(400, f"a chunk must start with its size in hex, not {line[:40]!r}")
    return int(size, 16)


def _skip_trailers(stream: BufferedIOBase) -> None:
    for _ in range(MAX_TRAILERS + 1):
        line = stream.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return
        if not line.endswith(b"\n"):
            raise BodyRefused(400, "a chunked body must end with an empty line")
    raise BodyRefused(400, f"a chunked body may carry at most {MAX_TRAILERS} trailer fields")
