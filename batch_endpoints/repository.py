"""Typed access to the record store: one place that knows each kind's key and parent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.ports import RecordStore
from batch_endpoints.specs import Compute, DataAsset, Datastore, Deployment, Endpoint, Environment, Job, Model
from batch_endpoints.specs.components import COMPONENT_ADAPTER, ComponentBase, ComponentT
from batch_endpoints.yaml_specs import LATEST

T = TypeVar("T", bound=BaseModel)

MODEL, ENVIRONMENT, ENDPOINT, DEPLOYMENT, JOB = "model", "environment", "endpoint", "deployment", "job"
DATA, DATASTORE, COMPONENT, COMPUTE = "data", "datastore", "component", "compute"


def version_key(name: str, version: str) -> str:
    """The key of one version of a registered asset (a model or an environment); its parent is the name."""
    return f"{name}:{version}"


AssetT = TypeVar("AssetT", Model, Environment, DataAsset, ComponentT, ComponentBase)


def newest(versions: Sequence[AssetT]) -> AssetT:
    """The latest of an asset's versions (`@latest`): the highest number; versions that are not numbers come
    before numbered ones, in text order."""

    def order(asset: AssetT) -> tuple[int, int | str]:
        version = asset.version or ""
        return (1, int(version)) if version.isdigit() else (0, version)

    return max(versions, key=order)


def next_version(version: str | None, name: str, list_versions: Callable[[str], Sequence[AssetT]]) -> str:
    """The version to register: the one given, or one more than the newest numeric version (Azure's rule)."""
    if version == LATEST:
        raise ValidationError("'latest' is the label of the newest version; choose another version", field="version")
    if version:
        return version
    numeric = [int(v.version) for v in list_versions(name) if v.version and v.version.isdigit()]
    return str(max(numeric, default=0) + 1)


def deployment_key(endpoint: str, name: str) -> str:
    return f"{endpoint}/{name}"


class Repository:
    def __init__(self, records: RecordStore) -> None:
        self.records = records

    # --- models
    def get_model(self, name: str, version: str) -> Model | None:
        return self._get_version(MODEL, Model, name, version)

    def list_models(self, name: str | None = None) -> list[Model]:
        return self._list_versions(MODEL, Model, name)

    def add_model(self, model: Model) -> None:
        self._add_version(MODEL, model.name, model.version, model)

    # --- environments
    def get_environment(self, name: str, version: str) -> Environment | None:
        return self._get_version(ENVIRONMENT, Environment, name, version)

    def list_environments(self, name: str | None = None) -> list[Environment]:
        return self._list_versions(ENVIRONMENT, Environment, name)

    def add_environment(self, environment: Environment) -> None:
        assert environment.name and environment.version, "a registered environment has a name and a version"
        self._add_version(ENVIRONMENT, environment.name, environment.version, environment)

    # --- data assets
    def get_data(self, name: str, version: str) -> DataAsset | None:
        return self._get_version(DATA, DataAsset, name, version)

    def list_data(self, name: str | None = None) -> list[DataAsset]:
        return self._list_versions(DATA, DataAsset, name)

    def add_data(self, asset: DataAsset) -> None:
        self._add_version(DATA, asset.name, asset.version, asset)

    # --- components: one kind, whatever their type (command, parallel, pipeline)
    def get_component(self, name: str, version: str) -> ComponentT | None:
        record = self.records.get(COMPONENT, version_key(name, version))
        return COMPONENT_ADAPTER.validate_python(record.data) if record else None

    def list_components(self, name: str | None = None) -> list[ComponentT]:
        return [COMPONENT_ADAPTER.validate_python(r.data) for r in self.records.list(COMPONENT, parent=name)]

    def add_component(self, component: ComponentT) -> None:
        assert component.name and component.version, "a registered component has a name and a version"
        self._add_version(COMPONENT, component.name, component.version, component)

    # --- datastores
    def get_datastore(self, name: str) -> Datastore | None:
        record = self.records.get(DATASTORE, name)
        return Datastore.model_validate(record.data) if record else None

    def list_datastores(self) -> list[Datastore]:
        return [Datastore.model_validate(r.data) for r in self.records.list(DATASTORE)]

    def add_datastore(self, datastore: Datastore) -> None:
        try:
            self.records.put(DATASTORE, datastore.name, _dump(datastore), expected_version=0)
        except ConflictError:
            raise ConflictError(f"datastore {datastore.name!r} already exists", field="name") from None

    # --- computes users created (the backend's own are its compute registry's)
    def get_compute(self, name: str) -> Compute | None:
        record = self.records.get(COMPUTE, name)
        return Compute.model_validate(record.data) if record else None

    def list_computes(self) -> list[Compute]:
        return [Compute.model_validate(r.data) for r in self.records.list(COMPUTE)]

    def add_compute(self, compute: Compute) -> None:
        try:
            self.records.put(COMPUTE, compute.name, _dump(compute), expected_version=0)
        except ConflictError:
            raise ConflictError(f"compute {compute.name!r} already exists", field="name") from None

    def put_compute(self, compute: Compute) -> None:
        self.records.put(COMPUTE, compute.name, _dump(compute), expected_version=None)

    def delete_compute(self, name: str) -> None:
        self.records.delete(COMPUTE, name)

    # --- versions of registered assets: written once (expected_version=0), listed by name
    def _get_version(self, kind: str, model: type[T], name: str, version: str) -> T | None:
        record = self.records.get(kind, version_key(name, version))
        return model.model_validate(record.data) if record else None

    def _list_versions(self, kind: str, model: type[T], name: str | None) -> list[T]:
        return [model.model_validate(r.data) for r in self.records.list(kind, parent=name)]

    def _add_version(self, kind: str, name: str, version: str, asset: BaseModel) -> None:
        self.records.put(kind, version_key(name, version), _dump(asset), parent=name, expected_version=0)

    # --- endpoints
    def get_endpoint(self, name: str) -> Endpoint:
        record = self.records.get(ENDPOINT, name)
        if record is None:
            raise _no_endpoint(name)
        return Endpoint.model_validate(record.data)

    def list_endpoints(self) -> list[Endpoint]:
        return [Endpoint.model_validate(r.data) for r in self.records.list(ENDPOINT)]

    def add_endpoint(self, endpoint: Endpoint) -> None:
        try:
            self.records.put(ENDPOINT, endpoint.name, _dump(endpoint), expected_version=0)
        except ConflictError:
            raise ConflictError(f"endpoint {endpoint.name!r} already exists", field="name") from None

    def update_endpoint(self, name: str, change: Callable[[Endpoint], Endpoint]) -> Endpoint:
        return self._update(ENDPOINT, name, Endpoint, change, parent="", missing=_no_endpoint(name))

    def delete_endpoint(self, name: str) -> None:
        self.records.delete(ENDPOINT, name)

    # --- deployments
    def get_deployment(self, endpoint: str, name: str) -> Deployment:
        record = self.records.get(DEPLOYMENT, deployment_key(endpoint, name))
        if record is None:
            raise NotFoundError(f"deployment {name!r} does not exist in endpoint {endpoint!r}", field="deployment_name")
        return Deployment.model_validate(record.data)

    def find_deployment(self, endpoint: str, name: str) -> Deployment | None:
        record = self.records.get(DEPLOYMENT, deployment_key(endpoint, name))
        return Deployment.model_validate(record.data) if record else None

    def list_deployments(self, endpoint: str) -> list[Deployment]:
        return [Deployment.model_validate(r.data) for r in self.records.list(DEPLOYMENT, parent=endpoint)]

    def put_deployment(self, deployment: Deployment, *, expected_version: int | None) -> None:
        key = deployment_key(deployment.endpoint_name, deployment.name)
        self.records.put(
            DEPLOYMENT, key, _dump(deployment), parent=deployment.endpoint_name, expected_version=expected_version
        )

    def deployment_version(self, endpoint: str, name: str) -> int:
        record = self.records.get(DEPLOYMENT, deployment_key(endpoint, name))
        return record.version if record else 0

    def delete_deployment(self, endpoint: str, name: str) -> None:
        self.records.delete(DEPLOYMENT, deployment_key(endpoint, name))

    # --- jobs
    def get_job(self, job_id: str) -> Job:
        record = self.records.get(JOB, job_id)
        if record is None:
            raise _no_job(job_id)
        return Job.model_validate(record.data)

    def job_progress(self, job_id: str) -> dict[str, int]:
        record = self.records.get(JOB, job_id)
        return record.counters if record else {}

    def list_jobs(self, endpoint: str | None = None, limit: int | None = None) -> list[Job]:
        """An endpoint's jobs (or every job but pipeline steps' own: every endpoint's and the standalone pipeline
        jobs), newest first."""
        read = limit
        while True:
            records = self.records.list(JOB, parent=endpoint, newest_first=True, limit=read)
            jobs = [job for job in (Job.model_validate(r.data) for r in records) if job.parent_job_name is None]
            # Steps' jobs are listed under their pipeline job, so only the listing of every job meets them; with
            # a limit it reads on past them, or a page would end short and look like the last.
            if read is None or limit is None or len(jobs) >= limit or len(records) < read:
                return jobs[:limit]
            read += limit - len(jobs)

    def add_job(self, job: Job) -> None:
        self.records.put(JOB, job.id, _dump(job), parent=_job_parent(job), expected_version=0)

    def update_job(self, job_id: str, change: Callable[[Job], Job]) -> Job:
        job = self.get_job(job_id)
        return self._update(JOB, job_id, Job, change, parent=_job_parent(job), missing=_no_job(job_id))

    def _update(
        self,
        kind: str,
        key: str,
        model: type[T],
        change: Callable[[T], T],
        *,
        parent: str,
        missing: NotFoundError,
    ) -> T:
        """Read-modify-write with an optimistic version check, retried while others write in between."""
        for _ in range(50):
            record = self.records.get(kind, key)
            if record is None:
                raise missing
            current = model.model_validate(record.data)
            updated = change(current)
            try:
                self.records.put(kind, key, _dump(updated), parent=parent, expected_version=record.version)
                return updated
            except ConflictError:
                continue
        raise ConflictError(f"{kind} {key!r} keeps changing; try again")


def _no_endpoint(name: str) -> NotFoundError:
    return NotFoundError(f"endpoint {name!r} does not exist", field="endpoint_name")


def _job_parent(job: Job) -> str:
    """What a job is listed under: its endpoint, or for a pipeline step's job, its pipeline job (so that an
    endpoint's jobs are the ones invoked)."""
    if job.parent_job_name is not None:
        return f"pipeline-job:{job.parent_job_name}"
    # A standalone pipeline job has no endpoint; a store's index takes no empty key (DynamoDB refuses one).
    return job.endpoint_name or "standalone-pipeline-jobs"


def _no_job(job_id: str) -> NotFoundError:
    return NotFoundError(f"job {job_id!r} does not exist", field="job")


def _dump(spec: BaseModel) -> dict[str, Any]:
    return spec.model_dump(mode="json")
