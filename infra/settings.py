"""What a deployment of the stack may choose, read from CDK context (`cdk.json` or `npx cdk deploy -c key=value`).

Every key has a default that deploys a working system costing nothing while idle. Values given with `-c` arrive as
strings, so lists may also be written comma-separated (`-c cpu_instance_types=c7i,m7i`) and booleans as
true/false.

    key                     default                                   meaning
    spot                    false                                     Spot instances for both computes (up to
                                                                      90% cheaper; a reclaimed shard is retried)
    cpu_instance_types      c6i,m6i                                   families or sizes for cpu-cluster
    cpu_max_vcpus           256                                       cpu-cluster's ceiling
    cpu_job_vcpus           4         cpu_job_memory_mib 7168          one shard's share of an instance
    gpu_instance_types      g5.xlarge,g5.2xlarge,g6.xlarge,g6.2xlarge  sizes for gpu-cluster (one GPU each)
    gpu_max_vcpus           32                                        gpu-cluster's ceiling (8 GPUs)
    gpu_job_vcpus           4         gpu_job_memory_mib 14336         gpu_job_gpus 1
    nat_gateways            0                                         >0: Batch instances move to private
                                                                      subnets behind that many NAT gateways
    scratch_expiry_days     30                                        jobs/<job id>/ scratch files expire
    upload_expiry_days      7                                         uploads/ (files the CLI and SDK staged
                                                                      for a job or a registration) expire
    availability_zones      3                                         AZs of the VPC: each adds subnets, so
                                                                      more Spot pools and g5/g6 capacity
    runnable_timeout_minutes  30                                      a shard's Batch job that waits this long
                                                                      in RUNNABLE (no capacity, a quota of 0)
                                                                      is canceled and the job says why
    workflow_log_level      ERROR                                     the state machine's log level (ALL, ERROR,
                                                                      FATAL, OFF)
    workflow_log_execution_data  false                                log states' input and output too
    versioned_bucket        false                                     S3 versioning on the data bucket
    data_buckets            (none)                                    other buckets holding inputs or outputs:
                                                                      the Lambdas and jobs may read and write them
    scoped_invokers         (none)                                    endpoint names: one invoker policy each,
                                                                      limited to that endpoint's jobs
    simulate_caller_policy  false                                     before a job starts, ask IAM whether the
                                                                      caller itself may read its input and write
                                                                      its output (iam:SimulatePrincipalPolicy)
    alarm_email             (none)                                    subscribed to the alarm topic
    api_rate_limit          50        api_burst_limit 100              stage throttling, requests per second

Uploads expire after a week: a staged input is read by the job that follows it within minutes, and a staged model
or code folder is copied to models/ or code/ when registered; a week leaves room for a job queued over a weekend.
The state machine logs errors only by default: ALL with execution data writes every state's input and output for
every shard, which at 10,000 shards is tens of thousands of log events per job.

Job memory is below the instance's size: the ECS agent keeps a few hundred MiB of every instance to itself, and a
job asking for all 8 GiB of a c6i.xlarge would wait for a bigger instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from constructs import Node

CPU_INSTANCE_TYPES = ("c6i", "m6i")
GPU_INSTANCE_TYPES = ("g5.xlarge", "g5.2xlarge", "g6.xlarge", "g6.2xlarge")
WORKFLOW_LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")


@dataclass(frozen=True)
class ComputeSettings:
    """One named compute: an AWS Batch compute environment and its job queue, and one shard job's resources."""

    name: str
    kind: str
    instance_types: tuple[str, ...]
    max_vcpus: int
    vcpus: int
    memory_mib: int
    gpus: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("cpu", "gpu"):
            raise ValueError(f"compute {self.name!r}: kind must be cpu or gpu, not {self.kind!r}")
        if not self.instance_types:
            raise ValueError(f"compute {self.name!r}: no instance types")
        if not 0 < self.vcpus <= self.max_vcpus:
            raise ValueError(f"compute {self.name!r}: a job's {self.vcpus} vCPUs exceed max_vcpus {self.max_vcpus}")
        if self.kind == "gpu" and self.gpus < 1:
            raise ValueError(f"compute {self.name!r}: a GPU compute's jobs need at least one GPU")

    def registry_entry(self, job_queue_arn: str) -> dict[str, Any]:
        """The compute as BEP_COMPUTES describes it to the Lambdas (adapters.aws.computes)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "job_queue": job_queue_arn,
            "instance_types": list(self.instance_types),
            "max_vcpus": self.max_vcpus,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "gpus": self.gpus,
        }


@dataclass(frozen=True)
class StackSettings:
    cpu: ComputeSettings = field(
        default_factory=lambda: ComputeSettings("cpu-cluster", "cpu", CPU_INSTANCE_TYPES, 256, 4, 7168)
    )
    gpu: ComputeSettings = field(
        default_factory=lambda: ComputeSettings("gpu-cluster", "gpu", GPU_INSTANCE_TYPES, 32, 4, 14336, 1)
    )
    spot: bool = False
    nat_gateways: int = 0
    scratch_expiry_days: int = 30
    upload_expiry_days: int = 7
    availability_zones: int = 3
    runnable_timeout_minutes: int = 30
    workflow_log_level: str = "ERROR"
    workflow_log_execution_data: bool = False
    versioned_bucket: bool = False
    data_buckets: tuple[str, ...] = ()
    scoped_invokers: tuple[str, ...] = ()
    simulate_caller_policy: bool = False
    alarm_email: str | None = None
    api_rate_limit: int = 50
    api_burst_limit: int = 100

    def __post_init__(self) -> None:
        if self.workflow_log_level not in WORKFLOW_LOG_LEVELS:
            raise ValueError(
                f"workflow_log_level must be one of {', '.join(WORKFLOW_LOG_LEVELS)}, not {self.workflow_log_level!r}"
            )
        for name in ("upload_expiry_days", "availability_zones", "runnable_timeout_minutes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")

    @property
    def computes(self) -> tuple[ComputeSettings, ComputeSettings]:
        return (self.cpu, self.gpu)

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        def value(key: str) -> Any:
            return node.try_get_context(key)

        defaults = cls()

        def compute(base: ComputeSettings) -> ComputeSettings:
            kind = base.kind
            return ComputeSettings(
                name=base.name,
                kind=kind,
                instance_types=_strings(value(f"{kind}_instance_types")) or base.instance_types,
                max_vcpus=_int(value(f"{kind}_max_vcpus"), base.max_vcpus),
                vcpus=_int(value(f"{kind}_job_vcpus"), base.vcpus),
                memory_mib=_int(value(f"{kind}_job_memory_mib"), base.memory_mib),
                gpus=_int(value(f"{kind}_job_gpus"), base.gpus),
            )

        return cls(
            cpu=compute(defaults.cpu),
            gpu=compute(defaults.gpu),
            spot=_bool(value("spot"), defaults.spot),
            nat_gateways=_int(value("nat_gateways"), defaults.nat_gateways),
            scratch_expiry_days=_int(value("scratch_expiry_days"), defaults.scratch_expiry_days),
            upload_expiry_days=_int(value("upload_expiry_days"), defaults.upload_expiry_days),
            availability_zones=_int(value("availability_zones"), defaults.availability_zones),
            runnable_timeout_minutes=_int(value("runnable_timeout_minutes"), defaults.runnable_timeout_minutes),
            workflow_log_level=str(value("workflow_log_level") or defaults.workflow_log_level).upper(),
            workflow_log_execution_data=_bool(
                value("workflow_log_execution_data"), defaults.workflow_log_execution_data
            ),
            versioned_bucket=_bool(value("versioned_bucket"), defaults.versioned_bucket),
            data_buckets=_strings(value("data_buckets")),
            scoped_invokers=_strings(value("scoped_invokers")),
            simulate_caller_policy=_bool(value("simulate_caller_policy"), defaults.simulate_caller_policy),
            alarm_email=value("alarm_email") or None,
            api_rate_limit=_int(value("api_rate_limit"), defaults.api_rate_limit),
            api_burst_limit=_int(value("api_burst_limit"), defaults.api_burst_limit),
        )


def _strings(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(str(item).strip() for item in items if str(item).strip())


def _int(raw: Any, default: int) -> int:
    return default if raw is None or raw == "" else int(raw)


def _bool(raw: Any, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {raw!r}")
    return text == "true"
