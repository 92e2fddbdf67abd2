"""A local model folder given to the SDK of a stack goes up through the presigned POST the API hands out, file by
file under the upload's prefix, into S3 (moto's S3 server, over real HTTP); the local server gets paths instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.session
import pytest
from moto.server import ThreadedMotoServer

from batch_endpoints.api.uploads import presigned_folder_upload
from batch_endpoints.client import BatchEndpointsClient, HttpRequest, HttpResponse, PooledTransport, RetryPolicy
from batch_endpoints.specs import Model
from tests.core_fixtures import write_tree

API_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
BUCKET = "bep-storage"


@pytest.fixture(name="s3_url")
def s3_url_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": url,  # where the API's presigner and the test's client find S3
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


class StackApi:
    """The API's upload route as a stack answers it (a presigned POST into its bucket) and the model route; every
    other URL (the presigned POST itself) goes over HTTP."""

    def __init__(self) -> None:
        self.registered: list[dict] = []
        self.http = PooledTransport()

    def send(self, request: HttpRequest) -> HttpResponse:
        if not request.url.startswith(API_URL):
            return self.http.send(request)
        resource = request.url.removeprefix(API_URL)
        if resource == "/models/digits/uploads":
            target = presigned_folder_upload(f"s3://{BUCKET}/stack", "models", "digits")
            return HttpResponse(200, {}, target.model_dump_json().encode())
        body = json.loads(request.body)
        self.registered.append(body)
        model = {"name": "digits", "version": "1", "path": body["path"], "created_at": "2026-01-01"}
        return HttpResponse(201, {}, json.dumps(model).encode())


def test_a_local_model_folder_is_uploaded_through_the_apis_presigned_post(s3_url: str, tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "model", {"weights.bin": "0123456789", "config/labels.txt": "zero\none\n"})
    session = botocore.session.Session()
    session.set_credentials("AKIDEXAMPLE", "secret")
    api = StackApi()

    model = BatchEndpointsClient(API_URL, session=session, transport=api).models.create_or_update(
        Model(name="digits", version="1", path=str(folder))
    )

    assert model.path.startswith(f"s3://{BUCKET}/stack/uploads/models/digits/")
    # Under its own name, so the runner lays it out as Azure does: AZUREML_MODEL_DIR/model/...
    assert model.path.endswith("/model/")
    prefix = model.path.removeprefix(f"s3://{BUCKET}/")
    s3 = boto3.client("s3")
    stored = {o["Key"].removeprefix(prefix) for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]}
    assert stored == {"weights.bin", "config/labels.txt"}
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "config/labels.txt")["Body"].read() == b"zero\none\n"
    assert api.registered == [{"path": model.path, "description": "", "tags": {}}]


class FirstAnswerLost:
    """Delivers every request, and loses the answer to the first one to each URL, as a timeout."""

    def __init__(self, inner: StackApi) -> None:
        self.inner = inner
        self.urls: list[str] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        response = self.inner.send(request)
        if request.url in self.urls:
            return response
        self.urls.append(request.url)
        raise TimeoutError("timed out")


def test_an_upload_whose_answers_were_lost_is_sent_again_and_completes(s3_url: str, tmp_path: Path) -> None:
    # An upload's POSTs cannot act twice: one hands out a policy and stores nothing, the other writes the same
    # bytes to the same key again. So they are retried, though POST.
    folder = write_tree(tmp_path / "model", {"weights.bin": "0123456789"})
    session = botocore.session.Session()
    session.set_credentials("AKIDEXAMPLE", "secret")
    network = FirstAnswerLost(StackApi())
    retry = RetryPolicy(sleep=lambda _: None)

    model = BatchEndpointsClient(API_URL, session=session, transport=network, retry=retry).models.create_or_update(
        Model(name="digits", version="1", path=str(folder))
    )

    assert network.urls == [
        f"{API_URL}/models/digits/uploads",
        s3_url + f"/{BUCKET}",
        f"{API_URL}/models/digits/versions/1",
    ]
    prefix = model.path.removeprefix(f"s3://{BUCKET}/")
    assert boto3.client("s3").get_object(Bucket=BUCKET, Key=prefix + "weights.bin")["Body"].read() == b"0123456789"
