"""The job workflow: a Standard state machine that plans a job, scores its shards on AWS Batch, and finalizes it.

The contract it implements (execution input, each step's event and result, the Map's items) is the docstring of
`lambdas.workflow`. In short:

    Plan mini-batches and shards ──► Score shards (DISTRIBUTED Map over the plan's shard list in S3,
       │                               at most instance_count at once)
       │                                 └─ per shard: CPU or GPU? ─► Score shard on CPU | GPU (batch:submitJob.sync)
       │                                                                  └─ Catch ─► Shard failed: Finalize reports it
       │                             ──► Merge outputs and finish job ──► Job completed | Job canceled | Job failed
       └─ Catch (Plan, Map, Finalize) ─► Mark job failed ─► Workflow failed

Only ids, S3 keys and small numbers travel through the states (Step Functions state <= 256 KiB; a Batch job
request <= 30 KiB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.lambda_code import project_function

# Job definitions are registered per deployment by the API Lambda: bep-<endpoint>_<deployment>
# (adapters.aws.computes.job_definition_name).
JOB_DEFINITION_NAMES = "bep-*"
# Batch API errors worth another try: throttling (SubmitJob takes about 50 calls a second) and Batch's own
# faults. A job that ran and failed is not retried here: Batch already retried it (the job definition's
# retryStrategy: Spot reclaims and host failures, and any failure but the runner's exit 1) and the runner retried
# each mini-batch.
BATCH_API_ERRORS = [
    "Batch.AWSBatchException",
    "Batch.ServerException",
    "Batch.TooManyRequestsException",
    "Batch.ThrottlingException",
]
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


class JobWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        job_queues: Sequence[batch.IJobQueue],
    ) -> None:
        super().__init__(scope, construct_id)

        def step(construct_id: str, handler: str, description: str, memory_mib: int) -> lambda_.Function:
            return project_function(
                self,
                construct_id,
                code=code,
                handler=f"lambdas.workflow.handlers.{handler}",
                description=description,
                environment=environment,
                memory_mib=memory_mib,
                timeout=cdk.Duration.minutes(15),
            )

        self.plan_function = step("Plan", "plan", "Job workflow: list the input, write mini-batch shards", 1024)
        self.finalize_function = step(
            "Finalize", "finalize", "Job workflow: merge part files into the output, count, set status", 2048
        )
        self.mark_failed_function = step("MarkFailed", "mark_failed", "Job workflow: record why a job failed", 512)
        self.functions = [self.plan_function, self.finalize_function, self.mark_failed_function]

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # Step Functions' vended logs: this prefix keeps the log resource policy small.
            log_group_name=f"/aws/vendedlogs/states/{cdk.Stack.of(self).stack_name}-jobs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="One batch endpoint job: plan shards, score them on AWS Batch, merge the outputs",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        self._allow_batch_jobs(job_queues)

    def _definition(self) -> sfn.IChainable:
        mark_failed = self._lambda_step(
            "Mark job failed",
            self.mark_failed_function,
            payload={"job_id.$": "$.job_id", "error.$": "$.error"},
            result_path="$.marked",
        ).next(sfn.Fail(self, "Workflow failed", error_path="$.error.Error", cause_path="$.error.Cause"))

        plan = self._lambda_step(
            "Plan mini-batches and shards",
            self.plan_function,
            payload={"job_id.$": "$.job_id"},
            result_path="$.plan",
            result_selector={
                "shard_count.$": "$.Payload.shard_count",
                "shards_bucket.$": "$.Payload.shards_bucket",
                "shards_key.$": "$.Payload.shards_key",
                "attempt_duration_s.$": "$.Payload.attempt_duration_s",
            },
        )
        score = sfn.DistributedMap(
            self,
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
            },
            # Child executions run as long as their Batch job: Express's 5 minutes would not do.
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path=sfn.JsonPath.DISCARD,
        )
        shard_failed = sfn.Pass(
            self,
            "Shard failed: Finalize reports its files",
            comment="Its mini-batches have no results, so Finalize lists their files as not scored",
        )
        on_kind = (
            sfn.Choice(self, "CPU or GPU?")
            .when(
                sfn.Condition.string_equals("$.compute", "gpu"), self._score_shard("Score shard on GPU", shard_failed)
            )
            .otherwise(self._score_shard("Score shard on CPU", shard_failed))
        )
        score.item_processor(on_kind)

        finalize = self._lambda_step(
            "Merge outputs and finish job",
            self.finalize_function,
            payload={"job_id.$": "$.job_id"},
            result_path="$.result",
            result_selector={
                "status.$": "$.Payload.status",
                "error.$": "$.Payload.error",
                "output.$": "$.Payload.output",
                "counts.$": "$.Payload.counts",
            },
        )
        # A job that Finalize closes as Failed (error_threshold, mini-batches never scored) is a normal end of the
        # workflow, but shown as a failed execution so that the console and the alarms see it.
        outcome = (
            sfn.Choice(self, "Did the job complete?")
            .when(
                sfn.Condition.string_equals("$.result.status", "Failed"),
                sfn.Fail(self, "Job failed", error="JobFailed", cause_path="$.result.error"),
            )
            .when(sfn.Condition.string_equals("$.result.status", "Canceled"), sfn.Succeed(self, "Job canceled"))
            .otherwise(sfn.Succeed(self, "Job completed"))
        )
        for state in (plan, score, finalize):
            state.add_catch(mark_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        return plan.next(score).next(finalize).next(outcome)

    def _lambda_step(
        self,
        state_id: str,
        function: lambda_.IFunction,
        *,
        payload: dict[str, str],
        result_path: str,
        result_selector: dict[str, str] | None = None,
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            result_path=result_path,
            result_selector=result_selector,
            # Retries Lambda.ServiceException and the SDK's transient errors (2 s, x2, 6 attempts).
            retry_on_service_exceptions=True,
        )
        # Plan, finalize and mark_failed are idempotent (lambdas.workflow), so a throttled call may run again.
        task.add_retry(
            errors=["Lambda.TooManyRequestsException"],
            interval=cdk.Duration.seconds(2),
            backoff_rate=2,
            max_attempts=6,
            max_delay=cdk.Duration.minutes(1),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _score_shard(self, state_id: str, on_failure: sfn.IChainable) -> sfn.CustomState:
        """batch:submitJob.sync for one shard. A custom state: CDK's BatchSubmitJob takes the attempt timeout only
        as a fixed Duration, and this one comes from the plan."""
        task = sfn.CustomState(
            self,
            state_id,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{cdk.Aws.PARTITION}:states:::batch:submitJob.sync",
                "Parameters": {
                    # Exactly the job id: the log reader finds a job's Batch jobs by name.
                    "JobName.$": "$.job_id",
                    "JobQueue.$": "$.job_queue",
                    "JobDefinition.$": "$.job_definition",
                    # Fill the job definition's command: --job-id Ref::job_id --shard Ref::shard.
                    "Parameters": {"job_id.$": "$.job_id", "shard.$": "$.shard"},
                    "Timeout": {"AttemptDurationSeconds.$": "$.attempt_duration_s"},
                },
                # Of the job's description, keep its id (to find it in Batch) and status.
                "ResultSelector": {"job_id.$": "$.JobId", "status.$": "$.Status"},
                "ResultPath": "$.batch_job",
            },
        )
        task.add_retry(
            errors=BATCH_API_ERRORS,
            interval=cdk.Duration.seconds(5),
            backoff_rate=2,
            max_attempts=8,
            max_delay=cdk.Duration.minutes(5),
            jitter_strategy=sfn.JitterType.FULL,
        )
        task.add_catch(on_failure, errors=[sfn.Errors.ALL], result_path="$.error")
        return task

    def _allow_batch_jobs(self, job_queues: Sequence[batch.IJobQueue]) -> None:
        """What the .sync Batch tasks need (CDK adds these itself only for its BatchSubmitJob task)."""
        stack = cdk.Stack.of(self)
        role = self.state_machine.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:SubmitJob"],
                resources=[
                    *(queue.job_queue_arn for queue in job_queues),
                    stack.format_arn(service="batch", resource="job-definition", resource_name=JOB_DEFINITION_NAMES),
                ],
            )
        )
        # Waiting on a job (DescribeJobs has no resource-level permissions) and stopping it when the execution
        # is stopped (a canceled job).
        role.add_to_principal_policy(iam.PolicyStatement(actions=["batch:DescribeJobs"], resources=["*"]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:TerminateJob"],
                resources=[stack.format_arn(service="batch", resource="job", resource_name="*")],
            )
        )
        # .sync learns that a job ended from this EventBridge rule, which Step Functions manages.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events", resource="rule", resource_name="StepFunctionsGetEventsForBatchJobsRule"
                    )
                ],
            )
        )
