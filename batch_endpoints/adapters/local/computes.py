"""The local machine as named clusters: its own two (cpu-cluster, gpu-cluster), so deployment specs written for the
cloud run unchanged, and those users create, each a limit on how many instances (worker processes running the
runner) a job on it starts. A GPU size makes a GPU compute: its instances see this machine's GPUs."""

from __future__ import annotations

import os
from collections.abc import Mapping

from batch_endpoints.ports import RecordStore
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Compute, Deployment, Environment


class LocalComputeRegistry:
    def __init__(self, records: RecordStore) -> None:
        self.repo = Repository(records)
        cores = os.cpu_count() or 1
        self._own = {
            "cpu-cluster": Compute(
                name="cpu-cluster",
                kind="cpu",
                max_instances=cores,
                built_in=True,
                description="local worker processes; the GPU is hidden from scoring code",
            ),
            "gpu-cluster": Compute(
                name="gpu-cluster",
                kind="gpu",
                max_instances=cores,
                built_in=True,
                description="local worker processes with this machine's GPUs visible",
            ),
        }

    def list(self) -> list[Compute]:
        return [*self._own.values(), *self.repo.list_computes()]

    def get(self, name: str) -> Compute | None:
        return self._own.get(name) or self.repo.get_compute(name)

    # Nothing to provision locally: a compute is its record, and a job's instances are started when it runs.
    def provision(self, compute: Compute) -> Compute:
        return compute.model_copy(update={"provisioning_state": "Succeeded"})

    def resize(self, compute: Compute) -> Compute:
        return compute

    def advance(self, compute: Compute) -> Compute | None:
        return None if compute.provisioning_state == "Deleting" else self.provision(compute)

    def release(self, compute: Compute) -> Compute | None:
        return None

    def register_deployment(self, deployment: Deployment) -> str:
        # Local scoring runs in this Python environment; there is nothing to provision ahead of a job.
        return f"local:{deployment.endpoint_name}/{deployment.name}"

    def register_steps(self, deployment: Deployment, environments: Mapping[str, Environment]) -> dict[str, str]:
        # A command step runs in this Python environment too (its environment is not installed locally).
        return {}

    def deregister_deployment(self, deployment: Deployment) -> None:
        return None
