"""A pipeline job walked in rounds over its record, as the cloud workflow walks it: each round starts the steps whose
sources completed (no more than the default compute's instances), a failed step fails the job or, with
continue_on_step_failure, skips only the steps that read from it, a cancel closes what did not end, and the first
round of a resumed job runs again what did not complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_endpoints import pipeline_jobs, yaml_specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.pipeline_rounds import UNRECORDED, pick_round, record_step
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.shard_failures import SHARD_FAILURE, first_shard_failure
from batch_endpoints.specs import Job, JobStatus, StepStatus, now
from batch_endpoints.specs.invocation import NamedInput
from tests.core_fixtures import local_backend_fixture, recorder_fixture, service_fixture  # noqa: F401
from tests.test_pipeline_jobs_local import write_project

# a and b read the pipeline's input, c reads a, d reads c.
STEPS = {"a": None, "b": None, "c": "a", "d": "c"}


def recorded_job(service: BatchEndpointService, root: Path, *, instances: int = 4, **options: bool) -> Job:
    write_project(root, STEPS, **options)
    service.create_endpoint(yaml_specs.load_endpoint_mapping({"name": "shop"}))
    service.create_deployment(yaml_specs.load_deployment(root / "deployment.yml"), set_default=True)
    job = service.invoke(
        InvokeRequest(endpoint_name="shop", named_inputs={"input_data": NamedInput(path=str(root / "data"))})
    )
    assert job.pipeline is not None
    return job.model_copy(update={"pipeline": job.pipeline.model_copy(update={"max_parallel_steps": instances})})


@pytest.fixture
def job(service: BatchEndpointService, tmp_path: Path) -> Job:
    return recorded_job(service, tmp_path / "project")


def statuses(job: Job) -> dict[str, str]:
    assert job.pipeline is not None
    return {run.step: run.status.value for run in job.pipeline.steps}


def names(steps) -> list[str]:
    return [run.step for run in steps]


def test_each_round_starts_the_steps_whose_sources_completed_until_the_job_completes(job):
    first = pick_round(job, first=True)
    assert names(first.steps) == ["a", "b"]
    assert first.job.status == JobStatus.RUNNING
    assert statuses(first.job) == {"a": "Running", "b": "Running", "c": "NotStarted", "d": "NotStarted"}

    after = record_step(record_step(first.job, "a", None), "b", None)
    second = pick_round(after, first=False)
    assert names(second.steps) == ["c"]
    third = pick_round(record_step(second.job, "c", None), first=False)
    assert names(third.steps) == ["d"]
    last = pick_round(record_step(third.job, "d", None), first=False)

    assert last.done and last.steps == []
    assert last.job.status == JobStatus.COMPLETED and last.job.error is None
    assert set(statuses(last.job).values()) == {"Completed"}


def test_a_round_starts_no_more_steps_than_the_default_computes_instances(service, tmp_path):
    job = recorded_job(service, tmp_path / "project", instances=1)

    first = pick_round(job, first=True)
    second = pick_round(record_step(first.job, "a", None), first=False)

    assert (names(first.steps), names(second.steps)) == (["a"], ["b"])


def test_a_round_starts_no_more_steps_than_the_orchestrator_runs_at_once(job):
    first = pick_round(job, first=True, most=1)
    second = pick_round(record_step(first.job, "a", None), first=False, most=1)

    assert (names(first.steps), names(second.steps)) == (["a"], ["b"])


def test_a_failed_step_fails_the_job_and_the_steps_not_started_are_canceled(job):
    first = pick_round(job, first=True)
    after = record_step(record_step(first.job, "a", "its command exited with code 1"), "b", None)

    ended = pick_round(after, first=False)

    assert ended.done and ended.steps == []
    assert ended.job.status == JobStatus.FAILED
    assert ended.job.error == "step a failed: its command exited with code 1"
    assert statuses(ended.job) == {"a": "Failed", "b": "Completed", "c": "Canceled", "d": "Canceled"}


def test_continue_on_step_failure_skips_only_the_steps_that_read_from_the_failed_one(service, tmp_path):
    job = recorded_job(service, tmp_path / "project", continue_on_failure=True)
    first = pick_round(job, first=True)

    ended = pick_round(record_step(record_step(first.job, "a", "boom"), "b", None), first=False)

    assert ended.done and ended.job.status == JobStatus.FAILED
    assert statuses(ended.job) == {"a": "Failed", "b": "Completed", "c": "Skipped", "d": "Skipped"}


def test_a_cancel_request_closes_the_steps_that_did_not_end_canceled_running_ones_too(job):
    first = pick_round(job, first=True)
    requested = record_step(first.job, "a", None).model_copy(update={"status": JobStatus.CANCEL_REQUESTED})

    ended = pick_round(requested, first=False)

    assert ended.done and ended.job.status == JobStatus.CANCELED
    assert statuses(ended.job) == {"a": "Completed", "b": "Canceled", "c": "Canceled", "d": "Canceled"}
    assert ended.job.error is None


def test_a_step_still_running_when_the_next_round_is_picked_failed_without_a_result(job):
    first = pick_round(job, first=True)

    ended = pick_round(record_step(first.job, "a", None), first=False)

    assert ended.job.status == JobStatus.FAILED
    assert statuses(ended.job)["b"] == "Failed"
    assert ended.job.error == f"step b failed: {UNRECORDED}"


def test_the_first_round_of_a_resumed_job_keeps_the_completed_steps_and_runs_the_others_again(job):
    first = pick_round(job, first=True)
    failed = pick_round(record_step(record_step(first.job, "a", None), "b", "boom"), first=False).job
    resumed = failed.model_copy(update={"status": JobStatus.QUEUED, "ended_at": None, "error": None})

    again = pick_round(resumed, first=True)

    assert names(again.steps) == ["b", "c"]
    assert statuses(again.job) == {"a": "Completed", "b": "Running", "c": "Running", "d": "NotStarted"}
    assert again.job.pipeline is not None and again.job.pipeline.step("b").error is None


def test_recording_a_step_again_keeps_its_first_result_and_an_ended_job_picks_nothing(job):
    first = pick_round(job, first=True)
    once = record_step(first.job, "a", "boom")

    twice = record_step(once, "a", None)
    ended = pick_round(record_step(twice, "b", None), first=False)

    assert twice.pipeline == once.pipeline
    assert pick_round(ended.job, first=False) == ended.__class__(ended.job, [])
    assert ended.job.pipeline is not None and ended.job.pipeline.step("a").status == StepStatus.FAILED


def test_recording_a_step_the_job_does_not_have_is_refused_naming_the_step(job):
    with pytest.raises(ValidationError) as refused:
        record_step(pick_round(job, first=True).job, "nope", None)

    assert refused.value.field == "step"


def test_a_job_that_is_not_a_pipelines_is_refused_naming_the_job(job):
    with pytest.raises(ValidationError) as refused:
        pick_round(job.model_copy(update={"pipeline": None}), first=True)

    assert refused.value.field == "job_id"


def test_a_parallel_steps_job_reopened_by_a_resume_forgets_its_shard_failures_as_a_resumed_job_does(service, job):
    failed = job.model_copy(
        update={"id": f"{job.id}-score", "parent_job_name": job.id, "status": JobStatus.FAILED, "ended_at": now()}
    )
    service.repo.add_job(failed)
    records = service.backend.records
    records.put(SHARD_FAILURE, failed.id, {"shard": 0, "reason": "boom"}, expected_version=None)

    reopened = pipeline_jobs.open_step_job(service.repo, failed)
    again = pipeline_jobs.open_step_job(service.repo, failed)  # a retried round: already open

    assert (reopened.status, reopened.resumes) == (JobStatus.QUEUED, 1)
    assert again == reopened
    assert records.get(SHARD_FAILURE, failed.id) is None
    assert first_shard_failure(service.backend, reopened) == ""
