"""`MLClient`, shaped like Azure's: the same constructor, operation groups and method names, over `bep`'s targets.

Where it acts is chosen as `bep` chooses (flag > environment > `bep configure` defaults): this machine's backend
when no API URL is set, else a deployed stack's API (`target="aws"`, found from its CloudFormation outputs) or any
server of the API (`api_url=...`). Azure's workspace arguments are accepted and name nothing here.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from batch_endpoints.azure.assets import DataOperations, EnvironmentOperations, ModelOperations
from batch_endpoints.azure.computes import ComputeOperations
from batch_endpoints.azure.endpoints import BatchDeploymentOperations, BatchEndpointOperations
from batch_endpoints.azure.entities import AmlCompute, BatchEndpoint, Data, Environment, Model
from batch_endpoints.azure.jobs import JobOperations
from batch_endpoints.azure.poller import LROPoller
from batch_endpoints.cli.commands import current_user
from batch_endpoints.cli.targets import open_operations
from batch_endpoints.errors import ValidationError


class MLClient:
    def __init__(
        self,
        credential: Any = None,
        subscription_id: str | None = None,
        resource_group_name: str | None = None,
        workspace_name: str | None = None,
        registry_name: str | None = None,
        *,
        target: str | None = None,
        api_url: str | None = None,
        stack: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        cloud: str | None = None,
        show_progress: bool | None = None,
        enable_telemetry: bool | None = None,
        user_agent: str | None = None,
    ) -> None:
        """`credential`, the subscription, resource group, workspace and registry, `cloud`, `show_progress`,
        `enable_telemetry` and `user_agent` are Azure's and accepted with no effect: AWS credentials sign requests
        (the standard chain, or `profile`). `target`, `api_url`, `stack`, `region` and `profile` are `bep`'s
        global options."""
        self.subscription_id = subscription_id
        self.resource_group_name = resource_group_name
        self.workspace_name = workspace_name
        options = argparse.Namespace(target=target, api_url=api_url, stack=stack, region=region, profile=profile)
        service = open_operations(options)
        caller = current_user()
        self.models = ModelOperations(service, caller)
        self.environments = EnvironmentOperations(service, caller)
        self.data = DataOperations(service, caller)
        self.batch_endpoints = BatchEndpointOperations(service, caller)
        self.batch_deployments = BatchDeploymentOperations(service, caller)
        self.jobs = JobOperations(service, caller)
        self.compute = ComputeOperations(service, caller)

    @classmethod
    def from_config(
        cls, credential: Any = None, *, path: str | os.PathLike[str] | None = None, file_name: str | None = None
    ) -> MLClient:
        """Azure reads the workspace from config.json; here the target comes from `bep configure` and the
        environment, so `path` and `file_name` are accepted and not read."""
        return cls(credential)

    def create_or_update(self, entity: Model | Environment | Data) -> Model | Environment | Data:
        """Azure's shortcut: the operation group the entity belongs to."""
        if isinstance(entity, Model):
            return self.models.create_or_update(entity)
        if isinstance(entity, Environment):
            return self.environments.create_or_update(entity)
        if isinstance(entity, Data):
            return self.data.create_or_update(entity)
        raise ValidationError(
            f"expected a Model, Environment or Data (got {type(entity).__name__}); endpoints, deployments and "
            "computes use begin_create_or_update",
            field="entity",
        )

    def begin_create_or_update(self, entity: Any) -> LROPoller[Any]:
        """Azure's shortcut: the operation group the entity belongs to."""
        if isinstance(entity, AmlCompute):
            return self.compute.begin_create_or_update(entity)
        if isinstance(entity, BatchEndpoint):
            return self.batch_endpoints.begin_create_or_update(entity)
        if hasattr(entity, "yaml_mapping") and hasattr(entity, "endpoint_name"):
            return self.batch_deployments.begin_create_or_update(entity)
        raise ValidationError(
            f"expected an AmlCompute, BatchEndpoint or batch deployment (got {type(entity).__name__})", field="entity"
        )
