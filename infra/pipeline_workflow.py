"""The pipeline jobs' workflow: one Standard state machine for every pipeline deployment, walking a job's steps in
rounds (its states are in infra/pipeline_states.py), the two Lambda functions its rounds run, its logs, and what it
may do: invoke them, submit and stop Batch jobs (command steps), and start and stop executions of the model-job
state machine (parallel steps). CDK's StepFunctionsStartExecution task grants the latter itself: StartExecution on
that machine, DescribeExecution and StopExecution on its executions, and the EventBridge rule .sync waits with.

An execution that ends outside its states (a cancel stops it; a Lambda failing past its retries fails it) is closed
by the job workflow's execution_ended step, whose EventBridge rule the stack extends to this state machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.compute import BatchCluster
from infra.lambda_code import project_function
from infra.pipeline_states import PipelineStates
from infra.workflow import allow_batch_jobs, workflow_state_machine


class PipelineWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        clusters: Sequence[BatchCluster],
        model_jobs: sfn.StateMachine,
        log_level: str = "ERROR",
        log_execution_data: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)

        def step(construct_id: str, handler: str, description: str) -> lambda_.Function:
            return project_function(
                self,
                construct_id,
                code=code,
                handler=f"lambdas.workflow.handlers.{handler}",
                description=description,
                # The round starts parallel steps' jobs on the model-job machine: it names their executions.
                environment={**environment, "BEP_STATE_MACHINE_ARN": model_jobs.state_machine_arn},
                memory_mib=512,
                timeout=cdk.Duration.minutes(1),
            )

        self.round_function = step("Round", "pipeline_round", "Pipeline workflow: pick the steps a round runs")
        self.step_ended_function = step("StepEnded", "pipeline_step_ended", "Pipeline workflow: record a step's end")
        self.functions = [self.round_function, self.step_ended_function]

        self.log_group, self.state_machine = workflow_state_machine(
            self,
            log_name="pipelines",
            comment="One pipeline job: its steps in rounds, command steps on AWS Batch, parallel steps as job runs",
            states=PipelineStates(
                self,
                round_function=self.round_function,
                step_ended_function=self.step_ended_function,
                model_jobs=model_jobs,
            ).chain(),
            log_level=log_level,
            log_execution_data=log_execution_data,
        )
        allow_batch_jobs(self.state_machine, [cluster.queue for cluster in clusters])

    def grant_job_control(self, grantee: iam.IGrantable) -> None:
        """Start a pipeline job's execution (invoke, resume), stop it (cancel) and read how it went."""
        self.state_machine.grant_start_execution(grantee)
        self.state_machine.grant_execution(grantee, "states:StopExecution", "states:DescribeExecution")
