"""Checking a request's AWS Signature Version 4 the way API Gateway's IAM authorization does.

The canonical request is rebuilt from the request as sent, by the specification ("Create a signed AWS API
request", IAM User Guide): the path's segments normalized and URI-encoded again (every service but S3), each query
name and value URI-encoded (RFC 3986's unreserved characters kept, everything else %XX in uppercase hex) and sorted
by name then value, the signed headers lowercased, trimmed and their runs of spaces folded. Two ways of signing
are accepted, as API Gateway accepts both: the Authorization header, and a presigned URL (the X-Amz-* query
parameters). A presigned URL signs either the body's hash, as botocore and the IAM guide presign for every service,
or UNSIGNED-PAYLOAD, as S3's presigned URLs do (the body is then not covered, for the URL's lifetime).

Everything a request's head says is checked before its body is read (`authenticate`): a request unsigned, signed
twice, with another key, for another scope or out of time is refused without a byte of its body read, and so is a
wrong signature whose payload hash the head gives (X-Amz-Content-SHA256, or a presigned UNSIGNED-PAYLOAD). What is
left is checked over the body once read (`Authenticated.check_body`), which is held to the server's size limit.
Refusals carry API Gateway's messages and error types, so a client's error handling sees the same thing locally
and in the cloud. Nothing here knows about HTTP serving.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from batch_endpoints.server.credentials import LOCAL_ACCOUNT, LocalCredentials
from batch_endpoints.server.refusals import Refusal

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# API Gateway accepts a signature made up to 5 minutes before or after its own clock.
MAX_SKEW = timedelta(minutes=5)
# A presigned URL is valid for X-Amz-Expires seconds after X-Amz-Date: at least 1, at most 7 days (SigV4's
# query-string authentication).
MAX_EXPIRES_S = 7 * 24 * 3600
PRESIGNED_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)

MISSING_TOKEN = "Missing Authentication Token"
UNKNOWN_KEY = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)


class SignatureError(Refusal):
    """A signature API Gateway's IAM authorization refuses: 403 (400 for a request signed twice over)."""

    def __init__(self, message: str, error_type: str, status: int = 403) -> None:
        super().__init__(status, message, error_type)


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    """As sent: percent-encoded, without the query."""
    query: str
    """As sent, without the '?'."""
    headers: Sequence[tuple[str, str]]
    body: bytes = b""
    """For `verify`; `authenticate` reads only the head (the rest), before the body is read off the wire."""


@dataclass(frozen=True)
class Identity:
    """Who signed: what API Gateway puts in requestContext.identity for an IAM-authorized request."""

    access_key: str
    user: str
    user_arn: str
    account_id: str = LOCAL_ACCOUNT


@dataclass(frozen=True)
class Authenticated:
    """A request whose head passed every check; `check_body` checks the body it then sent against its hash."""

    identity: Identity
    _check_body: Callable[[bytes], None]

    def check_body(self, body: bytes) -> Identity:
        self._check_body(body)
        return self.identity


@dataclass(frozen=True)
class _Claim:
    """What a request says about its signature, from its Authorization header or its presigned query."""

    access_key: str
    scope_date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: datetime
    expires_s: int | None
    """A presigned URL's lifetime; None for the Authorization header, which lives MAX_SKEW."""
    session_token: str | None


def authenticate(
    request: SignedRequest,
    credentials: LocalCredentials,
    *,
    region: str,
    service: str = SERVICE,
    now: datetime | None = None,
) -> Authenticated:
    """Check everything but the body's hash, or raise SignatureError with the message API Gateway would answer."""
    headers = _headers_by_name(request.headers)
    query = _query_pairs(request.query)
    claim = _claim_of(headers, query)
    # The local key pair stands in for an IAM user's long-term keys, which no session token belongs to.
    if claim.access_key != credentials.access_key_id or claim.session_token is not None:
        raise SignatureError(UNKNOWN_KEY, "UnrecognizedClientException")
    _check_scope(claim, region, service)
    _check_clock(claim, now or datetime.now(UTC))
    identity = Identity(access_key=credentials.access_key_id, user=credentials.user, user_arn=credentials.user_arn)
    return Authenticated(identity, _body_check(request, headers, query, claim, credentials.secret_access_key))


def _claim_of(headers: dict[str, list[str]], query: list[tuple[str, str]]) -> _Claim:
    authorizations = headers.get("authorization", [])
    presigned = any(name == "X-Amz-Algorithm" for name, _ in query)
    if len(authorizations) > 1:
        raise SignatureError(
            f"A request carries one Authorization header; this one carries {len(authorizations)}.",
            "BadRequestException",
            status=400,
        )
    if authorizations and presigned:
        raise SignatureError(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header "
            "should be specified",
            "BadRequestException",
            status=400,
        )
    if presigned:
        return _presigned_claim(query)
    if authorizations:
        return _header_claim(authorizations[0], headers)
    raise SignatureError(MISSING_TOKEN, "MissingAuthenticationTokenException")


def _body_check(
    request: SignedRequest,
    headers: dict[str, list[str]],
    query: list[tuple[str, str]],
    claim: _Claim,
    secret: str,
) -> Callable[[bytes], None]:
    """What is left to check once the body is read: the signature now, when the payload's hash is known from the
    head (declared, or UNSIGNED-PAYLOAD), else the signature over the body's hash."""
    presigned = claim.expires_s is not None
    # A presigned URL's signature cannot sign itself: it is the one parameter left out of the canonical query.
    signed_query = [(name, value) for name, value in query if not (presigned and name == "X-Amz-Signature")]

    def recompute(payload_hash: str) -> tuple[str, str]:
        canonical = canonical_request(
            request.method, request.path, signed_query, headers, claim.signed_headers, payload_hash
        )
        return canonical, signature(secret, claim, canonical)

    def signature_check(payload_hash: str) -> None:
        canonical, expected = recompute(payload_hash)
        if not hmac.compare_digest(expected, claim.signature):
            raise SignatureError(
                f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
                f"The String-to-Sign should have been\n'{string_to_sign(claim, canonical)}'\n",
                "InvalidSignatureException",
            )

    def signature_of_body(body: bytes) -> None:
        signature_check(hashlib.sha256(body).hexdigest())

    def nothing_left(body: bytes) -> None:
        pass

    if presigned:
        unsigned = hmac.compare_digest(recompute(UNSIGNED_PAYLOAD)[1], claim.signature)
        return nothing_left if unsigned else signature_of_body
    declared = next(iter(headers.get("x-amz-content-sha256", [])), None)
    if declared is None:
        return signature_of_body
    signature_check(declared)

    def declared_hash_check(body: bytes) -> None:
        # A body that is not the one its signed hash stands for is a tampered body, whatever the signature says.
        if declared != hashlib.sha256(body).hexdigest():
            raise SignatureError(MISMATCH, "InvalidSignatureException")

    return declared_hash_check


def verify(
    request: SignedRequest,
    credentials: LocalCredentials,
    *,
    region: str,
    service: str = SERVICE,
    now: datetime | None = None,
) -> Identity:
    """The signer's identity, for a request whose body is at hand; SignatureError when refused."""
    return authenticate(request, credentials, region=region, service=service, now=now).check_body(request.body)


# ---------------------------------------------------------------------------------------------- canonical form
def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: dict[str, list[str]],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """SigV4's canonical request; `query` decoded (name, value) pairs, `headers` by lowercase name."""
    names = sorted(set(signed_headers))
    header_lines = "".join(f"{name}:{_header_value(headers.get(name, ['']))}\n" for name in names)
    return "\n".join([method, canonical_uri(path), canonical_query(query), header_lines, ";".join(names), payload_hash])


def canonical_uri(path: str) -> str:
    """The path as sent (already URI-encoded once by the client), its dot segments and empty segments removed
    (RFC 3986 5.2.4; AWS drops the empty ones too), each segment URI-encoded once more: the double encoding every
    service but S3 signs, and what AWS's SigV4 test suite shows (`/example space/` -> `/example%20space/`)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(_uri_encode(segment.encode()))
    trailing = "/" if segments and path.endswith("/") else ""
    return "/" + "/".join(segments) + trailing


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    encoded = sorted((_uri_encode(_raw(name)), _uri_encode(_raw(value))) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def string_to_sign(claim: _Claim, canonical: str) -> str:
    return "\n".join(
        [
            ALGORITHM,
            claim.timestamp.strftime(TIMESTAMP),
            "/".join([claim.scope_date, claim.region, claim.service, TERMINATOR]),
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )


def signature(secret: str, claim: _Claim, canonical: str) -> str:
    key = f"AWS4{secret}".encode()
    for part in (claim.scope_date, claim.region, claim.service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign(claim, canonical).encode(), hashlib.sha256).hexdigest()


def _uri_encode(raw: bytes) -> str:
    # quote keeps RFC 3986's unreserved characters (letters, digits, '-', '.', '_', '~') and writes uppercase hex.
    return quote(raw, safe="")


def _header_value(values: list[str]) -> str:
    return ",".join(" ".join(value.split()) for value in values)


def _headers_by_name(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for name, value in headers:
        by_name.setdefault(name.lower(), []).append(value)
    return by_name


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """Each name and value decoded from the query as sent ('+' is not a space here: SigV4 signs %20)."""
    pairs = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((_decode(name), _decode(value)))
    return pairs


def _decode(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    """The bytes `_decode` read (a name or value need not be UTF-8)."""
    return text.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------------- the claim
def _header_claim(header: str, headers: dict[str, list[str]]) -> _Claim:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(
            f"Authorization header requires '{ALGORITHM}' as its algorithm. Authorization={header}",
            "IncompleteSignatureException",
        )
    parts = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        parts[name] = value
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not parts.get(name)
    ]
    if "x-amz-date" not in headers and "date" not in headers:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise SignatureError(" ".join([*problems, f"Authorization={header}"]), "IncompleteSignatureException")
    amz_date = headers.get("x-amz-date", [None])[0]
    timestamp = _timestamp(amz_date) if amz_date is not None else _http_date(headers["date"][0])
    return _claim(
        parts["Credential"],
        parts["SignedHeaders"],
        parts["Signature"],
        timestamp,
        expires_s=None,
        session_token=headers.get("x-amz-security-token", [None])[0],
        where="the AWS Authorization",
    )


def _presigned_claim(query: list[tuple[str, str]]) -> _Claim:
    values = dict(query)
    missing = [name for name in PRESIGNED_PARAMETERS if not values.get(name)]
    if missing:
        raise SignatureError(
            f"AWS query-string parameters must include {', '.join(repr(name) for name in missing)}. Re-examine "
            "the query-string parameters.",
            "IncompleteSignatureException",
        )
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise SignatureError(
            f"X-Amz-Algorithm only supports '{ALGORITHM}', not '{values['X-Amz-Algorithm']}'.",
            "IncompleteSignatureException",
        )
    expires = values["X-Amz-Expires"]
    if not (expires.isascii() and expires.isdigit() and 1 <= int(expires) <= MAX_EXPIRES_S):
        raise SignatureError(
            f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES_S} (a week), not '{expires}'.",
            "IncompleteSignatureException",
        )
    return _claim(
        values["X-Amz-Credential"],
        values["X-Amz-SignedHeaders"],
        values["X-Amz-Signature"],
        _timestamp(values["X-Amz-Date"]),
        expires_s=int(expires),
        session_token=values.get("X-Amz-Security-Token"),
        where="the X-Amz-SignedHeaders",
    )


def _claim(
    credential: str,
    signed_headers: str,
    signature_hex: str,
    timestamp: datetime,
    *,
    expires_s: int | None,
    session_token: str | None,
    where: str,
) -> _Claim:
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != TERMINATOR:
        raise SignatureError(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{scope[-1]}'. ",
            "IncompleteSignatureException",
        )
    names = signed_headers.split(";")
    if "host" not in names:
        raise SignatureError(
            f"'Host' or ':authority' must be a 'SignedHeader' in {where}.", "IncompleteSignatureException"
        )
    access_key, scope_date, region, service, _ = scope
    return _Claim(access_key, scope_date, region, service, names, signature_hex, timestamp, expires_s, session_token)


def _timestamp(amz_date: str) -> datetime:
    try:
        return datetime.strptime(amz_date, TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise _bad_date(amz_date) from None


def _http_date(date: str) -> datetime:
    """The Date header, which SigV4 allows in place of X-Amz-Date."""
    try:
        return parsedate_to_datetime(date).astimezone(UTC)
    except (ValueError, TypeError):
        raise _bad_date(date) from None


def _bad_date(text: str) -> SignatureError:
    return SignatureError(
        f"Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601",
        "IncompleteSignatureException",
    )


def _check_scope(claim: _Claim, region: str, service: str) -> None:
    day = claim.timestamp.strftime("%Y%m%d")
    if claim.scope_date != day:
        raise SignatureError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{claim.scope_date}' != '{day}', from '{claim.timestamp.strftime(TIMESTAMP)}'.",
            "InvalidSignatureException",
        )
    if claim.region != region:
        raise SignatureError(
            f"Credential should be scoped to a valid region, not '{claim.region}'. ", "InvalidSignatureException"
        )
    if claim.service != service:
        raise SignatureError(
            f"Credential should be scoped to correct service: '{service}'. ", "InvalidSignatureException"
        )


def _check_clock(claim: _Claim, now: datetime) -> None:
    """A header signature lives MAX_SKEW either side of the server's clock; a presigned URL from its date (less
    MAX_SKEW, for a client clock ahead of ours) until its X-Amz-Expires run out."""

    def stamp(moment: datetime) -> str:
        return moment.strftime(TIMESTAMP)

    if claim.expires_s is None and claim.timestamp < now - MAX_SKEW:
        raise SignatureError(
            f"Signature expired: {stamp(claim.timestamp)} is now earlier than {stamp(now - MAX_SKEW)} "
            f"({stamp(now)} - 5 min.)",
            "InvalidSignatureException",
        )
    if claim.expires_s is not None and claim.timestamp + timedelta(seconds=claim.expires_s) < now:
        lifetime = timedelta(seconds=claim.expires_s)
        raise SignatureError(
            f"Signature expired: {stamp(claim.timestamp)} is now earlier than {stamp(now - lifetime)} "
            f"({stamp(now)} - {claim.expires_s} s, its X-Amz-Expires.)",
            "InvalidSignatureException",
        )
    if claim.timestamp > now + MAX_SKEW:
        raise SignatureError(
            f"Signature not yet current: {stamp(claim.timestamp)} is still later than {stamp(now + MAX_SKEW)} "
            f"({stamp(now)} + 5 min.)",
            "InvalidSignatureException",
        )
