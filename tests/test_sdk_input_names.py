"""A local input folder whose names look like caches, version control and temp files, invoked on through the SDK:
on a stack it goes up through the API's presigned POST into S3 (moto) and every file is stored under its own
name; the local server reads it where it is. Either way the job's input holds every file, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from batch_endpoints.client import BatchEndpointsClient, HttpRequest, HttpResponse
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import CodeConfiguration, Deployment, Endpoint, Model
from tests.api_fixtures import Folders, Stack, folders_fixture, stack_fixture  # noqa: F401 (pytest fixtures)
from tests.api_fixtures import aws_fixture as aws_fixture  # the `aws` fixture behind `stack`
from tests.core_fixtures import EVERY_KIND_OF_NAME, write_tree
from tests.test_sdk_on_lambda import API_URL, LambdaTransport, client_for, transport_fixture  # noqa: F401


class StackTransport(LambdaTransport):
    """The API's requests to its Lambda; the rest (presigned POSTs to S3) over HTTP, which moto answers as S3."""

    def send(self, request: HttpRequest) -> HttpResponse:
        if request.url.startswith(API_URL):
            return super().send(request)
        # `requests`, not urllib: moto intercepts requests' calls to AWS's endpoints, as it does botocore's.
        answer = requests.request(request.method, request.url, data=request.body, headers=request.headers, timeout=30)
        return HttpResponse(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content)


def deployed(transport: LambdaTransport, folders: Folders) -> BatchEndpointsClient:
    """A client of the stack, whose endpoint `digits` has a default deployment."""
    client = client_for(StackTransport(transport.credentials, transport.region))
    client.models.create_or_update(Model(name="digits", version="1", path=folders.model))
    client.batch_endpoints.create_or_update(Endpoint(name="digits"))
    code = CodeConfiguration(code=folders.code, scoring_script="score.py")
    client.batch_deployments.create_or_update(
        Deployment(name="blue", endpoint_name="digits", model="digits:1", code_configuration=code), set_default=True
    )
    return client


def test_every_file_of_a_local_input_reaches_the_job_under_its_own_name(
    stack: Stack, folders: Folders, transport: LambdaTransport, tmp_path: Path
) -> None:
    client = deployed(transport, folders)
    local = write_tree(tmp_path / "odd", EVERY_KIND_OF_NAME)

    job = client.batch_endpoints.invoke("digits", input=str(local))

    blobs = stack.backend.blobs
    assert job.input.uri.startswith("s3://") == (stack.kind == "aws")
    stored = {blobs.relative(job.input.uri, f.uri): blobs.get_bytes(f.uri) for f in blobs.list_files(job.input.uri)}
    assert stored == {name: content.encode() for name, content in EVERY_KIND_OF_NAME.items()}
    assert stack.started() == [job.id]


@pytest.fixture(name="heart")
def heart_fixture(tmp_path: Path) -> str:
    return str(write_tree(tmp_path / "heart", {"a.csv": "x\n1\n"}))


def test_a_local_data_input_named_as_azure_names_it_is_uploaded_and_scored(
    stack: Stack, folders: Folders, transport: LambdaTransport, heart: str
) -> None:
    client = deployed(transport, folders)
    output = stack.location("results")

    job = client.batch_endpoints.invoke(
        "digits",
        inputs={"heart_data": {"type": "uri_folder", "path": heart, "mode": "ro_mount"}},
        outputs={"score": {"type": "uri_file", "path": f"{output}/scores.csv"}},
    )

    assert job.input.uri.startswith("s3://") == (stack.kind == "aws")
    assert [
        stack.backend.blobs.relative(job.input.uri, f.uri) for f in stack.backend.blobs.list_files(job.input.uri)
    ] == ["a.csv"]
    assert job.output_uri == f"{output}/scores.csv"
    assert stack.started() == [job.id]


def test_a_mistake_in_the_sdks_inputs_is_refused_before_anything_is_uploaded(
    stack: Stack, folders: Folders, transport: LambdaTransport, heart: str
) -> None:
    client = deployed(transport, folders)
    uploads = list(stack.backend.blobs.list_files(stack.backend.blobs.root))

    with pytest.raises(ValidationError) as refused:
        client.batch_endpoints.invoke("digits", inputs={"heart_data": {"path": heart, "default": 3}})

    assert refused.value.field == "inputs.heart_data.default"
    assert list(stack.backend.blobs.list_files(stack.backend.blobs.root)) == uploads
    assert stack.started() == []
