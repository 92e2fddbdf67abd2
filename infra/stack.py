"""The batch endpoints stack: its components, and the wiring between them: who may use what (grants) and what a
deployer reads back (outputs). Each component is a construct of its own module, given only what it uses.

Environment-agnostic: no lookups, so `cdk synth` runs offline and one template deploys to any account and region.
Construct ids are part of the deployed stack: they make the resources' logical ids, and CloudFormation replaces a
resource whose logical id changes (tests/test_infra_logical_ids.py pins those that hold data or are named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.access import ApiAccess
from infra.api import STAGE, Api
from infra.compute import Compute
from infra.lambda_code import project_code
from infra.monitoring import Monitoring
from infra.pipeline_workflow import PipelineWorkflow
from infra.settings import StackSettings
from infra.storage import Storage
from infra.workflow import JobWorkflow

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


class BatchEndpointsStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        repository_root: Path = REPOSITORY_ROOT,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Batch endpoints: Azure-ML-style batch inference on AWS Batch behind a SigV4 REST API",
            **kwargs,
        )
        self.storage = storage = Storage(
            self,
            "Storage",
            scratch_expiry=cdk.Duration.days(settings.scratch_expiry_days),
            upload_expiry=cdk.Duration.days(settings.upload_expiry_days),
            versioned=settings.versioned_bucket,
            data_bucket_names=settings.data_buckets,
        )
        self.compute = compute = Compute(
            self,
            "Compute",
            computes=settings.computes,
            repository_root=repository_root,
            spot=settings.spot,
            nat_gateways=settings.nat_gateways,
            availability_zones=settings.availability_zones,
            runnable_timeout=cdk.Duration.minutes(settings.runnable_timeout_minutes),
            flow_log_bucket=storage.log_bucket,
        )
        self.workflow = workflow = JobWorkflow(
            self,
            "Workflow",
            # The workflow's functions merge Parquet outputs: theirs is the asset with pyarrow; the API's stays small.
            code=project_code(repository_root, tables=True),
            environment=storage.backend_environment,
            clusters=compute.clusters,
            records_table=storage.table,
            bucket=storage.bucket,
            log_level=settings.workflow_log_level,
            log_execution_data=settings.workflow_log_execution_data,
        )
        self.pipelines = pipelines = PipelineWorkflow(
            self,
            "Pipelines",
            # The workflow steps' asset: the same handlers module as the job workflow's.
            code=project_code(repository_root, tables=True),
            environment={**storage.backend_environment, **compute.lambda_environment},
            clusters=compute.clusters,
            model_jobs=workflow.state_machine,
            log_level=settings.workflow_log_level,
            log_execution_data=settings.workflow_log_execution_data,
        )
        self.api = api = Api(
            self,
            "Api",
            code=project_code(repository_root),
            environment={
                **storage.backend_environment,
                "BEP_STATE_MACHINE_ARN": workflow.state_machine.state_machine_arn,
                "BEP_PIPELINE_STATE_MACHINE_ARN": pipelines.state_machine.state_machine_arn,
                **compute.lambda_environment,
                **storage.data_access_environment,
            },
            rate_limit=settings.api_rate_limit,
            burst_limit=settings.api_burst_limit,
            simulate_caller_policy=settings.simulate_caller_policy,
        )
        self.access = ApiAccess(
            self, "Access", rest_api=api.rest_api, stage=STAGE, scoped_invokers=settings.scoped_invokers
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=workflow.state_machine,
            pipeline_state_machine=pipelines.state_machine,
            functions=[api.function, *workflow.functions, *pipelines.functions],
            rest_api=api.rest_api,
            scoring_logs=compute.log_group,
            alarm_email=settings.alarm_email,
        )
        self._grant()
        self._output()

    def _grant(self) -> None:
        """The API and the workflow's steps use every object and record (the data access guard decides which a
        job may touch); the scoring containers only their job's. The API also starts and stops executions,
        registers a job definition per deployment, and reads a job's Batch jobs and logs."""
        storage, compute, workflow, api = self.storage, self.compute, self.workflow, self.api
        for function in (api.function, *workflow.object_functions):
            storage.grant_every_object(function)
        for function in (api.function, *workflow.functions, *self.pipelines.functions):
            storage.grant_records(function)
        storage.grant_scoring(compute.job_role)
        workflow.grant_job_control(api.function)
        self.pipelines.grant_job_control(api.function)
        # A pipeline job's execution that ended outside its states is closed by the same step as a model job's.
        workflow.execution_ended_rule.add_event_pattern(
            detail={"stateMachineArn": [self.pipelines.state_machine.state_machine_arn]}
        )
        compute.grant_register_job_definitions(api.function)
        compute.grant_read_jobs(api.function)
        compute.grant_create_computes(api.function)

    def _output(self) -> None:
        """What the CLI, the SDK and `bep doctor` find the system by, and where an operator looks."""
        storage, compute, workflow, api = self.storage, self.compute, self.workflow, self.api
        access, monitoring = self.access, self.monitoring
        region = cdk.Aws.REGION
        console = f"https://{region}.console.aws.amazon.com"
        outputs = {
            "ApiUrl": (api.url, "Base URL of the REST API (SigV4-signed requests, service execute-api)"),
            "DataBucketName": (storage.bucket.bucket_name, "Models, code, job files and default outputs"),
            "RecordTableName": (storage.table.table_name, "Records of models, endpoints, deployments and jobs"),
            "StateMachineArn": (workflow.state_machine.state_machine_arn, "The job workflow"),
            "PipelineStateMachineArn": (self.pipelines.state_machine.state_machine_arn, "The pipeline jobs' workflow"),
            "AdminPolicyArn": (access.admin_policy.managed_policy_arn, "Attach to administrators of the API"),
            "InvokerPolicyArn": (access.invoker_policy.managed_policy_arn, "Attach to callers that run jobs"),
            "AlarmTopicArn": (monitoring.alarm_topic.topic_arn, "Subscribe to get the alarms"),
            "ScoringLogGroup": (compute.log_group.log_group_name, "What the scoring containers print"),
            "DashboardUrl": (
                f"{console}/cloudwatch/home?region={region}#dashboards/dashboard/{monitoring.dashboard.dashboard_name}",
                "CloudWatch dashboard",
            ),
            "StateMachineConsoleUrl": (
                f"{console}/states/home?region={region}#/statemachines/view/{workflow.state_machine.state_machine_arn}",
                "Job executions in the Step Functions console",
            ),
            "BatchConsoleUrl": (f"{console}/batch/home?region={region}#queues", "Job queues and Batch jobs"),
        }
        for cluster in compute.clusters:
            outputs[f"{cluster.settings.kind.capitalize()}JobQueueArn"] = (
                cluster.queue.job_queue_arn,
                f"Job queue of compute {cluster.settings.name}",
            )
        for name, policy in access.endpoint_invoker_policies.items():
            outputs[f"InvokerPolicyArn{name.replace('-', '')}"] = (
                policy.managed_policy_arn,
                f"Attach to callers of endpoint {name} only",
            )
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)
