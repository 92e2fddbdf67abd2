"""The SDK's sub-clients, one per kind of thing, with the verbs of Azure's MLClient operations.

Arguments and results are the project's own types: the spec models (Model, Environment, Endpoint, Deployment)
and the API's job and log views. Requests carry Azure's YAML schemas as JSON, as the REST API documents.
"""

from __future__ import annotations

import builtins
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel

from batch_endpoints.api.schemas import JobView, LogLineView
from batch_endpoints.client.connection import Connection, path
from batch_endpoints.client.storage import Storage
from batch_endpoints.errors import ConflictError, ValidationError
from batch_endpoints.idempotency import HEADER as IDEMPOTENCY_HEADER
from batch_endpoints.job_downloads import OUTPUT_NAME, JobFilesToDownload, output_location
from batch_endpoints.progress import watch
from batch_endpoints.specs import (
    Compute,
    ComputeDeclaration,
    ComputeUpdate,
    Deployment,
    Endpoint,
    Environment,
    InvokeOverrides,
    JobStatus,
    Model,
    NamedInput,
    NamedOutput,
    PipelineSettings,
    named_inputs,
    named_outputs,
)
from batch_endpoints.specs.components import COMPONENT_ADAPTER, ComponentT, with_code
from batch_endpoints.yaml_specs import PipelineJobDeclaration, endpoint_document, is_reference

LATEST = "latest"
# The API's largest page: fewer round trips while listing.
LIST_PAGE = 100
ModelT = TypeVar("ModelT", bound=BaseModel)


def typed(kind: type[ModelT], data: dict[str, Any]) -> ModelT:
    """`data` as `kind`, without the fields `kind` does not know: a newer server may add fields to a record,
    and an older SDK should still read it."""
    return kind.model_validate({name: value for name, value in data.items() if name in kind.model_fields})


class _Operations:
    def __init__(self, connection: Connection, storage: Storage) -> None:
        self._api = connection
        self._storage = storage

    def _listing(self, resource: str, query: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list, fetched a page at a time as the iteration goes."""
        return self._api.pages(resource, "value", query={"limit": LIST_PAGE, **(query or {})})


class ModelOperations(_Operations):
    def create_or_update(self, model: Model) -> Model:
        """Registers `model.path` as version `model.version`: a storage URI where it is, or a local folder or file
        (uploaded first when the API's storage is not this machine's disk). Versions are immutable."""
        location = self._storage.stored(
            model.path, path("/models/{}/uploads", model.name), field="path", code=True, keep_folder_name=True
        )
        body = {"path": location, "description": model.description, "tags": model.tags}
        return typed(Model, self._api.call("PUT", path("/models/{}/versions/{}", model.name, model.version), body=body))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        """A version, or the latest (`label="latest"` or no version)."""
        found = self._api.call("GET", path("/models/{}/versions/{}", name, version or label or LATEST))
        return typed(Model, found)

    def list(self, name: str | None = None) -> list[Model]:
        resource = path("/models/{}/versions", name) if name else "/models"
        return [typed(Model, item) for item in self._listing(resource)]


class ComponentOperations(_Operations):
    def create_or_update(self, component: ComponentT) -> ComponentT:
        """Registers `component` as version `component.version`, after uploading its local code folders (and
        its inline steps') when the API's storage is not this machine's disk. Versions are immutable."""
        if not component.name or not component.version:
            raise ValidationError("give both a name and a version to register", field="component.version")
        resource = path("/components/{}/versions/{}", component.name, component.version)
        return COMPONENT_ADAPTER.validate_python(self._api.call("PUT", resource, body=self.body(component)))

    def body(self, component: ComponentT) -> dict[str, Any]:
        """The component as the API takes it (a version's body, or a pipeline deployment's inline `component`),
        its local code folders (and its inline steps') uploaded first when the API's storage is not this
        machine's disk."""
        return _component_body(self._storage, component)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> ComponentT:
        """A version, or the latest (`label="latest"` or no version)."""
        found = self._api.call("GET", path("/components/{}/versions/{}", name, version or label or LATEST))
        return COMPONENT_ADAPTER.validate_python(found)

    def list(self, name: str | None = None) -> list[ComponentT]:
        resource = path("/components/{}/versions", name) if name else "/components"
        return [COMPONENT_ADAPTER.validate_python(item) for item in self._listing(resource)]


class EnvironmentOperations(_Operations):
    def create_or_update(self, environment: Environment) -> Environment:
        """Registers a version: an image, a conda file (its text), pip requirements. Versions are immutable."""
        if not environment.name or not environment.version:
            raise ValidationError("give both a name and a version to register", field="environment.version")
        body = environment.model_dump(
            include={"image", "conda_file", "pip_requirements", "description", "tags"}, exclude_none=True
        )
        resource = path("/environments/{}/versions/{}", environment.name, environment.version)
        return typed(Environment, self._api.call("PUT", resource, body=body))

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        found = self._api.call("GET", path("/environments/{}/versions/{}", name, version or label or LATEST))
        return typed(Environment, found)

    def list(self, name: str | None = None) -> list[Environment]:
        resource = path("/environments/{}/versions", name) if name else "/environments"
        return [typed(Environment, item) for item in self._listing(resource)]


class ComputeOperations(_Operations):
    """Compute clusters (`az ml compute`): the stack's own, and those created with `begin_create_or_update`."""

    def begin_create_or_update(self, compute: ComputeDeclaration) -> Compute:
        body = compute.model_dump(exclude={"name"})
        return typed(Compute, self._api.call("PUT", path("/computes/{}", compute.name), body=body))

    def get(self, name: str) -> Compute:
        return typed(Compute, self._api.call("GET", path("/computes/{}", name)))

    def list(self) -> list[Compute]:
        return [typed(Compute, item) for item in self._api.call("GET", "/computes")["value"]]

    def update(self, name: str, changes: ComputeUpdate) -> Compute:
        """Change instance limits, idle time, description or tags (fields left None stay as they are)."""
        body = changes.model_dump(exclude_none=True)
        return typed(Compute, self._api.call("PATCH", path("/computes/{}", name), body=body))

    def begin_delete(self, name: str) -> Compute | None:
        """Start or continue the deletion: None once the compute is gone, else the compute, Deleting."""
        answer = self._api.call("DELETE", path("/computes/{}", name))
        return typed(Compute, answer) if answer else None


class BatchEndpointOperations(_Operations):
    def create_or_update(self, endpoint: Endpoint) -> Endpoint:
        """Creates the endpoint or sets its description, tags and allow-lists (and, when given, its default
        deployment)."""
        body = endpoint_document(endpoint)
        return typed(Endpoint, self._api.call("PUT", path("/endpoints/{}", endpoint.name), body=body))

    def get(self, name: str) -> Endpoint:
        return typed(Endpoint, self._api.call("GET", path("/endpoints/{}", name)))

    def list(self) -> list[Endpoint]:
        return [typed(Endpoint, item) for item in self._listing("/endpoints")]

    def delete(self, name: str) -> None:
        """Deletes the endpoint and its deployments; its jobs and their outputs are kept."""
        self._api.call("DELETE", path("/endpoints/{}", name))

    def invoke(
        self,
        endpoint_name: str,
        *,
        input: str | None = None,
        input_type: str | None = None,
        exclude: builtins.list[str] | None = None,
        deployment_name: str | None = None,
        output_path: str | None = None,
        output_file_name: str | None = None,
        overrides: InvokeOverrides | None = None,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        display_name: str | None = None,
        tags: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> JobView:
        """Starts a job scoring `input`, a folder or file the API's storage holds: an s3:// URI for a stack, an
        absolute path (a relative one is made absolute) for the local server. Retries are safe: every invocation
        carries an Idempotency-Key (a fresh one unless given), so a retried request answers with the same job.
        `inputs` names inputs as Azure's invoke YAML does: a data input (`{"heart_data": {"type": "uri_folder",
        "path": ...}}`, instead of `input`) and literal inputs the deployment declares (`{"threshold": 0.7}` or
        `{"threshold": {"type": "number", "default": 0.7}}`); `outputs` the output, `{"score": {"path": ...}}`.
        `exclude`: glob patterns of the input folder's files to leave out (`["*.tmp"]`); every file is input by
        default. A local folder or file is uploaded first when the API's storage is not this machine's disk."""
        named = named_inputs(inputs)  # refused before anything is uploaded
        named_out = named_outputs(outputs)
        given = {"uri": input, "type": input_type, "exclude": exclude or None} if input is not None else None
        if given is not None:
            given["uri"] = self._storage.stored(str(input), "/inputs/uploads", field="input")
        body: dict[str, Any] = {
            "input": {k: v for k, v in given.items() if v is not None} if given is not None else None,
            "deployment_name": deployment_name,
            "output": _output(output_path, output_file_name),
            "overrides": (overrides or InvokeOverrides()).model_dump(exclude_none=True),
            "inputs": {name: _input_body(self._storage, name, value) for name, value in named.items()} or None,
            "outputs": {name: _output_body(value) for name, value in named_out.items()} or None,
            "experiment_name": experiment_name,
            "display_name": display_name,
            "tags": tags or None,
        }
        resource = path("/endpoints/{}/jobs", endpoint_name)
        job = self._api.call(
            "POST", resource, body={k: v for k, v in body.items() if v is not None}, headers=_keyed(idempotency_key)
        )
        return typed(JobView, job)


class BatchDeploymentOperations(_Operations):
    def create_or_update(self, deployment: Deployment, *, set_default: bool = False) -> Deployment:
        """Creates or replaces the deployment. Its code folder (and model path, for an inline model) is a storage
        URI, or a local folder, uploaded first when the API's storage is not this machine's disk. A pipeline
        deployment sends its registered component's reference (`component_ref`), or its inline component."""
        if deployment.type == "pipeline":
            assert deployment.component is not None and deployment.pipeline_settings is not None, "as Deployment checks"
            body = pipeline_deployment_body(
                self._storage,
                component=deployment.component_ref or deployment.component,
                settings=deployment.pipeline_settings,
                description=deployment.description,
                tags=deployment.tags,
            )
            return self.put(deployment.endpoint_name, deployment.name, body, set_default=set_default)
        body = {
            "description": deployment.description,
            "tags": deployment.tags,
            "model": deployment.model,
            "compute": deployment.compute,
            "settings": deployment.settings.model_dump(mode="json"),
        }
        configuration = deployment.code_configuration
        if configuration is not None:  # none: an MLflow model, scored by the built-in scorer
            code = self._storage.stored(configuration.code, "/code/uploads", field="code_configuration.code", code=True)
            body["code_configuration"] = {"code": code, "scoring_script": configuration.scoring_script}
        environment = _environment_body(deployment.environment)
        if environment is not None:
            body["environment"] = environment
        return self.put(deployment.endpoint_name, deployment.name, body, set_default=set_default)

    def put(self, endpoint_name: str, name: str, body: dict[str, Any], *, set_default: bool = False) -> Deployment:
        """PUT a deployment's body as the API takes it (deployment.yml as JSON)."""
        resource = path("/endpoints/{}/deployments/{}", endpoint_name, name)
        return typed(Deployment, self._api.call("PUT", resource, body=body, query={"set_default": set_default}))

    def get(self, name: str, endpoint_name: str) -> Deployment:
        return typed(Deployment, self._api.call("GET", path("/endpoints/{}/deployments/{}", endpoint_name, name)))

    def list(self, endpoint_name: str) -> list[Deployment]:
        resource = path("/endpoints/{}/deployments", endpoint_name)
        return [typed(Deployment, item) for item in self._listing(resource)]

    def delete(self, name: str, endpoint_name: str) -> None:
        self._api.call("DELETE", path("/endpoints/{}/deployments/{}", endpoint_name, name))


class JobOperations(_Operations):
    def create(self, job: PipelineJobDeclaration, *, idempotency_key: str | None = None) -> JobView:
        """Starts a pipeline job outside any endpoint, as `az ml job create --file pipeline-job.yml` does
        (`yaml_specs.load_pipeline_job` reads that file). Its inline pipeline's code folders and its local data
        inputs are uploaded first when the API's storage is not this machine's disk. Retries are safe, as for
        invoke: a retried request answers with the job the first one started."""
        given = job.invocation
        named_out = named_outputs(given.outputs)
        body: dict[str, Any] = {
            "type": "pipeline",
            "name": job.name,
            "description": job.description,
            "display_name": given.display_name,
            "experiment_name": given.experiment_name,
            "tags": given.tags,
            "settings": job.settings.model_dump(mode="json", exclude_none=True),
            "component": job.component
            if isinstance(job.component, str)
            else _component_body(self._storage, job.component),
            "inputs": {name: _input_body(self._storage, name, value) for name, value in given.inputs.items()},
            "outputs": {name: _output_body(value) for name, value in named_out.items()},
        }
        given_fields = {k: v for k, v in body.items() if v is not None}
        started = self._api.call("POST", "/jobs", body=given_fields, headers=_keyed(idempotency_key))
        return typed(JobView, started)

    def get(self, name: str) -> JobView:
        """A job and its live progress."""
        return typed(JobView, self._api.call("GET", path("/jobs/{}", name)))

    def list(
        self,
        endpoint_name: str | None = None,
        *,
        experiment_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Iterator[JobView]:
        """The endpoint's jobs (without one, every job: every endpoint's and the pipeline jobs run outside any),
        newest first, fetched page by page as the iteration goes; with an experiment name or tags, only the jobs
        that have them (every tag given)."""
        resource = "/jobs" if endpoint_name is None else path("/endpoints/{}/jobs", endpoint_name)
        query: dict[str, Any] = {"experiment_name": experiment_name}
        if tags:
            query["tag"] = [f"{key}={value}" for key, value in tags.items()]
        return (typed(JobView, item) for item in self._listing(resource, query))

    def stream(
        self, name: str, *, out: TextIO | None = None, interval_s: float = 2.0, timeout_s: float | None = None
    ) -> JobView:
        """Follows the job to its end (or `timeout_s`) with a progress line on `out` (stderr); returns it."""

        def poll() -> tuple[JobView, dict[str, int]]:
            job = self.get(name)
            return job, job.progress or {}

        return watch(poll, out=out or sys.stderr, interval_s=interval_s, timeout_s=timeout_s)

    def cancel(self, name: str) -> JobView:
        """Asks the job to stop; it ends Canceled. A job that has ended is a ConflictError."""
        return typed(JobView, self._api.call("POST", path("/jobs/{}/cancel", name)))

    def rerun(
        self,
        name: str,
        *,
        failed_only: bool = False,
        output_path: str | None = None,
        output_file_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobView:
        """Starts a new job over an ended job's failed and never-scored files (`failed_only`) or its whole input,
        with the same deployment and settings and an output of its own; its `rerun_of` names this job. Retries
        are safe, as for invoke: a retried rerun answers with the job the first one started."""
        body = {"failed": failed_only, "output": _output(output_path, output_file_name)}
        resource = path("/jobs/{}/rerun", name)
        return typed(JobView, self._api.call("POST", resource, body=body, headers=_keyed(idempotency_key)))

    def resume(self, name: str, *, idempotency_key: str | None = None) -> JobView:
        """Continues a job whose run stopped (its host or execution died), keeping its finished mini-batches.
        Retries are safe, as for invoke: a retried resume answers with the job, resumed once."""
        resource = path("/jobs/{}/resume", name)
        return typed(JobView, self._api.call("POST", resource, headers=_keyed(idempotency_key)))

    def logs(self, name: str) -> Iterator[LogLineView]:
        """What the job's scoring code printed or logged, oldest first."""
        return (typed(LogLineView, line) for line in self._api.pages(path("/jobs/{}/logs", name), "lines"))

    def download(self, name: str, *, download_path: str = ".") -> str:
        """Copies a completed job's output folder into `download_path`/named-outputs/score/, as Azure lays it out:
        its output file and the files its scoring script wrote to AZUREML_BI_OUTPUT_PATH, under their paths in
        the output folder. Returns the output file's path, or the folder for a summary_only job."""
        job = self.get(name)
        if job.status != JobStatus.COMPLETED:
            raise ConflictError(
                f"job {job.id} is {job.status.value}; only a completed job's output can be downloaded", field="name"
            )
        uris = [job.output_uri] if job.output_uri else []
        if job.output_folder:
            uris += [uri for uri in self._storage.list_folder(job.output_folder) if uri not in uris]
        files = JobFilesToDownload(job.output_uri, job.output_folder, uris)
        folder = os.path.abspath(download_path)
        for uri, target in files.targets(folder, output_name=OUTPUT_NAME):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self._storage.download(uri, target)
        os.makedirs(output_location(folder), exist_ok=True)
        return files.output_target(folder)


def _keyed(idempotency_key: str | None) -> dict[str, str]:
    """The Idempotency-Key header of a request that starts something: the key given, else a fresh one, which
    the request's retries all carry."""
    return {IDEMPOTENCY_HEADER: idempotency_key or uuid.uuid4().hex}


def pipeline_deployment_body(
    storage: Storage,
    *,
    component: ComponentT | str | None,
    settings: PipelineSettings,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    job_definition: str | None = None,
) -> dict[str, Any]:
    """A pipeline deployment as the API takes it: its pipeline component (a registered one's reference, or inline
    with its steps' local code uploaded first), or the earlier pipeline job it is made from (`job_definition`)."""
    body: dict[str, Any] = {
        "type": "pipeline",
        "description": description,
        "tags": dict(tags or {}),
        "settings": settings.model_dump(mode="json", exclude_none=True),
    }
    if job_definition is not None:
        body["job_definition"] = f"azureml:{job_definition}"
    if component is not None:
        body["component"] = component if isinstance(component, str) else _component_body(storage, component)
    return body


def _component_body(storage: Storage, component: ComponentT) -> dict[str, Any]:
    stored = with_code(component, lambda field, code: storage.stored(code, "/code/uploads", field=field, code=True))
    return stored.model_dump(mode="json", exclude={"created_at", "created_by"}, exclude_none=True)


def _input_body(storage: Storage, name: str, given: NamedInput) -> dict[str, Any]:
    """A named input as the API takes it: a local data input uploaded first, like `input`."""
    sent = given.model_dump(exclude_unset=True)
    if given.path is not None and not is_reference(given.path):
        sent["path"] = storage.stored(given.path, "/inputs/uploads", field=f"inputs.{name}.path")
    return sent


def _output(output_path: str | None, output_file_name: str | None) -> dict[str, str] | None:
    """An invoke's or a rerun's `output` block; None when neither is given."""
    output = {"path": output_path and _location(output_path), "file_name": output_file_name}
    return {k: v for k, v in output.items() if v is not None} or None


def _output_body(given: NamedOutput) -> dict[str, Any]:
    sent = given.model_dump(exclude_unset=True)
    if given.path is not None:
        sent["path"] = _location(given.path)
    return sent


def _location(location: str) -> str:
    """A storage URI as given; a local path made absolute, for a server that reads this machine's disk."""
    return location if "://" in location else os.path.abspath(location)


def _environment_body(environment: Environment) -> str | dict[str, Any] | None:
    if environment.name and environment.version and not (environment.image or environment.pip_requirements):
        return f"{environment.name}:{environment.version}"
    inline = environment.model_dump(include={"name", "version", "image", "pip_requirements"}, exclude_none=True)
    return inline if environment.image or environment.pip_requirements else None
