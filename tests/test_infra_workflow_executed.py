"""The synthesized state machine, executed: moto runs the definition from the CDK template, its Lambda tasks run
the real workflow handlers, and its Batch tasks run the real scoring runner, all on moto's S3 and DynamoDB.

A job is invoked through the service, as the API Lambda does, so the execution input is the orchestrator's and
the execution is named after the job. What runs is what AWS would run, except that moto stands in for the
services (see tests/infra_fixtures.py for the three gaps it has, filled for these tests).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from batch_endpoints import planning
from batch_endpoints.specs import JobStatus
from lambdas.workflow import handlers
from tests.aws_fixtures import INPUT_BUCKET, put_objects
from tests.aws_limits import RequestLedger, aws_requests  # noqa: F401
from tests.core_fixtures import RecordingOrchestrator
from tests.infra_fixtures import (
    HOST_TERMINATED,
    HostTerminated,
    executing_aws,  # noqa: F401 (pytest fixture)
    state_machine_definition,
    synthesize,
)
from tests.test_runner_on_aws import MEAN_PIXEL_SCRIPT, digit_pngs
from tests.workflow_fixtures import Deployed, deploy_workflow

pytestmark = pytest.mark.slow

FAILING_INIT_SCRIPT = """\
def init():
    raise RuntimeError("the model file is corrupt")


def run(mini_batch):
    return [0 for _ in mini_batch]
"""


@pytest.fixture(scope="module")
def workflow_definition() -> tuple[dict[str, Any], dict[str, str]]:
    return state_machine_definition(synthesize())


@pytest.fixture
def deployed(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    workflow_definition: tuple[dict[str, Any], dict[str, str]],
) -> Iterator[Deployed]:
    yield deploy_workflow(monkeypatch, *workflow_definition)
    handlers.set_backend(None)


def test_a_job_over_png_files_succeeds_with_every_prediction_in_order(deployed: Deployed, tmp_path: Path) -> None:
    deployed.ready(tmp_path, MEAN_PIXEL_SCRIPT)
    images = digit_pngs(10)
    put_objects(INPUT_BUCKET, {f"digits/{name}": content for name, content in images.items()})

    job, execution = deployed.run_job(f"s3://{INPUT_BUCKET}/digits")

    assert execution["status"] == "SUCCEEDED", execution
    assert job.status == JobStatus.COMPLETED
    assert (job.counts.files, job.counts.files_succeeded, job.counts.mini_batches) == (10, 10, 4)
    output = pd.read_csv(io.BytesIO(deployed.backend.blobs.get_bytes(job.output_uri or "")))
    assert output["file"].tolist() == sorted(images)
    assert (output["mean"] > 1000).all()
    # One Batch job per shard, each named <job id>-s<shard number> and told which job and shard it scores.
    assert len(deployed.batch_jobs) == job.counts.shards >= 2
    assert sorted(j["name"] for j in deployed.batch_jobs) == [f"{job.id}-s{n}" for n in range(job.counts.shards)]
    assert all(j["succeeded"] and j["parameters"]["job_id"] == job.id for j in deployed.batch_jobs)
    assert sorted(j["parameters"]["shard"] for j in deployed.batch_jobs) == [
        f"{job.scratch_uri}/shards/shard-{n:05d}.json" for n in range(job.counts.shards)
    ]
    items = deployed.map_run_items(execution["executionArn"])
    assert (items["total"], items["succeeded"]) == (job.counts.shards, job.counts.shards)
    assert deployed.states_entered(execution["executionArn"]) == [
        "Plan mini-batches and shards",
        "Input listed?",
        "Score shards",
        "Merge outputs and finish job",
        "Did the job complete?",
        "Job completed",
    ]
    assert json.loads(execution["output"])["result"]["status"] == "Completed"


def test_an_input_listed_in_windows_loops_on_plan_then_scores_every_file_once(
    deployed: Deployed,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_requests: RequestLedger,  # noqa: F811
) -> None:
    monkeypatch.setattr(planning, "PLAN_WINDOW_FILES", 4)
    deployed.ready(tmp_path, MEAN_PIXEL_SCRIPT)
    images = digit_pngs(10)
    put_objects(INPUT_BUCKET, {f"digits/{name}": content for name, content in images.items()})

    job, execution = deployed.run_job(f"s3://{INPUT_BUCKET}/digits")

    assert execution["status"] == "SUCCEEDED", execution
    assert (job.status, job.counts.files, job.counts.files_succeeded) == (JobStatus.COMPLETED, 10, 10)
    # 10 files in windows of 4: the last of three Plan calls finds the listing exhausted.
    assert deployed.states_entered(execution["executionArn"]) == [
        *["Plan mini-batches and shards", "Input listed?"] * 3,
        "Score shards",
        "Merge outputs and finish job",
        "Did the job complete?",
        "Job completed",
    ]
    output = pd.read_csv(io.BytesIO(deployed.backend.blobs.get_bytes(job.output_uri or "")))
    assert output["file"].tolist() == sorted(images)
    assert len(deployed.batch_jobs) == job.counts.shards
    aws_requests.assert_fits("plan")


def test_a_job_whose_runner_fails_ends_failed_with_every_file_reported(deployed: Deployed, tmp_path: Path) -> None:
    deployed.ready(tmp_path, FAILING_INIT_SCRIPT, error_threshold=0, instance_count=1)
    put_objects(INPUT_BUCKET, {f"digits/{name}": content for name, content in digit_pngs(4).items()})

    job, execution = deployed.run_job(f"s3://{INPUT_BUCKET}/digits")

    # The first shard's Batch job failed (the runner gave up on init()); the failure was caught in the Map's item
    # (a later shard's runner may stop at once: the error threshold is already exceeded), and Finalize closed
    # the job from the mini-batch results the runners left.
    assert deployed.batch_jobs[0]["succeeded"] is False
    assert all(j["attempt"] == 1 for j in deployed.batch_jobs)  # a runner that fails exits 1: Batch retries not
    items = deployed.map_run_items(execution["executionArn"])
    assert (items["total"], items["succeeded"], items["failed"]) == (job.counts.shards, job.counts.shards, 0)
    assert deployed.states_entered(execution["executionArn"]) == [
        "Plan mini-batches and shards",
        "Input listed?",
        "Score shards",
        "Merge outputs and finish job",
        "Did the job complete?",
        "Job failed",
    ]
    assert (execution["status"], execution["error"]) == ("FAILED", "JobFailed")
    assert job.status == JobStatus.FAILED
    errors = deployed.backend.blobs.get_bytes(f"{job.scratch_uri}/errors.jsonl").decode().splitlines()
    assert len(errors) == 4
    # The shards the runners never started are not scored, and not counted as failed.
    not_scored = sum(json.loads(line)["error"].startswith("not scored") for line in errors)
    assert (job.counts.files_failed, job.counts.files_not_scored) == (4 - not_scored, not_scored)
    stopped = f"; {not_scored} not scored (the job stopped)" if not_scored else ""
    assert job.error is not None
    failed = f"{4 - not_scored} file{'' if 4 - not_scored == 1 else 's'}"
    assert job.error.startswith(f"error_threshold exceeded: {failed} failed, 0 allowed{stopped} (see ")
    # Every input is accounted for; those the runner tried say why they failed.
    assert "the model file is corrupt" in json.loads(errors[0])["error"]


def test_a_job_whose_input_is_gone_when_planned_is_marked_failed(deployed: Deployed, tmp_path: Path) -> None:
    deployed.ready(tmp_path, MEAN_PIXEL_SCRIPT)
    put_objects(INPUT_BUCKET, {"soon-gone/a.png": next(iter(digit_pngs(1).values()))})
    # Invoke checks the input; hold the execution back until the input has been deleted.
    orchestrator, deployed.backend.orchestrator = deployed.backend.orchestrator, RecordingOrchestrator()
    job = deployed.service.invoke(deployed.invocation(f"s3://{INPUT_BUCKET}/soon-gone"))
    boto3.client("s3").delete_object(Bucket=INPUT_BUCKET, Key="soon-gone/a.png")

    execution = deployed.wait(orchestrator.start(job))

    assert deployed.states_entered(execution["executionArn"]) == [
        "Plan mini-batches and shards",
        "Mark job failed",
        "Workflow failed",
    ]
    assert (execution["status"], execution["error"]) == ("FAILED", "ValidationError")
    assert not deployed.batch_jobs
    record = deployed.service.get_job(job.id)
    assert record.status == JobStatus.FAILED
    assert record.error == f"input: s3://{INPUT_BUCKET}/soon-gone does not exist"


def test_a_shard_whose_host_is_reclaimed_is_run_again_by_batch_and_scores_each_file_once(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    workflow_definition: tuple[dict[str, Any], dict[str, str]],
    tmp_path: Path,
) -> None:
    reclaimed: list[str] = []

    @contextlib.contextmanager
    def first_host_reclaimed(step: str) -> Iterator[None]:
        yield
        if step == "batch job" and not reclaimed:
            # The Spot instance goes as the container ends: every part is written, the attempt still fails.
            reclaimed.append(step)
            raise HostTerminated()

    deployed = deploy_workflow(monkeypatch, *workflow_definition, around=first_host_reclaimed)
    try:
        deployed.ready(tmp_path, MEAN_PIXEL_SCRIPT, instance_count=1)
        images = digit_pngs(7)
        put_objects(INPUT_BUCKET, {f"digits/{name}": content for name, content in images.items()})

        job, execution = deployed.run_job(f"s3://{INPUT_BUCKET}/digits")

        assert execution["status"] == "SUCCEEDED", execution
        assert (job.status, job.counts.files_succeeded) == (JobStatus.COMPLETED, 7)
        first, second = deployed.batch_jobs[:2]
        assert (first["name"], first["attempt"], first["reason"]) == (second["name"], 1, HOST_TERMINATED)
        assert (second["attempt"], second["succeeded"]) == (2, True)
        assert len(deployed.batch_jobs) == job.counts.shards + 1
        output = pd.read_csv(io.BytesIO(deployed.backend.blobs.get_bytes(job.output_uri or "")))
        assert output["file"].tolist() == sorted(images)
    finally:
        handlers.set_backend(None)


def test_shards_whose_batch_jobs_fail_fail_the_job_with_the_first_ones_reason(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    workflow_definition: tuple[dict[str, Any], dict[str, str]],
    tmp_path: Path,
) -> None:
    @contextlib.contextmanager
    def container_dies(step: str) -> Iterator[None]:
        if step == "batch job":
            raise RuntimeError("CUDA driver not found")
        yield

    deployed = deploy_workflow(monkeypatch, *workflow_definition, around=container_dies)
    try:
        deployed.ready(tmp_path, MEAN_PIXEL_SCRIPT, instance_count=1)
        put_objects(INPUT_BUCKET, {f"digits/{name}": content for name, content in digit_pngs(7).items()})

        job, execution = deployed.run_job(f"s3://{INPUT_BUCKET}/digits")

        # The workflow's own failure path: the Map's children were caught, and Finalize closed the job.
        assert deployed.states_entered(execution["executionArn"])[-1] == "Job failed"
        assert job.status == JobStatus.FAILED and job.counts.shards >= 2
        assert not any(j["succeeded"] for j in deployed.batch_jobs)
        assert re.fullmatch(
            rf"{job.counts.mini_batches} mini-batches never completed; {job.counts.shards} shards failed, the "
            r"first \(shard \d+\): Essential container in task exited: CUDA driver not found \(see s3://.*\)",
            job.error or "",
        ), job.error
    finally:
        handlers.set_backend(None)


LEDGER_SCRIPT = """\
import os


def run(mini_batch):
    with open({ledger!r}, "a") as ledger:
        ledger.writelines(os.path.basename(path) + "\\n" for path in mini_batch)
    return [os.path.getsize(path) for path in mini_batch]
"""


def test_a_job_whose_execution_stopped_part_way_resumes_without_scoring_anything_twice(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    workflow_definition: tuple[dict[str, Any], dict[str, str]],
    tmp_path: Path,
) -> None:
    """An infrastructure fault stops the execution part-way: after two shards, the Batch jobs of the others never
    start (the capacity is gone) and the finalize Lambda dies, so the execution ends in MarkFailed with only some
    mini-batches scored. `job resume` starts `<job>-resume-1`, whose Plan keeps the plan and whose runners skip
    the mini-batches that have a result."""
    shards_before_the_fault = 2
    first_run = {"shards": 0, "over": False}

    @contextlib.contextmanager
    def stop_part_way(step: str) -> Iterator[None]:
        if not first_run["over"]:
            if step == "batch job" and first_run["shards"] >= shards_before_the_fault:
                raise RuntimeError("no capacity: this shard's Batch job never started")
            if step == "finalize":
                raise TimeoutError("the finalize Lambda timed out")
        yield
        if step == "batch job":
            first_run["shards"] += 1

    deployed = deploy_workflow(monkeypatch, *workflow_definition, around=stop_part_way)
    try:
        ledger = tmp_path / "scored.txt"
        deployed.ready(tmp_path, LEDGER_SCRIPT.format(ledger=str(ledger)), mini_batch_size=2, instance_count=1)
        files = {f"in/{n:02d}.txt": b"x" * (n + 1) for n in range(20)}
        put_objects(INPUT_BUCKET, files)

        job, first = deployed.run_job(f"s3://{INPUT_BUCKET}/in")
        assert (first["status"], job.status) == ("FAILED", JobStatus.FAILED), (first, job)
        assert "Mark job failed" in deployed.states_entered(first["executionArn"])
        scored_first = ledger.read_text().splitlines()
        assert 0 < len(scored_first) < len(files) and len(set(scored_first)) == len(scored_first)

        first_run["over"] = True
        resumed = deployed.service.resume_job(job.id, caller="arn:aws:iam::123456789012:user/ann")
        execution = deployed.wait(resumed.execution)

        assert execution["name"] == f"{job.id}-resume-1" and execution["status"] == "SUCCEEDED", execution
        final = deployed.service.get_job(job.id)
        assert final.status == JobStatus.COMPLETED and final.resumes == 1
        assert (final.counts.files, final.counts.files_succeeded, final.counts.files_failed) == (20, 20, 0)
        # Every input scored exactly once over both executions: the first execution's mini-batches were kept.
        scored = ledger.read_text().splitlines()
        assert sorted(scored) == sorted(name.removeprefix("in/") for name in files)
        output = pd.read_csv(io.BytesIO(deployed.backend.blobs.get_bytes(final.output_uri or "")))
        assert output["file"].tolist() == sorted(name.removeprefix("in/") for name in files)
        assert output.iloc[:, -1].tolist() == [n + 1 for n in range(20)]
    finally:
        handlers.set_backend(None)
