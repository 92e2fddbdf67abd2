"""A local input folder whose names look like caches, version control and temp files, invoked on through the SDK:
on a stack it goes up through the API's presigned POST into S3 (moto) and every file is stored under its own
name; the local server reads it where it is. Either way the job's input holds every file, byte for byte."""

from __future__ import annotations

from pathlib import Path

import requests

from batch_endpoints.client import HttpRequest, HttpResponse
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


def test_every_file_of_a_local_input_reaches_the_job_under_its_own_name(
    stack: Stack, folders: Folders, transport: LambdaTransport, tmp_path: Path
) -> None:
    client = client_for(StackTransport(transport.credentials, transport.region))
    client.models.create_or_update(Model(name="digits", version="1", path=folders.model))
    client.batch_endpoints.create_or_update(Endpoint(name="digits"))
    code = CodeConfiguration(code=folders.code, scoring_script="score.py")
    client.batch_deployments.create_or_update(
        Deployment(name="blue", endpoint_name="digits", model="digits:1", code_configuration=code), set_default=True
    )
    local = write_tree(tmp_path / "odd", EVERY_KIND_OF_NAME)

    job = client.batch_endpoints.invoke("digits", input=str(local))

    blobs = stack.backend.blobs
    assert job.input.uri.startswith("s3://") == (stack.kind == "aws")
    stored = {blobs.relative(job.input.uri, f.uri): blobs.get_bytes(f.uri) for f in blobs.list_files(job.input.uri)}
    assert stored == {name: content.encode() for name, content in EVERY_KIND_OF_NAME.items()}
    assert stack.started() == [job.id]
