"""cdk-nag's AwsSolutions checks on the app, and every finding the stack acknowledges, each with its reason.

This is the only place findings are acknowledged. cdk-nag 3 acknowledges each finding on its own (a wildcard
finding names its action or resource), so they are listed one by one, on the smallest construct that has them.
A finding with no entry here fails `cdk synth` (and tests/test_infra_nag.py).
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra.access import ADMIN_ROUTES, INVOKER_ROUTES, endpoint_routes
from infra.api import CALLER_PRINCIPALS
from infra.compute import JOB_DEFINITION_NAMES
from infra.job_states import MAP_RESULTS_OBJECTS
from infra.lambda_code import RUNTIME
from infra.layout import RUNNER_READ_PREFIXES, SCRATCH_PREFIX
from infra.stack import BatchEndpointsStack

MANAGED_POLICY = "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{}]"
ACCOUNT = "<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>"

LAMBDA_LOGS = (
    "AWSLambdaBasicExecutionRole lets a function write its own CloudWatch logs and nothing else; it is AWS's "
    "standard policy for exactly that"
)
XRAY = "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions (tracing is on)"
OBJECTS = (
    "The objects of a bucket the role reads and writes: models, code, inputs, outputs and job files live under "
    "keys chosen at runtime (users' folders, job ids)"
)


def check_and_acknowledge(app: cdk.App, stack: BatchEndpointsStack) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    for construct, finding, reason in acknowledgements(stack):
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def acknowledgements(stack: BatchEndpointsStack) -> list[tuple[IConstruct, str, str]]:
    """(construct, finding, reason): the construct, or anything under it, may have that finding."""
    storage, compute, workflow, api, access = stack.storage, stack.compute, stack.workflow, stack.api, stack.access
    state_machine, pipelines = workflow.state_machine, stack.pipelines
    functions = [api.function, *workflow.functions, *pipelines.functions]
    bucket_objects = f"<{_logical_id(stack, storage.bucket)}.Arn>/*"
    other_objects = [f"arn:<AWS::Partition>:s3:::{name}/*" for name in storage.data_bucket_names]
    job_definitions = f"arn:{ACCOUNT.format('batch')}:job-definition/{JOB_DEFINITION_NAMES}"
    executions, pipeline_executions = (
        f"arn:{ACCOUNT.format('states')}:execution:"
        f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{_logical_id(stack, machine)}"}}]}}]}}'
        for machine in (state_machine, pipelines.state_machine)
    )
    found: list[tuple[IConstruct, str, str]] = []

    def add(construct: IConstruct, finding: str, reason: str) -> None:
        found.append((construct, f"AwsSolutions-{finding}", reason))

    # --- Lambda functions
    for function in functions:
        add(function, MANAGED_POLICY.format("AWSLambdaBasicExecutionRole"), LAMBDA_LOGS)
        add(function, "IAM5[Resource::*]", f"{XRAY}. The API's Batch reads are explained beside the API's grants")
        add(
            function,
            "L1",
            f"Pinned to {RUNTIME.name}: the bundle's compiled wheels (pydantic-core, PyYAML, wrapt) are fetched "
            "for exactly this version (infra/lambda_code.py); move both together",
        )
    for function in (api.function, *workflow.object_functions):
        for objects in (bucket_objects, *other_objects):
            add(function, f"IAM5[Resource::{objects}]", OBJECTS)
    add(
        api.function,
        f"IAM5[Resource::{job_definitions}]",
        "Deployments register their job definitions at runtime, named bep-<endpoint>_<deployment> "
        "(adapters.aws.computes); the prefix is all that is known at deploy time",
    )
    if api.simulates_caller_policy:
        for kind in CALLER_PRINCIPALS:
            add(
                api.function,
                f"IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:{kind}/*]",
                "The caller policy simulation asks about whichever user or role of this account signed the "
                "request; SimulatePrincipalPolicy reads policies and changes nothing",
            )
    add(
        api.function,
        f"IAM5[Resource::{executions}:*]",
        "Cancel stops a job's execution, named after the job at runtime; only this state machine's executions",
    )

    add(
        api.function,
        f"IAM5[Resource::{pipeline_executions}:*]",
        "Cancel stops a pipeline job's execution, named after the job at runtime; only the pipeline state machine's",
    )

    created_queues = f"arn:{ACCOUNT.format('batch')}:job-queue/{stack.stack_name}-*"
    add(
        api.function,
        f"IAM5[Resource::{created_queues}]",
        "Computes users create get a job queue named <stack>-<compute> at runtime (compute_environments.py); "
        "the stack's prefix is all that is known at deploy time",
    )
    add(
        api.function,
        f"IAM5[Resource::arn:{ACCOUNT.format('batch')}:compute-environment/{stack.stack_name}-*]",
        "Computes users create get a compute environment named <stack>-<compute> at runtime; the stack's prefix "
        "is all that is known at deploy time",
    )

    # --- state machines
    for machine in (state_machine, pipelines.state_machine):
        add(
            machine,
            f"IAM5[Resource::{created_queues}]",
            "Batch jobs of a deployment on a compute users created go to its queue, named <stack>-<compute> at runtime",
        )
        add(
            machine,
            "IAM5[Resource::*]",
            f"{XRAY}; neither have batch:DescribeJobs (the .sync wait) nor the log delivery actions of vended logs",
        )
        add(
            machine,
            f"IAM5[Resource::{job_definitions}]",
            "SubmitJob names the deployment's job definition, registered at runtime under the bep- prefix",
        )
        add(
            machine,
            f"IAM5[Resource::arn:{ACCOUNT.format('batch')}:job/*]",
            "Stopping an execution terminates the Batch jobs its .sync tasks wait on; job ids are made at runtime",
        )
    for function in pipelines.functions:
        add(
            pipelines.state_machine,
            f"IAM5[Resource::<{_logical_id(stack, function)}.Arn>:*]",
            "CDK's LambdaInvoke grant: the pipeline workflow's own function and its versions, nothing else",
        )
    add(
        pipelines.state_machine,
        f"IAM5[Resource::{executions}*]",
        "CDK's StepFunctionsStartExecution grant for .sync: a parallel step's job execution, named at runtime, "
        "described and stopped; the model-job state machine's executions only",
    )
    for function in workflow.state_functions:
        add(
            state_machine,
            f"IAM5[Resource::<{_logical_id(stack, function)}.Arn>:*]",
            "CDK's LambdaInvoke grant: the workflow's own function and its versions, nothing else",
        )
    add(
        state_machine,
        f"IAM5[Resource::{executions}:*]",
        "The Distributed Map describes and stops its own child executions (CDK's grant, this state machine only)",
    )
    add(
        state_machine,
        f"IAM5[Resource::{executions}/ScoreShards:*]",
        "The Distributed Map redrives its own map runs (CDK's grant, this state machine's map only)",
    )
    if workflow.log_level != "ALL":
        for machine in (state_machine, pipelines.state_machine):
            add(
                machine,
                "SF1",
                f"Logs {workflow.log_level} by default (context workflow_log_level): ALL writes every state of "
                "every shard, tens of thousands of events per large job; the execution history keeps every state "
                "for 90 days",
            )
    add(
        state_machine,
        f"IAM5[Resource::{bucket_objects[:-1]}{SCRATCH_PREFIX}*]",
        "The Map's ItemReader reads the plan's shard list, written under jobs/<job id>/ at runtime",
    )
    add(
        state_machine,
        f"IAM5[Resource::{bucket_objects[:-1]}{MAP_RESULTS_OBJECTS}]",
        "The Map's ResultWriter writes its children's outputs under jobs/<job id>/map-results/, the job id known "
        "at runtime",
    )

    add(
        workflow.undelivered,
        "SQS3",
        "This queue is the dead-letter queue: of the rule that routes ended executions to the execution_ended "
        "function, and of that function's asynchronous invocations. cdk-nag counts only SQS redrive policies",
    )

    # --- Batch compute
    for cluster in compute.clusters:
        add(
            cluster.environment,
            MANAGED_POLICY.format("AmazonEC2ContainerServiceforEC2Role"),
            "The ECS container instance role AWS Batch documents for EC2 compute environments; it registers the "
            "instance with its ECS cluster. The jobs run as the job role and cannot take this one: the launch "
            "template's IMDS hop limit of 1 keeps the metadata service out of reach of bridge-mode containers",
        )
    for prefix in RUNNER_READ_PREFIXES:
        add(
            compute.job_role,
            f"IAM5[Resource::{bucket_objects[:-1]}{prefix}*]",
            f"The job's model, code, input and job files, under {prefix} at keys chosen at runtime",
        )
    for objects in other_objects:
        add(compute.job_role, f"IAM5[Resource::{objects}]", OBJECTS)
    add(compute.execution_role, "IAM5[Resource::*]", "ecr:GetAuthorizationToken has no resource-level permissions")
    add(
        compute.execution_role,
        f"IAM5[Resource::arn:{ACCOUNT.format('ecr')}:repository/*]",
        "A deployment may name any image of this account's ECR (one built FROM ours); pull only",
    )

    # --- API
    add(
        api.rest_api,
        MANAGED_POLICY.format("AmazonAPIGatewayPushToCloudWatchLogs"),
        "API Gateway's account-wide logging role, with the managed policy AWS documents for it",
    )
    add(
        api.rest_api,
        "APIG2",
        "Request bodies are validated by the API Lambda (pydantic models, as on the local server); API Gateway "
        "validates the request parameters",
    )
    add(
        api.rest_api,
        "APIG3",
        "No WAF: every method requires a SigV4 signature and the stage is throttled, and a web ACL costs money "
        "every month, idle or not. Associate one if untrusted networks can reach the API",
    )
    add(api.rest_api, "COG4", "Callers authenticate with IAM (SigV4: AWS_IAM on every method), not Cognito")

    # --- access policies: execute-api:Invoke on paths that hold names
    api_arn = f"arn:{ACCOUNT.format('execute-api')}:<{_logical_id(stack, api.rest_api)}>/{access.stage}"
    policies = [
        (access.admin_policy, ADMIN_ROUTES, "Every operation of the API: the admin policy"),
        (access.invoker_policy, INVOKER_ROUTES, "Any endpoint or job: their names are parts of the paths"),
        *(
            (policy, endpoint_routes(name), f"Endpoint {name}: its own paths, and its deployments' and jobs'")
            for name, policy in access.endpoint_invoker_policies.items()
        ),
    ]
    for policy, routes, reason in policies:
        for method, path in routes:
            if "*" in method + path:
                add(policy, f"IAM5[Resource::{api_arn}/{method}{path}]", reason)
    return found


def _logical_id(stack: cdk.Stack, construct: IConstruct) -> str:
    # A construct's default child is its CloudFormation resource (a CfnElement), which CDK types as any IConstruct.
    return stack.get_logical_id(construct.node.default_child or construct)  # type: ignore[arg-type]
