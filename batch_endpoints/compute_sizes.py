"""The machine sizes a compute may name: Azure's VM sizes, each mapped to the EC2 instance type closest in vCPUs,
memory and GPU, and those EC2 types by their own names.

A shard's Batch job asks for the whole instance: all its vCPUs and its memory less what the ECS agent and the
operating system keep. Batch places a job only on an instance whose *registered* memory covers the request, and
ECS registers less than the instance type's nominal memory (AWS Batch user guide, "Compute resource memory
management"), so asking for the nominal figure leaves every job RUNNABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from batch_endpoints.errors import ValidationError

# The share of an instance's memory a job may ask for; the rest is the agent's and the OS's (see above).
JOB_MEMORY_SHARE = 0.85


@dataclass(frozen=True)
class InstanceSize:
    instance_type: str
    vcpus: int
    memory_mib: int
    gpus: int = 0

    @property
    def kind(self) -> Literal["cpu", "gpu"]:
        return "gpu" if self.gpus else "cpu"

    @property
    def job_memory_mib(self) -> int:
        return int(self.memory_mib * JOB_MEMORY_SHARE)


EC2_SIZES = {
    size.instance_type: size
    for size in (
        InstanceSize("m5.large", 2, 8192),
        InstanceSize("m5.xlarge", 4, 16384),
        InstanceSize("m5.2xlarge", 8, 32768),
        InstanceSize("m5.4xlarge", 16, 65536),
        InstanceSize("m6i.xlarge", 4, 16384),
        InstanceSize("m6i.2xlarge", 8, 32768),
        InstanceSize("c5.xlarge", 4, 8192),
        InstanceSize("c5.2xlarge", 8, 16384),
        InstanceSize("c6i.xlarge", 4, 8192),
        InstanceSize("c6i.2xlarge", 8, 16384),
        InstanceSize("r5.xlarge", 4, 32768),
        InstanceSize("r5.2xlarge", 8, 65536),
        InstanceSize("g4dn.xlarge", 4, 16384, 1),
        InstanceSize("g4dn.2xlarge", 8, 32768, 1),
        InstanceSize("g4dn.4xlarge", 16, 65536, 1),
        InstanceSize("g5.xlarge", 4, 16384, 1),
        InstanceSize("g5.2xlarge", 8, 32768, 1),
        InstanceSize("g5.8xlarge", 32, 131072, 1),
        InstanceSize("g5.12xlarge", 48, 196608, 4),
        InstanceSize("g6.xlarge", 4, 16384, 1),
        InstanceSize("g6.2xlarge", 8, 32768, 1),
    )
}

# Azure VM size -> the EC2 type of the same vCPUs (or the next up) and GPUs. Azure's V100 sizes (NC*s_v3) map to
# A10G instances: EC2's V100 type (p3) is a previous generation many regions no longer offer.
AZURE_SIZES = {
    "Standard_DS2_v2": "m5.large",
    "Standard_DS3_v2": "m5.xlarge",
    "Standard_DS4_v2": "m5.2xlarge",
    "Standard_DS5_v2": "m5.4xlarge",
    "Standard_D2s_v3": "m5.large",
    "Standard_D4s_v3": "m5.xlarge",
    "Standard_D8s_v3": "m5.2xlarge",
    "Standard_D16s_v3": "m5.4xlarge",
    "Standard_F4s_v2": "c5.xlarge",
    "Standard_F8s_v2": "c5.2xlarge",
    "Standard_E4s_v3": "r5.xlarge",
    "Standard_E8s_v3": "r5.2xlarge",
    "Standard_NC4as_T4_v3": "g4dn.xlarge",
    "Standard_NC8as_T4_v3": "g4dn.2xlarge",
    "Standard_NC16as_T4_v3": "g4dn.4xlarge",
    "Standard_NV6ads_A10_v5": "g5.xlarge",
    "Standard_NV36ads_A10_v5": "g5.8xlarge",
    "Standard_NC6s_v3": "g5.2xlarge",
    "Standard_NC24s_v3": "g5.12xlarge",
}


def instance_size(size: str, *, field: str = "size") -> InstanceSize:
    """The instance an Azure VM size or an EC2 type names; Azure's names are matched without regard to case, as
    Azure does."""
    by_azure_name = {name.lower(): ec2 for name, ec2 in AZURE_SIZES.items()}
    ec2_type = by_azure_name.get(size.lower(), size)
    found = EC2_SIZES.get(ec2_type)
    if found is None:
        raise ValidationError(
            f"size {size!r} is not known; expected an Azure VM size ({', '.join(AZURE_SIZES)}) "
            f"or an EC2 instance type ({', '.join(EC2_SIZES)})",
            field=field,
        )
    return found
