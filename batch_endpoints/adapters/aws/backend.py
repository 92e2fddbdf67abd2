"""The cloud backend: DynamoDB records, S3 blobs, Step Functions, AWS Batch and CloudWatch Logs.

Configured by environment variables, which the CDK stack sets on the Lambdas and the Batch job definitions:

    BEP_TABLE                DynamoDB table name (schema: records.table_definition)     every process
    BEP_BUCKET               S3 bucket of the system's own storage                         every process
    BEP_STATE_MACHINE_ARN    the job workflow                                              orchestrator
    BEP_PIPELINE_STATE_MACHINE_ARN  the pipeline jobs' workflow                            orchestrator
    BEP_COMPUTES             JSON list of computes: [{"name": "cpu-cluster", ...}, ...]    compute registry
    BEP_IMAGES               JSON {"cpu": image URI, "gpu": image URI}                     compute registry
    BEP_COMPUTE_TEMPLATE     optional JSON: what computes users create are built from       compute registry
                             (compute_environments.ComputeTemplate: prefix, subnets, security_groups,
                             instance_role, launch_templates {cpu, gpu}, runnable_timeout_s)
    BEP_JOB_ROLE_ARN         role the scoring containers run as                            compute registry
    BEP_EXECUTION_ROLE_ARN   optional: role that pulls images and ships logs (Fargate)     compute registry
    BEP_LOG_GROUP            log group of the scoring containers                           computes, logs
    BEP_API_URL              base URL of the HTTPS API (endpoints' scoring URIs)          API
    BEP_ALLOWED_INPUTS/OUTPUTS  storage prefixes jobs may read / write (batch_endpoints.data_access)  API
    BEP_SIMULATE_CALLER_POLICY  "true": check the caller's own S3 rights with IAM (caller_policy)     API

Records and blobs are all a scoring container needs, so only BEP_TABLE and BEP_BUCKET are required to open the
backend, and only they (with BEP_BACKEND, and AWS_REGION and AWS_DEFAULT_REGION: the region of the process that
registers the job definition) go into the containers' environment. The other ports are built on
first use: the container never imports them, and a process that uses one without its variables gets a
ValidationError naming the missing one.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable
from typing import Any

from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.records import DynamoDbRecordStore
from batch_endpoints.backend import BACKEND_VARIABLE, Backend
from batch_endpoints.errors import ValidationError

TABLE = "BEP_TABLE"
BUCKET = "BEP_BUCKET"
STATE_MACHINE_ARN = "BEP_STATE_MACHINE_ARN"
PIPELINE_STATE_MACHINE_ARN = "BEP_PIPELINE_STATE_MACHINE_ARN"
COMPUTES = "BEP_COMPUTES"
IMAGES = "BEP_IMAGES"
COMPUTE_TEMPLATE = "BEP_COMPUTE_TEMPLATE"
JOB_ROLE_ARN = "BEP_JOB_ROLE_ARN"
EXECUTION_ROLE_ARN = "BEP_EXECUTION_ROLE_ARN"
LOG_GROUP = "BEP_LOG_GROUP"
API_URL = "BEP_API_URL"
VARIABLES = (
    TABLE,
    BUCKET,
    STATE_MACHINE_ARN,
    PIPELINE_STATE_MACHINE_ARN,
    COMPUTES,
    IMAGES,
    COMPUTE_TEMPLATE,
    JOB_ROLE_ARN,
    EXECUTION_ROLE_ARN,
    LOG_GROUP,
    API_URL,
)
NEVER_STARTED = "canceled before its workflow execution started"


def open_aws_backend() -> Backend:
    settings = {name: os.environ[name] for name in VARIABLES if os.environ.get(name)}
    table = _required(settings, TABLE, "open the record table")
    bucket = _required(settings, BUCKET, "open storage")
    computes = _json(settings, COMPUTES, list)
    images = _json(settings, IMAGES, dict)
    runner_environment = {BACKEND_VARIABLE: "aws", TABLE: table, BUCKET: bucket, **_region()}

    def compute_registry() -> Any:
        purpose = "list computes and register deployments"
        for name in (COMPUTES, IMAGES, JOB_ROLE_ARN, LOG_GROUP):
            _required(settings, name, purpose)
        from batch_endpoints.adapters.aws.compute_environments import ComputeTemplate
        from batch_endpoints.adapters.aws.computes import BatchComputeRegistry

        template = _json(settings, COMPUTE_TEMPLATE, dict)
        return BatchComputeRegistry(
            computes,
            images,
            settings[JOB_ROLE_ARN],
            settings[LOG_GROUP],
            execution_role_arn=settings.get(EXECUTION_ROLE_ARN),
            runner_environment=runner_environment,
            records=backend.records,
            template=ComputeTemplate.from_settings(template) if template else None,
        )

    def orchestrator() -> Any:
        state_machine_arn = _required(settings, STATE_MACHINE_ARN, "start and cancel jobs")
        from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator

        # A stopped execution's job is closed by the workflow's execution_ended step; one that never started, here.
        return StepFunctionsOrchestrator(
            state_machine_arn,
            computes=backend.computes,
            pipeline_state_machine_arn=settings.get(PIPELINE_STATE_MACHINE_ARN),
            on_never_started=functools.partial(close_never_started, backend),
        )

    def log_reader() -> Any:
        log_group = _required(settings, LOG_GROUP, "read jobs' logs")
        from batch_endpoints.adapters.aws.logs import CloudWatchJobLogReader

        return CloudWatchJobLogReader(log_group, computes=backend.computes)

    backend = Backend(
        name="aws",
        records=DynamoDbRecordStore(table),
        blobs=S3BlobStore(bucket),
        orchestrator=BuiltOnFirstUse(orchestrator),
        computes=BuiltOnFirstUse(compute_registry),
        logs=BuiltOnFirstUse(log_reader),
        api_base_url=settings.get(API_URL, "").rstrip("/"),
        child_environment={**settings, BACKEND_VARIABLE: "aws"},
        caller_permissions=_caller_permissions(),
    )
    return backend


def close_never_started(backend: Backend, job_id: str) -> Any:
    """Close a canceled job that no execution runs: it was never planned, so there is nothing to count or merge,
    and the record is all there is to close (one update)."""
    from batch_endpoints import workflow

    return workflow.mark_failed(backend, job_id, NEVER_STARTED)


class BuiltOnFirstUse:
    """Stands for a port whose adapter is built when one of its attributes is first looked up."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._port: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        with self._lock:
            if self._port is None:
                self._port = self._build()
        return getattr(self._port, name)


def _region() -> dict[str, str]:
    """The registering process's region for the containers: boto3 does not read it from instance metadata (and
    the launch templates keep containers away from IMDS), and not every ECS agent injects it."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region} if region else {}


def _caller_permissions() -> Any:
    from batch_endpoints.adapters.aws import caller_policy

    if os.environ.get(caller_policy.SETTING, "").lower() in ("1", "true", "yes"):
        return caller_policy.IamPolicySimulation()
    return None


def _required(settings: dict[str, str], name: str, purpose: str) -> str:
    value = settings.get(name)
    if not value:
        raise ValidationError(
            f"the environment variable {name} is not set; the aws backend needs it to {purpose}", field=name
        )
    return value


def _json(settings: dict[str, str], name: str, kind: type) -> Any:
    if name not in settings:
        return kind()
    try:
        value = json.loads(settings[name])
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{name} is not valid JSON: {exc}", field=name) from None
    if not isinstance(value, kind):
        raise ValidationError(f"{name} must be a JSON {'list' if kind is list else 'object'}", field=name)
    return value
