"""Azure's Python SDK for batch endpoints (azure-ai-ml), as a compatibility module: code written for Azure runs
with only its import lines changed, `azure.ai.ml` and `azure.identity` becoming `batch_endpoints.azure`.

    from batch_endpoints.azure import MLClient, Input
    from batch_endpoints.azure.entities import BatchEndpoint, ModelBatchDeployment
    from batch_endpoints.azure.constants import AssetTypes
    from batch_endpoints.azure import DefaultAzureCredential

The operations run `bep`'s use cases on the target `bep` would use (docs/sdk.md).
"""

from __future__ import annotations

from batch_endpoints.azure.client import MLClient
from batch_endpoints.azure.constants import AssetTypes, BatchDeploymentOutputAction, InputOutputModes
from batch_endpoints.azure.entities import (
    AmlCompute,
    BatchDeployment,
    BatchEndpoint,
    BatchRetrySettings,
    BuildContext,
    CodeConfiguration,
    Data,
    Environment,
    Input,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    Output,
    PipelineComponentBatchDeployment,
    ResourceConfiguration,
)
from batch_endpoints.azure.identity import (
    AzureCliCredential,
    DefaultAzureCredential,
    InteractiveBrowserCredential,
    ManagedIdentityCredential,
)
from batch_endpoints.azure.jobs import BatchJob, JobException, PipelineJob
from batch_endpoints.azure.loading import load_component, load_job
from batch_endpoints.azure.poller import LROPoller

__all__ = [
    "AmlCompute",
    "AssetTypes",
    "AzureCliCredential",
    "BatchDeployment",
    "BatchDeploymentOutputAction",
    "BatchEndpoint",
    "BatchJob",
    "BatchRetrySettings",
    "BuildContext",
    "CodeConfiguration",
    "Data",
    "DefaultAzureCredential",
    "Environment",
    "Input",
    "InputOutputModes",
    "InteractiveBrowserCredential",
    "JobException",
    "LROPoller",
    "MLClient",
    "ManagedIdentityCredential",
    "Model",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "Output",
    "PipelineComponentBatchDeployment",
    "PipelineJob",
    "ResourceConfiguration",
    "load_component",
    "load_job",
]
