"""Checking a request's AWS Signature Version 4 the way API Gateway's IAM authorization does.

The signature is recomputed from the request with botocore's own signer (the code every AWS SDK for Python
signs with), so a request is accepted exactly when a real client signed it with the same key over the same
method, path, query, signed headers and body. Refusals carry API Gateway's messages and error types, so a
client's error handling sees the same thing locally and in the cloud. Nothing here knows about HTTP serving.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from batch_endpoints.server.credentials import LOCAL_ACCOUNT, LocalCredentials

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
# API Gateway accepts a signature made up to 5 minutes before or after its own clock.
MAX_SKEW = timedelta(minutes=5)

MISSING_TOKEN = "Missing Authentication Token"
UNKNOWN_KEY = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)


class SignatureError(Exception):
    """A request API Gateway would refuse before it reaches the API: 403, `{"message": ...}` and an error type
    (the x-amzn-ErrorType header)."""

    status = 403

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    """As sent: percent-encoded, without the query."""
    query: str
    """As sent, without the '?'."""
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Identity:
    """Who signed: what API Gateway puts in requestContext.identity for an IAM-authorized request."""

    access_key: str
    user: str
    user_arn: str
    account_id: str = LOCAL_ACCOUNT


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    scope_date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str


def verify(
    request: SignedRequest, credentials: LocalCredentials, *, region: str, now: datetime | None = None
) -> Identity:
    """The signer's identity, or SignatureError with the message API Gateway would answer."""
    headers = HTTPHeaders()
    for name, value in request.headers:
        headers[name.lower()] = value
    header = headers.get("authorization")
    if not header:
        raise SignatureError(MISSING_TOKEN, "MissingAuthenticationTokenException")
    authorization = _parse(header, headers)
    timestamp = _timestamp(headers)
    if authorization.access_key != credentials.access_key_id:
        raise SignatureError(UNKNOWN_KEY, "UnrecognizedClientException")
    _check_scope(authorization, timestamp, region)
    _check_clock(timestamp, now or datetime.now(UTC))
    canonical, string_to_sign, expected = _recompute(request, headers, authorization, timestamp, credentials, region)
    if not hmac.compare_digest(expected, authorization.signature):
        raise SignatureError(
            f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{string_to_sign}'\n",
            "InvalidSignatureException",
        )
    return Identity(access_key=credentials.access_key_id, user=credentials.user, user_arn=credentials.user_arn)


def _parse(header: str, headers: HTTPHeaders) -> _Authorization:
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
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureError(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{scope[-1]}'. ",
            "IncompleteSignatureException",
        )
    signed_headers = parts["SignedHeaders"].split(";")
    if "host" not in signed_headers:
        raise SignatureError(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", "IncompleteSignatureException"
        )
    return _Authorization(*scope[:4], signed_headers=signed_headers, signature=parts["Signature"])


def _timestamp(headers: HTTPHeaders) -> datetime:
    """X-Amz-Date, or else Date, as SigV4 allows either."""
    amz_date = headers.get("x-amz-date")
    try:
        if amz_date:
            return datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        return parsedate_to_datetime(headers["date"]).astimezone(UTC)
    except (ValueError, TypeError):
        raise SignatureError(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date or headers['date']}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601",
            "IncompleteSignatureException",
        ) from None


def _check_scope(authorization: _Authorization, timestamp: datetime, region: str) -> None:
    day = timestamp.strftime("%Y%m%d")
    if authorization.scope_date != day:
        raise SignatureError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{authorization.scope_date}' != '{day}', from '{timestamp.strftime(SIGV4_TIMESTAMP)}'.",
            "InvalidSignatureException",
        )
    if authorization.region != region:
        raise SignatureError(
            f"Credential should be scoped to a valid region, not '{authorization.region}'. ",
            "InvalidSignatureException",
        )
    if authorization.service != SERVICE:
        raise SignatureError(
            f"Credential should be scoped to correct service: '{SERVICE}'. ", "InvalidSignatureException"
        )


def _check_clock(timestamp: datetime, now: datetime) -> None:
    def stamp(moment: datetime) -> str:
        return moment.strftime(SIGV4_TIMESTAMP)

    if timestamp < now - MAX_SKEW:
        raise SignatureError(
            f"Signature expired: {stamp(timestamp)} is now earlier than {stamp(now - MAX_SKEW)} "
            f"({stamp(now)} - 5 min.)",
            "InvalidSignatureException",
        )
    if timestamp > now + MAX_SKEW:
        raise SignatureError(
            f"Signature not yet current: {stamp(timestamp)} is still later than {stamp(now + MAX_SKEW)} "
            f"({stamp(now)} + 5 min.)",
            "InvalidSignatureException",
        )


class _Recomputation(SigV4Auth):
    """botocore's signer, told which headers the client signed instead of choosing them itself (it leaves out
    some, e.g. user-agent, that other clients may sign)."""

    def __init__(self, credentials: Credentials, region: str, signed_headers: list[str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = set(signed_headers)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                chosen[name.lower()] = value
        return chosen


def _recompute(
    request: SignedRequest,
    headers: HTTPHeaders,
    authorization: _Authorization,
    timestamp: datetime,
    credentials: LocalCredentials,
    region: str,
) -> tuple[str, str, str]:
    """The canonical request, the string to sign and the signature the client should have sent."""
    signed = HTTPHeaders()
    for name in authorization.signed_headers:
        for value in headers.get_all(name) or [""]:
            signed[name] = value
    declared_hash = headers.get("x-amz-content-sha256")
    # botocore takes a declared body hash on trust instead of hashing the body: a body that is not the one the
    # hash stands for is a tampered body, whatever the signature says.
    if declared_hash is not None and declared_hash != hashlib.sha256(request.body).hexdigest():
        raise SignatureError(MISMATCH, "InvalidSignatureException")
    url = f"http://{headers.get('host', 'localhost')}{request.path}" + (f"?{request.query}" if request.query else "")
    aws_request = AWSRequest(method=request.method, url=url, headers=signed, data=request.body)
    aws_request.context["timestamp"] = timestamp.strftime(SIGV4_TIMESTAMP)
    signer = _Recomputation(
        Credentials(credentials.access_key_id, credentials.secret_access_key), region, authorization.signed_headers
    )
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    return canonical, string_to_sign, signer.signature(string_to_sign, aws_request)
