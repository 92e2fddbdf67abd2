"""Use cases of standalone pipeline jobs (`az ml job create --file pipeline-job.yml`): a pipeline run once, outside
any endpoint, as Azure's examples run one to try it before deploying it (a deployment's `job_definition` then takes
its pipeline, inputs and settings). The job runs as a pipeline deployment's job does, over a snapshot of the pipeline
made as a deployment would be, so that show, stream, list, download, cancel, resume and rerun all apply."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from batch_endpoints import idempotency
from batch_endpoints.services.endpoints import EndpointService
from batch_endpoints.services.jobs import STANDALONE, InvokeRequest, JobService, new_job_id
from batch_endpoints.specs import Deployment, Job, for_pipeline_deployment, parse
from batch_endpoints.specs.components import PipelineComponent
from batch_endpoints.yaml_specs import PipelineJobDeclaration

DEFAULT_EXPERIMENT = "Default"
"""Azure's experiment for a job that names none."""


class PipelineJobService(EndpointService, JobService):
    def create_pipeline_job(
        self, declaration: PipelineJobDeclaration, *, caller: str = "", idempotency_key: str | None = None
    ) -> Job:
        """Check the pipeline and the job's inputs against it, as a deployment and an invocation are checked, then
        start the job. The inputs' names and types are checked before an inline pipeline's code is stored. With an
        idempotency key, as invoke_idempotent: one job per key (its keys are those of no endpoint, "")."""
        name = declaration.name
        if idempotency_key is None:
            return self._create_pipeline_job(declaration, name or new_job_id(""), caller)
        if name is not None and self._find_job(name) is not None:
            held = idempotency.bound(self.backend.records, "", idempotency_key)
            if held is None or held.job_id != name:  # the name was taken by another request: refused as without key
                return self._create_pipeline_job(declaration, name, caller)
        return self._start_once(
            "",
            idempotency_key,
            _pipeline_job_fields(declaration),
            lambda job_id: self._create_pipeline_job(declaration, job_id, caller),
            job_id=name,
        )

    def _create_pipeline_job(self, declaration: PipelineJobDeclaration, job_id: str, caller: str) -> Job:
        given = declaration.invocation
        if isinstance(declaration.component, PipelineComponent):
            for_pipeline_deployment(declaration.component, given.inputs, given.outputs)
        pipeline, reference, compute = self.pipeline_to_run(declaration.component, declaration.settings)
        for_pipeline_deployment(pipeline, given.inputs, given.outputs)  # a registered pipeline's, before registering
        snapshot = parse(
            Deployment,
            {
                "name": STANDALONE,
                "endpoint_name": STANDALONE,
                "description": declaration.description,
                "type": "pipeline",
                "component": pipeline,
                "component_ref": reference,
                "pipeline_settings": declaration.settings,
                "compute": compute.name,
                "created_by": caller,
                "updated_by": caller,
            },
        )
        # Its command steps run on a job definition of their own (on AWS, revisions of the standalone jobs' one,
        # with this job's compute and its steps' images), as a deployment's steps run on the deployment's.
        self.register_on_compute(snapshot)
        request = InvokeRequest(
            endpoint_name="",
            deployment_name="",
            named_inputs=given.inputs,
            named_outputs=given.outputs,
            caller=caller,
            job_id=job_id,
            experiment_name=given.experiment_name or DEFAULT_EXPERIMENT,
            display_name=given.display_name,
            tags=given.tags,
        )
        return self._invoke_pipeline(request, None, snapshot, pipeline)


def _pipeline_job_fields(declaration: PipelineJobDeclaration) -> dict[str, Any]:
    """What a pipeline job's request asks for, as JSON, to fingerprint."""
    fields: dict[str, Any] = TypeAdapter(PipelineJobDeclaration).dump_python(declaration, mode="json")
    return fields
