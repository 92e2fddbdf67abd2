"""The states of a pipeline job's execution: one definition for every pipeline, walking the job's DAG in rounds
over its record (batch_endpoints.pipeline_rounds; docs/concepts.md, "Pipeline deployments"):

    First round ─► Pick the ready steps (pipeline_round) ─► Is the job done? ─ yes ─► Job completed | failed | canceled
                          ▲                                      │ no
                          │                                      ▼
                          │       Run the round's steps (inline Map over $.round.steps, 40 at once)
                          │         └─ Command or parallel step?
                          │              ├─ command: Run the command step (batch:submitJob.sync)
                          │              └─ parallel: Run the parallel step's job (the model-job machine, .sync:2)
                          │              ├─► Record the step's end (pipeline_step_ended)
                          │              └─ Catch ─► Record the step's failure (pipeline_step_ended with the error)
                          └──────────────────────────────────────┘

The execution input is {"job_id": ...}. A round hands the Map each step's name, type and target (a command step's
job queue and job definition, a parallel step's child execution name and input): a few hundred bytes a step, at
most 40 steps, replaced each round ($.round), and every step's own result is dropped (ResultPath null), so the state
never grows with the pipeline or its history. No Catch ends the execution: a Lambda that still fails after its
retries fails it, and the execution_ended step closes the job, as it does for a stopped (canceled) execution.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.job_states import from_payload, job_outcome, lambda_step, retry_transient_batch_errors

# A command step runs once, as it does locally: a command may not be safe to run twice, and Azure's command jobs
# are not retried. SubmitJob's retryStrategy replaces the job definition's (whose 3 attempts are a parallel step's
# shards'), keeping one retry for what is never the command's fault: a Spot reclaim or a host that failed under it
# (status reason "Host EC2 (instance ...) terminated."). Conditions are evaluated in order, the first match wins,
# and a failure matching none would be retried (AWS Batch API reference, EvaluateOnExit): hence the catch-all EXIT.
COMMAND_STEP_RETRY_STRATEGY = {
    "Attempts": 2,
    "EvaluateOnExit": [
        {"OnStatusReason": "Host EC2*", "Action": "RETRY"},
        {"OnStatusReason": "*", "Action": "EXIT"},
    ],
}

# An inline Map runs up to 40 iterations at once (Step Functions, "Using Map state in Inline mode"); a round hands
# it no more (lambdas.workflow.handlers.INLINE_MAP_CONCURRENCY).
ROUND_CONCURRENCY = 40


@dataclass(frozen=True)
class PipelineStates:
    """The states of a pipeline job's execution, built in `scope`: the round's and the step end's functions, and
    the model-job state machine a parallel step's job runs on."""

    scope: Construct
    round_function: lambda_.IFunction
    step_ended_function: lambda_.IFunction
    model_jobs: sfn.IStateMachine

    def chain(self) -> sfn.IChainable:
        first = sfn.Pass(self.scope, "First round", result=sfn.Result.from_object({"round": 0}), result_path="$.round")
        pick = lambda_step(
            self.scope,
            "Pick the ready steps",
            self.round_function,
            payload={"job_id.$": "$.job_id", "round.$": "$.round.round"},
            result_path="$.round",
            result_selector=from_payload("round", "done", "status", "error", "steps"),
        )
        run_round = sfn.Map(
            self.scope,
            "Run the round's steps",
            items_path="$.round.steps",
            item_selector={"job_id.$": "$.job_id", "step.$": "$$.Map.Item.Value"},
            max_concurrency=ROUND_CONCURRENCY,
            result_path=sfn.JsonPath.DISCARD,
        )
        run_round.item_processor(self._run_step())
        done = (
            sfn.Choice(self.scope, "Is the job done?")
            .when(
                sfn.Condition.boolean_equals("$.round.done", True),
                job_outcome(self.scope, "How did the job end?", "$.round"),
            )
            .otherwise(run_round.next(pick))
        )
        return first.next(pick).next(done)

    def _run_step(self) -> sfn.IChainable:
        """One step of a round, its end recorded whatever happened."""
        step = {"job_id.$": "$.job_id", "step.$": "$.step.step"}
        recorded = lambda_step(
            self.scope, "Record the step's end", self.step_ended_function, payload=step, result_path="$.recorded"
        )
        failed = lambda_step(
            self.scope,
            "Record the step's failure",
            self.step_ended_function,
            payload={**step, "error.$": "$.error"},
            result_path="$.recorded",
        )
        command = self._command_step()
        parallel = tasks.StepFunctionsStartExecution(
            self.scope,
            "Run the parallel step's job",
            state_machine=self.model_jobs,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            name=sfn.JsonPath.string_at("$.step.execution_name"),
            input=sfn.TaskInput.from_json_path_at("$.step.execution_input"),
            result_path=sfn.JsonPath.DISCARD,
        )
        for task in (command, parallel):
            task.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.error")
        return (
            sfn.Choice(self.scope, "Command or parallel step?")
            .when(sfn.Condition.string_equals("$.step.type", "parallel"), parallel.next(recorded))
            .otherwise(command.next(recorded))
        )

    def _command_step(self) -> sfn.CustomState:
        """batch:submitJob.sync of the step's command: the image's entry point (python -m batch_container) told
        which job and step to run (batch_container.command_step). A custom state: CDK's BatchSubmitJob takes its
        queue and job definition as fixed ARNs, and these come from the round."""
        task = sfn.CustomState(
            self.scope,
            "Run the command step",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{cdk.Aws.PARTITION}:states:::batch:submitJob.sync",
                "Parameters": {
                    # <job id>-<step>: the step's child job's name, so the step shows by name in Batch.
                    "JobName.$": "$.step.job_name",
                    "JobQueue.$": "$.step.job_queue",
                    "JobDefinition.$": "$.step.job_definition",
                    "ContainerOverrides": {
                        "Command.$": "States.Array('--job-id', $.job_id, '--step', $.step.step)",
                    },
                    "RetryStrategy": COMMAND_STEP_RETRY_STRATEGY,
                },
                # Of the job's description (several KB), its id and status for the history. (A CustomState drops
                # a null ResultPath.)
                "ResultSelector": {"job_id.$": "$.JobId", "status.$": "$.Status"},
                "ResultPath": "$.batch_job",
            },
        )
        retry_transient_batch_errors(task)
        return task
