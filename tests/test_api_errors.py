"""The API's one error shape, {code, message, field}, for every way a request can fail."""

from __future__ import annotations

import pytest

from batch_endpoints.api.app import MAX_BODY_BYTES, app, get_service
from batch_endpoints.api.schemas import EndpointBody
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import parse
from tests.api_fixtures import Api, Stack, api_fixture, local_stack_fixture  # noqa: F401 (pytest fixtures)


def test_a_body_over_1_mib_is_refused_before_it_is_parsed(local_stack: Stack, api: Api) -> None:
    description = "x" * MAX_BODY_BYTES
    response = api("PUT", "/endpoints/digits", {"description": description})

    assert response.status == 413
    assert response.json()["code"] == "RequestTooLarge"
    assert response.json()["field"] == "body"
    assert api("GET", "/endpoints/digits").status == 404


def test_a_body_just_under_the_limit_is_read(local_stack: Stack, api: Api) -> None:
    description = "x" * (MAX_BODY_BYTES - 100)

    assert api("PUT", "/endpoints/digits", {"description": description}).status == 200


def test_a_body_that_is_not_json_is_refused(local_stack: Stack, api: Api) -> None:
    response = api("PUT", "/endpoints/digits", "{description: x")

    assert response.status == 400
    assert response.json() == {"code": "ValidationError", "message": "is not valid JSON", "field": "body"}


def test_a_body_of_another_media_type_is_refused(local_stack: Stack, api: Api) -> None:
    response = api("PUT", "/endpoints/digits", "description=x", headers={"Content-Type": "text/plain"})

    assert response.status == 415
    assert response.json()["field"] == "Content-Type"


def test_a_validation_error_names_the_field_as_the_client_wrote_it(local_stack: Stack, api: Api) -> None:
    missing = api("POST", "/endpoints/digits/jobs", {"input": {"type": "uri_folder"}})
    unknown = api("PUT", "/endpoints/digits", {"descripton": "typo"})
    wrong_type = api("PUT", "/endpoints/digits", {"tags": {"team": ["a", "b"]}})

    assert missing.json() == {"code": "ValidationError", "message": "is required", "field": "input.uri"}
    assert unknown.json() == {"code": "ValidationError", "message": "is not a known field", "field": "descripton"}
    assert wrong_type.status == 400 and wrong_type.json()["field"] == "tags.team"


@pytest.mark.parametrize(
    "body",
    [
        {"tags": {"team": ["a", "b"]}},
        {"description": ["a"]},
        {"allowed_inputs": "s3://bucket/"},
        {"defaults": {"deployment_name": 3}},
    ],
)
def test_a_request_refused_by_its_shape_reads_as_the_core_refuses_the_same_body(
    local_stack: Stack, api: Api, body: dict
) -> None:
    with pytest.raises(ValidationError) as core:
        parse(EndpointBody, body)
    response = api("PUT", "/endpoints/digits", body)

    assert response.status == 400
    assert response.json() == {"code": "ValidationError", "message": core.value.message, "field": core.value.field}
    assert api("GET", "/endpoints/digits").status == 404


def test_null_in_an_endpoints_body_means_not_given_as_it_always_has(local_stack: Stack, api: Api) -> None:
    body = {"description": None, "tags": None, "auth_mode": None, "allowed_inputs": None, "defaults": None}

    created = api("PUT", "/endpoints/digits", body)

    assert created.status == 200, created.text
    assert (created.json()["description"], created.json()["allowed_inputs"]) == ("", [])


def test_a_missing_body_is_refused(local_stack: Stack, api: Api) -> None:
    response = api("PUT", "/endpoints/digits")

    assert response.status == 400
    assert response.json()["field"] == "body"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nothing"), ("POST", "/endpoints"), ("GET", "/jobs/a/b/c")])
def test_an_unknown_route_is_not_found_in_the_same_shape(local_stack: Stack, api: Api, method: str, path: str) -> None:
    response = api(method, path)

    assert response.status == 404
    assert response.json() == {"code": "NotFound", "message": f"no route for {method} {path}"}


class Exploding:
    """A service whose every use fails as a bug would: with details that must not reach the client."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("secret table arn:aws:dynamodb:us-east-1:123456789012:table/bep")


def test_an_unexpected_error_is_a_500_without_details_and_is_logged(
    local_stack: Stack, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    app.dependency_overrides[get_service] = Exploding

    response = api("GET", "/endpoints")

    assert response.status == 500
    body = response.json()
    assert body["code"] == "InternalError"
    assert body["message"].startswith("internal error; the API's log has the details (request id ")
    assert "secret" not in response.text and "Traceback" not in response.text
    [logged] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert isinstance(logged.exc_info[1], RuntimeError)  # the whole traceback goes to the log
