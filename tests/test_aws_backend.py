"""Opening the cloud backend from the environment: what each process needs, and what it is told when a
variable is missing. The control-plane adapters are stood in for by recorders, so this tests the wiring."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import pytest

from batch_endpoints import workflow
from batch_endpoints.adapters.aws.backend import NEVER_STARTED, VARIABLES, open_aws_backend
from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.records import DynamoDbRecordStore
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.errors import ValidationError

STORAGE = {"BEP_TABLE": "bep-records", "BEP_BUCKET": "bep-storage"}
CONTROL_PLANE = {
    "BEP_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bep-jobs",
    "BEP_COMPUTES": json.dumps([{"name": "cpu-cluster", "kind": "cpu", "job_queue": "bep-cpu"}]),
    "BEP_IMAGES": json.dumps({"cpu": "cpu:latest", "gpu": "gpu:latest"}),
    "BEP_JOB_ROLE_ARN": "arn:aws:iam::123456789012:role/bep-job",
    "BEP_LOG_GROUP": "/bep/jobs",
    "BEP_API_URL": "https://api.example.com/prod/",
}


class Recorder:
    """Records how the backend built it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """AWS settings for client construction only (nothing here calls AWS), and no BEP_* variable set."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for module, name in [
        ("orchestrator", "StepFunctionsOrchestrator"),
        ("computes", "BatchComputeRegistry"),
        ("logs", "CloudWatchJobLogReader"),
    ]:
        fake = types.ModuleType(f"batch_endpoints.adapters.aws.{module}")
        setattr(fake, name, type(name, (Recorder,), {}))
        monkeypatch.setitem(sys.modules, fake.__name__, fake)
    return monkeypatch


def set_variables(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_bep_backend_aws_opens_the_cloud_backend(environment: pytest.MonkeyPatch) -> None:
    set_variables(environment, {**STORAGE, **CONTROL_PLANE, "BEP_BACKEND": "aws"})

    backend = from_environment()

    assert backend.name == "aws"
    assert isinstance(backend.records, DynamoDbRecordStore) and backend.records.table_name == "bep-records"
    assert isinstance(backend.blobs, S3BlobStore) and backend.blobs.root == "s3://bep-storage"
    assert backend.api_base_url == "https://api.example.com/prod"
    assert backend.child_environment == {**STORAGE, **CONTROL_PLANE, "BEP_BACKEND": "aws"}


def test_the_control_plane_ports_are_wired_on_first_use(environment: pytest.MonkeyPatch) -> None:
    set_variables(environment, {**STORAGE, **CONTROL_PLANE})
    backend = open_aws_backend()

    computes, orchestrator, logs = backend.computes.kwargs, backend.orchestrator.kwargs, backend.logs.kwargs

    assert backend.computes.args == (
        [{"name": "cpu-cluster", "kind": "cpu", "job_queue": "bep-cpu"}],
        {"cpu": "cpu:latest", "gpu": "gpu:latest"},
        CONTROL_PLANE["BEP_JOB_ROLE_ARN"],
        "/bep/jobs",
    )
    assert computes == {
        "execution_role_arn": None,
        # The registering Lambda's region: boto3 in a container does not find it by itself.
        "runner_environment": {
            "BEP_BACKEND": "aws",
            **STORAGE,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        # Computes users create are records; without BEP_COMPUTE_TEMPLATE the stack cannot build them.
        "records": backend.records,
        "template": None,
    }
    assert backend.orchestrator.args == (CONTROL_PLANE["BEP_STATE_MACHINE_ARN"],)
    assert orchestrator["computes"] is backend.computes and logs["computes"] is backend.computes
    assert backend.logs.args == ("/bep/jobs",)


def test_the_compute_template_tells_the_registry_what_created_computes_are_built_from(
    environment: pytest.MonkeyPatch,
) -> None:
    template = {
        "prefix": "BatchEndpoints",
        "subnets": ["subnet-1", "subnet-2"],
        "security_groups": ["sg-1"],
        "instance_role": "arn:aws:iam::123456789012:instance-profile/bep",
        "launch_templates": {"cpu": "lt-cpu", "gpu": "lt-gpu"},
        "runnable_timeout_s": 600,
    }
    set_variables(environment, {**STORAGE, **CONTROL_PLANE, "BEP_COMPUTE_TEMPLATE": json.dumps(template)})

    built = open_aws_backend().computes.kwargs["template"]

    assert built.resource_name("batch-cluster") == "BatchEndpoints-batch-cluster"
    assert built.subnets == ("subnet-1", "subnet-2") and built.launch_templates["gpu"] == "lt-gpu"
    assert (built.instance_role, built.runnable_timeout_s) == (template["instance_role"], 600)


def test_a_compute_template_without_networking_is_refused_naming_what_it_lacks(
    environment: pytest.MonkeyPatch,
) -> None:
    set_variables(environment, {**STORAGE, **CONTROL_PLANE, "BEP_COMPUTE_TEMPLATE": json.dumps({"prefix": "x"})})
    backend = open_aws_backend()

    with pytest.raises(ValidationError) as refused:
        backend.computes.list()

    assert refused.value.field == "BEP_COMPUTE_TEMPLATE" and "subnets" in str(refused.value)


def test_canceling_a_job_that_never_started_closes_it_through_the_same_backend_without_finalizing(
    environment: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_variables(environment, {**STORAGE, **CONTROL_PLANE})
    backend = open_aws_backend()
    closed: list[tuple[object, str, str]] = []
    monkeypatch.setattr(workflow, "mark_failed", lambda b, job_id, error: closed.append((b, job_id, error)))
    monkeypatch.setattr(workflow, "finalize_job", lambda b, job_id: pytest.fail("cancel must not finalize"))

    backend.orchestrator.kwargs["on_never_started"]("digits-123")

    assert closed == [(backend, "digits-123", NEVER_STARTED)]


def test_a_scoring_container_needs_only_the_table_and_the_bucket(environment: pytest.MonkeyPatch) -> None:
    set_variables(environment, STORAGE)

    backend = open_aws_backend()

    assert isinstance(backend.records, DynamoDbRecordStore) and isinstance(backend.blobs, S3BlobStore)
    assert backend.child_environment == {**STORAGE, "BEP_BACKEND": "aws"}
    with pytest.raises(ValidationError, match="BEP_STATE_MACHINE_ARN is not set") as caught:
        backend.orchestrator.start(None)
    assert caught.value.field == "BEP_STATE_MACHINE_ARN"
    with pytest.raises(ValidationError, match="BEP_COMPUTES is not set"):
        backend.computes.list()
    with pytest.raises(ValidationError, match="BEP_LOG_GROUP is not set"):
        backend.logs.read(None)


@pytest.mark.parametrize("missing", ["BEP_TABLE", "BEP_BUCKET"])
def test_a_missing_storage_variable_is_named(environment: pytest.MonkeyPatch, missing: str) -> None:
    set_variables(environment, {**STORAGE, **CONTROL_PLANE})
    environment.delenv(missing)

    with pytest.raises(ValidationError, match=f"environment variable {missing} is not set") as caught:
        open_aws_backend()

    assert caught.value.field == missing


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BEP_COMPUTES", "[{'name': 'cpu'}]", "BEP_COMPUTES is not valid JSON"),
        ("BEP_COMPUTES", '{"name": "cpu"}', "BEP_COMPUTES must be a JSON list"),
        ("BEP_IMAGES", '["cpu:latest"]', "BEP_IMAGES must be a JSON object"),
    ],
)
def test_malformed_json_settings_are_refused_when_opening(
    environment: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    set_variables(environment, {**STORAGE, **CONTROL_PLANE, variable: value})

    with pytest.raises(ValidationError, match=message) as caught:
        open_aws_backend()

    assert caught.value.field == variable


def test_an_unknown_backend_lists_the_known_ones(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("BEP_BACKEND", "azure")

    with pytest.raises(ValidationError, match="expected 'local' or 'aws'"):
        from_environment()
