"""`bep doctor`'s checks that ask AWS, with the caller's own credentials: who is calling, the stack's outputs, the
CDK bootstrap stack, and EC2's vCPU quotas against the deployed compute environments' ceilings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from batch_endpoints.doctor import (
    BOOTSTRAP_STACK,
    BOOTSTRAP_VERSION_PARAMETER,
    QUOTAS,
    Check,
    ComputeCapacity,
    Quota,
    Status,
    bootstrap_check,
    quota_check,
    quota_values,
    quotas_needed,
    unknown_families,
)

Service = Literal["batch", "cloudformation", "service-quotas", "ssm", "sts"]
ClientFactory = Callable[[Service], Any]
"""A boto3 client for a service name, made with the caller's session."""

# The outputs infra/stack.py gives: what the CLI and SDK find the system by, and the job queues of its computes.
QUEUE_OUTPUTS = ("CpuJobQueueArn", "GpuJobQueueArn")
REQUIRED_OUTPUTS = ("ApiUrl", "DataBucketName", "RecordTableName", "StateMachineArn", *QUEUE_OUTPUTS)
# A stack in these states has no working deployment to use: a first create that rolled back, or a failed one.
BROKEN_STATES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "DELETE_COMPLETE")


def check_aws(client: ClientFactory, region: str | None, *, stack: str, deploying: bool) -> list[Check]:
    """Every AWS check, in the order a deployer fixes them; after a credentials problem, nothing else can be asked."""
    identity = _identity(client, region)
    if identity.status == Status.PROBLEM or region is None:
        return [identity]
    found, outputs = _stack(client, stack, region, deploying=deploying)
    return [identity, found, _bootstrap(client, region), *_quotas(client, stack, outputs, region)]


def _identity(client: ClientFactory, region: str | None) -> Check:
    if region is None:
        return Check(
            "credentials",
            Status.PROBLEM,
            "no AWS region",
            "pass --region, set AWS_REGION, or `bep configure --defaults region=...`",
        )
    try:
        caller = client("sts").get_caller_identity()
    except NoCredentialsError:
        return Check(
            "credentials",
            Status.PROBLEM,
            "no AWS credentials found (environment, profile, SSO, instance role)",
            "configure some (aws configure, aws sso login) or pass --profile",
        )
    except ClientError as error:
        return Check("credentials", Status.PROBLEM, f"AWS refused the credentials: {_message(error)}", _RENEW)
    except BotoCoreError as error:  # an SSO token that expired, an endpoint out of reach
        return Check("credentials", Status.PROBLEM, f"cannot ask AWS who is calling: {error}", _RENEW)
    return Check("credentials", Status.OK, f"{caller['Arn']} (account {caller['Account']}) in {region}")


_RENEW = "renew them (aws sso login, new keys) or pass --profile"


def _stack(client: ClientFactory, stack: str, region: str, *, deploying: bool) -> tuple[Check, dict[str, str] | None]:
    name = f"stack {stack!r} in {region}"
    try:
        described = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if "does not exist" not in _message(error):  # CloudFormation answers a missing stack with a ValidationError
            return Check("stack", Status.PROBLEM, f"cannot read {name}: {_message(error)}"), None
        if deploying:
            return Check("stack", Status.NOTE, f"{name} is not deployed yet", "npx cdk deploy creates it"), None
        return (
            Check("stack", Status.PROBLEM, f"{name} does not exist", "deploy it (npx cdk deploy) or name it: --stack"),
            None,
        )
    status = described["StackStatus"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if status in BROKEN_STATES:
        advice = "delete it (npx cdk destroy) and deploy again; its events say why it failed"
        return Check("stack", Status.PROBLEM, f"{name} is {status}", advice), None
    if missing:
        return (
            Check(
                "stack",
                Status.PROBLEM,
                f"{name} ({status}) has no output {', '.join(missing)}: not a batch endpoints stack, or its "
                "deployment has not finished",
                "wait for the deployment, or name the right stack with --stack",
            ),
            None,
        )
    return Check("stack", Status.OK, f"{name} ({status}): API {outputs['ApiUrl']}"), outputs


def _bootstrap(client: ClientFactory, region: str) -> Check:
    try:
        toolkit = client("cloudformation").describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in _message(error):
            return bootstrap_check(None, region)
        return Check("bootstrap", Status.PROBLEM, f"cannot read {BOOTSTRAP_STACK}: {_message(error)}")
    # What `cdk deploy` and the template's CheckBootstrapVersion rule read; the stack's output says the same.
    try:
        version = client("ssm").get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
    except ClientError:
        outputs = {output["OutputKey"]: output["OutputValue"] for output in toolkit.get("Outputs", [])}
        version = outputs.get("BootstrapVersion")
    if version is None or not str(version).isdigit():
        return Check(
            "bootstrap",
            Status.PROBLEM,
            f"{BOOTSTRAP_STACK} in {region} has no version ({BOOTSTRAP_VERSION_PARAMETER} nor its BootstrapVersion "
            "output)",
            f"npx cdk bootstrap aws://ACCOUNT/{region}",
        )
    return bootstrap_check(int(version), region)


def _quotas(client: ClientFactory, stack: str, outputs: dict[str, str] | None, region: str) -> list[Check]:
    service_quotas = client("service-quotas")
    if outputs is None:
        try:
            values = {quota: _quota_value(service_quotas, quota) for quota in QUOTAS.values()}
        except ClientError as error:
            return [_unreadable_quota(error)]
        return [quota_values(values, region)]
    try:
        computes = deployed_computes(client("batch"), stack, [outputs[key] for key in QUEUE_OUTPUTS])
    except ClientError as error:
        return [Check("quotas", Status.NOTE, f"cannot read the stack's compute environments: {_message(error)}")]
    checks = unknown_families(computes)
    for quota, users in quotas_needed(computes).items():
        try:
            checks.append(quota_check(quota, users, _quota_value(service_quotas, quota), region))
        except ClientError as error:
            checks.append(_unreadable_quota(error))
    return checks


def deployed_computes(batch: Any, stack: str, job_queues: list[str]) -> list[ComputeCapacity]:
    """The compute environments behind the stack's job queues, as deployed (DescribeComputeEnvironments): their
    instance types, ceiling and purchase option. Each is named after its queue (`<stack>-gpu-cluster`)."""
    computes = []
    for queue in batch.describe_job_queues(jobQueues=job_queues)["jobQueues"]:
        name = queue["jobQueueName"].removeprefix(f"{stack}-")
        arns = [entry["computeEnvironment"] for entry in queue["computeEnvironmentOrder"]]
        for environment in batch.describe_compute_environments(computeEnvironments=arns)["computeEnvironments"]:
            resources = environment.get("computeResources") or {}
            if resources.get("type") not in ("EC2", "SPOT"):  # unmanaged or Fargate: no EC2 instance quota
                continue
            computes.append(
                ComputeCapacity(
                    name=name,
                    instance_types=tuple(resources.get("instanceTypes", [])),
                    max_vcpus=resources["maxvCpus"],
                    spot=resources["type"] == "SPOT",
                )
            )
    return computes


def _quota_value(service_quotas: Any, quota: Quota) -> float:
    """The quota's applied value; a quota never changed in the account may have none, only AWS's default."""
    try:
        return float(service_quotas.get_service_quota(ServiceCode="ec2", QuotaCode=quota.code)["Quota"]["Value"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchResourceException":
            raise
    default = service_quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=quota.code)
    return float(default["Quota"]["Value"])


def _unreadable_quota(error: ClientError) -> Check:
    return Check(
        "quotas",
        Status.NOTE,
        f"cannot read EC2's vCPU quotas: {_message(error)}",
        "allow servicequotas:GetServiceQuota and GetAWSDefaultServiceQuota, or check them in the console",
    )


def _message(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Message") or str(error)
