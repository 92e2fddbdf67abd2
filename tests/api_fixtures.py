"""Fixtures for the API tests: requests as API Gateway delivers them, against a local or a cloud (moto) backend.

`api(method, path, body)` builds the REST proxy event API Gateway sends for a SigV4-signed request (IAM
authorization fills requestContext.identity) and runs it through the Lambda handler, decorators and all.

`stack` is one backend with the API's service in front of it, parametrized: `local` is the embedded backend
(SQLite, a storage folder) with a recording orchestrator, `aws` is the cloud backend on moto (DynamoDB, S3,
Step Functions, AWS Batch, CloudWatch Logs). A test written against `stack` runs on both, the way a client
cannot tell them apart except by the storage URIs it uses.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_endpoints.adapters.aws.backend import close_never_started
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.api.app import app, get_service
from batch_endpoints.api.openapi import openapi_document
from batch_endpoints.backend import Backend
from batch_endpoints.service import BatchEndpointService
from lambdas.api.handler import lambda_handler
from tests.aws_fixtures import INPUT_BUCKET, aws_backend, role_arn
from tests.aws_fixtures import aws_fixture as aws_fixture  # the `aws` fixture, for the `aws` parameter of `stack`
from tests.aws_limits import check_lambda_payload
from tests.aws_limits import step as aws_step
from tests.core_fixtures import SCORING_SCRIPT, RecordingOrchestrator, write_tree

ACCOUNT = "123456789012"
ANN = f"arn:aws:iam::{ACCOUNT}:user/ann"
BOB = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci/bob"
# The orchestrator only starts and stops executions here; what the state machine does is the workflow's test.
WAITING_MACHINE = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@dataclass
class LambdaContext:
    function_name: str = "bep-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bep-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    text: str | None

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@functools.cache
def _route_templates() -> list[tuple[str, re.Pattern[str]]]:
    """The API's resources as API Gateway knows them ('/jobs/{job_id}'), from the OpenAPI document."""
    templates = []
    for template in openapi_document()["paths"]:
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
        templates.append((template, re.compile(f"^{pattern}$")))
    return templates


def rest_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    caller: str | None = ANN,
) -> dict[str, Any]:
    """The proxy event of API Gateway's REST API for one request (payload format 1.0)."""
    resource, parameters = "/{proxy+}", {"proxy": path.lstrip("/")}
    for template, pattern in _route_templates():
        if match := pattern.match(path):
            resource, parameters = template, match.groupdict()
            break
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    all_headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "X-Amz-Date": "20250101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20250101/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0",
        **({"Content-Type": "application/json"} if text is not None else {}),
        **(headers or {}),
    }
    identity = {"sourceIp": "203.0.113.7", "userAgent": "bep-tests", "accountId": ACCOUNT}
    if caller is not None:
        identity.update({"caller": "AIDAEXAMPLE", "user": "AIDAEXAMPLE", "userArn": caller})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "protocol": "HTTP/1.1",
            "identity": identity,
        },
        "body": text,
        "isBase64Encoded": False,
    }


def invoke_api_lambda(event: dict[str, Any]) -> dict[str, Any]:
    """The API Lambda's handler on one proxy event, held to Lambda's payload limits and, on moto, to API Gateway's
    29 s (tests/aws_limits.py)."""
    check_lambda_payload("request", event)
    with warnings.catch_warnings(), aws_step("api"):
        # Powertools Metrics warns on every invocation that published no metric but the cold start one.
        warnings.filterwarnings("ignore", "No application metrics to publish")
        result = lambda_handler(event, LambdaContext())
    check_lambda_payload("response", result)
    return result


class Api:
    """Calls the API's Lambda handler as API Gateway would, for one client identity."""

    def __init__(self, caller: str | None = ANN) -> None:
        self.caller = caller

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        caller: str | None = "",
    ) -> ApiResponse:
        event = rest_event(
            method, path, body, query=query, headers=headers, caller=self.caller if caller == "" else caller
        )
        result = invoke_api_lambda(event)
        headers_out = {name: values[-1] for name, values in result.get("multiValueHeaders", {}).items()}
        headers_out.update(result.get("headers") or {})
        return ApiResponse(result["statusCode"], headers_out, result.get("body"))


@dataclass
class Stack:
    """One backend behind the API, and how a test puts files into its storage and sees what it started."""

    kind: str
    backend: Backend
    service: BatchEndpointService
    stage: Callable[[Path], str]
    """Put a local folder into the backend's storage (where a client would upload it); returns its location."""
    started: Callable[[], list[str]]
    """Job ids whose execution was started, oldest first."""

    def location(self, relative: str) -> str:
        """A location in this backend's storage that nothing is at."""
        if self.kind == "aws":
            return f"s3://{INPUT_BUCKET}/{relative}"
        return str(Path(self.backend.blobs.root).parent / "elsewhere" / relative)


def _local_stack(tmp_path: Path) -> Stack:
    recorder = RecordingOrchestrator()
    backend = replace(open_local_backend(str(tmp_path / "bep-home")), orchestrator=recorder)
    return Stack("local", backend, BatchEndpointService(backend), lambda folder: str(folder), lambda: recorder.started)


def _aws_stack() -> Stack:
    states = boto3.client("stepfunctions")
    role = role_arn("bep-states")
    machine, pipelines = (
        states.create_state_machine(name=name, definition=json.dumps(WAITING_MACHINE), roleArn=role)["stateMachineArn"]
        for name in ("bep-jobs", "bep-pipeline-jobs")
    )
    orchestrator = StepFunctionsOrchestrator(machine, pipeline_state_machine_arn=pipelines)
    backend = aws_backend(orchestrator)
    orchestrator.computes = backend.computes
    orchestrator.on_never_started = functools.partial(close_never_started, backend)

    def stage(folder: Path) -> str:
        s3 = boto3.client("s3")
        prefix = f"staged/{folder.name}-{uuid.uuid4().hex[:6]}"
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            s3.put_object(
                Bucket=INPUT_BUCKET, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
            )
        return f"s3://{INPUT_BUCKET}/{prefix}"

    def started() -> list[str]:
        executions = [
            e for arn in (machine, pipelines) for e in states.list_executions(stateMachineArn=arn)["executions"]
        ]
        return [e["name"] for e in sorted(executions, key=lambda e: e["startDate"])]

    return Stack("aws", backend, BatchEndpointService(backend), stage, started)


def serve(stack: Stack) -> Iterator[Stack]:
    """The API serves `stack` until the test ends."""
    app.dependency_overrides[get_service] = lambda: stack.service
    try:
        yield stack
    finally:
        app.dependency_overrides.pop(get_service, None)


@pytest.fixture(name="stack", params=["local", "aws"])
def stack_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "aws":
        request.getfixturevalue("aws")  # moto's AWS in this process
        yield from serve(_aws_stack())
    else:
        yield from serve(_local_stack(tmp_path))


@pytest.fixture(name="aws_stack")
def aws_stack_fixture(aws: None) -> Iterator[Stack]:
    """For what only the cloud backend does."""
    yield from serve(_aws_stack())


@pytest.fixture(name="local_stack")
def local_stack_fixture(tmp_path: Path) -> Iterator[Stack]:
    """For what does not depend on the backend."""
    yield from serve(_local_stack(tmp_path))


@pytest.fixture(name="api")
def api_fixture() -> Api:
    return Api()


@dataclass
class Folders:
    """A scoring code folder, a model folder and an input folder of seven files, in the stack's storage."""

    code: str
    model: str
    inputs: str


@pytest.fixture(name="folders")
def folders_fixture(stack: Stack, tmp_path: Path) -> Folders:
    code = write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT, "labels.txt": "zero\none\n"})
    model = write_tree(tmp_path / "model", {"weights.txt": "0.5 0.25\n"})
    inputs = write_tree(tmp_path / "inputs", {f"{name}.txt": name * 2 for name in "abcdefg"})
    return Folders(stack.stage(code), stack.stage(model), stack.stage(inputs))


def deployment_body(folders: Folders, **fields: Any) -> dict[str, Any]:
    """deployment.yml as a request body: model digits:1, the staged code, mini-batches of 3."""
    return {
        "$schema": "https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json",
        "type": "model",
        "model": "azureml:digits:1",
        "code_configuration": {"code": folders.code, "scoring_script": "score.py"},
        "compute": "azureml:cpu-cluster",
        "resources": {"instance_count": 1},
        "settings": {"mini_batch_size": 3, "output_action": "append_row"},
        **fields,
    }


@pytest.fixture(name="ready")
def ready_fixture(stack: Stack, api: Api, folders: Folders) -> Stack:
    """Model digits:1 and endpoint `digits` whose default deployment is `blue`, all made through the API."""
    assert api("PUT", "/models/digits/versions/1", {"path": folders.model}).status == 201
    assert api("PUT", "/endpoints/digits", {"description": "8x8 digits"}).status == 200
    put = api("PUT", "/endpoints/digits/deployments/blue", deployment_body(folders), query={"set_default": "true"})
    assert put.status == 200, put.text
    return stack
