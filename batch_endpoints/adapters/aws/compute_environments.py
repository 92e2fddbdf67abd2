"""A compute a user creates, made real: an AWS Batch managed compute environment and its job queue, built from
the stack's networking, instance role and launch templates (`ComputeTemplate`, from BEP_COMPUTE_TEMPLATE); Batch
acts through its service-linked role, as for the stack's own compute environments.

AWS Batch changes both asynchronously, and in an order it enforces (AWS Batch API reference):
- CreateJobQueue takes only compute environments that are VALID; a new one is CREATING for a minute or so.
- DeleteJobQueue needs the queue DISABLED (UpdateJobQueue state=DISABLED), and the queue then goes DELETING.
- DeleteComputeEnvironment needs the environment DISABLED and no queue that still names it.
- Neither takes an update while its status is CREATING, UPDATING or DELETING.
So creating and deleting are each a sequence of steps: `step` looks at what AWS has now and takes the next one
that AWS allows, and the compute stays Creating or Deleting until the last is done. Every call (create, show,
list, delete) moves it on; nothing waits inside a request (API Gateway gives the API 29 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from batch_endpoints.compute_sizes import instance_size
from batch_endpoints.errors import ConflictError, ValidationError
from batch_endpoints.specs import Compute

# Statuses in which Batch accepts no update to a compute environment or job queue.
BUSY = ("CREATING", "UPDATING", "DELETING")
MACHINE_IMAGES = {"cpu": "ECS_AL2023", "gpu": "ECS_AL2023_NVIDIA"}
# The reasons Batch gives a RUNNABLE job it cannot place (infra.compute.RUNNABLE_REASONS: the stack's own queues
# cancel such jobs after the same time limit).
RUNNABLE_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
)
TEMPLATE_FIELDS = ("prefix", "subnets", "security_groups", "instance_role", "launch_templates")


@dataclass(frozen=True)
class ComputeTemplate:
    """What every created compute is built from: the stack's name (its resources' prefix and tag), networking,
    the instance profile, the launch template per kind, and the RUNNABLE time limit."""

    prefix: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    instance_role: str
    launch_templates: Mapping[str, str]
    runnable_timeout_s: int = 1800

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ComputeTemplate:
        missing = [key for key in TEMPLATE_FIELDS if not settings.get(key)]
        if missing:
            raise ValidationError(
                f"BEP_COMPUTE_TEMPLATE is missing {', '.join(missing)}: this stack cannot create computes",
                field="BEP_COMPUTE_TEMPLATE",
            )
        return cls(
            prefix=str(settings["prefix"]),
            subnets=tuple(settings["subnets"]),
            security_groups=tuple(settings["security_groups"]),
            instance_role=str(settings["instance_role"]),
            launch_templates=dict(settings["launch_templates"]),
            runnable_timeout_s=int(settings.get("runnable_timeout_s") or 1800),
        )

    def resource_name(self, compute_name: str) -> str:
        return f"{self.prefix}-{compute_name}"


class ComputeEnvironments:
    """Creates, scales and removes the compute environment and job queue of created computes."""

    def __init__(self, client: Any, template: ComputeTemplate) -> None:
        self.client = client
        self.template = template

    def create(self, compute: Compute) -> Compute:
        size = instance_size(compute.size)
        name = self.template.resource_name(compute.name)
        spot = compute.tier == "low_priority"
        tags = self._tags(compute)
        resources: dict[str, Any] = {
            "type": "SPOT" if spot else "EC2",
            "allocationStrategy": "SPOT_PRICE_CAPACITY_OPTIMIZED" if spot else "BEST_FIT_PROGRESSIVE",
            "minvCpus": compute.min_instances * size.vcpus,
            "maxvCpus": compute.max_instances * size.vcpus,
            "instanceTypes": [size.instance_type],
            "subnets": list(self.template.subnets),
            "securityGroupIds": list(self.template.security_groups),
            "instanceRole": self.template.instance_role,
            "launchTemplate": {
                "launchTemplateId": self.template.launch_templates[size.kind],
                "version": "$Latest",
            },
            "ec2Configuration": [{"imageType": MACHINE_IMAGES[size.kind]}],
            "tags": tags,
        }
        try:
            response = self.client.create_compute_environment(
                computeEnvironmentName=name,
                type="MANAGED",
                state="ENABLED",
                computeResources=resources,
                tags=tags,
            )
        except ClientError as error:
            # A Region's 50 compute environments (a quota that cannot be raised), or a name another stack took.
            reason = _refusal(error)
            raise ConflictError(f"AWS Batch refused compute {compute.name!r}: {reason}", field="name") from None
        details = {
            "compute_environment": response["computeEnvironmentArn"],
            "job_queue": "",
            "instance_types": [size.instance_type],
            "max_vcpus": compute.max_instances * size.vcpus,
            "vcpus": size.vcpus,
            "memory_mib": size.job_memory_mib,
            "gpus": size.gpus,
        }
        return self._step_create(compute.model_copy(update={"details": details, "provisioning_state": "Creating"}))

    def resize(self, compute: Compute) -> Compute:
        vcpus = int(compute.details["vcpus"])
        try:
            self.client.update_compute_environment(
                computeEnvironment=compute.details["compute_environment"],
                computeResources={
                    "minvCpus": compute.min_instances * vcpus,
                    "maxvCpus": compute.max_instances * vcpus,
                },
            )
        except ClientError as error:
            _refusal(error)  # Batch takes one change at a time: the last update is still UPDATING.
            raise ConflictError(
                f"compute {compute.name!r} is still applying a change; update it again in a minute",
                field="name",
            ) from None
        return compute.model_copy(update={"details": {**compute.details, "max_vcpus": compute.max_instances * vcpus}})

    def step(self, compute: Compute) -> Compute | None:
        """Take the next step AWS allows towards the compute's state; None once a deleted one is gone."""
        if compute.provisioning_state == "Creating":
            return self._step_create(compute)
        if compute.provisioning_state == "Deleting":
            return self._step_delete(compute)
        return compute

    def _step_create(self, compute: Compute) -> Compute:
        environment = self._environment(compute)
        if environment is None or environment["status"] == "INVALID":
            reason = environment.get("statusReason", "") if environment else "its compute environment is gone"
            return compute.model_copy(
                update={"provisioning_state": "Failed", "details": {**compute.details, "status_reason": reason}}
            )
        if environment["status"] != "VALID":
            return compute
        queue = self._queue(compute)
        if queue is None:
            self.client.create_job_queue(
                jobQueueName=self.template.resource_name(compute.name),
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
                jobStateTimeLimitActions=[
                    {
                        "reason": reason,
                        "state": "RUNNABLE",
                        "maxTimeSeconds": self.template.runnable_timeout_s,
                        "action": "CANCEL",
                    }
                    for reason in RUNNABLE_REASONS
                ],
                tags=self._tags(compute),
            )
            queue = self._queue(compute)
        if queue is None or queue["status"] != "VALID":
            return compute
        details = {**compute.details, "job_queue": queue["jobQueueArn"]}
        return compute.model_copy(update={"provisioning_state": "Succeeded", "details": details})

    def _step_delete(self, compute: Compute) -> Compute | None:
        queue = self._queue(compute)
        if queue is not None:
            if queue["status"] in BUSY:
                return compute
            if queue["state"] == "ENABLED":
                self.client.update_job_queue(jobQueue=queue["jobQueueArn"], state="DISABLED")
            else:
                self.client.delete_job_queue(jobQueue=queue["jobQueueArn"])
            return compute
        environment = self._environment(compute)
        if environment is None:
            return None
        if environment["status"] in BUSY:
            return compute
        if environment["state"] == "ENABLED":
            self.client.update_compute_environment(
                computeEnvironment=environment["computeEnvironmentArn"], state="DISABLED"
            )
        else:
            self.client.delete_compute_environment(computeEnvironment=environment["computeEnvironmentArn"])
        return compute

    def _environment(self, compute: Compute) -> dict[str, Any] | None:
        found = self.client.describe_compute_environments(
            computeEnvironments=[self.template.resource_name(compute.name)]
        )["computeEnvironments"]
        # A deleted environment is listed DELETED for a while before it disappears.
        return next((e for e in found if e.get("status") != "DELETED"), None)

    def _queue(self, compute: Compute) -> dict[str, Any] | None:
        found = self.client.describe_job_queues(jobQueues=[self.template.resource_name(compute.name)])["jobQueues"]
        return next((q for q in found if q.get("status") != "DELETED"), None)

    def _tags(self, compute: Compute) -> dict[str, str]:
        return {**compute.tags, "bep:stack": self.template.prefix, "bep:compute": compute.name}


def _refusal(error: ClientError) -> str:
    """Batch's reason for a ClientException, what it refuses to do as asked; any other error is raised on."""
    if error.response["Error"]["Code"] != "ClientException":
        raise error
    return str(error.response["Error"].get("Message", ""))
