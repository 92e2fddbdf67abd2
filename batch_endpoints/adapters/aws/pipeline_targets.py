"""What the pipeline state machine's Map needs to run each step of a round, so that it runs them without reading the
job's record: a command step's Batch job queue and job definition, a parallel step's child execution of the
model-job state machine. A few hundred bytes a step, whatever the pipeline's size (a round has at most 40 steps).

A parallel step's own job is recorded (or, on a resumed pipeline job, reopened, keeping its finished mini-batches)
before its execution starts, with that execution's ARN, so that the execution_ended step knows the execution as
the job's. Running this again for the same round (a retried Lambda) records nothing new and names the same
execution.
"""

from __future__ import annotations

import functools
from typing import Any

from batch_endpoints import pipeline_jobs
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.pipeline_graph import pipeline_steps
from batch_endpoints.pipeline_rounds import record_step
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Job, JobStatus, StepRun
from batch_endpoints.specs.components import ParallelComponent


class RoundTargets:
    def __init__(self, repo: Repository, model_jobs: StepFunctionsOrchestrator) -> None:
        self.repo = repo
        self.model_jobs = model_jobs

    def steps(self, job: Job, runs: list[StepRun]) -> list[dict[str, Any]]:
        """Each step of the round with its target; a parallel step whose job already completed (a resumed
        pipeline job that lost the step's result) is recorded Completed here, and left out."""
        assert job.deployment.component is not None, "a pipeline job"
        components = pipeline_steps(job.deployment.component)
        targets: list[dict[str, Any]] = []
        for run in runs:
            step = job.deployment.component.jobs[run.step]
            component = components[run.step]
            child = None
            if isinstance(component, ParallelComponent):
                child = self._open_child(job, run, pipeline_jobs.parallel_step_job(job, run, step, component))
                if child.status == JobStatus.COMPLETED:
                    self.repo.update_job(job.id, functools.partial(_completed, step=run.step))
                    continue
            target = self.model_jobs.step_target(job, run, compute=pipeline_jobs.step_compute(job, step), child=child)
            targets.append({"step": run.step, "job_name": run.name, "type": run.type, **target})
        return targets

    def _open_child(self, parent: Job, run: StepRun, made: Job) -> Job:
        child = pipeline_jobs.open_step_job(self.repo, made)
        execution = self.model_jobs.execution_arn(self.model_jobs.execution_name(child), child)
        if child.status == JobStatus.COMPLETED or child.execution == execution:
            return child
        return self.repo.update_job(child.id, lambda current: current.model_copy(update={"execution": execution}))


def _completed(job: Job, *, step: str) -> Job:
    return record_step(job, step, None)
