"""Fixtures for the infrastructure tests: the synthesized stack, its state machine as JSON, and moto set up to
execute that state machine against the real workflow Lambdas and the real scoring runner.

Synthesis is offline and fast: the context is cdk.json's (the feature flags a deploy uses), and asset bundling
is switched off the way CDK supports (`aws:cdk:bundling-stacks` = []), so the Lambda asset is staged by its
source hash without running pip. tests/test_infra_bundling.py builds the bundle for real.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime
import functools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws_limits import (
    RequestLedger,
    batch_attempt,
    enforce_aws_limits,
    fail_on_steps_over_limit,
    lambda_payload_error,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = "BatchEndpoints"
REGION = "us-east-1"
ACCOUNT = "123456789012"
OPTIONS = {
    "spot": "true",
    "nat_gateways": "1",
    "versioned_bucket": "true",
    "scratch_expiry_days": "7",
    "data_buckets": "user-images,user-outputs",
    "scoped_invokers": "digits,fraud-v2",
    "simulate_caller_policy": "true",
    "alarm_email": "ops@example.com",
    "cpu_instance_types": "c7i,m7i.2xlarge",
    "cpu_max_vcpus": "64",
}
"""Every context setting away from its default, as a deployer might pass them with -c (strings): one more
synthesis that the tests of each setting share."""
# The banner jsii prints on every start under Node 20 says nothing about this project.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


# ------------------------------------------------------------------------------------------------ synthesis


@dataclass(frozen=True)
class Synthesis:
    template: dict[str, Any]
    report: dict[str, Any]
    """cdk-nag's findings (CDK's policy validation report): pluginReports[].violations."""
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """{logical id: Properties} of every resource of a type."""
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def violations(self) -> list[tuple[str, str]]:
        """(construct path, finding) of every unacknowledged cdk-nag finding."""
        return violations(self.report)


def synthesize(**context: Any) -> Synthesis:
    """The app as app.py builds it (cdk-nag included), with cdk.json's context plus `context`. Cached per context:
    a synthesis takes about 10 s, and the test modules share them."""
    return _synthesize(json.dumps(context, sort_keys=True))


@functools.cache
def _synthesize(context_json: str) -> Synthesis:
    import aws_cdk as cdk

    from infra.nag import check_and_acknowledge
    from infra.settings import StackSettings
    from infra.stack import BatchEndpointsStack

    app = cdk.App(outdir=str(scratch_folder("bep-cdk-out-")), context=cdk_context(**json.loads(context_json)))
    outdir = Path(app.outdir)
    stack = BatchEndpointsStack(app, STACK_NAME, settings=StackSettings.from_context(app.node))
    check_and_acknowledge(app, stack)
    synthesize_app(app)
    template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    return Synthesis(template, validation_report(outdir), outdir)


def cdk_context(**context: Any) -> dict[str, Any]:
    """cdk.json's context (the feature flags), bundling off, and `context`."""
    return {
        **json.loads((REPOSITORY_ROOT / "cdk.json").read_text())["context"],
        "aws:cdk:bundling-stacks": [],
        **context,
    }


def scratch_folder(prefix: str) -> Path:
    """A folder that lives as long as the test session (synthesized assemblies are shared between modules)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def synthesize_app(app: Any) -> None:
    try:
        app.synth()
    except RuntimeError as error:
        # Unacknowledged findings fail the synthesis after the templates and the report are written.
        if "ValidationFailed" not in str(error):
            raise


def validation_report(outdir: Path) -> dict[str, Any]:
    report = outdir / "validation-report.json"
    return json.loads(report.read_text()) if report.exists() else {}


def violations(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(construct path, finding) of every unacknowledged finding of a policy validation report."""
    return [
        (construct["constructPath"], violation["ruleName"])
        for plugin in report.get("pluginReports", [])
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]


def role_statements(synthesis: Synthesis, role_prefix: str) -> list[dict[str, Any]]:
    """Every IAM statement granted to the roles whose logical id starts with role_prefix."""
    return [
        statement
        for policy in synthesis.resources("AWS::IAM::Policy").values()
        if any(r["Ref"].startswith(role_prefix) for r in policy.get("Roles", []))
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def listed(value: Any) -> list[Any]:
    """A policy field as a list: IAM allows one value or a list."""
    return value if isinstance(value, list) else [value]


def resolve(value: Any, references: Mapping[str, str]) -> Any:
    """A template value with Fn::Join, Ref and Fn::GetAtt replaced by strings: `references` maps a Ref's
    name (or "<logical id>.<attribute>" for GetAtt) to its placeholder."""
    if isinstance(value, list):
        return [resolve(item, references) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, references)) for part in parts)
    if "Ref" in value:
        return references[value["Ref"]]
    if "Fn::GetAtt" in value:
        return references[".".join(value["Fn::GetAtt"])]
    return {key: resolve(item, references) for key, item in value.items()}


def readable(value: Any) -> str:
    """A template value as a string: pseudo parameters and attributes in angle brackets (<AWS::Partition>)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(readable(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"


MODEL_JOBS_MACHINE = "bep-jobs"
"""The name the executed tests give the model-job state machine, which the pipeline machine's definition names."""


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


def state_machine_definition(
    synthesis: Synthesis, construct: str = "Workflow"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition of the state machine of construct `construct` (the job workflow's, or "Pipelines") as JSON,
    with placeholder ARNs (the model-job machine's is MODEL_JOBS_MACHINE's), and {handler: function ARN} of the
    stack's functions."""
    machines = synthesis.resources("AWS::StepFunctions::StateMachine")
    (properties,) = (props for logical_id, props in machines.items() if logical_id.startswith(construct))
    functions = synthesis.resources("AWS::Lambda::Function")
    references = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    references |= {f"{logical_id}.Arn": function_arn(logical_id) for logical_id in functions}
    references |= {logical_id: state_machine_arn(MODEL_JOBS_MACHINE) for logical_id in machines}
    # The record table, where the state machine records why a shard failed: the tests' table (aws_fixtures.TABLE).
    references |= {logical_id: "bep-records" for logical_id in synthesis.resources("AWS::DynamoDB::Table")}
    definition = json.loads(resolve(properties["DefinitionString"], references))
    handlers = {props["Handler"]: function_arn(logical_id) for logical_id, props in functions.items()}
    return definition, handlers


# ------------------------------------------------------------------------------------------ executing moto
#
# moto 5.2.1 (pinned) executes state machines with a port of LocalStack's interpreter. Its gaps, filled here:
#
# 1. StateTaskService._normalise_parameters and _normalise_response are left empty in the port, so optimized
#    integrations such as batch:submitJob.sync get PascalCase parameters (JobName) where boto3 wants camelCase
#    (jobName), and hand camelCase responses (jobId) to states that read PascalCase ($.JobId). Filled from
#    botocore's service model as LocalStack does. Datetimes in responses (which later break describe_execution's
#    JSON) become ISO strings.
# 2. A Lambda task only reaches moto's Lambda, which without Docker answers with its input. Tasks are routed to
#    the project's handlers, by function ARN, in this process.
# 3. Without Docker, moto's Batch marks every job SUCCEEDED at submit. Jobs are routed to a function of the
#    test (the real runner), and fail when it raises, as a container that exits non-zero does.
# 4. StartExecution deep-copies the state machine, and with it every earlier execution, whose interpreter holds
#    locks once it has run a Distributed Map: the second execution of the machine (a resumed job's) fails with
#    "cannot pickle '_thread.RLock'"; so does an execution that a running execution starts (a pipeline's
#    parallel step), through the machine's backend, which holds a lock. The copy shares the earlier executions
#    and the backend instead.
# 5. A Distributed Map's child execution costs moto tens of milliseconds, mostly in two places: each service task
#    makes a boto3 client of its own (a service model read and an SSL context), and every request takes moto's
#    global backend lock to look up the account's backend, which a thousand child executions at once queue on.
#    Tasks share one client per region and service (as Step Functions holds its connections), and an account's
#    backend that exists is found without the lock. Each JSONPath is parsed once (jsonpath_ng builds its parser
#    anew for every parse). What is sent and received is unchanged.
# 6. moto's Batch DescribeJobs iterates its jobs while other threads submit more, and fails with "dictionary
#    changed size during iteration" (a States.Runtime error in the task) once thousands of child executions run
#    at once. The jobs are iterated over a copy, as AWS's reads see one state.

EXECUTING_MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "batch": {"use_docker": False},
    "lambda": {"use_docker": False},
}
LAMBDA_CONTEXT = SimpleNamespace(
    function_name="bep-workflow",
    memory_limit_in_mb=1024,
    invoked_function_arn=function_arn("Workflow"),
    aws_request_id="request-1",
)


@functools.cache
def _operation_model(service: str, action: str) -> Any:
    import botocore.session
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = botocore.session.get_session().get_service_model(service)
    names = {camel_to_snake_case(name): name for name in model.operation_names}
    return model.operation_model(names[camel_to_snake_case(action)])


def _normalise_parameters(
    self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    operation = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    operation = _operation_model(
        self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
    )
    if operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)
    _dates_to_text(response)


def _copy_state_machine(state_machine: Any) -> Any:
    shared = [state_machine.executions, getattr(state_machine, "backend", None)]
    return copy.deepcopy(state_machine, {id(value): value for value in shared})


_TASK_CLIENT_MODULES = [
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
]


def _share_task_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    lock = threading.Lock()

    @functools.cache
    def client_for(region: str, service: str) -> Any:
        with lock:  # boto3's default session makes one client at a time safely
            return boto_client_for(region, service)

    def shared_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        return client_for(region, service)

    for module in _TASK_CLIENT_MODULES:
        monkeypatch.setattr(importlib.import_module(module), "boto_client_for", shared_client_for)


_JSON_PATH_MODULES = [
    "moto.stepfunctions.parser.asl.utils.json_path",
    "moto.stepfunctions.parser.asl.component.common.path.result_path",
]


def _parse_json_paths_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    for name in _JSON_PATH_MODULES:
        module = importlib.import_module(name)
        monkeypatch.setattr(module, "parse", functools.cache(module.parse))


def _find_backends_without_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.base_backend import BackendDict

    create = BackendDict._create_account_specific_backend

    def create_when_missing(backends: Any, account_id: str) -> None:
        if account_id not in backends:  # a dict lookup: atomic; the lock is for creating it
            create(backends, account_id)

    monkeypatch.setattr(BackendDict, "_create_account_specific_backend", create_when_missing)


def _dates_to_text(value: Any) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if isinstance(item, datetime.datetime | datetime.date):
            value[key] = item.isoformat()
        else:
            _dates_to_text(item)


LambdaHandler = Callable[[dict[str, Any], Any], Any]
BatchJobRunner = Callable[[dict[str, str]], None]
"""Runs one attempt of a Batch job, given what the container's entry point is told (`container_options`); raising
fails the attempt."""
# The status reasons AWS Batch gives an attempt: its container exited, the instance under it went away (a Spot
# reclaim), it ran past its timeout.
CONTAINER_EXITED = "Essential container in task exited"
HOST_TERMINATED = "Host EC2 (instance i-0123456789abcdef0) terminated."
ATTEMPT_TIMED_OUT = "Job attempt duration exceeded timeout"
# The container's exit code when the runner fails a shard, and when Batch kills it (SIGKILL).
RUNNER_FAILED_EXIT_CODE = 1
KILLED_EXIT_CODE = 137


class HostTerminated(Exception):
    """Raised by a test's runner: the instance under the attempt went away (a Spot reclaim)."""


class ContainerExited(Exception):
    """Raised by a test's runner: the container's command exited with `code` (not 0)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the container's command exited with code {code}")
        self.code = code


def run_attempt(
    run: BatchJobRunner, parameters: dict[str, str], seconds: float | None
) -> tuple[str | None, int | None]:
    """One attempt of a Batch job in this thread, stopped at its timeout: (None, 0) when its container exited
    well, else Batch's status reason and the container's exit code (None when the host went away)."""
    with batch_attempt(seconds) as attempt:
        try:
            run(parameters)
        except HostTerminated:
            return HOST_TERMINATED, None
        except ContainerExited as exited:
            return CONTAINER_EXITED, exited.code
        except BaseException as exc:  # the timeout's StepCutOff among them, as the runner let it out
            if attempt.timed_out:
                return ATTEMPT_TIMED_OUT, KILLED_EXIT_CODE
            if not isinstance(exc, Exception):
                raise
            return f"{CONTAINER_EXITED}: {exc}", RUNNER_FAILED_EXIT_CODE
    if attempt.timed_out:  # the runner caught its StepCutOff: the SIGKILL would not have let it finish
        return ATTEMPT_TIMED_OUT, KILLED_EXIT_CODE
    return None, 0


def retried(strategy: Mapping[str, Any], reason: str, exit_code: int | None) -> bool:
    """Whether Batch retries an attempt that failed so, attempts left (RetryStrategy.evaluateOnExit): the first
    condition whose patterns all match decides; a failure matching none is retried. Patterns match from the
    start, a trailing * matching any rest. An attempt stopped at its timeout is never retried."""
    if reason == ATTEMPT_TIMED_OUT:
        return False
    values = {"onStatusReason": reason, "onReason": "", "onExitCode": "" if exit_code is None else str(exit_code)}
    for condition in strategy.get("evaluateOnExit") or []:
        patterns = {name: pattern for name, pattern in condition.items() if name in values}
        if all(_matches(values[name], pattern) for name, pattern in patterns.items()):
            return condition["action"].upper() == "RETRY"
    return True


def _matches(value: str, pattern: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


@pytest.fixture
def executing_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, executing state machines, with the service-task hooks filled (see above) and the limits AWS enforces
    that moto does not (tests/aws_limits.py)."""
    with executing_moto(monkeypatch) as ledger:
        yield
    fail_on_steps_over_limit(ledger)


@contextlib.contextmanager
def executing_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[RequestLedger]:
    """`executing_aws` outside a test (the benchmarks use it): undone when `monkeypatch` is. Yields the ledger of
    the AWS requests made in it, by step."""
    from moto import mock_aws
    from moto.stepfunctions.parser import models as stepfunctions_parser
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    from tests.aws_fixtures import AWS_ENVIRONMENT, DATA_ACCESS_ENVIRONMENT, share_service_models

    for name, value in {**AWS_ENVIRONMENT, **DATA_ACCESS_ENVIRONMENT}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(StateTaskService, "_normalise_parameters", _normalise_parameters)
    monkeypatch.setattr(StateTaskService, "_normalise_response", _normalise_response)
    monkeypatch.setattr(stepfunctions_parser, "copy", SimpleNamespace(deepcopy=_copy_state_machine))
    _share_task_clients(monkeypatch)
    _find_backends_without_lock(monkeypatch)
    _parse_json_paths_once(monkeypatch)
    ledger = enforce_aws_limits(monkeypatch)
    with mock_aws(config=EXECUTING_MOTO_CONFIG):
        share_service_models()
        yield ledger


def route_lambda_tasks(monkeypatch: pytest.MonkeyPatch, handlers: Mapping[str, LambdaHandler]) -> None:
    """Lambda tasks call `handlers[function ARN]` in this process; an exception becomes the function error
    Lambda reports (errorType, errorMessage), which Retry and Catch match by errorType."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    def invoke(parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
        handler = handlers[parameters["FunctionName"]]
        request = parameters.get("Payload") or b"{}"
        if too_big := lambda_payload_error("request", request):
            error = {"Code": "RequestEntityTooLargeException", "Message": too_big}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 413}}, "Invoke")
        try:
            # Through JSON both ways, as Lambda does.
            response = json.dumps(handler(json.loads(request), LAMBDA_CONTEXT))
        except Exception as exc:
            return _function_error(type(exc).__name__, str(exc))
        if too_big := lambda_payload_error("response", response):
            return _function_error("Function.ResponseSizeTooLarge", too_big)
        return {"StatusCode": 200, "Payload": json.loads(response), "ExecutedVersion": "$LATEST"}

    monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", invoke)


def _function_error(error_type: str, message: str) -> dict[str, Any]:
    error = {"errorMessage": message, "errorType": error_type, "stackTrace": []}
    return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": error}


class _ItemsCopied(dict):
    def items(self) -> Any:
        return list(super().items())  # copied in one step: no other thread runs in the middle of it


def container_options(job: Any) -> dict[str, str]:
    """The options a moto Batch job's container is started with, {"job_id": J, "shard": S} for `--job-id J --shard
    S`: the submission's command (ContainerOverrides) if it has one, else the job definition's, with its Ref::
    placeholders filled from the job's parameters, as Batch fills them."""
    parameters = dict(job.parameters)
    words = [
        parameters.get(word.removeprefix("Ref::"), word) if word.startswith("Ref::") else word
        for word in job._get_container_property("command", [])
    ]
    return {
        name.removeprefix("--").replace("-", "_"): value for name, value in zip(words[::2], words[1::2], strict=True)
    }


def route_batch_jobs(monkeypatch: pytest.MonkeyPatch, run: BatchJobRunner) -> list[dict[str, Any]]:
    """Submitted Batch jobs run `run(parameters)` at submit, in the submitting thread, as AWS Batch runs them: each
    attempt stopped at its timeout (attemptDurationSeconds, of the submission or the job definition), a failed
    attempt retried as the submission's retryStrategy says, else the job definition's, up to its attempts. Returns
    the attempts run so far ({name, parameters, options, attempt, succeeded, reason})."""
    from moto.batch.responses import BatchResponse
    from moto.batch_simple.models import BatchSimpleBackend

    jobs: list[dict[str, Any]] = []
    # moto drops SubmitJob's retryStrategy; the job runs within the request, in the submitting thread.
    submitted = threading.local()
    submit = BatchResponse.submitjob

    def submit_job(self: Any) -> str:
        submitted.retry_strategy = self._get_param("retryStrategy")
        try:
            return submit(self)
        finally:
            submitted.retry_strategy = None

    monkeypatch.setattr(BatchResponse, "submitjob", submit_job)

    replacing = threading.Lock()

    def mark_job_as_finished(self: Any, include_start_attempt: bool, job: Any) -> None:
        with replacing:
            if not isinstance(self.backend._jobs, _ItemsCopied):
                self.backend._jobs = _ItemsCopied(self.backend._jobs)
        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.datetime.now()
        job.log_stream_name = job._stream_name
        strategy = getattr(submitted, "retry_strategy", None) or job.job_definition.retry_strategy or {}
        attempts = int(strategy.get("attempts") or 1)
        for number in range(1, attempts + 1):
            if include_start_attempt or number > 1:
                job._start_attempt()
            reason, exit_code = run_attempt(run, container_options(job), job._get_attempt_duration())
            if job.latest_attempt is not None:
                job.latest_attempt["container"]["exitCode"] = exit_code
                job.latest_attempt["statusReason"] = reason or ""
            jobs.append(
                {
                    "name": job.job_name,
                    "parameters": dict(job.parameters),
                    "options": container_options(job),
                    "attempt": number,
                    "succeeded": reason is None,
                    "reason": reason,
                }
            )
            if reason is None or number == attempts or not retried(strategy, reason, exit_code):
                break
            job.job_stopped_at = datetime.datetime.now()
            job._stop_attempt()
        job.job_stopped_reason = reason
        job._mark_stopped(success=reason is None)

    monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", mark_job_as_finished)
    return jobs
