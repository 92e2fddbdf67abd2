"""The SDK's cloud path offline: its signed requests go through API Gateway's part (the SigV4 check, the proxy
event) to the API Lambda's handler, over the local backend and over the cloud backend on moto."""

from __future__ import annotations

from urllib.parse import urlsplit

import botocore.session
import pytest

from batch_endpoints.client import (
    AuthenticationError,
    BatchEndpointsClient,
    HttpRequest,
    HttpResponse,
    RetryPolicy,
    ServerError,
)
from batch_endpoints.errors import ConflictError, NotFoundError
from batch_endpoints.server.credentials import LocalCredentials, generate
from batch_endpoints.server.events import http_reply, proxy_event
from batch_endpoints.server.sigv4 import SignatureError, SignedRequest, verify
from batch_endpoints.specs import CodeConfiguration, Deployment, Endpoint, InvokeOverrides, Model, RunSettings
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
    Api,
    Folders,
    Stack,
    api_fixture,
    folders_fixture,
    invoke_api_lambda,
    ready_fixture,
    stack_fixture,
)
from tests.api_fixtures import aws_fixture as aws_fixture  # the `aws` fixture behind `stack`
from tests.test_api_routes import invoke
from tests.test_rerun_resume import stopped_job

API_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"


class LambdaTransport:
    """API Gateway for one REST API in a test: the stage's requests, signature checked, to the Lambda handler."""

    def __init__(self, credentials: LocalCredentials, region: str) -> None:
        self.credentials = credentials
        self.region = region
        self.requests: list[HttpRequest] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        url = urlsplit(request.url)
        headers = [*request.headers.items(), ("Host", url.netloc)]
        try:
            identity = verify(
                SignedRequest(request.method, url.path, url.query, headers, request.body),
                self.credentials,
                region=self.region,
            )
        except SignatureError as refused:
            body = f'{{"message": "{refused.message[:60]}"}}'.encode()
            return HttpResponse(403, {"x-amzn-errortype": refused.error_type}, body)
        stage_path = url.path.removeprefix(urlsplit(API_URL).path)
        event = proxy_event(request.method, stage_path, url.query, headers, request.body, identity=identity)
        reply = http_reply(invoke_api_lambda(event))
        return HttpResponse(reply.status, {name.lower(): value for name, value in reply.headers}, reply.body)


@pytest.fixture(name="transport")
def transport_fixture() -> LambdaTransport:
    return LambdaTransport(generate("ci-bot"), "eu-west-1")


def client_for(
    transport: LambdaTransport | AnswerLost, secret: str | None = None, retry: RetryPolicy | None = None
) -> BatchEndpointsClient:
    credentials = transport.credentials
    session = botocore.session.Session()
    session.set_credentials(credentials.access_key_id, secret or credentials.secret_access_key)
    return BatchEndpointsClient(API_URL, session=session, transport=transport, retry=retry)


class AnswerLost:
    """A network that delivers the first `lose` requests matching `path` and loses their answers: the service
    acts, and the client sees no answer (a timeout) or the gateway's 504, as when API Gateway's 29 s pass while
    the Lambda goes on."""

    def __init__(self, inner: LambdaTransport, path: str, *, lose: int = 1, answer: str = "timeout") -> None:
        self.inner = inner
        self.credentials = inner.credentials
        self.path = path
        self.lose = lose
        self.answer = answer
        self.delivered: list[HttpRequest] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        response = self.inner.send(request)
        if not urlsplit(request.url).path.endswith(self.path):
            return response
        self.delivered.append(request)
        if len(self.delivered) > self.lose:
            return response
        if self.answer == "timeout":
            raise TimeoutError("timed out")
        return HttpResponse(
            504, {"x-amzn-errortype": "IntegrationTimeout"}, b'{"message": "Endpoint request timed out"}'
        )


def test_the_sdk_drives_the_api_lambda_from_model_to_a_cancelled_job(
    stack: Stack, folders: Folders, transport: LambdaTransport
) -> None:
    client = client_for(transport)

    model = client.models.create_or_update(Model(name="digits", version="1", path=folders.model))
    client.batch_endpoints.create_or_update(Endpoint(name="digits", description="8x8 digits"))
    client.batch_deployments.create_or_update(
        Deployment(
            name="blue",
            endpoint_name="digits",
            model=model.ref,
            code_configuration=CodeConfiguration(code=folders.code, scoring_script="score.py"),
            settings=RunSettings(mini_batch_size=3),
        ),
        set_default=True,
    )
    overrides = InvokeOverrides(mini_batch_size=2)
    job = client.batch_endpoints.invoke("digits", input=folders.inputs, overrides=overrides, idempotency_key="n-1")
    again = client.batch_endpoints.invoke("digits", input=folders.inputs, overrides=overrides, idempotency_key="n-1")
    canceled = client.jobs.cancel(job.id)

    assert client.region == "eu-west-1"  # from the API's URL
    assert model.path.startswith("s3://") == (stack.kind == "aws")
    assert again.id == job.id and stack.started() == [job.id]
    assert job.settings.mini_batch_size == 2 and job.links.job.endswith(f"/jobs/{job.id}")
    assert job.created_by == transport.credentials.user_arn
    assert canceled.status in {"CancelRequested", "Canceled"}
    assert [j.id for j in client.jobs.list("digits")] == [job.id]
    assert client.batch_endpoints.get("digits").default_deployment == "blue"
    with pytest.raises(ConflictError):
        client.jobs.download(job.id)  # no output: it never completed
    assert all(
        request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=") for request in transport.requests
    )


def test_listing_jobs_follows_next_token_across_pages(
    stack: Stack, folders: Folders, transport: LambdaTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(transport)
    client.models.create_or_update(Model(name="digits", version="1", path=folders.model))
    client.batch_endpoints.create_or_update(Endpoint(name="digits"))
    code = CodeConfiguration(code=folders.code, scoring_script="score.py")
    client.batch_deployments.create_or_update(
        Deployment(name="blue", endpoint_name="digits", model="digits:1", code_configuration=code), set_default=True
    )
    started = [client.batch_endpoints.invoke("digits", input=folders.inputs).id for _ in range(3)]
    monkeypatch.setattr("batch_endpoints.client.operations.LIST_PAGE", 2)

    listed = [job.id for job in client.jobs.list("digits")]

    assert sorted(listed) == sorted(started) and len(listed) == 3
    pages = [r.url for r in transport.requests if r.method == "GET" and "/endpoints/digits/jobs" in r.url]
    assert len(pages) == 2 and "next_token=" in pages[1]


def test_listing_models_endpoints_and_deployments_follows_next_token_across_pages(
    stack: Stack, folders: Folders, transport: LambdaTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(transport)
    for version in ("1", "2", "3"):
        client.models.create_or_update(Model(name="digits", version=version, path=folders.model))
    code = CodeConfiguration(code=folders.code, scoring_script="score.py")
    for name in ("digits", "images", "sounds"):
        client.batch_endpoints.create_or_update(Endpoint(name=name))
    for name in ("blue", "green", "red"):
        client.batch_deployments.create_or_update(
            Deployment(name=name, endpoint_name="digits", model="digits:1", code_configuration=code)
        )
    monkeypatch.setattr("batch_endpoints.client.operations.LIST_PAGE", 2)
    transport.requests.clear()

    models = [m.version for m in client.models.list("digits")]
    endpoints = [e.name for e in client.batch_endpoints.list()]
    deployments = [d.name for d in client.batch_deployments.list("digits")]

    assert sorted(models) == ["1", "2", "3"]
    assert endpoints == ["digits", "images", "sounds"] and sorted(deployments) == ["blue", "green", "red"]
    lists = [r.url for r in transport.requests if r.method == "GET"]
    assert len(lists) == 6 and all("limit=2" in url for url in lists)
    assert sum("next_token=" in url for url in lists) == 3


def test_a_wrong_secret_and_a_missing_thing_are_typed_errors(stack: Stack, transport: LambdaTransport) -> None:
    with pytest.raises(NotFoundError):
        client_for(transport).jobs.get("digits-0123456789ab")
    with pytest.raises(AuthenticationError) as refused:
        client_for(transport, secret="wrong").batch_endpoints.list()

    assert refused.value.status == 403 and refused.value.code == "InvalidSignatureException"


# ------------------------------------------------------------------------------------------------ answers lost
NO_WAIT = RetryPolicy(sleep=lambda _: None)


@pytest.mark.parametrize("answer", ["timeout", "504"])
def test_a_rerun_whose_answer_was_lost_is_retried_and_starts_one_job(
    ready: Stack, api: Api, folders: Folders, transport: LambdaTransport, answer: str
) -> None:
    source = stopped_job(ready, api, folders)
    network = AnswerLost(transport, "/rerun", answer=answer)

    rerun = client_for(network, retry=NO_WAIT).jobs.rerun(source, failed_only=True)

    assert len(network.delivered) == 2  # the first reached the service, which started a job
    keys = {request.headers["Idempotency-Key"] for request in network.delivered}
    assert len(keys) == 1  # one key for the call and all its retries
    assert rerun.rerun_of == source and ready.started() == [source, rerun.id]
    assert [job["id"] for job in api("GET", "/endpoints/digits/jobs").json()["value"]] == [rerun.id, source]


def test_a_resume_whose_answer_was_lost_is_retried_and_resumes_the_job_once(
    ready: Stack, api: Api, folders: Folders, transport: LambdaTransport
) -> None:
    job_id = stopped_job(ready, api, folders)
    network = AnswerLost(transport, "/resume", lose=2)

    resumed = client_for(network, retry=NO_WAIT).jobs.resume(job_id)

    assert len(network.delivered) == 3 and resumed.resumes == 1
    assert len({request.headers["Idempotency-Key"] for request in network.delivered}) == 1
    if ready.kind == "aws":
        assert ready.started() == [job_id, f"{job_id}-resume-1"]


def test_each_rerun_call_has_a_key_of_its_own(
    ready: Stack, api: Api, folders: Folders, transport: LambdaTransport
) -> None:
    source = stopped_job(ready, api, folders)
    client = client_for(transport)

    first = client.jobs.rerun(source, failed_only=True)
    second = client.jobs.rerun(source, failed_only=True)

    assert first.id != second.id and ready.started() == [source, first.id, second.id]


@pytest.mark.parametrize("answer", ["timeout", "504"])
def test_a_post_without_a_key_is_not_sent_again(
    ready: Stack, api: Api, folders: Folders, transport: LambdaTransport, answer: str
) -> None:
    job = invoke(api, folders)
    network = AnswerLost(transport, "/cancel", answer=answer)

    with pytest.raises(TimeoutError if answer == "timeout" else ServerError):
        client_for(network, retry=NO_WAIT).jobs.cancel(job["id"])

    assert len(network.delivered) == 1
    assert api("GET", f"/jobs/{job['id']}").json()["status"] in {"CancelRequested", "Canceled"}
