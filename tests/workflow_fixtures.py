"""The synthesized job workflow deployed on moto that executes it: the state machine from the CDK template, its
Lambda tasks routed to the real workflow handlers, its Batch jobs running the real scoring runner, all on moto's
S3 and DynamoDB. Used by tests/test_infra_workflow_executed.py and by bench/cloud_cost.py.

Needs `executing_moto` (tests/infra_fixtures.py) around it.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_container.command_step import run_command_step
from batch_container.runner import ShardRunner
from batch_endpoints.adapters.aws.backend import STATE_MACHINE_ARN
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.backend import Backend
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import InvokeOverrides, Job
from lambdas.workflow import handlers
from tests.aws_fixtures import aws_backend, role_arn
from tests.aws_limits import step as aws_step
from tests.core_fixtures import RecordingOrchestrator, deployment_declaration, endpoint_declaration, write_tree
from tests.infra_fixtures import (
    MODEL_JOBS_MACHINE,
    ContainerExited,
    LambdaHandler,
    route_batch_jobs,
    route_lambda_tasks,
)

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
Step = Callable[[str], contextlib.AbstractContextManager[Any]]
"""Wraps each workflow step as it runs: called with "plan", "finalize", "mark_failed", "pipeline_round",
"pipeline_step_ended" or "batch job"."""


@dataclass
class Deployed:
    service: BatchEndpointService
    backend: Backend
    state_machine_arn: str
    batch_jobs: list[dict[str, Any]]
    pipelines_arn: str | None = None

    def ready(self, tmp_path: Path, scoring_script: str, **settings: Any) -> None:
        """Model digits:1 and endpoint digits, whose default deployment blue runs `scoring_script` on cpu-cluster,
        in mini-batches of 3 on 2 instances unless `settings` say otherwise."""
        code = write_tree(tmp_path / "code", {"score.py": scoring_script})
        model = write_tree(tmp_path / "model", {"offset.txt": "1000"})
        self.service.register_model("digits", str(model))
        self.service.create_endpoint(endpoint_declaration("digits"))
        settings = {"mini_batch_size": 3, "instance_count": 2, "retry_settings": {"max_retries": 0}, **settings}
        self.service.create_deployment(deployment_declaration(code, settings=settings), set_default=True)

    def run_job(self, input_uri: str) -> tuple[Job, dict[str, Any]]:
        """Invoke (the execution starts at once), wait for the execution to end: the job record and the execution."""
        job = self.service.invoke(self.invocation(input_uri))
        execution = self.wait(job.execution or "")
        return self.service.get_job(job.id), execution

    @staticmethod
    def invocation(input_uri: str) -> InvokeRequest:
        return InvokeRequest(endpoint_name="digits", input=input_uri, overrides=InvokeOverrides())

    @staticmethod
    def wait(execution_arn: str, timeout_s: float = 90) -> dict[str, Any]:
        client = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while True:
            execution = client.describe_execution(executionArn=execution_arn)
            if execution["status"] in FINAL or time.monotonic() > deadline:
                return execution
            time.sleep(0.1)

    def map_run_items(self, execution_arn: str) -> dict[str, int]:
        """The Distributed Map run's item counts (its child executions' states are not in the parent's history)."""
        client = boto3.client("stepfunctions")
        (run,) = client.list_map_runs(executionArn=execution_arn)["mapRuns"]
        return client.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]

    @staticmethod
    def history(execution_arn: str) -> list[dict[str, Any]]:
        return boto3.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]

    def states_entered(self, execution_arn: str) -> list[str]:
        events = self.history(execution_arn)
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


@contextlib.contextmanager
def _no_wrapping(step: str) -> Iterator[None]:
    yield


def deploy_workflow(
    monkeypatch: pytest.MonkeyPatch,
    definition: dict[str, Any],
    functions: dict[str, str],
    *,
    around: Step = _no_wrapping,
    pipelines: dict[str, Any] | None = None,
) -> Deployed:
    """The state machine `definition` (from `state_machine_definition`) created on moto, and the pipeline jobs'
    state machine `pipelines` if given, their Lambda tasks calling the workflow handlers and their Batch jobs
    running the scoring runner (or a pipeline's command step) in this process. Undone with `monkeypatch`, except
    the handlers' backend: `handlers.set_backend(None)` when done."""
    backend = aws_backend(RecordingOrchestrator())
    client = boto3.client("stepfunctions")
    arn = client.create_state_machine(
        name=MODEL_JOBS_MACHINE, definition=json.dumps(definition), roleArn=role_arn("bep-workflow")
    )["stateMachineArn"]
    pipelines_arn = None
    if pipelines is not None:
        pipelines_arn = client.create_state_machine(
            name="bep-pipelines", definition=json.dumps(pipelines), roleArn=role_arn("bep-pipelines")
        )["stateMachineArn"]
    backend.orchestrator = StepFunctionsOrchestrator(
        arn, computes=backend.computes, pipeline_state_machine_arn=pipelines_arn
    )
    handlers.set_backend(backend)
    # The pipeline round's Lambda names the model-job state machine's executions of parallel steps.
    monkeypatch.setenv(STATE_MACHINE_ARN, arn)

    def step(name: str, handler: LambdaHandler) -> LambdaHandler:
        def run(event: dict[str, Any], context: Any) -> Any:
            with aws_step(name), around(name):
                return handler(event, context)

        return run

    route_lambda_tasks(
        monkeypatch,
        {
            functions["lambdas.workflow.handlers.plan"]: step("plan", handlers.plan),
            functions["lambdas.workflow.handlers.finalize"]: step("finalize", handlers.finalize),
            functions["lambdas.workflow.handlers.mark_failed"]: step("mark_failed", handlers.mark_failed),
            functions["lambdas.workflow.handlers.pipeline_round"]: step("pipeline_round", handlers.pipeline_round),
            functions["lambdas.workflow.handlers.pipeline_step_ended"]: step(
                "pipeline_step_ended", handlers.pipeline_step_ended
            ),
        },
    )

    def run_container(options: dict[str, str]) -> None:
        """What the container's `python -m batch_container` does: `--job-id J --shard S` (the job definition's
        command) scores a shard, `--job-id J --step S` (a pipeline round's) runs a command step."""
        with aws_step("batch job"), around("batch job"):
            if "step" in options:
                with tempfile.TemporaryDirectory(prefix="bep-step-") as folder:
                    code = run_command_step(backend, options["job_id"], options["step"], folder=folder)
                if code != 0:
                    raise ContainerExited(code)
                return
            with ShardRunner(backend.records, backend.blobs, options["job_id"]) as runner:
                runner.run_shard(runner.load_shard(options["shard"]))

    batch_jobs = route_batch_jobs(monkeypatch, run_container)
    return Deployed(BatchEndpointService(backend), backend, arn, batch_jobs, pipelines_arn)
