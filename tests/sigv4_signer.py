"""A SigV4 signer written for the tests from AWS's specification alone ("Create a signed AWS API request", IAM User
Guide), with hashlib and hmac: neither botocore nor the server's verifier, so that a mistake one of them makes is
not a mistake the tests share. It reproduces AWS's published SigV4 test suite (tests/test_sigv4_independent.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """Every byte of the UTF-8 text but the unreserved ones as %XX, uppercase."""
    out = []
    for byte in text.encode():
        if byte in UNRESERVED or (keep_slash and byte == ord("/")):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def percent_decode(text: str) -> str:
    data = bytearray()
    position = 0
    while position < len(text):
        escape = text[position + 1 : position + 3]
        if text[position] == "%" and len(escape) == 2 and all(c in "0123456789abcdefABCDEF" for c in escape):
            data.append(int(escape, 16))
            position += 3
        else:
            data += text[position].encode()
            position += 1
    return data.decode()


def canonical_query(query: str, *, leave_out: str | None = None) -> str:
    """Each name and value of the query as written in the URL, decoded then encoded per the spec, sorted."""
    pairs = []
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        name, value = percent_decode(name), percent_decode(value)
        if name != leave_out:
            pairs.append((uri_encode(name), uri_encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for step in (day, region, service, "aws4_request"):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    return key


def _signature(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    *,
    secret: str,
    region: str,
    service: str,
    stamp: str,
) -> tuple[str, str]:
    """(signed header names, signature) for a request whose `path` is already URI-encoded (as sent)."""
    lowered = sorted((name.lower(), " ".join(value.split())) for name, value in headers.items())
    names = ";".join(name for name, _ in lowered)
    canonical = "\n".join(
        [
            method,
            uri_encode(path, keep_slash=True) or "/",
            query,
            "".join(f"{name}:{value}\n" for name, value in lowered),
            names,
            payload_hash,
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = signing_key(secret, stamp[:8], region, service)
    return names, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sign(
    method: str,
    url: str,
    *,
    key: str,
    secret: str,
    at: datetime,
    region: str = "us-east-1",
    service: str = "execute-api",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> dict[str, str]:
    """The headers to send: `headers`, Host, X-Amz-Date and the Authorization header signing them all."""
    address = urlsplit(url)
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    signed = {**(headers or {}), "Host": address.netloc, "X-Amz-Date": stamp}
    names, signature = _signature(
        method,
        address.path,
        canonical_query(address.query),
        signed,
        hashlib.sha256(body).hexdigest(),
        secret=secret,
        region=region,
        service=service,
        stamp=stamp,
    )
    credential = f"{key}/{stamp[:8]}/{region}/{service}/aws4_request"
    authorization = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={names}, Signature={signature}"
    return {**signed, "Authorization": authorization}


def presign(
    method: str,
    url: str,
    *,
    key: str,
    secret: str,
    at: datetime,
    expires_s: int,
    region: str = "us-east-1",
    service: str = "execute-api",
) -> str:
    """`url` with the X-Amz-* query parameters that sign it (Host the only signed header, UNSIGNED-PAYLOAD)."""
    address = urlsplit(url)
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    auth = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{key}/{stamp[:8]}/{region}/{service}/aws4_request",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires_s),
        "X-Amz-SignedHeaders": "host",
    }
    query = "&".join([*([address.query] if address.query else []), *(f"{n}={uri_encode(v)}" for n, v in auth.items())])
    _, signature = _signature(
        method,
        address.path,
        canonical_query(query),
        {"Host": address.netloc},
        "UNSIGNED-PAYLOAD",
        secret=secret,
        region=region,
        service=service,
        stamp=stamp,
    )
    return f"{address.scheme}://{address.netloc}{address.path}?{query}&X-Amz-Signature={signature}"
