"""The job workflow: a Standard state machine that plans a job, scores its shards on AWS Batch, and finalizes it;
the Lambda functions its steps run, its logs, and what it may do (invoke them, submit and stop Batch jobs, read
the plan's shard list and write the Distributed Map's results). Its states are in infra/job_states.py.

An execution that ends outside these states (stopped by a cancel, or failed where no Catch sees it:
States.DataLimitExceeded, States.Runtime) runs nothing more: an EventBridge rule on this state machine's ABORTED,
FAILED and TIMED_OUT executions invokes the Close job step (`execution_ended`), which finalizes a canceled job and
fails any other job its execution left open. Events that Lambda still fails on after its retries wait in a queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as lambda_destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.compute import JOB_DEFINITION_NAMES, BatchCluster
from infra.job_states import MAP_RESULTS_OBJECTS, JobStates
from infra.lambda_code import project_function
from infra.layout import SCRATCH_PREFIX
from lambdas.workflow.ended_executions import ENDED_STATUSES, EVENT_DETAIL_TYPE, EVENT_SOURCE

# What the Distributed Map's ResultWriter does where it writes, as Step Functions documents it ("IAM policies for
# using Distributed Map states"): it writes large results in parts, and aborts an upload it cannot finish.
RESULT_WRITER_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


class JobWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        clusters: Sequence[BatchCluster],
        records_table: dynamodb.ITable,
        bucket: s3.IBucket,
        log_level: str = "ERROR",
        log_execution_data: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.clusters = list(clusters)
        self.log_level = log_level

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
        # Runs finalize (a canceled job's), so it has Finalize's memory, timeout and permissions.
        self.execution_ended_function = step(
            "ExecutionEnded",
            "execution_ended",
            "Job workflow: close the job of an execution that was stopped or failed outside its states",
            2048,
        )
        self.state_functions = [self.plan_function, self.finalize_function, self.mark_failed_function]
        """The functions the state machine invokes."""
        self.functions = [*self.state_functions, self.execution_ended_function]
        self.object_functions = [self.plan_function, self.finalize_function, self.execution_ended_function]
        """The functions that read and write the job's data (mark_failed only writes its record)."""

        self.log_group, self.state_machine = workflow_state_machine(
            self,
            log_name="jobs",
            comment="One batch endpoint job: plan shards, score them on AWS Batch, merge the outputs",
            states=JobStates(
                self,
                plan_function=self.plan_function,
                finalize_function=self.finalize_function,
                mark_failed_function=self.mark_failed_function,
                clusters=self.clusters,
                records_table=records_table,
            ).chain(),
            log_level=log_level,
            log_execution_data=log_execution_data,
        )
        allow_batch_jobs(self.state_machine, [cluster.queue for cluster in self.clusters])
        self._close_jobs_of_ended_executions()
        self._allow_map_storage(bucket)

    def grant_job_control(self, grantee: iam.IGrantable) -> None:
        """Start a job's execution (invoke, rerun, resume), stop it (cancel) and read how it went."""
        self.state_machine.grant_start_execution(grantee)
        self.state_machine.grant_execution(grantee, "states:StopExecution", "states:DescribeExecution")

    def _allow_map_storage(self, bucket: s3.IBucket) -> None:
        """The Distributed Map reads the plan's shard list itself (its ItemReader), and writes its children's
        outputs beside it (its ResultWriter), in the bucket the plan writes to."""
        iam.Grant.add_to_principal(
            grantee=self.state_machine,
            actions=["s3:GetObject"],
            resource_arns=[bucket.arn_for_objects(f"{SCRATCH_PREFIX}*")],
        )
        iam.Grant.add_to_principal(
            grantee=self.state_machine,
            actions=RESULT_WRITER_ACTIONS,
            resource_arns=[bucket.arn_for_objects(MAP_RESULTS_OBJECTS)],
        )

    def _close_jobs_of_ended_executions(self) -> None:
        """Route this state machine's executions that ended outside its states to `execution_ended`, asynchronously.
        EventBridge retries handing an event to Lambda for up to a day, Lambda retries a failed asynchronous
        invocation twice; what still fails lands in the queue, where an operator sees it and can replay it."""
        self.undelivered = sqs.Queue(
            self,
            "ExecutionEndedFailures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.execution_ended_function.configure_async_invoke(
            on_failure=lambda_destinations.SqsDestination(self.undelivered), retry_attempts=2
        )
        self.execution_ended_rule = events.Rule(
            self,
            "ExecutionEndedRule",
            description="A job's execution stopped or failed outside its states: close the job",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=[EVENT_DETAIL_TYPE],
                detail={"stateMachineArn": [self.state_machine.state_machine_arn], "status": list(ENDED_STATUSES)},
            ),
            targets=[
                events_targets.LambdaFunction(
                    self.execution_ended_function,
                    dead_letter_queue=self.undelivered,
                    # EventBridge's own defaults, stated: throttled or unreachable Lambda is retried for a day.
                    retry_attempts=185,
                    max_event_age=cdk.Duration.hours(24),
                )
            ],
        )


def workflow_state_machine(
    scope: Construct,
    *,
    log_name: str,
    comment: str,
    states: sfn.IChainable,
    log_level: str,
    log_execution_data: bool,
) -> tuple[logs.LogGroup, sfn.StateMachine]:
    """A Standard, traced state machine of `states` in `scope` ("StateMachine"), and its log group ("Logs")."""
    log_group = logs.LogGroup(
        scope,
        "Logs",
        # Step Functions' vended logs: this prefix keeps the log resource policy small.
        log_group_name=f"/aws/vendedlogs/states/{cdk.Stack.of(scope).stack_name}-{log_name}",
        retention=LOG_RETENTION,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    state_machine = sfn.StateMachine(
        scope,
        "StateMachine",
        comment=comment,
        definition_body=sfn.DefinitionBody.from_chainable(states),
        state_machine_type=sfn.StateMachineType.STANDARD,
        tracing_enabled=True,
        # ALL with execution data logs every state's input and output: a setting, not the default.
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel(log_level), include_execution_data=log_execution_data
        ),
    )
    return log_group, state_machine


def allow_batch_jobs(state_machine: sfn.StateMachine, job_queues: Sequence[batch.IJobQueue]) -> None:
    """What a state machine's .sync Batch tasks need (CDK adds these itself only for its BatchSubmitJob task): submit
    to the stack's queues with its job definitions, wait on the jobs, stop them when the execution is stopped."""
    stack = cdk.Stack.of(state_machine)
    role = state_machine.role
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["batch:SubmitJob"],
            resources=[
                *(queue.job_queue_arn for queue in job_queues),
                # The queues of computes users create, named <stack>-<compute> (compute_environments.py).
                stack.format_arn(service="batch", resource="job-queue", resource_name=f"{stack.stack_name}-*"),
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
