"""Rerun an ended job's failed files as a new job; resume a job whose run stopped, keeping finished mini-batches.

The service tests play the runner by hand (plan, then part and result files) on the local backend with a
recording orchestrator; the API tests run on both stacks, the cloud one starting real (moto) executions.
The input is seven files cut into mini-batches of three: 0 = a, b, c; 1 = d, sub/e, sub/f; 2 = z.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from batch_endpoints.backend import Backend
from batch_endpoints.errors import ConflictError, ValidationError
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import JobStatus
from batch_endpoints.workflow import finalize_job, mark_failed, plan_job
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
    Api,
    Folders,
    Stack,
    api_fixture,
    aws_fixture,
    folders_fixture,
    ready_fixture,
    stack_fixture,
)
from tests.core_fixtures import (  # noqa: F401 (pytest fixtures)
    RecordingOrchestrator,
    code_dir_fixture,
    deployment_declaration,
    input_dir_fixture,
    invoke,
    local_backend_fixture,
    model_dir_fixture,
    ready_service_fixture,
    recorder_fixture,
    service_fixture,
)
from tests.test_api_routes import invoke as api_invoke
from tests.test_api_routes import refused
from tests.test_workflow import HandRunner, output_of, start_job


def job_count(service: BatchEndpointService) -> int:
    return len(service.list_jobs())


# ------------------------------------------------------------------------------------------------ rerun
def test_rerun_failed_scores_only_the_failed_files_in_a_new_job_with_the_same_settings(
    ready_service: BatchEndpointService, local_backend: Backend, recorder: RecordingOrchestrator, input_dir: Path
) -> None:
    first = start_job(ready_service, input_dir, max_retries=1)
    first.score_all(failed=["c.txt", "z.txt"])
    source = finalize_job(local_backend, first.job_id)
    assert source.status == JobStatus.COMPLETED and source.counts.files_failed == 2

    rerun = ready_service.rerun_job(source.id, failed_only=True, caller="ann")

    assert rerun.id != source.id and rerun.rerun_of == source.id and rerun.created_by == "ann"
    assert rerun.deployment == source.deployment and rerun.settings == source.settings
    assert rerun.output_uri not in (None, source.output_uri)
    assert recorder.started[-1] == rerun.id
    second = HandRunner(local_backend, rerun)
    assert [mb.files for mb in second.mini_batches] == [["c.txt", "z.txt"]]
    second.score_all()
    done = finalize_job(local_backend, rerun.id)
    assert done.status == JobStatus.COMPLETED and done.counts.files == 2
    rows = (
        output_of(ready_service, source).decode().splitlines()[1:]
        + output_of(ready_service, done).decode().splitlines()[1:]
    )
    assert sorted(row.split(",")[0] for row in rows) == [
        "a.txt",
        "b.txt",
        "c.txt",
        "d.txt",
        "sub/e.txt",
        "sub/f.txt",
        "z.txt",
    ]


def test_rerun_failed_of_a_stopped_job_includes_the_mini_batches_that_never_ran(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    first = start_job(ready_service, input_dir)
    first.score(0, failed=["b.txt"])
    ready_service.cancel_job(first.job_id)
    assert finalize_job(local_backend, first.job_id).status == JobStatus.CANCELED

    rerun = ready_service.rerun_job(first.job_id, failed_only=True)

    planned = HandRunner(local_backend, rerun).mini_batches
    assert [name for mb in planned for name in mb.files] == ["b.txt", "d.txt", "sub/e.txt", "sub/f.txt", "z.txt"]


def test_rerun_of_every_file_writes_where_it_is_told(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path, tmp_path: Path
) -> None:
    first = start_job(ready_service, input_dir)
    first.score_all()
    finalize_job(local_backend, first.job_id)

    rerun = ready_service.rerun_job(
        first.job_id, failed_only=False, output_path=str(tmp_path / "again"), output_file_name="again.csv"
    )

    assert rerun.output_uri == str(tmp_path / "again" / "again.csv")
    assert rerun.settings.output_file_name == "again.csv"
    assert len([name for mb in HandRunner(local_backend, rerun).mini_batches for name in mb.files]) == 7


def test_rerun_of_a_job_still_running_is_a_conflict_and_starts_nothing(
    ready_service: BatchEndpointService, input_dir: Path
) -> None:
    running = start_job(ready_service, input_dir)

    with pytest.raises(ConflictError, match="is Running; rerun it once it has ended") as refused_rerun:
        ready_service.rerun_job(running.job_id, failed_only=True)

    assert refused_rerun.value.field == "job" and job_count(ready_service) == 1


def test_rerun_failed_of_a_job_without_failures_is_a_conflict_and_starts_nothing(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    clean = start_job(ready_service, input_dir)
    clean.score_all()
    finalize_job(local_backend, clean.job_id)

    with pytest.raises(ConflictError, match="no failed or unscored files") as refused_rerun:
        ready_service.rerun_job(clean.job_id, failed_only=True)

    assert refused_rerun.value.field == "failed" and job_count(ready_service) == 1


def test_rerun_failed_of_a_job_that_failed_before_finalize_scores_every_file_without_a_result(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    first = start_job(ready_service, input_dir)
    first.score(1, failed=["sub/e.txt"])
    mark_failed(local_backend, first.job_id, "the execution failed")

    rerun = ready_service.rerun_job(first.job_id, failed_only=True)

    planned = HandRunner(local_backend, rerun).mini_batches
    assert [name for mb in planned for name in mb.files] == ["a.txt", "b.txt", "c.txt", "sub/e.txt", "z.txt"]


def test_a_rerun_whose_plan_finds_nothing_to_score_fails_saying_so(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    clean = start_job(ready_service, input_dir)
    clean.score_all()
    mark_failed(local_backend, clean.job_id, "the execution failed after scoring")  # the record counts nothing
    rerun = ready_service.rerun_job(clean.job_id, failed_only=True)

    with pytest.raises(ValidationError, match="no failed or unscored files; nothing to rerun") as refused_plan:
        plan_job(local_backend, rerun.id)

    assert refused_plan.value.field == "failed"
    assert ready_service.get_job(rerun.id).counts.shards == 0


@pytest.mark.parametrize(
    ("output", "error", "field"),
    [
        ({"output_file_name": "../up.csv"}, ValidationError, "output_file_name"),
        ({"output_path": "existing"}, ConflictError, "output"),
    ],
)
def test_rerun_with_a_bad_output_is_refused_and_starts_nothing(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    input_dir: Path,
    tmp_path: Path,
    output: dict,
    error: type,
    field: str,
) -> None:
    failed = start_job(ready_service, input_dir)
    failed.score_all(failed=["a.txt"])
    finalize_job(local_backend, failed.job_id)
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "predictions.csv").write_text("someone's results\n")
    if "output_path" in output:
        output = {"output_path": str(tmp_path / "existing")}

    with pytest.raises(error) as refused_rerun:
        ready_service.rerun_job(failed.job_id, failed_only=True, **output)

    assert refused_rerun.value.field == field and job_count(ready_service) == 1
    assert (tmp_path / "existing" / "predictions.csv").read_text() == "someone's results\n"


def test_rerun_of_an_unknown_job_is_not_found(ready_service: BatchEndpointService) -> None:
    with pytest.raises(Exception, match="does not exist"):
        ready_service.rerun_job("digits-000000000000", failed_only=True)


# ------------------------------------------------------------------------------------------------ resume
def test_resume_of_a_job_whose_run_failed_keeps_its_finished_mini_batches(
    ready_service: BatchEndpointService, local_backend: Backend, recorder: RecordingOrchestrator, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score(0)
    part_before = local_backend.blobs.get_bytes(runner.files.part(0))
    mark_failed(local_backend, runner.job_id, "AWS Batch job failed: host EC2 instance terminated")

    resumed = ready_service.resume_job(runner.job_id)

    assert resumed.status == JobStatus.RUNNING and resumed.error is None and resumed.ended_at is None
    assert resumed.resumes == 1 and recorder.resumed == [runner.job_id]
    assert resumed.execution == f"recorded:{runner.job_id}:resume-1"
    runner.score(1)
    runner.score(2)
    done = finalize_job(local_backend, runner.job_id)
    assert done.status == JobStatus.COMPLETED and done.counts.files_succeeded == 7
    assert local_backend.blobs.get_bytes(runner.files.part(0)) == part_before


def test_resume_keeps_the_plan_even_when_the_input_folder_changed(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    (input_dir / "a0.txt").write_text("new")  # would shift every mini-batch after it if the input were listed again

    again = plan_job(local_backend, runner.job_id)

    assert again.shard_uris == [runner.files.shard(n) for n in range(len(runner.shards))]
    assert HandRunner(local_backend, ready_service.get_job(runner.job_id)).mini_batches == runner.mini_batches


def test_resume_of_a_job_still_running_is_a_conflict(
    ready_service: BatchEndpointService, recorder: RecordingOrchestrator, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    recorder.running.add(runner.job_id)

    with pytest.raises(ConflictError, match="still running"):
        ready_service.resume_job(runner.job_id)

    assert recorder.resumed == [] and ready_service.get_job(runner.job_id).resumes == 0


@pytest.mark.parametrize(
    ("end", "message"),
    [
        ("complete", "ended Completed; nothing to resume; rerun its failed files"),
        ("cancel", "ended Canceled; nothing to resume"),
        ("request_cancel", "is being canceled"),
        ("exceed_threshold", "failed its error_threshold"),
    ],
)
def test_resume_of_a_job_that_ended_on_its_own_terms_is_a_conflict(
    ready_service: BatchEndpointService,
    local_backend: Backend,
    recorder: RecordingOrchestrator,
    input_dir: Path,
    end: str,
    message: str,
) -> None:
    runner = start_job(ready_service, input_dir, error_threshold=0 if end == "exceed_threshold" else -1)
    if end in {"cancel", "request_cancel"}:
        ready_service.cancel_job(runner.job_id)
    if end != "request_cancel":
        runner.score_all(failed=["a.txt"])
        local_backend.records.add_counters("job", runner.job_id, {"files_failed": 1})
        finalize_job(local_backend, runner.job_id)
    before = ready_service.get_job(runner.job_id)

    with pytest.raises(ConflictError, match=message):
        ready_service.resume_job(runner.job_id)

    assert ready_service.get_job(runner.job_id) == before and recorder.resumed == []


def test_a_job_that_cannot_be_resumed_ends_failed_again(
    ready_service: BatchEndpointService, local_backend: Backend, recorder: RecordingOrchestrator, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)

    def refuse(job):
        raise RuntimeError("no capacity")

    recorder.resume = refuse
    with pytest.raises(RuntimeError):
        ready_service.resume_job(runner.job_id)

    job = ready_service.get_job(runner.job_id)
    assert job.status == JobStatus.FAILED and "could not be resumed: no capacity" in job.error


# ------------------------------------------------------------------------------------------------ the API
def test_api_rerun_failed_starts_a_new_job(ready: Stack, api: Api, folders: Folders) -> None:
    job = api_invoke(api, folders)
    runner = HandRunner(ready.backend, ready.service.get_job(job["id"]))
    runner.score_all(failed=["c.txt"])
    finalize_job(ready.backend, job["id"])

    response = api("POST", f"/jobs/{job['id']}/rerun", {"failed": True, "output": {"file_name": "again.csv"}})

    assert response.status == 202, response.text
    rerun = response.json()
    assert rerun["rerun_of"] == job["id"] and rerun["status"] == "Queued"
    assert rerun["output_uri"].endswith("/again.csv") and response.headers["Location"] == rerun["links"]["job"]
    assert ready.started()[-1] == rerun["id"]
    # The API records which job's failed files to score; the new job's plan lists them (a scan that grows with
    # the source job has no place in a request API Gateway gives up on after 29 s).
    rerun_job = ready.service.get_job(rerun["id"])
    files = JobFiles(ready.backend.blobs, rerun_job.scratch_uri)
    assert json.loads(ready.backend.blobs.get_bytes(files.input_listing)) == {"failed_files_of": job["id"]}
    assert [mb.files for mb in HandRunner(ready.backend, rerun_job).mini_batches] == [["c.txt"]]


def test_api_rerun_refusals(ready: Stack, api: Api, folders: Folders) -> None:
    job = api_invoke(api, folders)

    refused(api("POST", f"/jobs/{job['id']}/rerun", {"failed": True}), 409, "job")
    refused(api("POST", f"/jobs/{job['id']}/rerun", {"failed": "sometimes"}), 400, "failed")
    refused(api("POST", f"/jobs/{job['id']}/rerun", {"output": {"path": "relative/folder"}}), 400, "output.path")
    refused(api("POST", "/jobs/digits-000000000000/rerun", {}), 404, "job")
    assert len(ready.started()) == 1


def test_api_resume_starts_the_workflow_again_once_it_has_stopped(ready: Stack, api: Api, folders: Folders) -> None:
    job = api_invoke(api, folders)
    if ready.kind == "aws":
        refused(api("POST", f"/jobs/{job['id']}/resume"), 409, "job")
        # The execution is aborted from outside (an operator, a quota): its job record still says Queued.
        boto3.client("stepfunctions").stop_execution(executionArn=job["execution"])

    resumed = api("POST", f"/jobs/{job['id']}/resume")

    assert resumed.status == 202, resumed.text
    assert resumed.json()["resumes"] == 1
    if ready.kind == "aws":
        # A new execution of the same job: its Plan keeps the plan, its shards skip finished mini-batches.
        assert ready.started() == [job["id"], f"{job['id']}-resume-1"]
        execution = boto3.client("stepfunctions").describe_execution(executionArn=resumed.json()["execution"])
        assert execution["status"] == "RUNNING" and f'"job_id":"{job["id"]}"' in execution["input"]
        refused(api("POST", f"/jobs/{job['id']}/resume"), 409, "job")


def test_api_resume_of_a_completed_job_is_a_conflict(ready: Stack, api: Api, folders: Folders) -> None:
    job = api_invoke(api, folders)
    ready.service.repo.update_job(job["id"], lambda j: j.model_copy(update={"status": JobStatus.COMPLETED}))
    if ready.kind == "aws":
        boto3.client("stepfunctions").stop_execution(executionArn=job["execution"])

    refused(api("POST", f"/jobs/{job['id']}/resume"), 409, "job")
    refused(api("POST", "/jobs/digits-000000000000/resume"), 404, "job")


# ------------------------------------------------------------------------------------------------ idempotency keys
def stopped_job(stack: Stack, api: Api, folders: Folders) -> str:
    """A job whose run failed: its execution aborted, its record Failed."""
    job = api_invoke(api, folders)
    stop_execution(stack, job["execution"])
    mark_failed(stack.backend, job["id"], "AWS Batch job failed: host EC2 instance terminated")
    return job["id"]


def stop_execution(stack: Stack, execution: str) -> None:
    if stack.kind == "aws":
        boto3.client("stepfunctions").stop_execution(executionArn=execution)


def jobs_of(api: Api) -> list[str]:
    return [job["id"] for job in api("GET", "/endpoints/digits/jobs").json()["value"]]


def test_api_rerun_twice_with_one_key_starts_one_job(ready: Stack, api: Api, folders: Folders) -> None:
    source = stopped_job(ready, api, folders)
    key = {"Idempotency-Key": "rerun-1"}

    first = api("POST", f"/jobs/{source}/rerun", {"failed": True}, headers=key)
    again = api("POST", f"/jobs/{source}/rerun", {"failed": True}, headers=key)

    assert first.status == again.status == 202, again.text
    assert first.json()["id"] == again.json()["id"]
    assert ready.started() == [source, first.json()["id"]] and jobs_of(api) == [first.json()["id"], source]


@pytest.mark.parametrize("first_use", ["rerun every file", "rerun another job", "invoke"])
def test_api_rerun_with_a_key_first_used_for_another_request_is_a_conflict_naming_its_job(
    ready: Stack, api: Api, folders: Folders, first_use: str
) -> None:
    source = stopped_job(ready, api, folders)
    key = {"Idempotency-Key": "used-before"}
    if first_use == "invoke":
        first = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}}, headers=key).json()["id"]
    else:
        rerun_of = stopped_job(ready, api, folders) if first_use == "rerun another job" else source
        first = api("POST", f"/jobs/{rerun_of}/rerun", {"failed": first_use != "rerun every file"}, headers=key)
        first = first.json()["id"]
    jobs_before, started_before = jobs_of(api), ready.started()

    body = refused(api("POST", f"/jobs/{source}/rerun", {"failed": True}, headers=key), 409, "Idempotency-Key")

    assert first in body["message"]
    assert jobs_of(api) == jobs_before and ready.started() == started_before


def test_api_rerun_with_a_malformed_key_is_refused_and_starts_nothing(ready: Stack, api: Api, folders: Folders) -> None:
    source = stopped_job(ready, api, folders)

    refused(api("POST", f"/jobs/{source}/rerun", {}, headers={"Idempotency-Key": "has space"}), 400, "Idempotency-Key")

    assert jobs_of(api) == [source] and ready.started() == [source]


def test_api_resume_twice_with_one_key_resumes_once(ready: Stack, api: Api, folders: Folders) -> None:
    job_id = stopped_job(ready, api, folders)
    key = {"Idempotency-Key": "resume-1"}

    first = api("POST", f"/jobs/{job_id}/resume", headers=key)
    again = api("POST", f"/jobs/{job_id}/resume", headers=key)
    # The resumed run stops too; the key's resume was made, so the key answers without resuming again.
    stop_execution(ready, first.json()["execution"])
    mark_failed(ready.backend, job_id, "the execution failed")
    late = api("POST", f"/jobs/{job_id}/resume", headers=key)

    assert first.status == again.status == late.status == 202, late.text
    assert first.json()["resumes"] == again.json()["resumes"] == late.json()["resumes"] == 1
    assert late.json()["status"] == "Failed"
    if ready.kind == "aws":
        assert ready.started() == [job_id, f"{job_id}-resume-1"]
    anew = api("POST", f"/jobs/{job_id}/resume", headers={"Idempotency-Key": "resume-2"})
    assert anew.status == 202 and anew.json()["resumes"] == 2


def test_api_resume_with_a_key_first_used_for_another_job_is_a_conflict_naming_it(
    ready: Stack, api: Api, folders: Folders
) -> None:
    first, second = stopped_job(ready, api, folders), stopped_job(ready, api, folders)
    key = {"Idempotency-Key": "resume-once"}
    assert api("POST", f"/jobs/{first}/resume", headers=key).status == 202

    body = refused(api("POST", f"/jobs/{second}/resume", headers=key), 409, "Idempotency-Key")

    assert first in body["message"]
    assert ready.service.get_job(second).resumes == 0


def test_a_keyed_resume_refused_for_its_own_reasons_stays_refused(ready: Stack, api: Api, folders: Folders) -> None:
    job = api_invoke(api, folders)
    ready.service.repo.update_job(job["id"], lambda j: j.model_copy(update={"status": JobStatus.COMPLETED}))
    stop_execution(ready, job["execution"])
    key = {"Idempotency-Key": "resume-done"}

    refused(api("POST", f"/jobs/{job['id']}/resume", headers=key), 409, "job")
    refused(api("POST", f"/jobs/{job['id']}/resume", headers=key), 409, "job")

    assert ready.service.get_job(job["id"]).resumes == 0
