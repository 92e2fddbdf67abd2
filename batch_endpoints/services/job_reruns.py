"""Use cases of a job that ended or stopped: rerun it (all its files, or only its failed ones) as a new job, or
resume it where its run stopped, keeping what finished."""

from __future__ import annotations

import json
from collections.abc import Mapping

from batch_endpoints import idempotency
from batch_endpoints.errors import ConflictError, NotFoundError
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.services.jobs import InvokeRequest, JobService, new_job_id, refuse_existing
from batch_endpoints.shard_failures import forget_shard_failures
from batch_endpoints.specs import (
    Endpoint,
    InvokeOverrides,
    Job,
    JobCounts,
    JobStatus,
    NamedInput,
    NamedOutput,
    PipelineRun,
    now,
)
from batch_endpoints.specs.invocation import refuse_model_options


class JobRerunService(JobService):
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
        if source.pipeline is not None:
            model_only = {"failed": failed_only, "output_path": output_path, "output_file_name": output_file_name}
            return self._rerun_pipeline(source, source.pipeline, new_id, caller, model_only)
        if failed_only and source.counts.files and source.counts.files_succeeded == source.counts.files:
            # Known from the record at once; which files failed is listed by the new job's plan, since that
            # scan grows with the source job and API Gateway waits 29 s at most.
            raise ConflictError(f"job {source.id} has no failed or unscored files; nothing to rerun", field="failed")
        settings = InvokeOverrides(output_file_name=output_file_name).apply(source.settings)
        output_folder, output_uri = self._output_locations(source.endpoint_name, new_id, settings, output_path)
        endpoint = self._endpoint_if_any(source)
        self.access.check_job(caller, source.input.uri, output_uri or output_folder, endpoint=endpoint)
        refuse_existing(self.blobs, output_uri)
        job = source.model_copy(
            update={
                "id": new_id,
                "output_uri": output_uri,
                "output_folder": output_folder,
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

    def _rerun_pipeline(
        self,
        source: Job,
        pipeline: PipelineRun,
        new_id: str,
        caller: str,
        model_only: Mapping[str, object],
    ) -> Job:
        """A new pipeline job with the ended one's deployment and inputs, every step run again. Outputs given a
        path at invoke are written there again; the others get the new job's own folders. `model_only`: the
        options of a model deployment's rerun, refused when given."""
        refuse_model_options(
            model_only,
            "a pipeline job reruns whole, its outputs written where the job wrote them (resume it to keep the steps "
            "that completed)",
        )
        assert source.deployment.component is not None, "a pipeline job's deployment has its pipeline"
        own_folder = self.blobs.join(self.blobs.root, "azureml", source.id)
        named_outputs = {
            name: NamedOutput(path=uri)
            for name, uri in pipeline.outputs.items()
            if uri != self.blobs.join(own_folder, name)
        }
        request = InvokeRequest(
            endpoint_name=source.endpoint_name,
            deployment_name=source.deployment_name,
            named_inputs={
                **{name: NamedInput(path=uri) for name, uri in pipeline.data_inputs.items()},
                **{name: NamedInput(default=value) for name, value in pipeline.literal_inputs.items()},
            },
            named_outputs=named_outputs,
            caller=caller,
            job_id=new_id,
            experiment_name=source.experiment_name,
            display_name=source.display_name,
            tags=source.tags,
        )
        return self._invoke_pipeline(
            request, self._endpoint_if_any(source), source.deployment, source.deployment.component, rerun_of=source.id
        )

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
        output = job.output_uri or job.output_folder
        self.access.check_job(caller, job.input.uri, output, endpoint=self._endpoint_if_any(job))

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
        forget_shard_failures(self.backend.records, job.id)
        return self._run_workflow(job, self.backend.orchestrator.resume, "resumed")

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
