"""Use cases of jobs: invoke an endpoint (at most once per idempotency key), follow, cancel, rerun and resume a
job. A job runs a deployment's registered model, so these build on the asset use cases."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from batch_endpoints import idempotency, literal_inputs, pipeline_jobs, uploads, workflow
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.paging import Page, paged
from batch_endpoints.ports import BlobStore, LogPage
from batch_endpoints.services.assets import AssetService
from batch_endpoints.specs import (
    Deployment,
    Endpoint,
    InvokeOverrides,
    Job,
    JobInput,
    JobMetadata,
    JobStatus,
    LiteralValue,
    NamedInput,
    NamedOutput,
    OutputAction,
    PipelineRun,
    RunSettings,
    for_pipeline_deployment,
    now,
    parse,
)
from batch_endpoints.specs.components import PipelineComponent
from batch_endpoints.specs.invocation import MODEL_INPUT_TYPES
from batch_endpoints.yaml_files.references import AZURE_PREFIX, asset_reference


@dataclass(frozen=True)
class InvokeRequest:
    endpoint_name: str
    input: str = ""
    """A model deployment's data input."""
    input_type: str | None = None
    exclude: list[str] = field(default_factory=list)
    """Glob patterns of the input folder's files to leave out (JobInput.exclude)."""
    deployment_name: str | None = None
    output_path: str | None = None
    overrides: InvokeOverrides = field(default_factory=InvokeOverrides)
    inputs: dict[str, Any] = field(default_factory=dict)
    """Literal inputs, checked against the deployment's declared inputs."""
    named_inputs: dict[str, NamedInput] = field(default_factory=dict)
    """A pipeline deployment's inputs by name, data and literals (`input` and `inputs` are a model's)."""
    named_outputs: dict[str, NamedOutput] = field(default_factory=dict)
    """A pipeline deployment's outputs by name."""
    caller: str = ""
    job_id: str | None = None
    """Chosen by the caller to make a retried invoke idempotent; generated when absent."""
    experiment_name: str | None = None
    display_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class JobService(AssetService):
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
        if deployment.component is not None:
            return self._invoke_pipeline(request, endpoint, deployment, deployment.component)
        settings = request.overrides.apply(deployment.settings)
        inputs = literal_inputs.resolve(deployment.inputs, request.inputs)
        metadata = parse(
            JobMetadata,
            {"experiment_name": request.experiment_name, "display_name": request.display_name, "tags": request.tags},
        )
        job_id = request.job_id or new_job_id(endpoint.name)
        output_folder, output_uri = self._output_locations(endpoint.name, job_id, settings, request.output_path)
        # Before anything is looked at: whether an input exists is itself something a caller may not learn.
        self.access.check_job(
            request.caller,
            self.locations.resolve(request.input, field="input").uri,
            output_uri or output_folder,
            endpoint=endpoint,
        )
        job_input = self.locations.job_input(request.input, request.input_type, exclude=request.exclude)
        refuse_existing(self.blobs, output_uri)
        model_ref, _, model_version = str(deployment.model).rpartition(":")
        job = Job(
            id=job_id,
            endpoint_name=endpoint.name,
            deployment_name=deployment.name,
            deployment=deployment,
            model_path=self.get_model(model_ref, model_version).path,
            input=job_input,
            output_uri=output_uri,
            output_folder=output_folder,
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

    def _invoke_pipeline(
        self,
        request: InvokeRequest,
        endpoint: Endpoint | None,
        deployment: Deployment,
        pipeline: PipelineComponent,
        *,
        rerun_of: str | None = None,
    ) -> Job:
        """A pipeline job: its inputs checked against the pipeline's, each output given a folder (by default
        `azureml/<job>/<output>` in the system's storage, Azure's shape), its steps recorded as child jobs."""
        if request.input:
            raise ValidationError("a pipeline deployment takes its inputs by name: inputs.NAME.path", field="input")
        invocation = for_pipeline_deployment(pipeline, request.named_inputs, request.named_outputs)
        metadata = parse(
            JobMetadata,
            {"experiment_name": request.experiment_name, "display_name": request.display_name, "tags": request.tags},
        )
        job_id = request.job_id or new_job_id(request.endpoint_name)
        job_folder = self.blobs.join(self.blobs.root, "azureml", job_id)
        outputs = {
            name: self.locations.output_folder(path, field=f"outputs.{name}.path")
            if path
            else self.blobs.join(job_folder, name)
            for name, path in invocation.output_paths.items()
        }
        models = {name for name in invocation.data_inputs if pipeline.inputs[name].type in MODEL_INPUT_TYPES}
        resolved = {
            name: self.locations.resolve(str(given.path), field=f"inputs.{name}.path").uri
            for name, given in invocation.data_inputs.items()
            if name not in models or not _registered(str(given.path))
        }
        # Before anything is looked at, as for a model's job: whether an input exists is itself not to be learnt.
        for uri in resolved.values():
            self.access.check_job(request.caller, uri, None, endpoint=endpoint)
        for uri in outputs.values():
            self.access.check_job(request.caller, job_folder, uri, endpoint=endpoint)
        # A model input reaches its step as the model's folder: a registered model's, or the path given.
        model_inputs = {name: self._model_input(invocation.data_inputs[name], name) for name in models}
        data_inputs = {
            name: self.locations.job_input(str(given.path), given.type, field=f"inputs.{name}.path")
            for name, given in invocation.data_inputs.items()
            if name not in models
        }
        literals: dict[str, LiteralValue] = {
            **{name: given.uri for name, given in data_inputs.items()},
            **model_inputs,
        }
        steps = pipeline_jobs.plan_steps(
            job_id,
            pipeline,
            job_folder=job_folder,
            join=self.blobs.join,
            inputs={**invocation.literals, **literals},
            outputs=outputs,
            resolve_path=self._step_data,
        )
        compute = self.backend.computes.get(deployment.compute)
        run = PipelineRun(
            data_inputs={**{name: given.uri for name, given in data_inputs.items()}, **model_inputs},
            literal_inputs=invocation.literals,
            outputs=outputs,
            steps=steps,
            max_parallel_steps=compute.max_instances if compute else 1,
        )
        scratch = self.blobs.join(self.blobs.root, "jobs", job_id)
        job = Job(
            id=job_id,
            endpoint_name=request.endpoint_name,
            deployment_name=deployment.name if request.endpoint_name else "",
            deployment=deployment,
            model_path="",
            input=next(iter(data_inputs.values()), JobInput(uri=scratch)),
            output_uri=None,
            output_folder=job_folder,
            scratch_uri=scratch,
            settings=deployment.settings,
            inputs=invocation.literals,
            experiment_name=metadata.experiment_name or request.endpoint_name,
            display_name=metadata.display_name,
            tags=metadata.tags,
            created_by=request.caller,
            pipeline=run,
            rerun_of=rerun_of,
        )
        self.repo.add_job(job)
        return self._start(job)

    def _model_input(self, given: NamedInput, name: str) -> str:
        field = f"inputs.{name}.path"
        if given.type is not None and given.type not in MODEL_INPUT_TYPES:
            raise ValidationError(
                f"is a model input; give a registered model or a folder, not a {given.type}",
                field=f"inputs.{name}.type",
            )
        path = str(given.path)
        if _registered(path):
            model, version, label = asset_reference(path, field=field, noun="model")
            try:
                return self.get_model(model, version, label).path
            except NotFoundError as exc:
                raise NotFoundError(exc.message, field=field) from None
        location = self.locations.resolve(path, field=field)
        if not self.blobs.is_folder(location.uri):
            raise ValidationError(f"{path!r} is not a folder; a model input is the model's folder", field=field)
        return location.uri

    def _step_data(self, path: str, field: str) -> str:
        """Where a step's input given by path lies: a registered model (`azureml:name@latest`, as Azure's pipelines
        name their models), or anything an invocation's input may be."""
        if _registered(path):
            name, version, label = asset_reference(path, field=field, noun="model")
            if self.repo.list_models(name):
                return self.get_model(name, version, label).path
            if not self.repo.list_data(name):
                raise ValidationError(f"{path!r} names no registered model nor data asset", field=field)
        return self.locations.resolve(path, field=field).uri

    def _output_locations(
        self, endpoint_name: str, job_id: str, settings: RunSettings, output_path: str | None
    ) -> tuple[str, str | None]:
        """The job's output folder, where the scoring script's own files go too (AZUREML_BI_OUTPUT_PATH), and its
        merged output file in it (None for summary_only)."""
        folder = (
            self.locations.output_folder(output_path)
            if output_path
            else self.blobs.join(self.blobs.root, "outputs", endpoint_name, job_id)
        )
        if settings.output_action != OutputAction.APPEND_ROW:
            return folder, None
        return folder, self.blobs.join(folder, settings.output_file_name)

    def _start(self, job: Job) -> Job:
        return self._run_workflow(job, self.backend.orchestrator.start, "started")

    def _run_workflow(self, job: Job, run: Callable[[Job], str], done: str) -> Job:
        """The job with the execution `run` (the orchestrator's start or resume) began for it. A job whose workflow
        never began is failed, so that it does not wait in Queued or Running forever."""
        try:
            handle = run(job)
        except Exception as error:
            workflow.mark_failed(self.backend, job.id, f"the job could not be {done}: {error}")
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

    def _start_once(
        self,
        endpoint_name: str,
        key: str,
        request: dict[str, Any],
        start: Callable[[str], Job],
        job_id: str | None = None,
    ) -> Job:
        """The job the first request with `key` started; `start(job_id)` when none was yet (`job_id`: the name
        the request gives its job, else a new one)."""
        held = idempotency.claim(self.backend.records, endpoint_name, key, request, job_id or new_job_id(endpoint_name))
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
        """Jobs newest first; with an experiment name or tags, only the jobs that have them (every tag given).
        A deleted endpoint's jobs are kept, and listed by its name; a name that never had jobs nor an endpoint is
        not found."""
        if experiment_name is None and not tags:
            jobs = self.repo.list_jobs(endpoint_name, limit)
        else:
            # The record store indexes jobs by endpoint and time only, so filters read the jobs and keep the matches.
            wanted = tags or {}
            matches = [
                job
                for job in self.repo.list_jobs(endpoint_name)
                if experiment_name in (None, job.experiment_name)
                and all(job.tags.get(key) == value for key, value in wanted.items())
            ]
            jobs = matches if limit is None else matches[:limit]
        if endpoint_name is not None and not jobs and not self.repo.list_jobs(endpoint_name, 1):
            self.repo.get_endpoint(endpoint_name)
        return jobs

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
        """URIs of what a finished job leaves for its user: the output file, the errors file, the summary, and
        the files its scoring script wrote to AZUREML_BI_OUTPUT_PATH, which lie in the output folder with the
        output file. As Azure downloads a job's output, the folder comes whole: a folder that several jobs were
        given as their output path holds their files together."""
        job = self.repo.get_job(job_id)
        if job.pipeline is not None:
            return self._pipeline_artifacts(job.pipeline.outputs.values())
        files = JobFiles(self.blobs, job.scratch_uri)
        candidates = [job.output_uri if job.status == JobStatus.COMPLETED else None, files.errors, files.summary]
        found = [uri for uri in candidates if uri and self.blobs.exists(uri)]
        if job.output_folder is not None and self.blobs.is_folder(job.output_folder):
            found += [info.uri for info in self.blobs.list_files(job.output_folder) if info.uri not in found]
        return found

    def _pipeline_artifacts(self, outputs: Iterable[str]) -> list[str]:
        """The files of a pipeline job's outputs, wherever each output was written."""
        return [
            info.uri for folder in outputs if self.blobs.is_folder(folder) for info in self.blobs.list_files(folder)
        ]

    def job_logs(self, job_id: str, *, next_token: str | None = None, limit: int = 1000) -> LogPage:
        if not 0 < limit <= 10_000:
            raise ValidationError(f"must be between 1 and 10000 (got {limit})", field="limit")
        job = self._find_job(job_id)
        if job is not None:
            return self.backend.logs.read(job, next_token=next_token, limit=limit)
        # A command step's child job (<job id>-<step>) has no record of its own: its pipeline job's record has it.
        parent_id, _, step = job_id.rpartition("-")
        parent = self._find_job(parent_id)
        if parent is None or parent.pipeline is None or step not in {run.step for run in parent.pipeline.steps}:
            raise NotFoundError(f"job {job_id!r} does not exist", field="job")
        return self.backend.logs.read(parent, step=step, next_token=next_token, limit=limit)

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


def _registered(path: str) -> bool:
    """Whether a path names a registered asset (azureml:name:version, not a datastore's azureml://)."""
    return path.strip().startswith(AZURE_PREFIX) and "://" not in path


STANDALONE = "pipeline-job"
"""The name of a standalone pipeline job's pipeline snapshot, and the prefix of its generated name: it has no
endpoint (its endpoint_name and deployment_name are empty)."""


def new_job_id(endpoint_name: str) -> str:
    # Also the Step Functions execution name: at most 80 characters, unique per state machine for 90 days.
    return f"{endpoint_name or STANDALONE}-{uuid.uuid4().hex[:12]}"


def _invoke_fields(request: InvokeRequest) -> dict[str, Any]:
    """What an invocation asks for: the request less who sent it and the job id it will get."""
    fields = {
        **dataclasses.asdict(request),
        "overrides": request.overrides.model_dump(exclude_none=True),
        "named_inputs": {name: given.model_dump(exclude_none=True) for name, given in request.named_inputs.items()},
        "named_outputs": {name: given.model_dump(exclude_none=True) for name, given in request.named_outputs.items()},
    }
    for name in ("caller", "job_id"):
        fields.pop(name)
    # Absent literal inputs and metadata are left out, so a request fingerprints as it did before they existed.
    for name in (
        "input",
        "exclude",
        "inputs",
        "named_inputs",
        "named_outputs",
        "experiment_name",
        "display_name",
        "tags",
    ):
        if not fields[name]:
            fields.pop(name)
    return fields


def refuse_existing(blobs: BlobStore, output_uri: str | None) -> None:
    if output_uri is not None and blobs.exists(output_uri):
        raise ConflictError(
            f"{output_uri} already exists; choose another output path or file name (results are never overwritten)",
            field="output",
        )
