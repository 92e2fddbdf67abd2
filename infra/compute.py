"""Where shards are scored: AWS Batch compute environments that scale to zero, their job queues, the scoring images
and the roles and log group the deployments' job definitions use.

Network: a VPC of public subnets with no NAT gateway, so nothing in it costs money while no job runs. Batch
instances get public IPv4 addresses (the subnets assign them) and reach ECR, CloudWatch Logs and the Batch/ECS
endpoints over the internet; S3 and DynamoDB, where the data goes, through free gateway endpoints. No inbound
traffic is allowed. With context nat_gateways > 0 the instances move to private subnets behind NAT gateways
instead (about 32 USD a month each, idle or not). Interface endpoints would keep the instances off the internet
too, but cost about 7 USD a month per endpoint per AZ, and they would need five of them.

Job definitions are not here: the API Lambda registers one per deployment at runtime (adapters.aws.computes),
with the image, job role, execution role and log group this construct exposes (`lambda_environment`), and the
permissions to do so are granted here (`grant_register_job_definitions`, `grant_read_jobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.settings import ComputeSettings

IMAGE_FILES = {"cpu": "batch_container/Dockerfile", "gpu": "batch_container/Dockerfile.gpu"}
# The images' build context is the repository root (they install the project); only this goes into it.
IMAGE_SOURCES = ("pyproject.toml", "requirements.lock", "README.md", "batch_endpoints", "batch_container")
MACHINE_IMAGES = {"cpu": batch.EcsMachineImageType.ECS_AL2023, "gpu": batch.EcsMachineImageType.ECS_AL2023_NVIDIA}
# Root volume: the GPU image (CUDA runtime + torch) is about 10 GB, and a shard's inputs are staged on local disk.
ROOT_VOLUME_GIB = {"cpu": 50, "gpu": 150}
ROOT_DEVICE = "/dev/xvda"
# The reasons Batch gives a RUNNABLE job it cannot place, which a queue's time limit may act on (AWS Batch user guide,
# "Jobs stuck in RUNNABLE"); a job canceled for one ends FAILED with "Canceled by JobStateTimeLimit action ...".
RUNNABLE_REASONS = (
    batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
    batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
    batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
)
# The EC2 Service Quotas (vCPUs) that cap each kind's instances, On-Demand and Spot; a new account's G quotas are 0.
QUOTAS = {
    ("cpu", False): "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    ("gpu", False): "Running On-Demand G and VT instances",
    ("cpu", True): "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    ("gpu", True): "All G and VT Spot Instance Requests",
}
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# Job definitions are registered per deployment by the API Lambda: bep-<endpoint>_<deployment>
# (adapters.aws.computes.job_definition_name).
JOB_DEFINITION_NAMES = "bep-*"


class BatchCluster(Construct):
    """One compute (cpu-cluster, gpu-cluster): a managed EC2 compute environment from 0 vCPUs, and its job queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ComputeSettings,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        spot: bool,
        runnable_timeout: cdk.Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            # IMDSv2 only, hop limit 1: a bridge-mode container is one hop further, so scoring code (and the pip
            # packages it installs) cannot reach the metadata service and take the instance role's credentials.
            # Containers get the job role's credentials from the ECS agent, and the region from the job
            # definition (AWS_REGION), so they need nothing from it.
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name=ROOT_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        ROOT_VOLUME_GIB[settings.kind], encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
        )
        self.launch_template = launch_template
        self.environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "Environment",
            vpc=vpc,
            vpc_subnets=subnets,
            # Families (c6i) are instance classes to Batch, sizes (g5.xlarge) instance types.
            instance_classes=[
                getattr(ec2.InstanceClass, name.upper()) for name in settings.instance_types if "." not in name
            ],
            instance_types=[ec2.InstanceType(name) for name in settings.instance_types if "." in name],
            use_optimal_instance_classes=False,
            images=[batch.EcsMachineImage(image_type=MACHINE_IMAGES[settings.kind])],
            launch_template=launch_template,
            minv_cpus=0,
            maxv_cpus=settings.max_vcpus,
            spot=spot,
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
            update_to_latest_image_version=True,
        )
        self.queue = batch.JobQueue(
            self,
            "Queue",
            job_queue_name=f"{cdk.Stack.of(self).stack_name}-{settings.name}",
            compute_environments=[batch.OrderedComputeEnvironment(compute_environment=self.environment, order=1)],
            priority=1,
            # A job Batch cannot place stays RUNNABLE for as long as the queue lets it (up to a year): cancel it
            # after runnable_timeout, for each reason Batch can tell, so the shard fails and the job says why.
            job_state_time_limit_actions=[
                batch.JobStateTimeLimitAction(
                    max_time=runnable_timeout,
                    reason=reason,
                    action=batch.JobStateTimeLimitActionsAction.CANCEL,
                    state=batch.JobStateTimeLimitActionsState.RUNNABLE,
                )
                for reason in RUNNABLE_REASONS
            ],
        )
        minutes = int(runnable_timeout.to_minutes())
        self.stuck_message = (
            f"no capacity for {settings.name}'s instance types in {minutes} min: check the EC2 vCPU quota "
            f"'{QUOTAS[settings.kind, spot]}' and that {', '.join(settings.instance_types)} fit a shard's "
            f"{settings.vcpus} vCPUs and {settings.memory_mib} MiB within max_vcpus {settings.max_vcpus}"
        )
        """What a job says when a shard's Batch job was canceled in RUNNABLE: which compute, what to check."""


class Compute(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        computes: tuple[ComputeSettings, ...],
        repository_root: Path,
        spot: bool = False,
        nat_gateways: int = 0,
        availability_zones: int,
        runnable_timeout: cdk.Duration,
        flow_log_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = _network(self, nat_gateways, availability_zones, flow_log_bucket)
        subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PUBLIC
        )
        self.clusters = [
            BatchCluster(
                self,
                f"{c.kind.capitalize()}Cluster",
                settings=c,
                vpc=self.vpc,
                subnets=subnets,
                spot=spot,
                runnable_timeout=runnable_timeout,
            )
            for c in computes
        ]
        self.subnet_ids = self.vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        self.runnable_timeout = runnable_timeout
        # Computes users create (adapters.aws.compute_environments) launch instances as the stack's own do: the
        # first cluster's instance role (through a profile of its own: CDK keeps its profile to itself), its
        # security group (no inbound traffic), each kind's launch template, and Batch's service-linked role.
        base = self.clusters[0].environment
        if base.instance_role is None:
            raise ValueError("the stack's compute environments must have an instance role")
        self.created_instance_role: iam.IRole = base.instance_role
        self.created_security_group = base.connections.security_groups[0]
        self.created_instance_profile = iam.InstanceProfile(
            self, "CreatedComputesInstanceProfile", role=self.created_instance_role
        )
        self.images = {
            kind: ecr_assets.DockerImageAsset(
                self,
                f"{kind.capitalize()}Image",
                directory=str(repository_root),
                file=file,
                exclude=["*", *(f"!{source}" for source in IMAGE_SOURCES), "**/__pycache__", "**/*.pyc"],
                ignore_mode=cdk.IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
            for kind, file in IMAGE_FILES.items()
        }
        self.log_group = logs.LogGroup(
            self, "ScoringLogs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        """What the scoring containers print (awslogs driver), one stream per Batch job attempt."""
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Scoring containers: read inputs, models and code, write parts, count progress",
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="The ECS agent for scoring containers: pull the image, ship the logs",
        )
        # Deployments may name any image of this account's ECR (computes.py: images built FROM ours).
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                resources=[cdk.Stack.of(self).format_arn(service="ecr", resource="repository", resource_name="*")],
            )
        )
        self.execution_role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.log_group.grant_write(self.execution_role)

    @property
    def lambda_environment(self) -> dict[str, str]:
        """What the API Lambda needs to register a deployment's job definition and to find its jobs' logs."""
        stack = cdk.Stack.of(self)
        return {
            # The computes as the Lambdas' compute registry reads them, and the default image of each kind.
            "BEP_COMPUTES": stack.to_json_string(
                [cluster.settings.registry_entry(cluster.queue.job_queue_arn) for cluster in self.clusters]
            ),
            "BEP_IMAGES": stack.to_json_string({kind: image.image_uri for kind, image in self.images.items()}),
            "BEP_JOB_ROLE_ARN": self.job_role.role_arn,
            "BEP_EXECUTION_ROLE_ARN": self.execution_role.role_arn,
            "BEP_LOG_GROUP": self.log_group.log_group_name,
            "BEP_COMPUTE_TEMPLATE": stack.to_json_string(self.compute_template),
        }

    @property
    def compute_template(self) -> dict[str, Any]:
        """What the computes users create are built from (adapters.aws.compute_environments.ComputeTemplate)."""
        return {
            "prefix": cdk.Stack.of(self).stack_name,
            "subnets": self.subnet_ids,
            "security_groups": [self.created_security_group.security_group_id],
            "instance_role": self.created_instance_profile.instance_profile_arn,
            "launch_templates": {
                cluster.settings.kind: cluster.launch_template.launch_template_id for cluster in self.clusters
            },
            "runnable_timeout_s": int(self.runnable_timeout.to_seconds()),
        }

    def grant_create_computes(self, grantee: iam.IGrantable) -> None:
        """Create, scale and remove the compute environments and job queues of computes users create, named
        `<stack>-<compute>`, passing only the created computes' instance role."""
        stack = cdk.Stack.of(self)
        names = f"{stack.stack_name}-*"
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "batch:CreateComputeEnvironment",
                "batch:UpdateComputeEnvironment",
                "batch:DeleteComputeEnvironment",
                "batch:CreateJobQueue",
                "batch:UpdateJobQueue",
                "batch:DeleteJobQueue",
                "batch:TagResource",
            ],
            resource_arns=[
                stack.format_arn(service="batch", resource="compute-environment", resource_name=names),
                stack.format_arn(service="batch", resource="job-queue", resource_name=names),
            ],
        )
        # Batch's Describe actions have no resource-level permissions.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["batch:DescribeComputeEnvironments", "batch:DescribeJobQueues"],
            resource_arns=["*"],
        )
        self.created_instance_role.grant_pass_role(grantee.grant_principal)

    def grant_register_job_definitions(self, grantee: iam.IGrantable) -> None:
        """Register (and deregister) a job definition per deployment, running as the job and execution roles."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["batch:RegisterJobDefinition", "batch:DeregisterJobDefinition", "batch:TagResource"],
            resource_arns=[
                cdk.Stack.of(self).format_arn(
                    service="batch", resource="job-definition", resource_name=JOB_DEFINITION_NAMES
                )
            ],
        )
        self.job_role.grant_pass_role(grantee.grant_principal)
        self.execution_role.grant_pass_role(grantee.grant_principal)

    def grant_read_jobs(self, grantee: iam.IGrantable) -> None:
        """Read a job's logs: its Batch jobs (no resource-level permissions), then their log streams."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["batch:DescribeJobDefinitions", "batch:ListJobs", "batch:DescribeJobs"],
            resource_arns=["*"],
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["logs:FilterLogEvents"], resource_arns=[self.log_group.log_group_arn]
        )


def _network(scope: Construct, nat_gateways: int, availability_zones: int, flow_log_bucket: s3.IBucket) -> ec2.Vpc:
    subnets = [ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20)]
    if nat_gateways:
        subnets.append(
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20)
        )
    vpc = ec2.Vpc(
        scope,
        "Vpc",
        ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
        # An environment-agnostic stack gets two AZs from CDK whatever max_azs says; naming them by index
        # (Fn::GetAZs) gives more: more Spot capacity pools and more places that have g5/g6 capacity.
        availability_zones=[cdk.Fn.select(n, cdk.Fn.get_azs()) for n in range(availability_zones)],
        nat_gateways=nat_gateways,
        subnet_configuration=subnets,
        gateway_endpoints={
            "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
            "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
        },
    )
    vpc.add_flow_log(
        "FlowLogs",
        destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, "vpc-flow-logs/"),
        traffic_type=ec2.FlowLogTrafficType.ALL,
    )
    return vpc
