"""`ml_client.jobs` and the job Azure's `invoke` returns (BatchJob): follow, list, download and cancel jobs.

A batch endpoint job here is one job. Azure runs it as a pipeline job with one child that scores, and notebooks
download from that child (`list(ml_client.jobs.list(parent_job_name=job.name))[0]`): listing a job's children
returns the job itself, so that code finds the scoring job it expects.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.api.schemas import JobView, console_url
from batch_endpoints.azure.entities import SystemData
from batch_endpoints.azure.poller import LROPoller
from batch_endpoints.errors import BatchEndpointError, ConflictError, ValidationError
from batch_endpoints.job_downloads import JobFilesToDownload, check_output_name
from batch_endpoints.progress import watch
from batch_endpoints.specs import Job, JobStatus, PipelineSettings
from batch_endpoints.yaml_specs import PipelineJobDeclaration

STREAM_INTERVAL_S = 0.5


class JobException(BatchEndpointError):
    """A job that `stream` followed ended Failed or Canceled (Azure's JobException)."""

    status = 409
    code = "JobFailed"


@dataclass(kw_only=True)
class BatchJob:
    """A job as Azure's SDK shows it: `name` is the job's id."""

    name: str
    status: str
    endpoint_name: str
    deployment_name: str
    display_name: str | None = None
    experiment_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    creation_context: SystemData = field(default_factory=SystemData)
    output_uri: str | None = None
    error: str | None = None
    studio_url: str | None = None
    """The job's console page (its Step Functions execution); None for a job on this machine's backend."""
    type: str = "batch"

    @property
    def id(self) -> str:
        return self.name

    @classmethod
    def of(cls, job: Job | JobView) -> BatchJob:
        return cls(
            name=job.id,
            status=job.status.value,
            endpoint_name=job.endpoint_name,
            deployment_name=job.deployment_name,
            display_name=job.display_name or job.id,
            experiment_name=job.experiment_name,
            tags=dict(job.tags),
            creation_context=SystemData.of(
                job.created_at, job.created_by, job.ended_at or job.updated_at or job.started_at, job.updated_by
            ),
            output_uri=job.output_uri,
            error=job.error,
            studio_url=console_url(job.execution),
            type="pipeline" if job.pipeline is not None else "batch",
        )


@dataclass(kw_only=True)
class PipelineJob:
    """Azure's pipeline job as `load_job` reads it from pipeline-job.yml. Its name, display and experiment names,
    description, tags and `settings` (`pipeline_job.settings.default_compute = "batch-cluster"`) may be changed
    before `ml_client.jobs.create_or_update` runs it; its pipeline, inputs and outputs are the file's."""

    declaration: PipelineJobDeclaration = field(repr=False)
    name: str | None = None
    display_name: str | None = None
    experiment_name: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    type: str = field(default="pipeline", init=False)

    def declared(self) -> PipelineJobDeclaration:
        invocation = dataclasses.replace(
            self.declaration.invocation,
            display_name=self.display_name,
            experiment_name=self.experiment_name,
            tags=dict(self.tags),
        )
        return dataclasses.replace(
            self.declaration,
            name=self.name,
            description=self.description,
            settings=self.settings,
            invocation=invocation,
        )


class JobOperations:
    def __init__(self, service: EndpointsApi, caller: str = "") -> None:
        self._service = service
        self._caller = caller

    def create_or_update(
        self,
        job: PipelineJob,
        *,
        description: str | None = None,
        compute: str | None = None,
        tags: dict[str, str] | None = None,
        experiment_name: str | None = None,
        skip_validation: bool = False,
        **kwargs: Any,
    ) -> BatchJob:
        """Runs a pipeline job outside any endpoint (the job `load_job` read), as `az ml job create` does; the
        keywords replace the job's own. `skip_validation` is accepted: the job is checked whole before it runs."""
        refuse_unknown("jobs.create_or_update", kwargs)
        if not isinstance(job, PipelineJob):
            raise ValidationError(f"expected a PipelineJob from load_job (got {type(job).__name__})", field="job")
        settings = job.settings
        if compute:
            settings = settings.model_copy(update={"default_compute": compute.removeprefix("azureml:")})
        declared = dataclasses.replace(
            job,
            description=job.description if description is None else description,
            tags=job.tags if tags is None else tags,
            experiment_name=experiment_name or job.experiment_name,
            settings=settings,
        ).declared()
        return BatchJob.of(self._service.create_pipeline_job(declared, caller=self._caller))

    def get(self, name: str) -> BatchJob:
        return BatchJob.of(self._service.get_job(name))

    def list(
        self,
        *,
        parent_job_name: str | None = None,
        list_view_type: Any = None,
        **kwargs: Any,
    ) -> Iterator[BatchJob]:
        """Every job, newest first; with `parent_job_name`, the scoring job of that job: the job itself.
        `list_view_type` is accepted (archived jobs do not exist here)."""
        refuse_unknown("jobs.list", kwargs)
        if parent_job_name is not None:
            return iter([self.get(parent_job_name)])
        return (BatchJob.of(job) for job in self._service.list_jobs())

    def stream(self, name: str) -> None:
        """Follows the job to its end with a progress line on stderr; a job that did not complete raises
        JobException, as Azure's stream does."""
        job = watch(
            lambda: (self._service.get_job(name), self._service.job_progress(name)),
            out=sys.stderr,
            interval_s=STREAM_INTERVAL_S,
        )
        if job.status != JobStatus.COMPLETED:
            raise JobException(
                f"job {job.id} ended {job.status.value}: {job.error or 'no error recorded'}", field="name"
            )

    def download(
        self,
        name: str,
        *,
        download_path: str | os.PathLike[str] = ".",
        output_name: str | None = None,
        all: bool = False,
    ) -> None:
        """Writes the job's output folder to <download_path>/named-outputs/score/, as Azure lays it out; without
        `output_name`, or with `all=True`, the job's other files (errors, summary) go to <download_path>/artifacts/
        too. As in Azure's SDK, `output_name` wins over `all`."""
        check_output_name(output_name, field="output_name")
        job = self._service.get_job(name)
        if not job.status.is_final:
            raise ConflictError(f"job {job.id} is {job.status.value}; download it once it has ended", field="name")
        files = JobFilesToDownload(job.output_uri, job.output_folder, self._service.job_artifacts(job.id))
        for uri, target in files.targets(os.path.abspath(download_path), output_name=output_name):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(self._service.blobs.get_bytes(uri))

    def begin_cancel(self, name: str) -> LROPoller[None]:
        self._service.cancel_job(name)
        return LROPoller(None)


def refuse_unknown(call: str, kwargs: dict[str, Any]) -> None:
    """Azure's operations take **kwargs; one this project has no use for is named rather than dropped."""
    if kwargs:
        raise TypeError(f"{call}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
