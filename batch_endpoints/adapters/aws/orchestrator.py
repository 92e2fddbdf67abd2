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

A pipeline job runs on a second state machine, the same for every pipeline (infra/pipeline_states.py), whose
input is the job id alone: it walks the job's steps in rounds over its record. Start, resume and cancel work on it
as on a model job's; a parallel step's own job runs on the model-job state machine, started by the pipeline's
execution (`step_target`).
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
from batch_endpoints.specs import Job, StepRun

CANCEL_ERROR = "Canceled"


class StepFunctionsOrchestrator:
    def __init__(
        self,
        state_machine_arn: str,
        client: Any = None,
        *,
        computes: ComputeRegistry | None = None,
        pipeline_state_machine_arn: str | None = None,
        on_never_started: Callable[[str], object] | None = None,
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self.pipeline_state_machine_arn = pipeline_state_machine_arn
        self.computes = computes
        self.on_never_started = on_never_started
        """Called with the job id of a canceled job that has no execution to stop: close its record there."""
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or aws_client("stepfunctions")

    def execution_input(self, job: Job) -> dict[str, Any]:
        if job.pipeline is not None:
            # The pipeline's machine reads everything else from the job's record, round by round.
            return {"job_id": job.id}
        target = self.batch_target(job.deployment.compute, job.deployment.compute_handle, job.deployment_name)
        return {
            "job_id": job.id,
            "instance_count": job.settings.instance_count,
            "compute": target.pop("compute"),
            **target,
        }

    def batch_target(self, compute_name: str, job_definition: str, deployment_name: str) -> dict[str, str]:
        """Where a job's Batch jobs go: {"compute": kind, "job_queue", "job_definition"}."""
        if self.computes is None:
            raise TypeError("StepFunctionsOrchestrator needs computes= (the compute registry) to start jobs")
        compute = self.computes.get(compute_name)
        queue = compute.details.get("job_queue") if compute else None
        if compute is None or not queue:
            raise ValidationError(
                f"compute {compute_name!r} has no job queue in this stack", field="deployment.compute"
            )
        if ":job-definition/" not in job_definition:
            raise ValidationError(
                f"deployment {deployment_name!r} has no AWS Batch job definition; update it to register one",
                field="deployment",
            )
        return {"compute": compute.kind, "job_queue": str(queue), "job_definition": job_definition}

    def step_target(self, parent: Job, run: StepRun, *, compute: str, child: Job | None) -> dict[str, Any]:
        """What the pipeline machine's Map needs to run one step of a round, besides its name and type: a
        command step's Batch job queue (its compute's) and job definition (its environment's revision of the
        pipeline deployment's, registered at deployment create, else the deployment's own); a parallel
        step's child execution of this (the model-job) machine for its job `child`, named as `start` or `resume`
        names it, with its execution input."""
        if child is None:
            definition = parent.deployment.step_handles.get(run.step, parent.deployment.compute_handle)
            target = self.batch_target(compute, definition, parent.deployment_name)
            return {"job_queue": target["job_queue"], "job_definition": target["job_definition"]}
        return {"execution_name": self.execution_name(child), "execution_input": self.execution_input(child)}

    @staticmethod
    def execution_name(job: Job) -> str:
        """A job's execution of the moment: named after the job, then `<job id>-resume-<n>` for its n-th resume."""
        return f"{job.id}-resume-{job.resumes}" if job.resumes else job.id

    def start(self, job: Job) -> str:
        """Start the job's execution; starting a job that already has one returns that one (a retried invoke)."""
        return self._start_execution(job, job.id)

    def resume(self, job: Job) -> str:
        return self._start_execution(job, self.execution_name(job))

    def is_running(self, job: Job) -> bool:
        try:
            described = self.client.describe_execution(executionArn=job.execution or self.execution_arn(job.id, job))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            return False
        return bool(described["status"] == "RUNNING")

    def _start_execution(self, job: Job, name: str) -> str:
        # Execution names are unique per state machine for 90 days: the same name again is the same execution.
        try:
            response = self.client.start_execution(
                stateMachineArn=self._state_machine_of(job),
                name=name,
                input=json.dumps(self.execution_input(job), separators=(",", ":")),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return self.execution_arn(name, job)
        return str(response["executionArn"])

    def cancel(self, job: Job) -> None:
        try:
            self.client.stop_execution(
                executionArn=job.execution or self.execution_arn(job.id, job),
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

    def execution_arn(self, name: str, job: Job | None = None) -> str:
        """arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>, of the
        machine that runs `job` (a model job's without one)."""
        head, _, machine = (self._state_machine_of(job) if job else self.state_machine_arn).rpartition(":stateMachine:")
        return f"{head}:execution:{machine}:{name}"

    def _state_machine_of(self, job: Job) -> str:
        if job.pipeline is None:
            return self.state_machine_arn
        if not self.pipeline_state_machine_arn:
            raise ValidationError(
                "this stack has no pipeline state machine (BEP_PIPELINE_STATE_MACHINE_ARN): it cannot run pipeline "
                "jobs; deploy the stack again",
                field="deployment",
            )
        return self.pipeline_state_machine_arn
