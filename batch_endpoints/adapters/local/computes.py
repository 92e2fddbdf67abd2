"""The local machine as two named clusters, so deployment specs written for the cloud run unchanged."""

from __future__ import annotations

import os

from batch_endpoints.specs import Compute, Deployment


class LocalComputeRegistry:
    def __init__(self) -> None:
        cores = os.cpu_count() or 1
        self._computes = {
            "cpu-cluster": Compute(
                name="cpu-cluster",
                kind="cpu",
                max_instances=cores,
                description="local worker processes; the GPU is hidden from scoring code",
            ),
            "gpu-cluster": Compute(
                name="gpu-cluster",
                kind="gpu",
                max_instances=cores,
                description="local worker processes with this machine's GPUs visible",
            ),
        }

    def list(self) -> list[Compute]:
        return list(self._computes.values())

    def get(self, name: str) -> Compute | None:
        return self._computes.get(name)

    def register_deployment(self, deployment: Deployment) -> str:
        # Local scoring runs in this Python environment; there is nothing to provision ahead of a job.
        return f"local:{deployment.endpoint_name}/{deployment.name}"

    def deregister_deployment(self, deployment: Deployment) -> None:
        return None
