"""The local API server refuses what API Gateway's IAM authorization refuses, with the same 403s, and serves what
it accepts, telling the API who signed."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from batch_endpoints.server import sigv4
from batch_endpoints.server.events import proxy_event
from lambdas.api.openapi import openapi_document
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
