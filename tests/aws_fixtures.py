"""Fixtures for the cloud orchestration tests: AWS in this process (moto), and a backend on it.

The backend is the real cloud one (DynamoDB records, S3 blobs, AWS Batch job definitions, CloudWatch logs) with
the orchestrator chosen by each test. Batch runs no containers (`use_docker: False`): a submitted job succeeds at
once, which is all the log and compute tests need.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.computes import BatchComputeRegistry
from batch_endpoints.adapters.aws.logs import CloudWatchJobLogReader
from batch_endpoints.adapters.aws.records import DynamoDbRecordStore, table_definition
from batch_endpoints.backend import Backend
from batch_endpoints.ports import Orchestrator
from batch_endpoints.service import BatchEndpointService
from infra.layout import job_data_access
from tests.aws_limits import enforce_aws_limits, fail_on_steps_over_limit
from tests.core_fixtures import SCORING_SCRIPT, deployment_declaration, endpoint_declaration, write_tree

REGION = "us-east-1"
TABLE = "bep-records"
BUCKET = "bep-storage"
INPUT_BUCKET = "bep-inputs"
LOG_GROUP = "/bep/scoring"
IMAGES = {
    "cpu": "123456789012.dkr.ecr.us-east-1.amazonaws.com/bep-cpu:1",
    "gpu": "123456789012.dkr.ecr.us-east-1.amazonaws.com/bep-gpu:1",
}
RUNNER_ENVIRONMENT = {"BEP_BACKEND": "aws", "BEP_TABLE": TABLE, "BEP_BUCKET": BUCKET}
AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# What the stack sets when the deployer names the input bucket (context data_buckets), from the stack's own code:
# jobs may read uploads, data and outputs of the system's bucket, write its outputs, and use the input bucket.
DATA_ACCESS_ENVIRONMENT = job_data_access(BUCKET, [INPUT_BUCKET])
MOTO_CONFIG: Any = {"batch": {"use_docker": False}, "lambda": {"use_docker": False}}


@pytest.fixture(name="aws")
def aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """AWS in this process (moto), with fake credentials and no way to reach a real account, and the limits AWS
    enforces that moto does not (tests/aws_limits.py)."""
    for name, value in {**AWS_ENVIRONMENT, **DATA_ACCESS_ENVIRONMENT}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    ledger = enforce_aws_limits(monkeypatch)
    with mock_aws(config=MOTO_CONFIG):
        share_service_models()
        yield
    fail_on_steps_over_limit(ledger)


_SERVICE_MODELS = botocore.loaders.create_loader()


def share_service_models() -> None:
    """boto3's default session for this test (moto clears it as it starts), its credentials and region read afresh
    from the test's environment, on one loader for every test: each new session would otherwise read and parse
    the services' JSON models and endpoints again, most of a moto-backed test's setup."""
    session = botocore.session.Session()
    session.register_component("data_loader", _SERVICE_MODELS)
    boto3.setup_default_session(botocore_session=session)


def role_arn(name: str) -> str:
    trust = {"Version": "2012-10-17", "Statement": []}
    return boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def create_batch_computes() -> list[dict[str, Any]]:
    """A CPU and a GPU job queue, described as the stack describes its computes to the registry."""
    batch = boto3.client("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="bep-compute", type="UNMANAGED", serviceRole=role_arn("bep-batch-service")
    )["computeEnvironmentArn"]
    computes = []
    for kind, instance_types, vcpus, memory, gpus in (
        ("cpu", ["c6i", "m6i"], 2, 4096, 0),
        ("gpu", ["g5.xlarge"], 4, 15000, 1),
    ):
        queue = batch.create_job_queue(
            jobQueueName=f"bep-{kind}",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )["jobQueueArn"]
        computes.append(
            {
                "name": f"{kind}-cluster",
                "kind": kind,
                "job_queue": queue,
                "instance_types": instance_types,
                "max_vcpus": 256 if kind == "cpu" else 16,
                "vcpus": vcpus,
                "memory_mib": memory,
                "gpus": gpus,
            }
        )
    return computes


class Serialized:
    """A boto3 client whose calls run one at a time, as AWS applies each request atomically."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def aws_backend(orchestrator: Orchestrator) -> Backend:
    """The cloud backend on fresh moto resources; `orchestrator` is the test's."""
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    s3 = boto3.client("s3")
    for bucket in (BUCKET, INPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    computes = BatchComputeRegistry(
        create_batch_computes(),
        IMAGES,
        role_arn("bep-job"),
        LOG_GROUP,
        runner_environment=RUNNER_ENVIRONMENT,
    )
    return Backend(
        name="aws",
        # Serialized: moto checks a condition and writes without a lock; AWS applies each request atomically.
        records=DynamoDbRecordStore(TABLE, client=Serialized(boto3.client("dynamodb"))),
        blobs=S3BlobStore(BUCKET),
        orchestrator=orchestrator,
        computes=computes,
        logs=CloudWatchJobLogReader(LOG_GROUP, computes=computes),
        api_base_url="https://api.example.com/prod",
        child_environment=dict(RUNNER_ENVIRONMENT),
    )


def put_objects(bucket: str, objects: dict[str, bytes]) -> None:
    """Write many objects fast: straight into moto's S3, skipping the HTTP round trip of put_object
    (10,000 objects take 0.4 s this way and 17 s through the client)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key, body in objects.items():
        backend.put_object(bucket, key, body)


def ready(service: BatchEndpointService, tmp_path: Path, **settings: Any) -> BatchEndpointService:
    """Model digits:1 and endpoint `digits` with deployment `blue` (cpu-cluster) as its default."""
    code = write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT})
    model = write_tree(tmp_path / "model", {"weights.txt": "0.5\n"})
    service.register_model("digits", str(model))
    service.create_endpoint(endpoint_declaration("digits"))
    service.create_deployment(deployment_declaration(code, settings=settings), set_default=True)
    return service
