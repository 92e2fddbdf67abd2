"""Azure ML CLI v2 YAML files, read as they are: the names the CLI, the API and the service use, written in
batch_endpoints/yaml_files (schemas, loading, the `--set` language, error origins)."""

from __future__ import annotations

from batch_endpoints.yaml_files.components import load_component, load_pipeline_job, load_pipeline_job_mapping
from batch_endpoints.yaml_files.conda import is_conda_text, read_conda_file
from batch_endpoints.yaml_files.declarations import (
    DEFAULT_COMPUTE,
    DataDeclaration,
    DeploymentDeclaration,
    EnvironmentReference,
    InvokeDeclaration,
    ModelDeclaration,
    ModelReference,
    PipelineJobDeclaration,
)
from batch_endpoints.yaml_files.inline_assets import check_model_type
from batch_endpoints.yaml_files.loading import (
    OUTPUT_ACTIONS,
    load_compute,
    load_compute_mapping,
    load_data,
    load_data_mapping,
    load_deployment,
    load_deployment_mapping,
    load_endpoint,
    load_endpoint_mapping,
    load_environment,
    load_environment_mapping,
    load_invoke,
    load_model,
    load_model_mapping,
)
from batch_endpoints.yaml_files.origins import reported
from batch_endpoints.yaml_files.references import (
    ASSET_REFERENCE,
    AZURE_PREFIX,
    LATEST,
    asset_reference,
    is_reference,
    local_or_reference,
    parse_model_reference,
)
from batch_endpoints.yaml_files.schemas import FLAT_SETTINGS, MODEL_TYPES, EndpointPatch, endpoint_document
from batch_endpoints.yaml_files.set_language import parse_overrides, split_invoke_overrides

__all__ = [
    "ASSET_REFERENCE",
    "AZURE_PREFIX",
    "DEFAULT_COMPUTE",
    "FLAT_SETTINGS",
    "LATEST",
    "MODEL_TYPES",
    "OUTPUT_ACTIONS",
    "DataDeclaration",
    "DeploymentDeclaration",
    "EndpointPatch",
    "EnvironmentReference",
    "InvokeDeclaration",
    "ModelDeclaration",
    "ModelReference",
    "PipelineJobDeclaration",
    "asset_reference",
    "check_model_type",
    "endpoint_document",
    "is_conda_text",
    "is_reference",
    "load_component",
    "load_compute",
    "load_compute_mapping",
    "load_data",
    "load_data_mapping",
    "load_deployment",
    "load_deployment_mapping",
    "load_endpoint",
    "load_endpoint_mapping",
    "load_environment",
    "load_environment_mapping",
    "load_invoke",
    "load_model",
    "load_model_mapping",
    "load_pipeline_job",
    "load_pipeline_job_mapping",
    "local_or_reference",
    "parse_model_reference",
    "parse_overrides",
    "read_conda_file",
    "reported",
    "split_invoke_overrides",
]
