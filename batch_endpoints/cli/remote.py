"""The service's use cases, as the CLI calls them, carried out by a remote API (a deployed stack, `bep serve`)
through the SDK. Each `bep` command is written once, against EndpointsApi (batch_endpoints/api/protocol.py);
with a remote target it is handed a RemoteService, whose methods take and return the same things (jobs come back
as the API's JobView, which has the fields the commands print). Data assets and datastores have no client here
yet: those commands need the local target.

Who did something (`caller`) is not sent: the API records the identity that signed the request.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from batch_endpoints.api.schemas import JobView, LogPageView
from batch_endpoints.client import BatchEndpointsClient
from batch_endpoints.client.connection import path
from batch_endpoints.client.operations import pipeline_deployment_body, typed
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.repository import next_version
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
    JobStatus,
    Model,
    parse,
)
from batch_endpoints.specs.components import ComponentT
from batch_endpoints.uploads import Progress
from batch_endpoints.yaml_specs import (
    DeploymentDeclaration,
    EndpointPatch,
    EnvironmentReference,
    PipelineJobDeclaration,
    read_conda_file,
)


class RemoteService:
    def __init__(self, client: BatchEndpointsClient) -> None:
        self.client = client
        self._api = client.connection
        self.blobs = RemoteFiles(client)

    # ------------------------------------------------------------------ models
    def register_model(
        self,
        name: str,
        path: str,
        *,
        version: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        caller: str = "",
    ) -> Model:
        version = next_version(version, name, self.list_models)
        model = parse(
            Model, {"name": name, "version": version, "path": path, "description": description, "tags": tags or {}}
        )
        return self.client.models.create_or_update(model)

    def get_model(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        return self.client.models.get(name, version, label)

    def list_models(self, name: str | None = None) -> list[Model]:
        return self.client.models.list(name)

    # ------------------------------------------------------------------ environments
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
    ) -> Environment:
        version = next_version(version, name, self.list_environments)
        # The API takes the conda file's text; the server reads its pip packages from it.
        conda_text = read_conda_file(conda_file, field="conda_file")[0] if conda_file else None
        environment = parse(
            Environment,
            {
                "name": name,
                "version": version,
                "image": image or None,
                "conda_file": conda_text,
                "pip_requirements": list(pip_requirements),
                "description": description,
                "tags": tags or {},
            },
        )
        return self.client.environments.create_or_update(environment)

    def get_environment(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        return self.client.environments.get(name, version, label)

    def list_environments(self, name: str | None = None) -> list[Environment]:
        return self.client.environments.list(name)

    # ------------------------------------------------------------------ components
    def create_component(self, component: ComponentT, *, version: str | None = None, caller: str = "") -> ComponentT:
        if not component.name:
            raise ValidationError("is required: a registered component has a name", field="name")
        version = next_version(version or component.version, component.name, self.list_components)
        return self.client.components.create_or_update(component.model_copy(update={"version": version}))

    def get_component(self, name: str, version: str | None = None, label: str | None = None) -> ComponentT:
        return self.client.components.get(name, version, label)

    def list_components(self, name: str | None = None) -> list[ComponentT]:
        return self.client.components.list(name)

    # ------------------------------------------------------------------ endpoints
    def create_endpoint(self, declaration: Endpoint, *, caller: str = "") -> Endpoint:
        # The API's PUT creates or updates; `create` must not change an endpoint that exists.
        if self._exists(lambda: self.get_endpoint(declaration.name)):
            raise ConflictError(f"endpoint {declaration.name!r} already exists", field="name")
        return self.client.batch_endpoints.create_or_update(declaration)  # the API says why a default cannot be set

    def update_endpoint(self, name: str, changes: EndpointPatch, *, caller: str = "") -> Endpoint:
        patch = changes.model_dump(exclude_none=True)
        return typed(Endpoint, self._api.call("PATCH", path("/endpoints/{}", name), body=patch))

    # ------------------------------------------------------------------ computes
    def create_compute(self, declaration: ComputeDeclaration, *, caller: str = "") -> Compute:
        return self.client.compute.begin_create_or_update(declaration)

    def get_compute(self, name: str) -> Compute:
        return self.client.compute.get(name)

    def list_computes(self) -> list[Compute]:
        return self.client.compute.list()

    def update_compute(self, name: str, changes: ComputeUpdate) -> Compute:
        return self.client.compute.update(name, changes)

    def delete_compute(self, name: str) -> Compute | None:
        return self.client.compute.begin_delete(name)

    def get_endpoint(self, name: str) -> Endpoint:
        return self.client.batch_endpoints.get(name)

    def list_endpoints(self) -> list[Endpoint]:
        return self.client.batch_endpoints.list()

    def delete_endpoint(self, name: str) -> None:
        self.client.batch_endpoints.delete(name)

    # ------------------------------------------------------------------ deployments
    def create_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        if self._exists(lambda: self.get_deployment(declaration.endpoint_name, declaration.name)):
            raise ConflictError(
                f"deployment {declaration.name!r} already exists in endpoint {declaration.endpoint_name!r}; use update",
                field="name",
            )
        return self._put_deployment(declaration, set_default)

    def update_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        if not self._exists(lambda: self.get_deployment(declaration.endpoint_name, declaration.name)):
            raise NotFoundError(
                f"deployment {declaration.name!r} does not exist in endpoint {declaration.endpoint_name!r}; "
                "create it first",
                field="name",
            )
        return self._put_deployment(declaration, set_default)

    def put_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        return self._put_deployment(declaration, set_default)  # the API's PUT creates or replaces

    def _put_deployment(self, declaration: DeploymentDeclaration, set_default: bool) -> Deployment:
        """deployment.yml as the API's JSON body, with local folders (code, an inline model, an inline pipeline's
        steps' code) put in the API's storage first."""
        if declaration.pipeline_settings is not None:
            return self._put_pipeline_deployment(declaration, set_default)
        if declaration.model is None:
            raise ValidationError("is required: the registered model or a local folder to score with", field="model")
        storage = self.client.storage
        model: str | dict[str, Any] = str(declaration.model)
        if declaration.model.path is not None:
            model_name = declaration.model.name or f"{declaration.name}-model"
            model = {
                "path": storage.stored(
                    declaration.model.path,
                    path("/models/{}/uploads", model_name),
                    field="model.path",
                    code=True,
                    keep_folder_name=True,
                ),
                "name": model_name,
                "version": declaration.model.version,
                "description": declaration.model.description,
                "tags": declaration.model.tags,
            }
        body: dict[str, Any] = {
            "description": declaration.description,
            "tags": declaration.tags,
            "model": {k: v for k, v in model.items() if v is not None} if isinstance(model, dict) else model,
            "compute": declaration.compute,
            "settings": declaration.settings.model_dump(mode="json"),
            "inputs": {name: spec.model_dump(mode="json") for name, spec in declaration.inputs.items()},
        }
        if declaration.code is not None:
            body["code_configuration"] = {
                "code": storage.stored(declaration.code, "/code/uploads", field="code_configuration.code", code=True),
                "scoring_script": declaration.scoring_script,
            }
        environment = declaration.environment
        if isinstance(environment, EnvironmentReference):
            body["environment"] = str(environment)
        elif environment.image or environment.pip_requirements:
            # The conda file's pip packages are already in pip_requirements; the API reads no files.
            body["environment"] = environment.model_dump(
                include={"name", "version", "image", "pip_requirements"}, exclude_none=True
            )
        resource = path("/endpoints/{}/deployments/{}", declaration.endpoint_name, declaration.name)
        return typed(Deployment, self._api.call("PUT", resource, body=body, query={"set_default": set_default}))

    def _put_pipeline_deployment(self, declaration: DeploymentDeclaration, set_default: bool) -> Deployment:
        assert declaration.pipeline_settings is not None, "a pipeline deployment's"
        body = pipeline_deployment_body(
            self.client.storage,
            component=declaration.component,
            settings=declaration.pipeline_settings,
            description=declaration.description,
            tags=declaration.tags,
            job_definition=declaration.job_definition,
        )
        deployments = self.client.batch_deployments
        return deployments.put(declaration.endpoint_name, declaration.name, body, set_default=set_default)

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        return self.client.batch_deployments.get(name, endpoint_name)

    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        return self.client.batch_deployments.list(endpoint_name)

    def delete_deployment(self, endpoint_name: str, name: str, *, caller: str = "") -> None:
        self.client.batch_deployments.delete(name, endpoint_name)

    # ------------------------------------------------------------------ jobs
    def deployment_to_invoke(self, endpoint_name: str, deployment_name: str | None = None) -> Deployment:
        endpoint = self.get_endpoint(endpoint_name)
        name = deployment_name or endpoint.default_deployment
        if not name:
            raise ValidationError(f"endpoint {endpoint.name!r} has no default deployment", field="deployment_name")
        return self.get_deployment(endpoint.name, name)

    def upload_input(self, local_path: str, *, progress: Progress | None = None) -> str:
        return self.client.storage.stored(local_path, "/inputs/uploads", field="input")

    def discard_upload(self, uri: str) -> None:
        """Nothing: the API deletes nothing it was sent (a refused invoke's upload stays under uploads/inputs/)."""

    def create_pipeline_job(
        self, declaration: PipelineJobDeclaration, *, caller: str = "", idempotency_key: str | None = None
    ) -> JobView:
        return self.client.jobs.create(declaration, idempotency_key=idempotency_key)

    def invoke(self, request: InvokeRequest) -> JobView:
        return self.client.batch_endpoints.invoke(
            request.endpoint_name,
            input=request.input or None,  # a pipeline deployment takes its data inputs by name
            input_type=request.input_type,
            exclude=request.exclude,
            deployment_name=request.deployment_name,
            output_path=request.output_path,
            overrides=request.overrides,
            # A model deployment's literal inputs, or a pipeline deployment's inputs and outputs by name.
            inputs=request.named_inputs or request.inputs,
            outputs=request.named_outputs,
            experiment_name=request.experiment_name,
            display_name=request.display_name,
            tags=request.tags,
        )

    def get_job(self, job_id: str) -> JobView:
        return self.client.jobs.get(job_id)

    def job_progress(self, job_id: str) -> dict[str, int]:
        return self.client.jobs.get(job_id).progress or {}

    def list_jobs(
        self,
        endpoint_name: str | None = None,
        limit: int | None = None,
        *,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[JobView]:
        listed = self.client.jobs.list(endpoint_name, experiment_name=experiment_name, tags=tags)
        return list(itertools.islice(listed, limit))

    def job_artifacts(self, job_id: str) -> list[str]:
        """The output folder of a completed job: its output file and the files its scoring script wrote there;
        a pipeline job's, the files of its outputs, wherever each was written. The API tells no other file's
        location (errors and summary stay in the stack's storage, under the job's folder)."""
        job = self.get_job(job_id)
        if job.pipeline is not None:
            storage = self.client.storage
            return [uri for folder in job.pipeline.outputs.values() for uri in storage.list_folder(folder)]
        if job.status != JobStatus.COMPLETED:
            return []
        found = [job.output_uri] if job.output_uri else []
        if job.output_folder:
            found += [uri for uri in self.client.storage.list_folder(job.output_folder) if uri not in found]
        return found

    def job_logs(self, job_id: str, *, next_token: str | None = None, limit: int = 1000) -> LogPageView:
        query = {"next_token": next_token, "limit": limit}
        return typed(LogPageView, self._api.call("GET", path("/jobs/{}/logs", job_id), query=query))

    def cancel_job(self, job_id: str, *, caller: str = "") -> JobView:
        return self.client.jobs.cancel(job_id)

    def rerun_job(
        self,
        job_id: str,
        *,
        failed_only: bool,
        output_path: str | None = None,
        output_file_name: str | None = None,
        caller: str = "",
        idempotency_key: str | None = None,
    ) -> JobView:
        return self.client.jobs.rerun(
            job_id,
            failed_only=failed_only,
            output_path=output_path,
            output_file_name=output_file_name,
            idempotency_key=idempotency_key,
        )

    def resume_job(self, job_id: str, *, caller: str = "", idempotency_key: str | None = None) -> JobView:
        return self.client.jobs.resume(job_id, idempotency_key=idempotency_key)

    # ------------------------------------------------------------------ data assets and datastores
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
    ) -> DataAsset:
        raise _needs_local_backend("register_data")

    def get_data(self, name: str, version: str | None = None, label: str | None = None) -> DataAsset:
        raise _needs_local_backend("get_data")

    def list_data(self, name: str | None = None) -> list[DataAsset]:
        raise _needs_local_backend("list_data")

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
    ) -> Datastore:
        raise _needs_local_backend("create_datastore")

    def get_datastore(self, name: str) -> Datastore:
        raise _needs_local_backend("get_datastore")

    def list_datastores(self) -> list[Datastore]:
        raise _needs_local_backend("list_datastores")

    @staticmethod
    def _exists(get: Callable[[], object]) -> bool:
        try:
            get()
        except NotFoundError:
            return False
        return True


def _needs_local_backend(use_case: str) -> ValidationError:
    return ValidationError(
        f"this command needs the local backend ({use_case!r}); run it with --target local", field="--target"
    )


class RemoteFiles:
    """The one blob operation the CLI needs of a remote target: read a job's file, from S3 or the server's disk."""

    def __init__(self, client: BatchEndpointsClient) -> None:
        self._storage = client.storage

    def get_bytes(self, uri: str) -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            target = os.path.join(folder, "file")
            self._storage.download(uri, target)
            with open(target, "rb") as f:
                return f.read()
