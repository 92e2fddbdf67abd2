"""The SigV4 verifier checked against sources other than botocore: AWS's published SigV4 test suite, S3's
published presigned-URL example, and a signer written from the specification (tests/sigv4_signer.py), with the
server's clock fixed at the edges of what it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from batch_endpoints.server import sigv4
from batch_endpoints.server.credentials import LocalCredentials
from tests import sigv4_signer

# The key pair, region, service, host and time AWS's SigV4 test suite signs with
# (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
SUITE_KEYS = LocalCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "suite")
SUITE_AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SUITE_HOST = "example.amazonaws.com"
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Vector:
    name: str
    method: str
    target: str
    """As the suite's request line writes it."""
    headers: tuple[tuple[str, str], ...]
    signed_headers: str
    signature: str
    canonical_query: str = ""


VECTORS = [
    Vector(
        "get-vanilla",
        "GET",
        "/",
        (),
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    Vector(
        "get-vanilla-query-order-key-case",
        "GET",
        "/?Param2=value2&Param1=value1",
        (),
        "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        "Param1=value1&Param2=value2",
    ),
    Vector(
        "get-vanilla-query-order-key",
        "GET",
        "/?Param1=value2&Param1=Value1",
        (),
        "host;x-amz-date",
        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
        "Param1=Value1&Param1=value2",
    ),
    Vector(
        "get-vanilla-query-order-value",
        "GET",
        "/?Param1=value2&Param1=value1",
        (),
        "host;x-amz-date",
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
        "Param1=value1&Param1=value2",
    ),
    Vector(
        "get-vanilla-query-unreserved",
        "GET",
        f"/?{UNRESERVED}={UNRESERVED}",
        (),
        "host;x-amz-date",
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        f"{UNRESERVED}={UNRESERVED}",
    ),
    Vector(
        "get-vanilla-utf8-query",
        "GET",
        "/?\u1234=bar",
        (),
        "host;x-amz-date",
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        "%E1%88%B4=bar",
    ),
    Vector(
        "get-unreserved",
        "GET",
        f"/{UNRESERVED}",
        (),
        "host;x-amz-date",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    Vector(
        "get-header-value-trim",
        "GET",
        "/",
        (("My-Header1", " value1"), ("My-Header2", '"a   b   c"')),
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    Vector(
        "get-header-key-duplicate",
        "GET",
        "/",
        (("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")),
        "host;my-header1;x-amz-date",
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    Vector(
        "get-header-value-order",
        "GET",
        "/",
        (("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")),
        "host;my-header1;x-amz-date",
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    Vector(
        "post-vanilla",
        "POST",
        "/",
        (),
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    Vector(
        "post-vanilla-query",
        "POST",
        "/?Param1=value1",
        (),
        "host;x-amz-date",
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        "Param1=value1",
    ),
]


def suite_request(vector: Vector, signature: str | None = None) -> sigv4.SignedRequest:
    path, _, query = vector.target.partition("?")
    authorization = (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={vector.signed_headers}, Signature={signature or vector.signature}"
    )
    headers = [
        ("Host", SUITE_HOST),
        *vector.headers,
        ("X-Amz-Date", "20150830T123600Z"),
        ("Authorization", authorization),
    ]
    return sigv4.SignedRequest(vector.method, path, query, headers)


def verify_suite(request: sigv4.SignedRequest) -> sigv4.Identity:
    return sigv4.verify(request, SUITE_KEYS, region="us-east-1", service="service", now=SUITE_AT)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector.name)
def test_the_verifier_accepts_each_signature_of_aws_sigv4_test_suite(vector: Vector) -> None:
    assert verify_suite(suite_request(vector)).access_key == "AKIDEXAMPLE"


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector.name)
def test_the_verifier_refuses_each_suite_request_with_one_digit_of_its_signature_changed(vector: Vector) -> None:
    changed = vector.signature[:-1] + ("0" if vector.signature[-1] != "0" else "1")

    with pytest.raises(sigv4.SignatureError) as refused:
        verify_suite(suite_request(vector, changed))

    assert refused.value.status == 403 and refused.value.message.startswith(sigv4.MISMATCH)


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.canonical_query], ids=lambda vector: vector.name)
def test_the_query_is_canonicalized_as_the_suite_shows(vector: Vector) -> None:
    _, _, query = vector.target.partition("?")

    assert sigv4.canonical_query(sigv4._query_pairs(query)) == vector.canonical_query
    assert sigv4_signer.canonical_query(query) == vector.canonical_query


def test_the_suites_canonical_request_is_rebuilt_exactly() -> None:
    # get-header-value-trim's creq, as published: values trimmed, inner runs of spaces folded to one.
    published = (
        'GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:"a b c"\nx-amz-date:20150830T123600Z\n\n'
        "host;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    request = suite_request(VECTORS[7])
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers.setdefault(name.lower(), []).append(value)

    rebuilt = sigv4.canonical_request(
        "GET", "/", [], headers, VECTORS[7].signed_headers.split(";"), sigv4.hashlib.sha256(b"").hexdigest()
    )

    assert rebuilt == published


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/example/..", "/"),  # get-relative
        ("/example1/example2/../..", "/"),  # get-relative-relative
        ("/./", "/"),  # get-slash-dot-slash
        ("/./example", "/example"),  # get-slash-pointless-dot
        ("//example//", "/example/"),  # get-slashes
        ("/example space/", "/example%20space/"),  # get-space
        ("/\u1234", "/%E1%88%B4"),  # get-utf8
        ("/jobs/a%20b", "/jobs/a%2520b"),  # as sent, encoded once: encoded twice, as every service but S3 wants
    ],
)
def test_the_path_is_normalized_and_encoded_as_the_suite_shows(path: str, canonical: str) -> None:
    assert sigv4.canonical_uri(path) == canonical


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS if len({n for n, _ in v.headers}) == len(v.headers)], ids=lambda v: v.name
)
def test_the_independent_signer_reproduces_the_suite(vector: Vector) -> None:
    headers = sigv4_signer.sign(
        vector.method,
        f"https://{SUITE_HOST}{vector.target}",
        key="AKIDEXAMPLE",
        secret=SUITE_KEYS.secret_access_key,
        at=SUITE_AT,
        service="service",
        headers=dict(vector.headers),
    )

    assert headers["Authorization"].endswith(f"SignedHeaders={vector.signed_headers}, Signature={vector.signature}")


def test_s3s_published_presigned_url_verifies_and_the_independent_signer_reproduces_it() -> None:
    # "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", Amazon S3 API Reference.
    keys = LocalCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "s3-example")
    signed_at = datetime(2013, 5, 24, tzinfo=UTC)
    published = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

    url = sigv4_signer.presign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        key=keys.access_key_id,
        secret=keys.secret_access_key,
        at=signed_at,
        expires_s=86400,
        service="s3",
    )
    address = urlsplit(url)
    request = sigv4.SignedRequest("GET", address.path, address.query, [("Host", address.netloc)])

    assert url.endswith(f"&X-Amz-Signature={published}")
    assert sigv4.verify(request, keys, region="us-east-1", service="s3", now=signed_at + timedelta(hours=23))
    with pytest.raises(sigv4.SignatureError, match=r"^Signature expired: 20130524T000000Z is now earlier than "):
        sigv4.verify(request, keys, region="us-east-1", service="s3", now=signed_at + timedelta(hours=24, seconds=1))


# ---------------------------------------------------------------------------------------------- the clock's edges
SERVER_NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
KEYS = LocalCredentials("BEPLOCALCLOCKTEST000", "clock-test-secret", "ann")
URL = "http://127.0.0.1:8080/endpoints/e/jobs?limit=1"


def signed_at(moment: datetime) -> sigv4.SignedRequest:
    headers = sigv4_signer.sign("GET", URL, key=KEYS.access_key_id, secret=KEYS.secret_access_key, at=moment)
    address = urlsplit(URL)
    return sigv4.SignedRequest("GET", address.path, address.query, list(headers.items()))


def verify_now(request: sigv4.SignedRequest) -> sigv4.Identity:
    return sigv4.verify(request, KEYS, region="us-east-1", now=SERVER_NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-4, seconds=-59), timedelta(minutes=4, seconds=59)])
def test_a_signature_4_min_59_s_from_the_servers_clock_either_way_is_accepted(skew: timedelta) -> None:
    assert verify_now(signed_at(SERVER_NOW + skew)).user == "ann"


@pytest.mark.parametrize(
    ("skew", "message"),
    [
        (timedelta(minutes=-5, seconds=-1), "Signature expired: 20260314T150425Z is now earlier than 20260314T150426Z"),
        (
            timedelta(minutes=5, seconds=1),
            "Signature not yet current: 20260314T151427Z is still later than 20260314T151426Z",
        ),
    ],
)
def test_a_signature_5_min_1_s_from_the_servers_clock_either_way_is_refused(skew: timedelta, message: str) -> None:
    with pytest.raises(sigv4.SignatureError) as refused:
        verify_now(signed_at(SERVER_NOW + skew))

    assert refused.value.status == 403 and refused.value.message.startswith(message)


def presigned(moment: datetime, expires_s: int) -> sigv4.SignedRequest:
    url = sigv4_signer.presign(
        "GET", URL, key=KEYS.access_key_id, secret=KEYS.secret_access_key, at=moment, expires_s=expires_s
    )
    address = urlsplit(url)
    return sigv4.SignedRequest("GET", address.path, address.query, [("Host", address.netloc)])


def test_a_presigned_url_lives_its_x_amz_expires_to_the_second() -> None:
    signed = SERVER_NOW - timedelta(hours=1)

    assert verify_now(presigned(signed, 3600)).user == "ann"  # the last second it lives
    with pytest.raises(sigv4.SignatureError, match=r"^Signature expired: .*3599 s, its X-Amz-Expires"):
        verify_now(presigned(signed, 3599))


@pytest.mark.parametrize(
    ("skew", "accepted"), [(timedelta(minutes=4, seconds=59), True), (timedelta(minutes=5, seconds=1), False)]
)
def test_a_presigned_url_dated_ahead_of_the_servers_clock_gets_the_same_5_minutes(
    skew: timedelta, accepted: bool
) -> None:
    request = presigned(SERVER_NOW + skew, 60)

    if accepted:
        assert verify_now(request).user == "ann"
    else:
        with pytest.raises(sigv4.SignatureError, match=r"^Signature not yet current: "):
            verify_now(request)


@pytest.mark.parametrize(("expires_s", "accepted"), [(0, False), (1, True), (604800, True), (604801, False)])
def test_x_amz_expires_runs_from_1_s_to_a_week(expires_s: int, accepted: bool) -> None:
    request = presigned(SERVER_NOW, expires_s)

    if accepted:
        assert verify_now(request).user == "ann"
    else:
        with pytest.raises(sigv4.SignatureError, match=r"^X-Amz-Expires must be a whole number of seconds from 1 to"):
            verify_now(request)
