"""The local API server refuses what API Gateway's IAM authorization refuses, with the same 403s, and serves what
it accepts, telling the API who signed."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from batch_endpoints.api.openapi import openapi_document
from batch_endpoints.server import sigv4
from batch_endpoints.server.events import proxy_event
from tests import sigv4_signer
from tests.server_fixtures import REGION, LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)

BODY = json.dumps({"description": "signed"}).encode()
JSON = {"Content-Type": "application/json"}


def put_endpoint(local_api: LocalApi, name: str, sent_body: bytes = BODY, **signing) -> tuple[int, dict, str]:
    """PUT /endpoints/<name> signed over BODY, sending `sent_body`: (status, JSON body, x-amzn-ErrorType).
    `skew` signs that far from now (taken here, not when the tests were collected)."""
    if "skew" in signing:
        signing["at"] = datetime.now(UTC) + signing.pop("skew")
    headers = local_api.signed_headers("PUT", f"/endpoints/{name}", BODY, headers=JSON, **signing)
    reply = local_api.send("PUT", f"/endpoints/{name}", sent_body, headers)
    return reply.status, reply.json(), reply.headers.get("x-amzn-errortype", "")


def assert_not_created(local_api: LocalApi, name: str) -> None:
    assert local_api.call("GET", f"/endpoints/{name}").status == 404


def test_a_signed_request_passes_and_the_api_records_who_signed(local_api: LocalApi) -> None:
    status, body, _ = put_endpoint(local_api, "signed-ok")

    assert status == 200, body
    assert body["created_by"] == f"arn:aws:iam::000000000000:user/{local_api.credentials.user}"
    assert body["scoring_uri"] == f"{local_api.url}/endpoints/signed-ok/jobs"


@pytest.mark.parametrize(
    ("case", "signing", "message", "error_type"),
    [
        ("wrong-key", {"key": "BEPLOCALNOSUCHKEY000"}, sigv4.UNKNOWN_KEY, "UnrecognizedClientException"),
        ("wrong-secret", {"secret": "not-the-secret"}, sigv4.MISMATCH, "InvalidSignatureException"),
        (
            "wrong-region",
            {"region": "eu-west-1"},
            "Credential should be scoped to a valid region, not 'eu-west-1'.",
            "InvalidSignatureException",
        ),
        (
            "wrong-service",
            {"service": "s3"},
            "Credential should be scoped to correct service: 'execute-api'.",
            "InvalidSignatureException",
        ),
        (
            "stale-date",
            {"skew": timedelta(minutes=-30)},
            "Signature expired: ",
            "InvalidSignatureException",
        ),
        (
            "future-date",
            {"skew": timedelta(minutes=30)},
            "Signature not yet current: ",
            "InvalidSignatureException",
        ),
    ],
)
def test_a_request_signed_wrongly_is_refused_as_api_gateway_does(
    local_api: LocalApi, case: str, signing: dict, message: str, error_type: str
) -> None:
    status, body, header = put_endpoint(local_api, f"refused-{case}", **signing)

    assert (status, header) == (403, error_type)
    assert list(body) == ["message"] and body["message"].startswith(message)
    assert_not_created(local_api, f"refused-{case}")


def test_a_stale_signature_names_both_times_and_the_five_minutes(local_api: LocalApi) -> None:
    signed_at = datetime.now(UTC) - timedelta(minutes=10)

    _, body, _ = put_endpoint(local_api, "stale", at=signed_at)

    assert body["message"].startswith(f"Signature expired: {signed_at:%Y%m%dT%H%M%SZ} is now earlier than ")
    assert body["message"].endswith(" - 5 min.)")


def test_a_signature_within_the_allowed_skew_passes(local_api: LocalApi) -> None:
    status, body, _ = put_endpoint(local_api, "skewed", at=datetime.now(UTC) - timedelta(minutes=4))

    assert status == 200, body


def test_an_unsigned_request_is_missing_its_token(local_api: LocalApi) -> None:
    reply = local_api.send("PUT", "/endpoints/unsigned", BODY, JSON)

    assert reply.status == 403
    assert reply.json() == {"message": "Missing Authentication Token"}
    assert reply.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert_not_created(local_api, "unsigned")


def test_a_body_changed_after_signing_is_refused_and_changes_nothing(local_api: LocalApi) -> None:
    status, body, _ = put_endpoint(local_api, "tampered", json.dumps({"description": "evil"}).encode())

    assert status == 403
    assert body["message"].startswith(sigv4.MISMATCH)
    assert "The Canonical String for this request should have been" in body["message"]
    assert_not_created(local_api, "tampered")


def test_a_body_that_does_not_match_its_declared_hash_is_refused(local_api: LocalApi) -> None:
    signed = local_api.signed_headers(
        "PUT",
        "/endpoints/declared",
        BODY,
        headers={**JSON, "X-Amz-Content-SHA256": sigv4.hashlib.sha256(BODY).hexdigest()},
    )

    reply = local_api.send("PUT", "/endpoints/declared", b'{"description": "evil"}', signed)

    assert reply.status == 403 and reply.json()["message"].startswith(sigv4.MISMATCH)
    assert_not_created(local_api, "declared")


def test_a_changed_query_or_path_is_refused(local_api: LocalApi) -> None:
    signed = local_api.signed_headers("GET", "/endpoints/x/jobs?limit=1")

    changed_query = local_api.send("GET", "/endpoints/x/jobs?limit=2", headers=signed)
    changed_path = local_api.send("GET", "/endpoints/y/jobs?limit=1", headers=signed)

    assert changed_query.status == changed_path.status == 403
    assert changed_query.json()["message"].startswith(sigv4.MISMATCH)
    assert changed_path.json()["message"].startswith(sigv4.MISMATCH)
    assert local_api.send("GET", "/endpoints/x/jobs?limit=1", headers=signed).status == 404  # the signed one passes


def test_an_authorization_header_that_is_not_sigv4_is_incomplete(local_api: LocalApi) -> None:
    reply = local_api.send(
        "GET", "/endpoints", headers={"Authorization": "Bearer abc", "X-Amz-Date": "20250101T000000Z"}
    )

    assert reply.status == 403
    assert reply.headers["x-amzn-errortype"] == "IncompleteSignatureException"


def test_a_signature_without_the_host_header_is_incomplete(local_api: LocalApi) -> None:
    signed = local_api.signed_headers("GET", "/endpoints")
    signed["Authorization"] = signed["Authorization"].replace(
        "SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date"
    )

    reply = local_api.send("GET", "/endpoints", headers=signed)

    assert reply.status == 403
    assert reply.json()["message"] == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_the_proxy_event_carries_the_signers_access_key_like_api_gateway() -> None:
    identity = sigv4.Identity(access_key="BEPLOCALKEY", user="ann", user_arn="arn:aws:iam::000000000000:user/ann")

    event = proxy_event("GET", "/jobs/a%20b", "limit=1&x=2&x=3", [("Host", "h"), ("X-A", "1")], b"", identity=identity)

    assert event["path"] == "/jobs/a b"
    assert event["queryStringParameters"] == {"limit": "1", "x": "3"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["1"], "x": ["2", "3"]}
    assert event["requestContext"]["identity"]["accessKey"] == "BEPLOCALKEY"
    assert event["requestContext"]["identity"]["userArn"] == "arn:aws:iam::000000000000:user/ann"


def test_the_openapi_document_is_served_and_every_route_in_it_is_routed(local_api: LocalApi) -> None:
    served = local_api.send("GET", "/openapi.json")
    document = openapi_document()

    assert served.status == 200 and served.json() == document
    for template, operations in document["paths"].items():
        target = template.replace("{", "").replace("}", "")  # /endpoints/endpoint_name/...: real names
        for method in operations:
            reply = local_api.call(method.upper(), target, {} if method in {"put", "post", "patch"} else None)
            assert reply.status < 500, (method, template, reply.body)
            assert not (reply.json() or {}).get("message", "").startswith("no route"), (method, template)


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_curl_signs_requests_the_server_accepts(local_api: LocalApi) -> None:
    def curl(*args: str, secret: str | None = None) -> tuple[int, dict]:
        user = f"{local_api.credentials.access_key_id}:{secret or local_api.credentials.secret_access_key}"
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "-w",
                "\n%{http_code}",
                "--aws-sigv4",
                f"aws:amz:{REGION}:execute-api",
                "--user",
                user,
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body) if body else {}

    if "aws-sigv4" not in subprocess.run(["curl", "--help", "all"], capture_output=True, text=True).stdout:
        pytest.skip("this curl cannot sign requests (7.75 or later can)")

    created = curl(
        "-X",
        "PUT",
        "-H",
        "content-type: application/json",
        "-d",
        '{"description": "by curl"}',
        f"{local_api.url}/endpoints/by-curl",
    )
    shown = curl(f"{local_api.url}/endpoints/by-curl?x=1")
    refused = curl(f"{local_api.url}/endpoints/by-curl", secret="wrong")

    assert created[0] == 200 and created[1]["description"] == "by curl"
    assert shown == (200, created[1])
    assert refused[0] == 403 and refused[1]["message"].startswith(sigv4.MISMATCH)


# ---------------------------------------------------------------------------------------------- query strings
TAGGED = "/endpoints/tagged/jobs"


@pytest.fixture(name="tagged")
def tagged_fixture(local_api: LocalApi) -> str:
    assert local_api.call("PUT", "/endpoints/tagged", {"description": "has jobs to filter"}).status == 200
    return TAGGED


def independently_signed(local_api: LocalApi, method: str, target: str, body: bytes = b"", **at) -> dict[str, str]:
    credentials = local_api.credentials
    return sigv4_signer.sign(
        method,
        local_api.url + target,
        key=credentials.access_key_id,
        secret=credentials.secret_access_key,
        at=at.get("at") or datetime.now(UTC),
        body=body,
    )


@pytest.mark.parametrize(
    "query",
    [
        "tag=team=vision,a",  # as the README writes it: '=' and ',' sent as they are
        "tag=team%3Dvision%2Ca",  # as a client that encodes them sends it
        "tag=team%3dvision%2ca&limit=5",  # lowercase escapes, and two parameters out of order
        "tag=k%3Dr%C3%A9sum%C3%A9%20%2B%20more&tag=a%3Db%7Ec",  # UTF-8, a space, a plus, an escaped unreserved '~'
    ],
)
def test_a_query_signed_by_an_independent_signer_from_the_spec_passes(
    local_api: LocalApi, tagged: str, query: str
) -> None:
    target = f"{tagged}?{query}"

    reply = local_api.send("GET", target, headers=independently_signed(local_api, "GET", target))

    assert reply.status == 200, reply.body


def test_a_query_signed_by_botocore_as_the_sdk_encodes_it_passes_and_reaches_the_api_decoded(
    local_api: LocalApi, tagged: str
) -> None:
    target = f"{tagged}?" + urlencode({"tag": "team=vision,a"}, quote_via=quote)

    reply = local_api.send("GET", target, headers=local_api.signed_headers("GET", target))

    assert target.endswith("tag=team%3Dvision%2Ca") and reply.status == 200, reply.body
    assert reply.json()["value"] == []  # filtered by the tag, decoded: no job has it


def test_a_query_changed_after_an_independent_signature_is_refused(local_api: LocalApi, tagged: str) -> None:
    headers = independently_signed(local_api, "GET", f"{tagged}?tag=team=vision,a")

    reply = local_api.send("GET", f"{tagged}?tag=team=vision,b", headers=headers)

    assert reply.status == 403 and reply.json()["message"].startswith(sigv4.MISMATCH)


def test_a_body_signed_by_the_independent_signer_passes(local_api: LocalApi) -> None:
    headers = independently_signed(local_api, "PUT", "/endpoints/by-the-spec", BODY)

    reply = local_api.send("PUT", "/endpoints/by-the-spec", BODY, {**headers, **JSON})

    assert reply.status == 200, reply.body


# ---------------------------------------------------------------------------------------------- presigned URLs
def botocore_presigned(local_api: LocalApi, method: str, target: str, expires_s: int = 300, token=None) -> str:
    request = AWSRequest(method=method, url=local_api.url + target)
    credentials = Credentials(local_api.credentials.access_key_id, local_api.credentials.secret_access_key, token)
    SigV4QueryAuth(credentials, "execute-api", REGION, expires=expires_s).add_auth(request)
    return request.url


def independently_presigned(local_api: LocalApi, method: str, target: str, *, expires_s=300, at=None) -> str:
    return sigv4_signer.presign(
        method,
        local_api.url + target,
        key=local_api.credentials.access_key_id,
        secret=local_api.credentials.secret_access_key,
        at=at or datetime.now(UTC),
        expires_s=expires_s,
    )


def send_url(local_api: LocalApi, method: str, url: str, body: bytes = b"", headers=None):
    address = urlsplit(url)
    return local_api.send(method, f"{address.path}?{address.query}", body, headers)


@pytest.mark.parametrize("presigner", [botocore_presigned, independently_presigned])
def test_a_presigned_url_passes_with_its_query(local_api: LocalApi, tagged: str, presigner) -> None:
    url = presigner(local_api, "GET", f"{tagged}?tag=team%3Dvision%2Ca&limit=5")

    reply = send_url(local_api, "GET", url)

    assert reply.status == 200, reply.body


def test_a_presigned_url_for_any_body_creates_what_it_is_sent_and_tells_the_api_who_signed(local_api: LocalApi) -> None:
    # UNSIGNED-PAYLOAD, as S3's presigned URLs sign: the URL allows its method on its path, whatever the body.
    url = independently_presigned(local_api, "PUT", "/endpoints/presigned")

    created = send_url(local_api, "PUT", url, BODY, JSON)

    assert created.status == 200, created.body
    assert created.json()["created_by"] == local_api.credentials.user_arn


def test_a_presigned_url_signing_its_body_refuses_another_body(local_api: LocalApi) -> None:
    # botocore presigns the body's hash (here of no body), as the IAM guide does for every service but S3.
    url = botocore_presigned(local_api, "PUT", "/endpoints/presigned-empty")

    reply = send_url(local_api, "PUT", url, BODY, JSON)

    assert reply.status == 403 and reply.json()["message"].startswith(sigv4.MISMATCH)
    assert_not_created(local_api, "presigned-empty")


@pytest.mark.parametrize(
    ("case", "change", "status", "message", "error_type"),
    [
        (
            "tampered query",
            lambda url: url.replace("limit=1", "limit=2"),
            403,
            sigv4.MISMATCH,
            "InvalidSignatureException",
        ),
        (
            "tampered path",
            lambda url: url.replace("/jobs?", "/jobz?"),
            403,
            sigv4.MISMATCH,
            "InvalidSignatureException",
        ),
        (
            "no signature",
            lambda url: url.rpartition("&X-Amz-Signature=")[0],
            403,
            "AWS query-string parameters must include 'X-Amz-Signature'.",
            "IncompleteSignatureException",
        ),
        (
            "no date",
            lambda url: url.replace("&X-Amz-Date=", "&X-Amz-Dat="),
            403,
            "AWS query-string parameters must include 'X-Amz-Date'.",
            "IncompleteSignatureException",
        ),
        (
            "no expiry",
            lambda url: url.replace("&X-Amz-Expires=300", ""),
            403,
            "AWS query-string parameters must include 'X-Amz-Expires'.",
            "IncompleteSignatureException",
        ),
        (
            "longer life",
            lambda url: url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
            403,
            sigv4.MISMATCH,
            "InvalidSignatureException",
        ),
        (
            "another key",
            lambda url: url.replace("X-Amz-Credential=BEPLOCAL", "X-Amz-Credential=AKIAOTHER"),
            403,
            sigv4.UNKNOWN_KEY,
            "UnrecognizedClientException",
        ),
    ],
)
def test_a_presigned_url_changed_or_incomplete_is_refused(
    local_api: LocalApi, case: str, change, status: int, message: str, error_type: str
) -> None:
    url = independently_presigned(local_api, "GET", "/endpoints/tagged/jobs?limit=1")

    reply = send_url(local_api, "GET", change(url))

    assert (reply.status, reply.headers["x-amzn-errortype"]) == (status, error_type), case
    assert reply.json()["message"].startswith(message)


def test_an_expired_presigned_url_is_refused(local_api: LocalApi) -> None:
    url = independently_presigned(
        local_api, "GET", "/endpoints", expires_s=60, at=datetime.now(UTC) - timedelta(minutes=2)
    )

    reply = send_url(local_api, "GET", url)

    assert reply.status == 403 and reply.json()["message"].startswith("Signature expired: ")


def test_a_presigned_url_with_a_session_token_is_refused_as_the_local_key_has_none(local_api: LocalApi) -> None:
    url = botocore_presigned(local_api, "GET", "/endpoints", token="FwoGZXIvYXdzEXAMPLE")

    reply = send_url(local_api, "GET", url)

    assert "X-Amz-Security-Token=" in url
    assert (reply.status, reply.json()["message"]) == (403, sigv4.UNKNOWN_KEY)


def test_a_presigned_url_with_an_authorization_header_too_is_a_bad_request(local_api: LocalApi) -> None:
    url = independently_presigned(local_api, "GET", "/endpoints")

    reply = send_url(local_api, "GET", url, headers=local_api.signed_headers("GET", "/endpoints"))

    assert reply.status == 400 and reply.json()["message"].startswith("Only one auth mechanism allowed")


def test_the_access_log_leaves_out_a_presigned_urls_signature_and_token(
    local_api: LocalApi, capsys: pytest.CaptureFixture[str]
) -> None:
    url = botocore_presigned(local_api, "GET", "/endpoints", token="FwoGZXIvYXdzEXAMPLE")
    signature = url.rpartition("X-Amz-Signature=")[2]

    send_url(local_api, "GET", url)

    logged = capsys.readouterr().err
    assert "GET /endpoints?X-Amz-Algorithm=AWS4-HMAC-SHA256" in logged
    assert "X-Amz-Signature=REDACTED" in logged and "X-Amz-Security-Token=REDACTED" in logged
    assert signature not in logged and "FwoGZXIvYXdzEXAMPLE" not in logged
