"""The job workflow's states: plan a job, score its shards on AWS Batch, and finalize it (the state machine that
runs them is infra/workflow.py's).

The contract it implements (execution input, each step's event and result, the Map's items) is the docstring of
`lambdas.workflow`. In short:

    Plan mini-batches and shards ◄─ no ─ Input listed? (a window of the listing at a time)
       │   └──────────────────────────────►  └─ yes ─► Score shards (DISTRIBUTED Map over the plan's shard list in S3,
       │                               at most instance_count at once)
       │                                 └─ per shard: CPU or GPU? ─► Score shard on CPU | GPU (batch:submitJob.sync)
       │                                                  ├─► Shard scored: {}
       │                                                  └─ Catch ─► why? ─► Record why the shard failed
       │                                                                       (DynamoDB) ─► Shard failed: {}
       │                             ──► Merge outputs and finish job ──► Job completed | Job canceled | Job failed
       └─ Catch (Plan, Map, Finalize) ─► Mark job failed ─► Workflow failed

Only ids, S3 keys and small numbers travel through the states (Step Functions state <= 256 KiB; a Batch job
request <= 30 KiB). The Distributed Map's children's outputs go to S3 (its ResultWriter, under the job's scratch
jobs/<job id>/map-results/), and the Map's own output is the few hundred bytes that say where: without it, the
children's outputs gathered in the state (a few bytes each even when all are `{}`) would pass 256 KiB at about
87,000 shards and end the execution with States.DataLimitExceeded, which no Catch sees, whatever the ResultPath.
Every child still ends with `{}`, scored or failed: why a shard failed goes to the record table, once per job (the
first failure), where Finalize reads it in one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from batch_endpoints.shard_failures import SHARD_FAILURE
from infra.compute import BatchCluster
from infra.layout import SCRATCH_PREFIX

# SubmitJob errors worth another try, as Step Functions names them (Batch.<exception>): Batch's own faults
# (ServerException, HTTP 500), throttling (SubmitJob takes about 50 calls a second; Batch does not model it, so the
# SDK raises its base AWSBatchException, or TooManyRequestsException by code), and the SDK failing to reach Batch.
# Never Batch.ClientException (HTTP 400: an inactive or missing job definition or queue, a bad parameter): another
# try gets the same answer, so the shard fails at once. A job that ran and failed (States.TaskFailed) is not retried
# here either: Batch already retried it (the job definition's retryStrategy) and the runner each mini-batch.
TRANSIENT_BATCH_ERRORS = [
    "Batch.ServerException",
    "Batch.AWSBatchException",
    "Batch.TooManyRequestsException",
    "Batch.SdkClientException",
]
PERMANENT_BATCH_ERRORS = ["Batch.ClientException"]
# Batch's status reason for a job its queue's time limit canceled in RUNNABLE (compute.RUNNABLE_REASONS).
STUCK_IN_RUNNABLE = "Canceled by JobStateTimeLimit action*"
# Where a failed shard's Batch job description lies once parsed from the caught error's Cause.
BATCH_JOB = "$.batch_job.description"
# Where the Distributed Map's ResultWriter puts its children's outputs: the job's scratch, which expires with it.
# Step Functions adds <map run id>/ and writes manifest.json and the result files there.
MAP_RESULTS_PREFIX = f"{SCRATCH_PREFIX}{{}}/map-results"
MAP_RESULTS_OBJECTS = f"{SCRATCH_PREFIX}*/map-results/*"


class ScopedResultWriter(sfn.ResultWriterV2):
    """A ResultWriter whose S3 permissions the workflow grants itself (JobWorkflow), on the prefix it writes to:
    CDK's own, for a bucket named by a JsonPath, would allow writing any object of any bucket."""

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return []


def lambda_step(
    scope: Construct,
    state_id: str,
    function: lambda_.IFunction,
    *,
    payload: dict[str, str],
    result_path: str,
    result_selector: dict[str, str] | None = None,
) -> tasks.LambdaInvoke:
    """A Lambda step of a workflow. The workflows' functions are idempotent (lambdas.workflow), so a throttled call
    may run again."""
    task = tasks.LambdaInvoke(
        scope,
        state_id,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        result_path=result_path,
        result_selector=result_selector,
        # Retries Lambda.ServiceException and the SDK's transient errors (2 s, x2, 6 attempts).
        retry_on_service_exceptions=True,
    )
    task.add_retry(
        errors=["Lambda.TooManyRequestsException"],
        interval=cdk.Duration.seconds(2),
        backoff_rate=2,
        max_attempts=6,
        max_delay=cdk.Duration.minutes(1),
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def retry_transient_batch_errors(task: sfn.CustomState) -> None:
    """Try a SubmitJob again on TRANSIENT_BATCH_ERRORS. Throttling clears in seconds to a minute: at most about 6
    minutes of tries in all."""
    task.add_retry(
        errors=TRANSIENT_BATCH_ERRORS,
        interval=cdk.Duration.seconds(5),
        backoff_rate=2,
        max_attempts=6,
        max_delay=cdk.Duration.minutes(2),
        jitter_strategy=sfn.JitterType.FULL,
    )


def job_outcome(scope: Construct, state_id: str, result: str) -> sfn.Choice:
    """The end of a job's execution by the job's final status at `result` (its status and error): Failed is a Fail
    state (JobFailed, the job's error as the cause), so that the console and the alarms see it."""
    return (
        sfn.Choice(scope, state_id)
        .when(
            sfn.Condition.string_equals(f"{result}.status", "Failed"),
            sfn.Fail(scope, "Job failed", error="JobFailed", cause_path=f"{result}.error"),
        )
        .when(sfn.Condition.string_equals(f"{result}.status", "Canceled"), sfn.Succeed(scope, "Job canceled"))
        .otherwise(sfn.Succeed(scope, "Job completed"))
    )


def from_payload(*names: str) -> dict[str, str]:
    """A Lambda step's result_selector keeping these fields of the function's result."""
    return {f"{name}.$": f"$.Payload.{name}" for name in names}


@dataclass(frozen=True)
class JobStates:
    """The states of a job's execution, built in `scope` (the workflow's construct): the three functions it
    invokes, the computes it scores on, and the table where it records why a shard failed."""

    scope: Construct
    plan_function: lambda_.IFunction
    finalize_function: lambda_.IFunction
    mark_failed_function: lambda_.IFunction
    clusters: Sequence[BatchCluster]
    records_table: dynamodb.ITable

    def chain(self) -> sfn.IChainable:
        """The first state, chained to all the others."""
        mark_failed = lambda_step(
            self.scope,
            "Mark job failed",
            self.mark_failed_function,
            payload={"job_id.$": "$.job_id", "error.$": "$.error"},
            result_path="$.marked",
        ).next(sfn.Fail(self.scope, "Workflow failed", error_path="$.error.Error", cause_path="$.error.Cause"))

        plan = lambda_step(
            self.scope,
            "Plan mini-batches and shards",
            self.plan_function,
            payload={"job_id.$": "$.job_id"},
            result_path="$.plan",
            result_selector=from_payload("planned", "shard_count", "shards_bucket", "shards_key", "attempt_duration_s"),
        )
        score = sfn.DistributedMap(
            self.scope,
            "Score shards",
            label="ScoreShards",
            item_reader=sfn.S3JsonItemReader(
                bucket_name_path=sfn.JsonPath.string_at("$.plan.shards_bucket"),
                key=sfn.JsonPath.string_at("$.plan.shards_key"),
            ),
            max_concurrency_path=sfn.JsonPath.string_at("$.instance_count"),
            item_selector={
                "shard.$": "$$.Map.Item.Value.shard",
                "job_id.$": "$.job_id",
                "compute.$": "$.compute",
                "job_queue.$": "$.job_queue",
                "job_definition.$": "$.job_definition",
                "attempt_duration_s.$": "$.plan.attempt_duration_s",
                "shard_number.$": "$$.Map.Item.Index",
            },
            # Child executions run as long as their Batch job: Express's 5 minutes would not do.
            map_execution_type=sfn.StateMachineType.STANDARD,
            # In the bucket the plan wrote the shard list to: the stack's (BEP_BUCKET).
            result_writer_v2=ScopedResultWriter(
                bucket_name_path=sfn.JsonPath.string_at("$.plan.shards_bucket"),
                prefix=sfn.JsonPath.format(MAP_RESULTS_PREFIX, sfn.JsonPath.string_at("$.job_id")),
            ),
            # The Map's output is then only where the results went; nothing after the Map reads it.
            result_path=sfn.JsonPath.DISCARD,
        )
        scored = sfn.Pass(self.scope, "Shard scored", result=sfn.Result.from_object({}))
        failed = self._shard_failure()
        on_kind = (
            sfn.Choice(self.scope, "CPU or GPU?")
            .when(
                sfn.Condition.string_equals("$.compute", "gpu"),
                self._score_shard("Score shard on GPU", failed).next(scored),
            )
            .otherwise(self._score_shard("Score shard on CPU", failed).next(scored))
        )
        score.item_processor(on_kind)

        finalize = lambda_step(
            self.scope,
            "Merge outputs and finish job",
            self.finalize_function,
            payload={"job_id.$": "$.job_id"},
            result_path="$.result",
            result_selector=from_payload("status", "error", "output", "counts"),
        )
        # A job that Finalize closes as Failed (error_threshold, mini-batches never scored) is a normal end of the
        # workflow, but shown as a failed execution so that the console and the alarms see it.
        outcome = job_outcome(self.scope, "Did the job complete?", "$.result")
        for state in (plan, score, finalize):
            state.add_catch(mark_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        # Plan lists the input a window at a time (planning.PLAN_WINDOW_FILES): a listing of 10^8 keys is 100,000
        # pages, far past one Lambda's 15 minutes. Each turn adds 7 history events: 700 at 10^8 files, of 25,000.
        listed = (
            sfn.Choice(self.scope, "Input listed?")
            .when(sfn.Condition.boolean_equals("$.plan.planned", False), plan)
            .otherwise(score.next(finalize).next(outcome))
        )
        return plan.next(listed)

    def _score_shard(self, state_id: str, on_failure: sfn.IChainable) -> sfn.CustomState:
        """batch:submitJob.sync for one shard. A custom state: CDK's BatchSubmitJob takes the attempt timeout only
        as a fixed Duration, and this one comes from the plan."""
        task = sfn.CustomState(
            self.scope,
            state_id,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{cdk.Aws.PARTITION}:states:::batch:submitJob.sync",
                "Parameters": {
                    # <job id>-s<shard number>: the log reader finds a job's Batch jobs by the prefix <job id>-s.
                    # At most 80 + 7 characters of letters, digits and hyphens (Batch allows 128).
                    "JobName.$": "States.Format('{}-s{}', $.job_id, $.shard_number)",
                    "JobQueue.$": "$.job_queue",
                    "JobDefinition.$": "$.job_definition",
                    # Fill the job definition's command: --job-id Ref::job_id --shard Ref::shard.
                    "Parameters": {"job_id.$": "$.job_id", "shard.$": "$.shard"},
                    "Timeout": {"AttemptDurationSeconds.$": "$.attempt_duration_s"},
                },
                # Of the job's description (several KB), keep its id and status for the execution's history; the
                # child execution still ends with {} (Shard scored).
                "ResultSelector": {"job_id.$": "$.JobId", "status.$": "$.Status"},
                "ResultPath": "$.batch_job",
            },
        )
        retry_transient_batch_errors(task)
        task.add_catch(on_failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return task

    def _shard_failure(self) -> sfn.IChainable:
        """From a shard's caught error ($.error) to one line of why, recorded for Finalize if it is the job's first,
        then {} as the child's output. A Batch job that ran and failed is described in the Cause as JSON: its status
        reason is the line (a compute's own message for a job its queue canceled in RUNNABLE). Anything else (a
        SubmitJob error) keeps its name and Cause. Every path is checked before it is read: a missing one would
        fail the child with States.Runtime, which no Catch sees."""
        failed = sfn.Pass(self.scope, "Shard failed", result=sfn.Result.from_object({}))
        record = tasks.DynamoUpdateItem(
            self.scope,
            "Record why the shard failed",
            table=self.records_table,
            key={
                "pk": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.format(f"{SHARD_FAILURE}#{{}}", sfn.JsonPath.string_at("$.job_id"))
                )
            },
            # The first failure wins; later ones only count (records.py: a record is key, data and version).
            update_expression=(
                "SET #key = if_not_exists(#key, :key), #data = if_not_exists(#data, :data), "
                "#version = if_not_exists(#version, :one) ADD c_shards_failed :one"
            ),
            expression_attribute_names={"#key": "key", "#data": "data", "#version": "version"},
            expression_attribute_values={
                ":key": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at("$.job_id")),
                ":data": tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.failure"))
                ),
                ":one": tasks.DynamoAttributeValue.from_number(1),
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        record.add_retry(errors=[sfn.Errors.ALL], interval=cdk.Duration.seconds(1), max_attempts=3, backoff_rate=2)
        # Without the reason Finalize still reports the shard's files as never scored.
        record.add_catch(failed, errors=[sfn.Errors.ALL], result_path=sfn.JsonPath.DISCARD)
        record.next(failed)

        def reason(state_id: str, text: str) -> sfn.Chain:
            """A Pass that puts {"shard": its number, "reason": text} at $.failure; text may be a path or
            an intrinsic function (from the state) or a message of the stack's (a constant)."""
            computed = text.startswith(("$", "States."))
            return sfn.Pass(
                self.scope,
                state_id,
                parameters={"shard.$": "$.shard_number", "reason.$" if computed else "reason": text},
                result_path="$.failure",
            ).next(record)

        status_reason = f"{BATCH_JOB}.StatusReason"
        why_batch = sfn.Choice(self.scope, "Did Batch say why?")
        for cluster in self.clusters:
            why_batch.when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.compute", cluster.settings.kind),
                    sfn.Condition.is_present(status_reason),
                    sfn.Condition.string_matches(status_reason, STUCK_IN_RUNNABLE),
                ),
                reason(f"No capacity on {cluster.settings.name}", cluster.stuck_message),
            )
        as_caught = reason("Take the error as the reason", "States.Format('{}: {}', $.error.Error, $.error.Cause)")
        why_batch.when(sfn.Condition.is_present(status_reason), reason("Take Batch's reason", status_reason)).otherwise(
            as_caught
        )
        read_job = sfn.Pass(
            self.scope,
            "Read the Batch job's description",
            parameters={"description.$": "States.StringToJson($.error.Cause)"},
            result_path="$.batch_job",
        )
        return (
            sfn.Choice(self.scope, "Did the Batch job run?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.error.Error", "States.TaskFailed"),
                    sfn.Condition.is_present("$.error.Cause"),
                    sfn.Condition.string_matches("$.error.Cause", "{*}"),
                ),
                read_job.next(why_batch),
            )
            .when(sfn.Condition.is_present("$.error.Cause"), as_caught)
            .otherwise(reason("Take the error's name as the reason", "$.error.Error"))
        )
