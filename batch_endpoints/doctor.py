"""`bep doctor`: what a deployment on AWS needs, one check at a time, each ok or a problem with what to do.

The checks that ask AWS live in `adapters.aws.doctor`; this module holds what they report and the rules that need
no AWS: how instance families map to EC2's vCPU quotas, when a bootstrap stack is recent enough, whether Docker
answers.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

# The bootstrap stack version the pinned aws-cdk-lib (2.275) requires: its synthesized template's
# CheckBootstrapVersion rule refuses 1-5 (tests/test_doctor.py reads the rule from a synthesis).
REQUIRED_BOOTSTRAP_VERSION = 6
BOOTSTRAP_STACK = "CDKToolkit"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"  # the default qualifier; cdk.json keeps it
DOCKER_TIMEOUT_S = 20


class Status(StrEnum):
    OK = "ok"
    NOTE = "note"
    """Worth knowing, not a failure."""
    PROBLEM = "problem"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    advice: str = ""

    def line(self) -> str:
        return f"{self.status.value:<7} {self.name}: {self.detail}" + (f" -> {self.advice}" if self.advice else "")


def failed(checks: Iterable[Check]) -> bool:
    return any(check.status == Status.PROBLEM for check in checks)


# ---------------------------------------------------------------- vCPU quotas
@dataclass(frozen=True)
class Quota:
    """One of EC2's vCPU quotas (Service Quotas, service code ec2): it caps the vCPUs of running instances of some
    families in a region, all of the account's workloads together."""

    code: str
    name: str


# Standard families are A, C, D, H, I, M, R, T, Z (the quota's own name); G and VT are the G-instance quota's.
STANDARD_FAMILIES = frozenset("acdhimrtz")
GPU_FAMILIES = frozenset({"g", "vt"})
QUOTAS = {
    (False, "standard"): Quota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    (False, "gpu"): Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    (True, "standard"): Quota("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
    (True, "gpu"): Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
}
_FAMILY_LETTERS = re.compile(r"^[a-z]+")


@dataclass(frozen=True)
class ComputeCapacity:
    """A compute environment as deployed: the instance types it may launch and its ceiling."""

    name: str
    instance_types: tuple[str, ...]
    max_vcpus: int
    spot: bool


def quota_for(instance_type: str, *, spot: bool) -> Quota | None:
    """The quota an instance type or family (g5.xlarge, c6i, optimal) counts against; None for families whose
    quotas this does not know (P, Inf, X, ...)."""
    if instance_type == "optimal":  # Batch's choice among C, M and R
        return QUOTAS[(spot, "standard")]
    letters = _FAMILY_LETTERS.match(instance_type.split(".")[0])
    family = letters[0] if letters else ""
    if family in GPU_FAMILIES:
        return QUOTAS[(spot, "gpu")]
    if len(family) == 1 and family in STANDARD_FAMILIES:
        return QUOTAS[(spot, "standard")]
    return None


def quotas_needed(computes: Iterable[ComputeCapacity]) -> dict[Quota, list[ComputeCapacity]]:
    """Each quota the computes count against, with the computes that do."""
    needed: dict[Quota, list[ComputeCapacity]] = {}
    for compute in computes:
        for quota in dict.fromkeys(quota_for(t, spot=compute.spot) for t in compute.instance_types):
            if quota is not None:
                needed.setdefault(quota, []).append(compute)
    return needed


def unknown_families(computes: Iterable[ComputeCapacity]) -> list[Check]:
    return [
        Check(
            f"quota for {compute.name}",
            Status.NOTE,
            f"no known vCPU quota for instance type {instance_type}",
            "check its quota in the Service Quotas console (service Amazon EC2)",
        )
        for compute in computes
        for instance_type in compute.instance_types
        if quota_for(instance_type, spot=compute.spot) is None
    ]


def quota_check(quota: Quota, computes: list[ComputeCapacity], value: float, region: str) -> Check:
    """A quota against the computes' ceilings together: 0 means their jobs never start; below the ceilings, fewer
    instances run than the stack allows."""
    names = " and ".join(compute.name for compute in computes)
    wanted = sum(compute.max_vcpus for compute in computes)
    have = int(value)
    what = f"{quota.name!r} ({quota.code}) is {have} vCPUs in {region}"
    increase = (
        f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {quota.code} "
        f"--desired-value {wanted}"
    )
    if have <= 0:
        return Check(
            f"quota for {names}", Status.PROBLEM, f"{what}: no instance starts, jobs wait in RUNNABLE", increase
        )
    if have < wanted:
        return Check(
            f"quota for {names}",
            Status.PROBLEM,
            f"{what}, below the {wanted} vCPUs {names} may scale to: fewer instances run than the stack allows",
            f"{increase} (or lower the compute's max vCPUs to {have})",
        )
    return Check(f"quota for {names}", Status.OK, f"{what}, enough for {wanted} vCPUs")


def quota_values(values: Mapping[Quota, float], region: str) -> Check:
    """Before the stack exists: the quotas' values, to compare with the settings about to be deployed."""
    listed = ", ".join(f"{quota.name} {int(value)}" for quota, value in values.items())
    return Check(
        "quotas",
        Status.NOTE,
        f"vCPU quotas in {region}: {listed}",
        "keep cpu_max_vcpus and gpu_max_vcpus within them (0 means no instance of that kind starts)",
    )


# ---------------------------------------------------------------- the CDK bootstrap stack
def bootstrap_check(version: int | None, region: str, *, required: int = REQUIRED_BOOTSTRAP_VERSION) -> Check:
    bootstrap = f"npx cdk bootstrap aws://ACCOUNT/{region}"
    if version is None:
        return Check(
            "bootstrap",
            Status.PROBLEM,
            f"no CDK bootstrap stack ({BOOTSTRAP_STACK}) in {region}: cdk deploy has nowhere to put its assets",
            bootstrap,
        )
    if version < required:
        return Check(
            "bootstrap",
            Status.PROBLEM,
            f"{BOOTSTRAP_STACK} in {region} is version {version}; this stack needs {required} or later",
            f"{bootstrap} (upgrades it in place)",
        )
    return Check("bootstrap", Status.OK, f"{BOOTSTRAP_STACK} in {region} is version {version} (needs {required}+)")


# ---------------------------------------------------------------- Docker
def docker_check(*, deploying: bool) -> Check:
    """`cdk deploy` builds the scoring images with Docker; other commands never need it."""
    try:
        answer = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        problem = "no docker command on PATH"
    except subprocess.TimeoutExpired:
        problem = f"docker info did not answer in {DOCKER_TIMEOUT_S} s"
    else:
        if answer.returncode == 0:
            return Check("docker", Status.OK, f"Docker daemon {answer.stdout.strip()} answers")
        problem = (answer.stderr.strip() or answer.stdout.strip() or f"exit {answer.returncode}").splitlines()[-1]
    return Check(
        "docker",
        Status.PROBLEM if deploying else Status.NOTE,
        f"{problem}: cdk deploy builds the scoring images with Docker",
        "start Docker on the machine that deploys" + ("" if deploying else " (only deploys need it)"),
    )
