"""AWS Batch as the compute: each named compute is a job queue, each deployment a job definition revision.

The stack's own computes (cpu-cluster, gpu-cluster) come from BEP_COMPUTES; those users create are records, their
compute environment and queue made by compute_environments. A registration identical to an active revision of
the job definition reuses it, so the standalone pipeline jobs (all revisions of one job definition, which no
deployment delete retires) add one revision per distinct compute and image, not one per job.

A deployment's job definition runs the batch_container runner for one shard of one job:

    <image's ENTRYPOINT: python -m batch_container> --job-id Ref::job_id --shard Ref::shard

The state machine fills the two parameters at SubmitJob; nothing else about the job travels with it (the runner
reads the rest from the job record). The job definition holds what is fixed per deployment:

- image: the deployment's `environment.image` (inline, or copied from the registered environment version the
  deployment named, so a newer version changes nothing until the deployment is updated) when it names one the
  stack can run, else the stack's default image for the compute's kind. Azure's curated images (anything from
  mcr.microsoft.com) hold no runner, so a spec written for Azure runs on our default image unchanged. Any other
  image must be built FROM ours (or at least have `python -m batch_container` as its ENTRYPOINT) and be pullable
  by the compute environment's instance role (an ECR repository of this account, or a public registry). A
  pipeline deployment's command steps whose component's environment names such an image run on a revision of the
  deployment's job definition with that image (register_steps), one per distinct image.
- resources: the compute's vCPUs and memory, plus its GPUs on a GPU compute. BEP_CPUS tells the runner how
  many vCPUs it has: os.cpu_count() in a container sees the whole host.
- the runner's environment: the non-secret BEP_* variables that open the cloud backend (table, bucket), given
  to the registry by whoever builds it; and, when the job runs on our image, BEP_INSTALL_REQUIREMENTS=1: the
  runner then installs the environment's pip requirements that the image does not meet
  (batch_container/requirements.py). A custom image is the user's: it gets nothing installed.
- logs: the awslogs driver into one log group, streams `<job definition name>/default/<ECS task id>` (the
  prefix is the job definition's name, as Batch names streams by default), which the log reader matches.
- retries: a shard is safe to run again (finished mini-batches are skipped), so every failure is retried up
  to SHARD_ATTEMPTS, like the local job host does, except exit code 1: the runner exits 1 when it cannot work
  at all (no model, a scoring script that cannot start), which another attempt would not change.
- timeout: a backstop against a hung container, derived from the deployment's run settings for the largest
  shard a plan can make. The state machine should override it per job with the plan's exact
  `attempt_duration_s` (a job may override timeout and max_retries per invocation). A pipeline deployment's
  (whose command steps' Batch jobs run `--job-id J --step S` on it) is the longest, MAX_ATTEMPT_DURATION_S.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from batch_endpoints.adapters.aws.clients import aws_client
from batch_endpoints.adapters.aws.compute_environments import ComputeEnvironments, ComputeTemplate
from batch_endpoints.errors import ValidationError
from batch_endpoints.fetch_sizing import CPUS_VARIABLE
from batch_endpoints.planning import MAX_MINI_BATCHES_PER_SHARD
from batch_endpoints.ports import RecordStore
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Compute, Deployment, Environment, RunSettings

# The same number of tries the local job host gives a shard.
SHARD_ATTEMPTS = 3
# The runner's tries at a worker's init(), each up to init_timeout (batch_container/workers.py).
INIT_ATTEMPTS = 3
# Image pull, code and model download before init(), on a cold instance.
STARTUP_ALLOWANCE_S = 30 * 60
MIN_ATTEMPT_DURATION_S = 3600
# A backstop, not a budget: a shard is meant to run minutes (planning.py); two weeks means something hangs.
MAX_ATTEMPT_DURATION_S = 14 * 24 * 3600
# Registries whose images cannot hold our runner: Azure ML's curated environments.
FOREIGN_REGISTRIES = ("mcr.microsoft.com/",)
RUNNER_ARGUMENTS = ["--job-id", "Ref::job_id", "--shard", "Ref::shard"]
INSTALL_REQUIREMENTS_VARIABLE = "BEP_INSTALL_REQUIREMENTS"
# The hash of what a revision was registered with, by which an identical registration finds it (_register_once).
SPEC_TAG = "bep:definition"
REQUIRED_SETTINGS = ("name", "kind", "job_queue", "max_vcpus", "vcpus", "memory_mib")


def attempt_duration_seconds(settings: RunSettings, mini_batches_per_shard: int) -> int:
    """How long one Batch attempt at a shard may run before Batch ends it.

    The runner ends a run() call after `timeout` seconds and tries a mini-batch up to max_retries + 1 times,
    with max_concurrency_per_instance workers at once. So a shard where every call hangs to its timeout takes
    ceil(mini-batches / workers) * timeout * tries, and that is still the runner doing its job, as is an init()
    that hangs to its deadline on every try: only beyond that (plus the startup allowance) is the container
    itself stuck.
    """
    rounds = math.ceil(mini_batches_per_shard / settings.max_concurrency_per_instance)
    worst = rounds * settings.retry_settings.timeout * (settings.retry_settings.max_retries + 1)
    worst += INIT_ATTEMPTS * settings.init_timeout
    return min(MAX_ATTEMPT_DURATION_S, max(MIN_ATTEMPT_DURATION_S, worst + STARTUP_ALLOWANCE_S))


def job_definition_name(deployment: Deployment, prefix: str = "bep") -> str:
    # '_' appears in no endpoint or deployment name, so (a-b, c) and (a, b-c) never share a job definition.
    return f"{prefix}-{deployment.endpoint_name}_{deployment.name}"


class BatchComputeRegistry:
    """The computes of one stack, as configured (no AWS call to list them), and deployments as job definitions."""

    def __init__(
        self,
        computes: Sequence[Mapping[str, Any]],
        images: Mapping[str, str],
        job_role_arn: str,
        log_group: str,
        client: Any = None,
        *,
        execution_role_arn: str | None = None,
        runner_environment: Mapping[str, str] | None = None,
        name_prefix: str = "bep",
        records: RecordStore | None = None,
        template: ComputeTemplate | None = None,
    ) -> None:
        self._computes = {str(c["name"]): _compute(c) for c in computes}
        # Without records only the stack's own computes exist; without a template none can be created.
        self.repo = Repository(records) if records is not None else None
        self.template = template
        self.images = dict(images)
        self.job_role_arn = job_role_arn
        self.execution_role_arn = execution_role_arn
        self.log_group = log_group
        self.runner_environment = dict(runner_environment or {})
        self.name_prefix = name_prefix
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or aws_client("batch")

    @cached_property
    def environments(self) -> ComputeEnvironments:
        if self.template is None or self.repo is None:
            raise ValidationError(
                "this stack was deployed without BEP_COMPUTE_TEMPLATE: it cannot create computes", field="name"
            )
        return ComputeEnvironments(self.client, self.template)

    def list(self) -> list[Compute]:
        created = self.repo.list_computes() if self.repo else []
        return [*self._computes.values(), *created]

    def get(self, name: str) -> Compute | None:
        return self._computes.get(name) or (self.repo.get_compute(name) if self.repo else None)

    def job_queue(self, compute_name: str) -> str | None:
        compute = self.get(compute_name)
        return str(compute.details["job_queue"]) if compute and compute.details.get("job_queue") else None

    def provision(self, compute: Compute) -> Compute:
        return self.environments.create(compute)

    def resize(self, compute: Compute) -> Compute:
        return self.environments.resize(compute)

    def advance(self, compute: Compute) -> Compute | None:
        return self.environments.step(compute)

    def release(self, compute: Compute) -> Compute | None:
        return self.environments.step(compute.model_copy(update={"provisioning_state": "Deleting"}))

    def register_deployment(self, deployment: Deployment) -> str:
        """Register a new revision of the deployment's job definition; returns its ARN (name:revision)."""
        compute = self._compute_of(deployment)
        return self._register(deployment, compute, self.image_for(deployment.environment, compute))

    def register_steps(self, deployment: Deployment, environments: Mapping[str, Environment]) -> dict[str, str]:
        """A revision of the deployment's job definition per distinct image among the command steps' environments;
        returns each step's ARN, for the steps whose image is not the runner's (the others run on the deployment's
        own revision, which installs their requirements as it does a model deployment's). Revisions of the same
        name, so that deregister_deployment removes them all and a step's log streams keep the deployment's prefix."""
        compute = self._compute_of(deployment)
        images = {step: self.image_for(environment, compute) for step, environment in environments.items()}
        own = {image for image in images.values() if image != self.images[compute.kind]}
        arns = {image: self._register(deployment, compute, image) for image in sorted(own)}
        return {step: arns[image] for step, image in images.items() if image in arns}

    def _compute_of(self, deployment: Deployment) -> Compute:
        compute = self.get(deployment.compute)
        if compute is None:
            raise ValidationError(f"compute {deployment.compute!r} does not exist", field="compute")
        return compute

    def _register(self, deployment: Deployment, compute: Compute, image: str) -> str:
        config = compute.details
        name = job_definition_name(deployment, self.name_prefix)
        variables = {**self.runner_environment, CPUS_VARIABLE: str(config["vcpus"])}
        if image == self.images[compute.kind]:
            variables[INSTALL_REQUIREMENTS_VARIABLE] = "1"
        container: dict[str, Any] = {
            "image": image,
            "command": list(RUNNER_ARGUMENTS),
            "jobRoleArn": self.job_role_arn,
            "resourceRequirements": _resources(compute.kind, config),
            "environment": [{"name": key, "value": value} for key, value in sorted(variables.items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": self.log_group, "awslogs-stream-prefix": name},
            },
        }
        if self.execution_role_arn:
            container["executionRoleArn"] = self.execution_role_arn
        definition: dict[str, Any] = dict(
            jobDefinitionName=name,
            type="container",
            containerProperties=container,
            retryStrategy={
                "attempts": SHARD_ATTEMPTS,
                # First match wins; a failure matching none is retried.
                "evaluateOnExit": [
                    # Spot reclaim or a host that failed under the job: never the shard's fault.
                    {"onStatusReason": "Host EC2*", "action": "RETRY"},
                    {"onExitCode": "1", "action": "EXIT"},
                ],
            },
            timeout={"attemptDurationSeconds": _backstop_seconds(deployment)},
            # Batch jobs and their ECS tasks carry the deployment's name: cost allocation per endpoint.
            tags={"bep:endpoint": deployment.endpoint_name, "bep:deployment": deployment.name},
            propagateTags=True,
        )
        return self._register_once(definition)

    def _register_once(self, definition: dict[str, Any]) -> str:
        """The ARN of an active revision registered with exactly `definition`, registering one only when there is
        none. Revisions are immutable, so an identical one serves as well; without this, every standalone pipeline
        job (all of them revisions of one job definition, which no deployment delete retires) and every refused
        one would leave a revision behind. The definition's hash is a tag because DescribeJobDefinitions answers
        with fields Batch fills in (volumes, mountPoints, ulimits, ...), not with what was sent."""
        spec = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
        paginator = self.client.get_paginator("describe_job_definitions")
        for page in paginator.paginate(jobDefinitionName=definition["jobDefinitionName"], status="ACTIVE"):
            for found in page["jobDefinitions"]:
                if found.get("tags", {}).get(SPEC_TAG) == spec:
                    return str(found["jobDefinitionArn"])
        tags = {**definition["tags"], SPEC_TAG: spec}
        response = self.client.register_job_definition(**{**definition, "tags": tags})
        return str(response["jobDefinitionArn"])

    def deregister_deployment(self, deployment: Deployment) -> None:
        """Deregister every active revision of the deployment's job definition (a deleted deployment keeps none)."""
        name = job_definition_name(deployment, self.name_prefix)
        arns = {deployment.compute_handle, *deployment.step_handles.values()} - {""}
        paginator = self.client.get_paginator("describe_job_definitions")
        for page in paginator.paginate(jobDefinitionName=name, status="ACTIVE"):
            arns.update(d["jobDefinitionArn"] for d in page["jobDefinitions"])
        for arn in sorted(arns):
            try:
                self.client.deregister_job_definition(jobDefinition=arn)
            except ClientError as error:
                # Already deregistered (by hand, or an earlier delete that failed part way): nothing to do.
                if error.response["Error"]["Code"] not in {"ClientException", "ResourceNotFoundException"}:
                    raise

    def image_for(self, environment: Environment, compute: Compute) -> str:
        image = environment.image
        if image and not image.startswith(FOREIGN_REGISTRIES):
            return image
        return self.images[compute.kind]


def _backstop_seconds(deployment: Deployment) -> int:
    if deployment.type == "pipeline":
        # What runs on a pipeline deployment's job definition without a timeout of its own is a command step: the
        # user's command, with nothing to derive a bound from (Azure's command jobs have no default timeout). A
        # parallel step's shards are given theirs at SubmitJob, as a model job's are.
        return MAX_ATTEMPT_DURATION_S
    return attempt_duration_seconds(deployment.settings, MAX_MINI_BATCHES_PER_SHARD)


def _compute(config: Mapping[str, Any]) -> Compute:
    missing = [key for key in REQUIRED_SETTINGS if config.get(key) in (None, "")]
    if missing:
        raise ValidationError(
            f"the compute {config.get('name')!r} is configured without {', '.join(missing)}", field="computes"
        )
    if config["kind"] not in ("cpu", "gpu"):
        raise ValidationError(f"the compute {config['name']!r} has kind {config['kind']!r}; expected cpu or gpu")
    vcpus = int(config["vcpus"])
    max_vcpus = int(config["max_vcpus"])
    details = {
        "job_queue": config["job_queue"],
        "instance_types": list(config.get("instance_types", [])),
        "max_vcpus": max_vcpus,
        "vcpus": vcpus,
        "memory_mib": int(config["memory_mib"]),
        "gpus": int(config.get("gpus", 0)),
    }
    kind = config["kind"]
    return Compute(
        name=config["name"],
        kind=kind,
        built_in=True,
        size=",".join(details["instance_types"]),
        description=config.get("description")
        or f"AWS Batch {kind.upper()} queue; scales to zero, up to {max_vcpus} vCPUs",
        max_instances=max(1, max_vcpus // vcpus),
        details=details,
    )


def _resources(kind: str, config: Mapping[str, Any]) -> list[dict[str, str]]:
    resources = [
        {"type": "VCPU", "value": str(config["vcpus"])},
        {"type": "MEMORY", "value": str(config["memory_mib"])},
    ]
    if kind == "gpu":
        resources.append({"type": "GPU", "value": str(config.get("gpus") or 1)})
    return resources
