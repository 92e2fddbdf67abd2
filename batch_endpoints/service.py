"""The control-plane use cases. The CLI calls them locally; the API Lambda calls the same ones in the cloud.

Nothing here knows which backend it runs on: it sees only the four ports (through Backend). Every check runs
before anything is written, so a refused request changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch_endpoints import assets, data_access, idempotency, literal_inputs, mlflow_models, uploads, workflow
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.inputs import LocationResolver
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.paging import Page, paged
from batch_endpoints.ports import BlobStore, LogPage
from batch_endpoints.repository import AssetT, Repository, newest, next_version
from batch_endpoints.specs import (
    AssetVersion,
    CodeConfiguration,
    DataAsset,
    Datastore,
    Deployment,
    Endpoint,
    Environment,
    InvokeOverrides,
    Job,
    JobCounts,
    JobMetadata,
    JobStatus,
    Model,
    OutputAction,
    RunSettings,
    now,
    parse,
)
from batch_endpoints.yaml_specs import (
    LATEST,
    DeploymentDeclaration,
    EndpointDeclaration,
    EnvironmentReference,
    ModelReference,
    read_conda_file,
)


@dataclass(frozen=True)
class InvokeRequest:
    endpoint_name: str
    input: str
    input_type: str | None = None
    exclude: list[str] = field(default_factory=list)
    """Glob patterns of the input folder's files to leave out (JobInput.exclude)."""
    deployment_name: str | None = None
    output_path: str | None = None
    overrides: InvokeOverrides = field(default_factory=InvokeOverrides)
    inputs: dict[str, Any] = field(default_factory=dict)
    """Literal inputs, checked against the deployment's declared inputs."""
    caller: str = ""
    job_id: str | None = None
    """Chosen by the caller to make a retried invoke idempotent; generated when absent."""
    experiment_name: str | None = None
    display_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class BatchEndpointService:
    def __init__(self, backend: Backend, access: data_access.DataAccess | None = None) -> None:
        self.backend = backend
        self.access = access or data_access.from_environment(backend.blobs.root, backend.caller_permissions)
        self.blobs = backend.blobs
        self.repo = Repository(backend.records)
        self.locations = LocationResolver(backend.blobs, self.repo)

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
        version = next_version(version, name, self.repo.list_models)
        # Validate the record before copying anything, so a bad name or version writes nothing.
        parse(AssetVersion, {"name": name, "version": version})
        model = parse(
            Model,
            {
                "name": name,
                "version": version,
                "path": "pending",
                "description": description,
                "tags": tags or {},
                "created_by": caller,
            },
        )
        if self.repo.get_model(name, version):
            raise ConflictError(f"model {name}:{version} already exists; versions are immutable", field="version")
        if assets.is_stored(path):
            self.access.check_stored_asset(path, field="path")
        model.path = assets.upload_model(self.blobs, path, name, version, field="path")
        self.repo.add_model(model)
        return model

    def get_model(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        return _one_version("model", name, version, label, self.repo.get_model, self.repo.list_models)

    def list_models(self, name: str | None = None) -> list[Model]:
        return self.repo.list_models(name)

    def _resolve_model(self, reference: ModelReference, deployment_name: str, caller: str) -> Model:
        if reference.path is not None:
            # Azure registers an inline model as an asset of its own; unnamed, it is named after the deployment.
            name = reference.name or f"{deployment_name}-model"
            return self.register_model(name, reference.path, version=reference.version, caller=caller)
        return self.get_model(reference.name, reference.version, reference.label)

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
        """Register an environment version: an image, a conda file, or both (`az ml environment create`).

        `conda_file` is the file's text, or a local path that is read here; its text is recorded, and its pip
        packages join `pip_requirements`. Versions are immutable; deployments resolve `name:version` or
        `name@latest` to one when they are created or updated.
        """
        version = next_version(version, name, self.repo.list_environments)
        parse(AssetVersion, {"name": name, "version": version})
        conda_text, pip = None, list(pip_requirements)
        if conda_file:
            conda_text, conda_pip = read_conda_file(conda_file, field="conda_file")
            pip += [requirement for requirement in conda_pip if requirement not in pip]
        if not image and conda_text is None:
            raise ValidationError("an environment needs an image, a conda file (conda_file), or both", field="image")
        environment = parse(
            Environment,
            {
                "name": name,
                "version": version,
                "image": image or None,
                "conda_file": conda_text,
                "pip_requirements": pip,
                "description": description,
                "tags": tags or {},
                "created_at": now(),
                "created_by": caller,
            },
        )
        if self.repo.get_environment(name, version):
            raise ConflictError(f"environment {name}:{version} already exists; versions are immutable", field="version")
        self.repo.add_environment(environment)
        return environment

    def get_environment(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        return _one_version("environment", name, version, label, self.repo.get_environment, self.repo.list_environments)

    def list_environments(self, name: str | None = None) -> list[Environment]:
        return self.repo.list_environments(name)

    def _resolve_environment(self, declared: Environment | EnvironmentReference) -> Environment:
        """An inline environment as declared; a reference as a copy of the registered version it names, so that
        later registrations (a newer `@latest`) never change an existing deployment."""
        if isinstance(declared, EnvironmentReference):
            return self.get_environment(declared.name, declared.version, declared.label).as_deployed()
        return declared

    # ------------------------------------------------------------------ data assets
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
        progress: uploads.Progress | None = None,
    ) -> DataAsset:
        """Register a data asset version (`az ml data create`): a folder (uri_folder) or a file (uri_file).

        A location in storage (s3://..., a datastore path) is registered where it is; a local path is copied
        into the default datastore first, so the version keeps its content whatever happens to the local copy.
        """
        version = next_version(version, name, self.repo.list_data)
        parse(AssetVersion, {"name": name, "version": version})
        asset = parse(
            DataAsset,
            {
                "name": name,
                "version": version,
                "type": data_type,
                "path": "pending",
                "description": description,
                "tags": tags or {},
                "created_by": caller,
            },
        )
        if self.repo.get_data(name, version):
            raise ConflictError(f"data asset {name}:{version} already exists; versions are immutable", field="version")
        if assets.is_stored(path) or not os.path.lexists(path):
            asset.path = self.locations.data_path(path, asset.type)
        else:
            if os.path.isdir(path) != (asset.type == "uri_folder"):
                kind = "folder" if os.path.isdir(path) else "file"
                raise ValidationError(f"{path} is a {kind}, but the type is {asset.type}", field="type")
            target = self.blobs.join(self.blobs.root, "data", name, version)
            if asset.type == "uri_file":
                target = self.blobs.join(target, os.path.basename(path))
            asset.path = uploads.upload(self.blobs, path, target, field="path", progress=progress)
        self.repo.add_data(asset)
        return asset

    def get_data(self, name: str, version: str | None = None, label: str | None = None) -> DataAsset:
        return _one_version("data asset", name, version, label, self.repo.get_data, self.repo.list_data)

    def list_data(self, name: str | None = None) -> list[DataAsset]:
        return self.repo.list_data(name)

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
    ) -> Datastore:
        """Name a storage location (an S3 bucket and prefix; locally, a folder) for paths such as
        azureml://datastores/<name>/paths/<path>. The backend's own storage is `workspaceblobstore`."""
        fields = {"description": description, "tags": tags or {}, "created_by": caller}
        datastore = self.locations.new_datastore(name, bucket=bucket, prefix=prefix, folder=folder, fields=fields)
        self.repo.add_datastore(datastore)
        return datastore

    def get_datastore(self, name: str) -> Datastore:
        if name != self.locations.default_datastore().name and self.repo.get_datastore(name) is None:
            raise NotFoundError(f"datastore {name!r} does not exist", field="name")
        return self.locations.datastore(name, field="name")

    def list_datastores(self) -> list[Datastore]:
        return self.locations.datastores()

    # ------------------------------------------------------------------ endpoints
    def create_endpoint(self, declaration: EndpointDeclaration, *, caller: str = "") -> Endpoint:
        created_at = now()
        endpoint = parse(
            Endpoint,
            {
                "name": declaration.name,
                "description": declaration.description,
                "tags": declaration.tags,
                "auth_mode": declaration.auth_mode,
                "allowed_inputs": list(declaration.allowed_inputs),
                "allowed_outputs": list(declaration.allowed_outputs),
                "created_at": created_at,
                "created_by": caller,
                "updated_at": created_at,
                "updated_by": caller,
                "scoring_uri": f"{self.backend.api_base_url}/endpoints/{declaration.name}/jobs",
            },
        )
        if declaration.default_deployment:
            raise ValidationError(
                "an endpoint has no deployments when it is created; set the default deployment after creating one",
                field="defaults.deployment_name",
            )
        self.repo.add_endpoint(endpoint)
        return endpoint

    def put_endpoint(self, declaration: EndpointDeclaration, *, caller: str = "") -> Endpoint:
        """Create the endpoint, or give the existing one the declared description, tags and allow-lists (and
        default deployment, when one is declared). The API's PUT: sending the same declaration twice changes
        nothing but who changed it last."""
        try:
            self.repo.get_endpoint(declaration.name)
        except NotFoundError:
            try:
                return self.create_endpoint(declaration, caller=caller)
            except ConflictError:
                pass  # created by a concurrent request meanwhile: update it like any existing endpoint
        return self.update_endpoint(
            declaration.name,
            description=declaration.description,
            tags=declaration.tags,
            default_deployment=declaration.default_deployment,
            allowed_inputs=declaration.allowed_inputs,
            allowed_outputs=declaration.allowed_outputs,
            caller=caller,
        )

    def update_endpoint(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        default_deployment: str | None = None,
        allowed_inputs: Sequence[str] | None = None,
        allowed_outputs: Sequence[str] | None = None,
        caller: str = "",
    ) -> Endpoint:
        """Change what is given (None: unchanged); an empty allow-list removes the endpoint's narrowing."""
        if default_deployment is not None:
            self.repo.get_deployment(name, default_deployment)
        given = {
            "description": description,
            "tags": tags,
            "default_deployment": default_deployment,
            "allowed_inputs": None if allowed_inputs is None else list(allowed_inputs),
            "allowed_outputs": None if allowed_outputs is None else list(allowed_outputs),
        }
        updates = {key: value for key, value in given.items() if value is not None}

        def change(endpoint: Endpoint) -> Endpoint:
            # Through the model's validation (model_copy would skip it), so a bad value is refused, not stored.
            changed = parse(Endpoint, {**endpoint.model_dump(), **updates})
            if changed == endpoint:
                return endpoint  # a repeated request changes nothing, not even who changed it last
            return changed.model_copy(update={"updated_at": now(), "updated_by": caller})

        change(self.repo.get_endpoint(name))  # refused before anything is written
        return self.repo.update_endpoint(name, change)

    def get_endpoint(self, name: str) -> Endpoint:
        return self.repo.get_endpoint(name)

    def list_endpoints(self) -> list[Endpoint]:
        return self.repo.list_endpoints()

    def delete_endpoint(self, name: str) -> None:
        """Deletes the endpoint and its deployments; its jobs and their outputs stay."""
        self.repo.get_endpoint(name)
        for deployment in self.repo.list_deployments(name):
            self.backend.computes.deregister_deployment(deployment)
            self.repo.delete_deployment(name, deployment.name)
        self.repo.delete_endpoint(name)

    # ------------------------------------------------------------------ deployments
    def create_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        return self._put_deployment(declaration, must_exist=False, set_default=set_default, caller=caller)

    def update_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        return self._put_deployment(declaration, must_exist=True, set_default=set_default, caller=caller)

    def put_deployment(
        self, declaration: DeploymentDeclaration, *, set_default: bool = False, caller: str = ""
    ) -> Deployment:
        """Create the deployment, or update it when it exists (the API's PUT)."""
        return self._put_deployment(declaration, must_exist=None, set_default=set_default, caller=caller)

    def _put_deployment(
        self, declaration: DeploymentDeclaration, *, must_exist: bool | None, set_default: bool, caller: str
    ) -> Deployment:
        endpoint = self.repo.get_endpoint(declaration.endpoint_name)
        existing = self.repo.find_deployment(endpoint.name, declaration.name)
        version = self.repo.deployment_version(endpoint.name, declaration.name)
        if must_exist and existing is None:
            raise NotFoundError(
                f"deployment {declaration.name!r} does not exist in endpoint {endpoint.name!r}; create it first",
                field="name",
            )
        if must_exist is False and existing is not None:
            raise ConflictError(
                f"deployment {declaration.name!r} already exists in endpoint {endpoint.name!r}; use update",
                field="name",
            )
        compute = self.backend.computes.get(declaration.compute)
        if compute is None:
            known = ", ".join(c.name for c in self.backend.computes.list())
            raise ValidationError(f"compute {declaration.compute!r} does not exist; known: {known}", field="compute")
        model_location = declaration.model.path
        if model_location is None:
            model_location = self.get_model(
                declaration.model.name, declaration.model.version, declaration.model.label
            ).path
        environment = self._resolve_environment(declaration.environment)
        if declaration.code is None:
            environment = self._no_code_environment(model_location, environment)
        else:
            assets.check_scoring_script(self.blobs, declaration.code, declaration.scoring_script or "")
        # Validate the record before registering an inline model or copying the code, so a refusal writes nothing.
        deployment = parse(
            Deployment,
            {
                "name": declaration.name,
                "endpoint_name": endpoint.name,
                "description": declaration.description,
                "model": "pending",
                "code_configuration": (
                    None
                    if declaration.code is None
                    else {"code": "pending", "scoring_script": declaration.scoring_script}
                ),
                "inputs": declaration.inputs,
                "environment": environment,
                "compute": compute.name,
                "settings": declaration.settings,
                "tags": declaration.tags,
                "created_at": existing.created_at if existing else now(),
                "created_by": existing.created_by if existing else caller,
                "updated_by": caller,
            },
        )
        if declaration.code and assets.is_stored(declaration.code):
            self.access.check_stored_asset(declaration.code, field="code_configuration.code")
        deployment.model = self._resolve_model(declaration.model, declaration.name, caller).ref
        if deployment.code_configuration is not None:
            deployment.code_configuration = CodeConfiguration(
                code=assets.upload_code(self.blobs, declaration.code or "", field="code_configuration.code"),
                scoring_script=deployment.code_configuration.scoring_script,
            )
        deployment.compute_handle = self.backend.computes.register_deployment(deployment)
        self.repo.put_deployment(deployment, expected_version=version)
        if set_default:
            self.update_endpoint(endpoint.name, default_deployment=deployment.name, caller=caller)
        return deployment

    def _no_code_environment(self, model_location: str, environment: Environment) -> Environment:
        """A deployment without code scores an MLflow model with the built-in scorer. Unless an image is given,
        its environment records the model's pip requirements (installed where the image lacks them)."""
        model_dir = mlflow_models.find(self.blobs, model_location)
        if model_dir is None:
            raise ValidationError(
                f"the model {model_location} is not an MLflow model (it has no MLmodel file); give a "
                "code_configuration with a scoring script",
                field="code_configuration",
            )
        if environment.image or environment.pip_requirements:
            return environment
        return environment.model_copy(
            update={"pip_requirements": mlflow_models.pip_requirements(self.blobs, model_dir)}
        )

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        self.repo.get_endpoint(endpoint_name)
        return self.repo.get_deployment(endpoint_name, name)

    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        self.repo.get_endpoint(endpoint_name)
        return self.repo.list_deployments(endpoint_name)

    def delete_deployment(self, endpoint_name: str, name: str, *, caller: str = "") -> None:
        endpoint = self.repo.get_endpoint(endpoint_name)
        deployment = self.repo.get_deployment(endpoint_name, name)
        others = [d for d in self.repo.list_deployments(endpoint_name) if d.name != name]
        if endpoint.default_deployment == name and others:
            raise ConflictError(
                f"deployment {name!r} is the default of endpoint {endpoint_name!r}; make another deployment "
                f"the default first (one of: {', '.join(d.name for d in others)})",
                field="name",
            )
        self.backend.computes.deregister_deployment(deployment)
        self.repo.delete_deployment(endpoint_name, name)
        if endpoint.default_deployment == name:
            self.repo.update_endpoint(
                endpoint_name,
                lambda e: e.model_copy(update={"default_deployment": None, "updated_at": now(), "updated_by": caller}),
            )

    # ------------------------------------------------------------------ jobs
    def upload_input(self, local_path: str, *, progress: uploads.Progress | None = None) -> str:
        """A local file or folder copied into the default datastore for a job to read (see uploads)."""
        return uploads.upload_input(self.blobs, local_path, field="input", progress=progress)

    def discard_upload(self, uri: str) -> None:
        uploads.discard(self.blobs, uri)

    def deployment_to_invoke(self, endpoint_name: str, deployment_name: str | None = None) -> Deployment:
        """The deployment an invocation would run: the one named, or the endpoint's default. Clients call it to
        refuse early, before uploading a local input."""
        endpoint = self.repo.get_endpoint(endpoint_name)
        name = deployment_name or endpoint.default_deployment
        if not name:
            raise ValidationError(
                f"endpoint {endpoint.name!r} has no default deployment; pass a deployment name or set a default "
                "(endpoint update --default-deployment NAME)",
                field="deployment_name",
            )
        return self.repo.get_deployment(endpoint.name, name)

    def invoke(self, request: InvokeRequest) -> Job:
        endpoint = self.repo.get_endpoint(request.endpoint_name)
        deployment = self.deployment_to_invoke(endpoint.name, request.deployment_name)
        settings = request.overrides.apply(deployment.settings)
        inputs = literal_inputs.resolve(deployment.inputs, request.inputs)
        metadata = parse(
            JobMetadata,
            {"experiment_name": request.experiment_name, "display_name": request.display_name, "tags": request.tags},
        )
        job_id = request.job_id or new_job_id(endpoint.name)
        output_uri = self._output_location(endpoint.name, job_id, settings, request.output_path)
        # Before anything is looked at: whether an input exists is itself something a caller may not learn.
        self.access.check_job(
            request.caller, self.locations.resolve(request.input, field="input").uri, output_uri, endpoint=endpoint
        )
        job_input = self.locations.job_input(request.input, request.input_type, exclude=request.exclude)
        _refuse_existing(self.blobs, output_uri)
        model_ref, _, model_version = deployment.model.rpartition(":")
        job = Job(
            id=job_id,
            endpoint_name=endpoint.name,
            deployment_name=deployment.name,
            deployment=deployment,
            model_path=self.get_model(model_ref, model_version).path,
            input=job_input,
            output_uri=output_uri,
            scratch_uri=self.blobs.join(self.blobs.root, "jobs", job_id),
            settings=settings,
            inputs=inputs,
            experiment_name=metadata.experiment_name or endpoint.name,
            display_name=metadata.display_name,
            tags=metadata.tags,
            created_by=request.caller,
        )
        self.repo.add_job(job)
        return self._start(job)

    def _output_location(
        self, endpoint_name: str, job_id: str, settings: RunSettings, output_path: str | None
    ) -> str | None:
        """Where the job's merged output goes (None for summary_only)."""
        if settings.output_action != OutputAction.APPEND_ROW:
            return None
        folder = (
            self.locations.output_folder(output_path)
            if output_path
            else self.blobs.join(self.blobs.root, "outputs", endpoint_name, job_id)
        )
        return self.blobs.join(folder, settings.output_file_name)

    def _start(self, job: Job) -> Job:
        try:
            handle = self.backend.orchestrator.start(job)
        except Exception as error:
            # A job whose workflow never started must not wait in Queued forever.
            workflow.mark_failed(self.backend, job.id, f"the job could not be started: {error}")
            raise
        return self.repo.update_job(job.id, lambda j: j.model_copy(update={"execution": handle}))

    def invoke_idempotent(self, request: InvokeRequest, key: str) -> Job:
        """invoke, safe to retry: every request with the same key (per endpoint) answers with the same job, and
        the same key with a different request is a conflict. See batch_endpoints/idempotency.py."""
        self.repo.get_endpoint(request.endpoint_name)  # store no key for an endpoint that does not exist
        return self._start_once(
            request.endpoint_name,
            key,
            _invoke_fields(request),
            lambda job_id: self.invoke(dataclasses.replace(request, job_id=job_id)),
        )

    def _start_once(self, endpoint_name: str, key: str, request: dict, start: Callable[[str], Job]) -> Job:
        """The job the first request with `key` started; `start(job_id)` when none was yet."""
        held = idempotency.claim(self.backend.records, endpoint_name, key, request, new_job_id(endpoint_name))
        job = self._find_job(held.job_id)
        if job is not None:
            return job
        # No job yet: the first request with this key is still on its way, or was refused. Starting again with
        # the same job id is safe, because the job record is created only once (expected_version=0).
        try:
            return start(held.job_id)
        except ConflictError:
            job = self._find_job(held.job_id)
            if job is None:
                raise
            return job

    def get_job(self, job_id: str) -> Job:
        return self.repo.get_job(job_id)

    def _find_job(self, job_id: str) -> Job | None:
        try:
            return self.repo.get_job(job_id)
        except NotFoundError:
            return None

    def job_progress(self, job_id: str) -> dict[str, int]:
        return self.repo.job_progress(job_id)

    def list_jobs(
        self,
        endpoint_name: str | None = None,
        limit: int | None = None,
        *,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[Job]:
        """Jobs newest first; with an experiment name or tags, only the jobs that have them (every tag given)."""
        if endpoint_name is not None:
            self.repo.get_endpoint(endpoint_name)
        if experiment_name is None and not tags:
            return self.repo.list_jobs(endpoint_name, limit)
        # The record store indexes jobs by endpoint and time only, so filters read the jobs and keep the matches.
        wanted = tags or {}
        matches = [
            job
            for job in self.repo.list_jobs(endpoint_name)
            if experiment_name in (None, job.experiment_name)
            and all(job.tags.get(key) == value for key, value in wanted.items())
        ]
        return matches if limit is None else matches[:limit]

    def list_jobs_page(
        self,
        endpoint_name: str | None = None,
        *,
        limit: int = 20,
        next_token: str | None = None,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Page[Job]:
        """Jobs newest first, a page at a time; the store reads no further than the page."""
        return paged(
            lambda n: self.list_jobs(endpoint_name, limit=n, experiment_name=experiment_name, tags=tags),
            limit=limit,
            next_token=next_token,
        )

    def job_artifacts(self, job_id: str) -> list[str]:
        """URIs of what a finished job leaves for its user: the output file, the errors file, the summary."""
        job = self.repo.get_job(job_id)
        files = JobFiles(self.blobs, job.scratch_uri)
        candidates = [job.output_uri if job.status == JobStatus.COMPLETED else None, files.errors, files.summary]
        return [uri for uri in candidates if uri and self.blobs.exists(uri)]

    def job_logs(self, job_id: str, *, next_token: str | None = None, limit: int = 1000) -> LogPage:
        if not 0 < limit <= 10_000:
            raise ValidationError(f"must be between 1 and 10000 (got {limit})", field="limit")
        return self.backend.logs.read(self.repo.get_job(job_id), next_token=next_token, limit=limit)

    def cancel_job(self, job_id: str, *, caller: str = "") -> Job:
        job = self.repo.get_job(job_id)
        if job.status.is_final:
            raise ConflictError(f"job {job_id} already ended ({job.status.value}); nothing to cancel", field="job")

        def request_cancel(current: Job) -> Job:
            if current.status.is_final:
                return current
            changed = {"status": JobStatus.CANCEL_REQUESTED, "updated_at": now(), "updated_by": caller}
            return current.model_copy(update={**changed, "canceled_by": current.canceled_by or caller})

        job = self.repo.update_job(job_id, request_cancel)
        if job.status.is_final:  # it ended meanwhile: nothing runs any more
            return job
        # Asks the workflow to stop and returns: the workflow closes the job (Canceled) when it has stopped.
        self.backend.orchestrator.cancel(job)
        return self.repo.get_job(job_id)

    def rerun_job(
        self,
        job_id: str,
        *,
        failed_only: bool,
        output_path: str | None = None,
        output_file_name: str | None = None,
        caller: str = "",
        idempotency_key: str | None = None,
    ) -> Job:
        """Start a new job with an ended job's deployment and settings, over its failed and never-scored files
        (`failed_only`) or over its whole input again. The new job writes an output of its own; `rerun_of`
        names the job it reruns. With an idempotency key, as invoke_idempotent: one job per key."""
        source = self.repo.get_job(job_id)
        output = {"output_path": output_path, "output_file_name": output_file_name}
        if idempotency_key is None:
            return self._rerun(source, new_job_id(source.endpoint_name), failed_only, caller, **output)
        request = {"rerun_of": source.id, "failed_only": failed_only, **output}
        return self._start_once(
            source.endpoint_name,
            idempotency_key,
            request,
            lambda new_id: self._rerun(source, new_id, failed_only, caller, **output),
        )

    def _rerun(
        self,
        source: Job,
        new_id: str,
        failed_only: bool,
        caller: str,
        *,
        output_path: str | None,
        output_file_name: str | None,
    ) -> Job:
        if not source.status.is_final:
            raise ConflictError(
                f"job {source.id} is {source.status.value}; rerun it once it has ended (or resume it if it stopped)",
                field="job",
            )
        if failed_only and source.counts.files and source.counts.files_succeeded == source.counts.files:
            # Known from the record at once; which files failed is listed by the new job's plan, since that
            # scan grows with the source job and API Gateway waits 29 s at most.
            raise ConflictError(f"job {source.id} has no failed or unscored files; nothing to rerun", field="failed")
        settings = InvokeOverrides(output_file_name=output_file_name).apply(source.settings)
        output_uri = self._output_location(source.endpoint_name, new_id, settings, output_path)
        self.access.check_job(caller, source.input.uri, output_uri, endpoint=self._endpoint_if_any(source))
        _refuse_existing(self.blobs, output_uri)
        job = source.model_copy(
            update={
                "id": new_id,
                "output_uri": output_uri,
                "scratch_uri": self.blobs.join(self.blobs.root, "jobs", new_id),
                "settings": settings,
                "status": JobStatus.QUEUED,
                "counts": JobCounts(),
                "error": None,
                "execution": "",
                "created_at": now(),
                "started_at": None,
                "ended_at": None,
                "created_by": caller,
                "canceled_by": None,
                "updated_at": None,
                "updated_by": "",
                "rerun_of": source.id,
                "resumes": 0,
            }
        )
        if failed_only:
            files = JobFiles(self.blobs, job.scratch_uri)
            self.blobs.put_bytes(files.input_listing, json.dumps({"failed_files_of": source.id}).encode())
        self.repo.add_job(job)
        return self._start(job)

    def resume_job(self, job_id: str, *, caller: str = "", idempotency_key: str | None = None) -> Job:
        """Run the workflow of a job that stopped without finishing (its job host or execution died) again over
        the same job files: the plan is kept and mini-batches that have a result are not scored again. The
        caller must be allowed the job's input and output as if invoking it now. With an idempotency key, the
        key names one resume: the job is resumed once, and every request with the key answers with it."""
        job = self.repo.get_job(job_id)
        if idempotency_key is None:
            return self._resume(job, caller, resumes_before=job.resumes)
        held = idempotency.claim(
            self.backend.records, job.endpoint_name, idempotency_key, {"resume": job.id}, job.id, resume=job.resumes + 1
        )
        try:
            return self._resume(self.repo.get_job(job_id), caller, resumes_before=held.resume - 1)
        except ConflictError:
            # Refused because this key's resume was made already (the job runs, or ran and ended): answer with it.
            job = self.repo.get_job(job_id)
            if job.resumes >= held.resume:
                return job
            raise

    def _resume(self, job: Job, caller: str, *, resumes_before: int) -> Job:
        job_id = job.id
        _check_resumable(job, self.repo.job_progress(job_id).get("files_failed", 0))
        if self.backend.orchestrator.is_running(job):
            raise ConflictError(f"job {job_id} is still running ({job.execution}); nothing to resume", field="job")
        self.access.check_job(caller, job.input.uri, job.output_uri, endpoint=self._endpoint_if_any(job))

        def reopen(current: Job) -> Job:
            # Two resumes racing: the first to write wins, the other starts nothing.
            if current.resumes != resumes_before:
                raise ConflictError(f"job {job_id} was resumed by another request meanwhile", field="job")
            _check_resumable(current, 0)
            status = JobStatus.RUNNING if current.status == JobStatus.FAILED else current.status
            return current.model_copy(
                update={
                    "status": status,
                    "error": None,
                    "ended_at": None,
                    "resumes": current.resumes + 1,
                    "updated_at": now(),
                    "updated_by": caller,
                }
            )

        job = self.repo.update_job(job_id, reopen)
        workflow.forget_shard_failures(self.backend, job.id)
        try:
            handle = self.backend.orchestrator.resume(job)
        except Exception as error:
            workflow.mark_failed(self.backend, job.id, f"the job could not be resumed: {error}")
            raise
        return self.repo.update_job(job.id, lambda j: j.model_copy(update={"execution": handle}))

    def _endpoint_if_any(self, job: Job) -> Endpoint | None:
        """The job's endpoint, whose allow-lists bind the job's reruns and resumes; None once it is deleted."""
        try:
            return self.repo.get_endpoint(job.endpoint_name)
        except NotFoundError:
            return None


def _check_resumable(job: Job, files_failed: int) -> None:
    if job.status in {JobStatus.COMPLETED, JobStatus.CANCELED}:
        hint = "; rerun its failed files with `job rerun --failed`" if job.counts.files_failed else ""
        raise ConflictError(f"job {job.id} ended {job.status.value}; nothing to resume{hint}", field="job")
    if job.status == JobStatus.CANCEL_REQUESTED:
        raise ConflictError(f"job {job.id} is being canceled; it cannot be resumed", field="job")
    threshold = job.settings.error_threshold
    if job.status == JobStatus.FAILED and 0 <= threshold < files_failed:
        raise ConflictError(
            f"job {job.id} failed its error_threshold ({files_failed} failed files, {threshold} allowed); resuming "
            "would fail again: rerun its failed files with `job rerun --failed`",
            field="job",
        )


def new_job_id(endpoint_name: str) -> str:
    # Also the Step Functions execution name: at most 80 characters, unique per state machine for 90 days.
    return f"{endpoint_name}-{uuid.uuid4().hex[:12]}"


def _invoke_fields(request: InvokeRequest) -> dict:
    """What an invocation asks for: the request less who sent it and the job id it will get."""
    fields = {**dataclasses.asdict(request), "overrides": request.overrides.model_dump(exclude_none=True)}
    for name in ("caller", "job_id"):
        fields.pop(name)
    # Absent literal inputs and metadata are left out, so a request fingerprints as it did before they existed.
    for name in ("exclude", "inputs", "experiment_name", "display_name", "tags"):
        if not fields[name]:
            fields.pop(name)
    return fields


# ---------------------------------------------------------------------- versions of registered assets


def _one_version(
    noun: str,
    name: str,
    version: str | None,
    label: str | None,
    find: Callable[[str, str], AssetT | None],
    list_versions: Callable[[str], list[AssetT]],
) -> AssetT:
    """`name:version`, or the newest version when none is given or the label is `latest`."""
    if version is None or label == LATEST:
        versions = list_versions(name)
        if not versions:
            raise NotFoundError(f"{noun} {name!r} has no versions", field=noun)
        return newest(versions)
    found = find(name, version)
    if found is None:
        raise NotFoundError(f"{noun} {name}:{version} does not exist", field=noun)
    return found


def _refuse_existing(blobs: BlobStore, output_uri: str | None) -> None:
    if output_uri is not None and blobs.exists(output_uri):
        raise ConflictError(
            f"{output_uri} already exists; choose another output path or file name (results are never overwritten)",
            field="output",
        )
