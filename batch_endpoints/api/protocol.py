"""The use cases as a caller sees them, wherever they run: `EndpointsApi` is what the CLI talks to, implemented by
the service on this machine's backend (BatchEndpointService) and by the remote target over the SDK (RemoteService).

A remote target answers with the API's views (JobView, LogPageView), which carry the fields the CLI reads of the
core's records. tests/test_endpoints_api.py holds both implementations to every member's signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from batch_endpoints.api.schemas import JobView, LogPageView
from batch_endpoints.ports import LogPage
from batch_endpoints.service import InvokeRequest
from batch_endpoints.specs import (
    Compute,
    ComputeDeclaration,
    ComputeUpdate,
    DataAsset,
    Datastore,
    Deployment,
    Endpoint,
    Environment,
    Job,
    Model,
)
from batch_endpoints.specs.components import ComponentT
from batch_endpoints.uploads import Progress
from batch_endpoints.yaml_specs import DeploymentDeclaration, EndpointPatch, PipelineJobDeclaration


class FileReader(Protocol):
    """The one storage operation the CLI needs: a job's file, by its URI."""

    def get_bytes(self, uri: str) -> bytes: ...


class EndpointsApi(Protocol):
    # Read-only, so each implementation may hold its own kind of reader (a plain attribute would have to be
    # exactly a FileReader: a protocol's settable members are invariant).
    @property
    def blobs(self) -> FileReader: ...

    # ------------------------------------------------------------------ models, environments, data
    def register_model(
        self,
        name: str,
        path: str,
        *,
        version: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Model: ...

    def get_model(self, name: str, version: str | None = None, label: str | None = None) -> Model: ...

    def list_models(self, name: str | None = None) -> list[Model]: ...

    def register_environment(
        self,
        name: str,
        *,
        version: str | None = None,
        image: str | None = None,
        conda_file: str | None = None,
        pip_requirements: Sequence[str] = (),
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Environment: ...

    def get_environment(self, name: str, version: str | None = None, label: str | None = None) -> Environment: ...

    def list_environments(self, name: str | None = None) -> list[Environment]: ...

    def register_data(
        self,
        name: str,
        path: str,
        *,
        data_type: str = "uri_folder",
        version: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
        progress: Progress | None = None,
    ) -> DataAsset: ...

    def get_data(self, name: str, version: str | None = None, label: str | None = None) -> DataAsset: ...

    def list_data(self, name: str | None = None) -> list[DataAsset]: ...

    # ------------------------------------------------------------------ components
    def create_component(
        self, component: ComponentT, *, version: str | None = None, caller: str = ""
    ) -> ComponentT: ...

    def get_component(self, name: str, version: str | None = None, label: str | None = None) -> ComponentT: ...

    def list_components(self, name: str | None = None) -> list[ComponentT]: ...

    # ------------------------------------------------------------------ datastores
    def create_datastore(
        self,
        name: str,
        *,
        bucket: str | None = None,
        prefix: str = "",
        folder: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Datastore: ...

    def get_datastore(self, name: str) -> Datastore: ...

    def list_datastores(self) -> list[Datastore]: ...

    # ------------------------------------------------------------------ computes
    def create_compute(self, declaration: ComputeDeclaration, *, caller: str = "") -> Compute: ...

    def get_compute(self, name: str) -> Compute: ...

    def list_computes(self) -> list[Compute]: ...

    def update_compute(self, name: str, changes: ComputeUpdate) -> Compute: ...

    def delete_compute(self, name: str) -> Compute | None:
        """Start or continue removing a compute: None once it is gone, else the compute, Deleting."""
        ...

    # ------------------------------------------------------------------ endpoints and deployments
    def create_endpoint(self, declaration: Endpoint, *, caller: str = "") -> Endpoint: ...

    def update_endpoint(self, name: str, changes: EndpointPatch, *, caller: str = "") -> Endpoint: ...

    def get_endpoint(self, name: str) -> Endpoint: ...

    def list_endpoints(self) -> list[Endpoint]: ...

    def delete_endpoint(self, name: str) -> None: ...

    def create_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment: ...

    def update_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment: ...

    def put_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        """Create the deployment, or update it when it exists: Azure's `batch-deployment create`."""
        ...

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment: ...

    def list_deployments(self, endpoint_name: str) -> list[Deployment]: ...

    def delete_deployment(self, endpoint_name: str, name: str, *, caller: str = "") -> None: ...

    # ------------------------------------------------------------------ jobs
    def deployment_to_invoke(self, endpoint_name: str, deployment_name: str | None = None) -> Deployment: ...

    def upload_input(self, local_path: str, *, progress: Progress | None = None) -> str: ...

    def discard_upload(self, uri: str) -> None: ...

    def invoke(self, request: InvokeRequest) -> Job | JobView: ...

    def create_pipeline_job(
        self, declaration: PipelineJobDeclaration, *, caller: str = "", idempotency_key: str | None = None
    ) -> Job | JobView: ...

    def get_job(self, job_id: str) -> Job | JobView: ...

    def job_progress(self, job_id: str) -> dict[str, int]: ...

    def list_jobs(
        self,
        endpoint_name: str | None = None,
        limit: int | None = None,
        *,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[Job] | list[JobView]: ...

    def job_artifacts(self, job_id: str) -> list[str]: ...

    def job_logs(self, job_id: str, *, next_token: str | None = None, limit: int = 1000) -> LogPage | LogPageView: ...

    def cancel_job(self, job_id: str, *, caller: str = "") -> Job | JobView: ...

    def rerun_job(
        self,
        job_id: str,
        *,
        failed_only: bool,
        output_path: str | None = None,
        output_file_name: str | None = None,
        caller: str = "",
        idempotency_key: str | None = None,
    ) -> Job | JobView: ...

    def resume_job(self, job_id: str, *, caller: str = "", idempotency_key: str | None = None) -> Job | JobView: ...
