"""Step Functions as the orchestrator: one Standard execution per job, named after the job.

The execution input carries ids and small numbers only (the contract with the state machine is documented in
`lambdas.workflow`); the Plan step reads everything else from the job record.

Cancel stops the execution and returns: a constant number of requests, whatever the job's size, because the API
that cancels has 29 seconds (API Gateway's integration timeout). Step Functions then terminates the Batch jobs its
`.sync` tasks are waiting on, and the runners, which poll the job record, stop starting mini-batches within a
second. A stopped execution runs no Catch and no further state, so the job is closed outside it: the stack's
EventBridge rule on the execution's end (ABORTED, FAILED or TIMED_OUT) invokes the workflow's `execution_ended`
step, which finalizes the CancelRequested job as Canceled (its summary and errors file, as the local job host
writes them). A job whose execution never started has nothing to stop and nothing to finalize: `cancel` calls the
`on_never_started` hook with the job id, which the backend wires to closing the record at once. The orchestrator
holds no backend of its own: the backend is built around it.

Resume starts a new execution of the same job, named `<job id>-resume-<n>`: its Plan keeps the job's plan, its
Batch jobs skip the mini-batches that have a result, and its Finalize merges. RedriveExecution would not do:
a failure the workflow catches ends in MarkFailed, and a redrive restarts only from the state that failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from batch_endpoints.adapters.aws.clients import aws_client
from batch_endpoints.errors import ValidationError
from batch_endpoints.ports import ComputeRegistry
from batch_endpoints.specs import Job

CANCEL_ERROR = "Canceled"


class StepFunctionsOrchestrator:
    def __init__(
        self,
        state_machine_arn: str,
        client: Any = None,
        *,
        computes: ComputeRegistry | None = None,
        on_never_started: Callable[[str], object] | None = None,
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self.computes = computes
        self.on_never_started = on_never_started
        """Called with the job id of a canceled job that has no execution to stop: close its record there."""
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or aws_client("stepfunctions")

    def execution_input(self, job: Job) -> dict[str, Any]:
        if self.computes is None:
            raise TypeError("StepFunctionsOrchestrator needs computes= (the compute registry) to start jobs")
        compute = self.computes.get(job.deployment.compute)
        queue = compute.details.get("job_queue") if compute else None
        if compute is None or not queue:
            raise ValidationError(
                f"compute {job.deployment.compute!r} has no job queue in this stack", field="deployment.compute"
            )
        if ":job-definition/" not in job.deployment.compute_handle:
            raise ValidationError(
                f"deployment {job.deployment_name!r} has no AWS Batch job definition; update it to register one",
                field="deployment",
            )
        return {
            "job_id": job.id,
            "instance_count": job.settings.instance_count,
            "compute": compute.kind,
            "job_queue": queue,
            "job_definition": job.deployment.compute_handle,
        }

    def start(self, job: Job) -> str:
        """Start the job's execution; starting a job that already has one returns that one (a retried invoke)."""
        return self._start_execution(job, job.id)

    def resume(self, job: Job) -> str:
        return self._start_execution(job, f"{job.id}-resume-{job.resumes}")

    def is_running(self, job: Job) -> bool:
        try:
            described = self.client.describe_execution(executionArn=job.execution or self.execution_arn(job.id))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            return False
        return bool(described["status"] == "RUNNING")

    def _start_execution(self, job: Job, name: str) -> str:
        # Execution names are unique per state machine for 90 days: the same name again is the same execution.
        try:
            response = self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=json.dumps(self.execution_input(job), separators=(",", ":")),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return self.execution_arn(name)
        return str(response["executionArn"])

    def cancel(self, job: Job) -> None:
        try:
            self.client.stop_execution(
                executionArn=job.execution or self.execution_arn(job.id),
                error=CANCEL_ERROR,
                cause=f"job {job.id} was canceled on request",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            # Never started (the invoke died between recording the job and starting it): no execution will end,
            # so no event will close the job, and it was never planned: nothing to count or merge.
            if self.on_never_started is not None:
                self.on_never_started(job.id)

    def execution_arn(self, name: str) -> str:
        """arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>"""
        head, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{head}:execution:{machine}:{name}"
