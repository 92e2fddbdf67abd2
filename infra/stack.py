"""The batch endpoints stack: its components, and the wiring between them (environment, grants, outputs).

Environment-agnostic: no lookups, so `cdk synth` runs offline and one template deploys to any account and region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from batch_endpoints.adapters.aws.caller_policy import SETTING as SIMULATE_CALLER_POLICY
from infra.access import ApiAccess
from infra.api import STAGE, Api
from infra.compute import Compute
from infra.lambda_code import project_code
from infra.layout import RUNNER_READ_PREFIXES, SCRATCH_PREFIX, job_data_access
from infra.monitoring import Monitoring
from infra.settings import StackSettings
from infra.storage import COUNTER_ACTIONS, Storage, grant_objects
from infra.workflow import JOB_DEFINITION_NAMES, MAP_RESULTS_OBJECTS, RESULT_WRITER_ACTIONS, JobWorkflow

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
CALLER_PRINCIPALS = ("user", "role")
"""What API Gateway's IAM authorization lets call: IAM users, and roles (their sessions are simulated as the role)."""


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
        storage = Storage(
            self,
            "Storage",
            scratch_expiry=cdk.Duration.days(settings.scratch_expiry_days),
            upload_expiry=cdk.Duration.days(settings.upload_expiry_days),
            versioned=settings.versioned_bucket,
        )
        compute = Compute(
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
        # The workflow's functions merge Parquet outputs: theirs is the asset with pyarrow; the API's stays small.
        api_code = project_code(repository_root)
        workflow_code = project_code(repository_root, tables=True)

        # The variables of adapters.aws.backend. The workflow steps only open records and blobs.
        storage_environment = {
            "BEP_BACKEND": "aws",
            "BEP_TABLE": storage.table.table_name,
            "BEP_BUCKET": storage.bucket.bucket_name,
        }
        workflow = JobWorkflow(
            self,
            "Workflow",
            code=workflow_code,
            environment=storage_environment,
            clusters=compute.clusters,
            records_table=storage.table,
            log_level=settings.workflow_log_level,
            log_execution_data=settings.workflow_log_execution_data,
        )
        api = Api(
            self,
            "Api",
            code=api_code,
            environment={
                **storage_environment,
                "BEP_STATE_MACHINE_ARN": workflow.state_machine.state_machine_arn,
                "BEP_COMPUTES": self.to_json_string(compute.registry_entries()),
                "BEP_IMAGES": self.to_json_string(compute.image_uris()),
                "BEP_JOB_ROLE_ARN": compute.job_role.role_arn,
                "BEP_EXECUTION_ROLE_ARN": compute.execution_role.role_arn,
                "BEP_LOG_GROUP": compute.log_group.log_group_name,
                **job_data_access(storage.bucket.bucket_name, settings.data_buckets),
                **({SIMULATE_CALLER_POLICY: "true"} if settings.simulate_caller_policy else {}),
            },
            rate_limit=settings.api_rate_limit,
            burst_limit=settings.api_burst_limit,
        )
        access = ApiAccess(self, "Access", rest_api=api.rest_api, stage=STAGE)
        scoped = {name: access.endpoint_invoker_policy(name) for name in settings.scoped_invokers}
        monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=workflow.state_machine,
            functions=[api.function, *workflow.functions],
            rest_api=api.rest_api,
            scoring_logs=compute.log_group,
            alarm_email=settings.alarm_email,
        )

        self.storage, self.compute, self.workflow = storage, compute, workflow
        self.api, self.access, self.monitoring = api, access, monitoring
        self.scoped_invoker_policies = scoped
        self.other_bucket_names = settings.data_buckets

        # --- grants ---------------------------------------------------------------------------------------
        # Inputs and outputs may be in other buckets the deployer names (context data_buckets).
        other_buckets = [
            s3.Bucket.from_bucket_name(self, f"DataBucket{n}", name) for n, name in enumerate(settings.data_buckets)
        ]
        for function in (
            api.function,
            workflow.plan_function,
            workflow.finalize_function,
            workflow.execution_ended_function,
        ):
            for bucket in (storage.bucket, *other_buckets):
                grant_objects(bucket, function, writes=["*"])
        for function in (api.function, *workflow.functions):
            storage.grant_records(function)
        # The Distributed Map reads the plan's shard list itself (its ItemReader) ...
        iam.Grant.add_to_principal(
            grantee=workflow.state_machine,
            actions=["s3:GetObject"],
            resource_arns=[storage.bucket.arn_for_objects(f"{SCRATCH_PREFIX}*")],
        )
        # ... and writes its children's outputs there (its ResultWriter).
        iam.Grant.add_to_principal(
            grantee=workflow.state_machine,
            actions=RESULT_WRITER_ACTIONS,
            resource_arns=[storage.bucket.arn_for_objects(MAP_RESULTS_OBJECTS)],
        )
        # The scoring containers read models, code and inputs, write part files and results under jobs/ (the
        # finalize step, not the runner, writes outputs), and add to the job's counters. The data buckets are
        # read only: a job's model, code or input may be there.
        grant_objects(
            storage.bucket,
            compute.job_role,
            reads=[f"{prefix}*" for prefix in RUNNER_READ_PREFIXES],
            writes=[f"{SCRATCH_PREFIX}*"],
        )
        for bucket in other_buckets:
            grant_objects(bucket, compute.job_role)
        storage.grant_records(compute.job_role, COUNTER_ACTIONS)

        # The API starts and stops executions (invoke, cancel) ...
        workflow.state_machine.grant_start_execution(api.function)
        workflow.state_machine.grant_execution(api.function, "states:StopExecution", "states:DescribeExecution")
        # ... registers a job definition per deployment, running as the job and execution roles ...
        api.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["batch:RegisterJobDefinition", "batch:DeregisterJobDefinition", "batch:TagResource"],
                resources=[
                    self.format_arn(service="batch", resource="job-definition", resource_name=JOB_DEFINITION_NAMES)
                ],
            )
        )
        compute.job_role.grant_pass_role(api.function)
        compute.execution_role.grant_pass_role(api.function)
        # ... and reads a job's logs: its Batch jobs (no resource-level permissions), then their log streams.
        api.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["batch:DescribeJobDefinitions", "batch:ListJobs", "batch:DescribeJobs"], resources=["*"]
            )
        )
        api.function.add_to_role_policy(
            iam.PolicyStatement(actions=["logs:FilterLogEvents"], resources=[compute.log_group.log_group_arn])
        )
        # ... and, with context simulate_caller_policy, asks IAM what the caller itself may read and write
        # (adapters.aws.caller_policy). Callers are this account's users and roles, named at runtime.
        if settings.simulate_caller_policy:
            api.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["iam:SimulatePrincipalPolicy"],
                    resources=[
                        self.format_arn(service="iam", region="", resource=kind, resource_name="*")
                        for kind in CALLER_PRINCIPALS
                    ],
                )
            )
        self.simulates_caller_policy = settings.simulate_caller_policy

        # --- outputs ----------------------------------------------------------------------------------------
        region = cdk.Aws.REGION
        console = f"https://{region}.console.aws.amazon.com"
        outputs = {
            "ApiUrl": (api.url, "Base URL of the REST API (SigV4-signed requests, service execute-api)"),
            "DataBucketName": (storage.bucket.bucket_name, "Models, code, job files and default outputs"),
            "RecordTableName": (storage.table.table_name, "Records of models, endpoints, deployments and jobs"),
            "StateMachineArn": (workflow.state_machine.state_machine_arn, "The job workflow"),
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
        for name, policy in scoped.items():
            outputs[f"InvokerPolicyArn{name.replace('-', '')}"] = (
                policy.managed_policy_arn,
                f"Attach to callers of endpoint {name} only",
            )
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)
