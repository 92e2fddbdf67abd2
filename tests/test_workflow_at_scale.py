"""The job workflow at the sizes it is built for, held to AWS's limits (tests/aws_limits.py): jobs whose shards
all fail end Failed through the workflow's own failure path, what they hold in the execution's state and the
requests of their steps projected to 10,000 shards and more; a cancel of a 100,000-mini-batch job answers within
API Gateway's 29 s, and finalize's work grows with shards, not mini-batches.

Only the AWS requests each step makes are projected against its time limit; moto's own speed is not measured.
Where moto would take minutes to run a size (a child execution and a Batch job a shard), the test measures what
grows with shards at two small sizes and projects it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_endpoints import planning, workflow
from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.blobs import parse as parse_s3_uri
from batch_endpoints.jobfiles import FileError, JobFiles, MiniBatchResult
from batch_endpoints.service import InvokeRequest
from batch_endpoints.specs import InvokeOverrides, Job, JobStatus
from lambdas.workflow import handlers
from tests.api_fixtures import Api, Stack, api_fixture, folders_fixture, ready_fixture, stack_fixture  # noqa: F401
from tests.api_fixtures import aws_fixture as aws_fixture  # the `aws` fixture behind `stack`
from tests.aws_fixtures import BUCKET, INPUT_BUCKET, put_objects
from tests.aws_limits import (  # noqa: F401
    MAIN_LANE,
    STATE_PAYLOAD_BYTES,
    STEP_LIMITS_S,
    RequestLedger,
    StepRun,
    aws_requests,
    json_bytes,
    request_latency_s,
)
from tests.infra_fixtures import LAMBDA_CONTEXT, executing_aws, state_machine_definition, synthesize  # noqa: F401
from tests.workflow_fixtures import Deployed, deploy_workflow

pytestmark = pytest.mark.slow

ANY_SCRIPT = """\
def run(mini_batch):
    return [0 for _ in mini_batch]
"""


@pytest.fixture(scope="module")
def workflow_definition() -> tuple[dict[str, Any], dict[str, str]]:
    return state_machine_definition(synthesize())


# The sizes the failing-shards test projects to: 10,000 shards, as many as a Distributed Map runs children at once
# (instance_count's bound), and 10^6, where only what does not grow with shards still fits.
DESIGNED_SHARDS = 10_000
MILLION_SHARDS = 1_000_000
FAILING_JOB_SHARDS = (100, 300)
"""Two jobs, so that what grows with shards is measured as a slope: bytes and requests per shard."""


@dataclass(frozen=True)
class FailedJob:
    shards: int
    job: Job
    execution: dict[str, Any]
    map_result_bytes: int
    """The Map's result as AWS measures it against 256 KiB (before ResultPath)."""
    largest_state_bytes: int
    """The largest input or output of any state in the execution's history."""
    step_seconds: dict[str, float]
    """Plan's and finalize's requests projected to seconds (tests/aws_limits.py)."""


def run_failing_job(
    deployed: Deployed,
    aws_requests: RequestLedger,  # noqa: F811
    map_state: str,
    shards: int,
) -> FailedJob:
    """A job of `shards` one-file shards, every Batch job failing, run to the end of its execution."""
    files = {f"many-{shards}/{n:05d}.txt": b"x" for n in range(shards)}
    put_objects(INPUT_BUCKET, files)
    runs_before, results_before = len(aws_requests.runs), len(aws_requests.state_results)
    job = deployed.service.invoke(deployed.invocation(f"s3://{INPUT_BUCKET}/many-{shards}"))
    execution = deployed.wait(job.execution or "", timeout_s=600)
    (map_result_bytes,) = [size for name, size in aws_requests.state_results[results_before:] if name == map_state]
    payloads = [
        json_bytes(details[key])
        for event in deployed.history(execution["executionArn"])
        for details in event.values()
        if isinstance(details, dict)
        for key in ("input", "output")
        if key in details
    ]
    runs = aws_requests.runs[runs_before:]
    step_seconds = {
        step: max(run.projection(None).seconds for run in runs if run.step == step) for step in ("plan", "finalize")
    }
    return FailedJob(shards, deployed.service.get_job(job.id), execution, map_result_bytes, max(payloads), step_seconds)


def projected(measured: tuple[float, float], at_shards: tuple[int, int], to_shards: int) -> float:
    """A measure taken at two sizes, extended along its slope to `to_shards`."""
    (small, large), (low, high) = measured, at_shards
    return large + (large - small) / (high - low) * (to_shards - high)


def test_jobs_whose_shards_all_fail_end_failed_through_the_workflow_and_their_state_never_grows_with_shards(
    executing_aws: None,  # noqa: F811
    aws_requests: RequestLedger,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    workflow_definition: tuple[dict[str, Any], dict[str, str]],
    tmp_path: Path,
) -> None:
    """Every shard's Batch job fails (its container exits at once), so every child execution of the Distributed
    Map ends in its Catch. Their results go to S3 (the Map's ResultWriter): gathered in the state, they would have
    to stay within 256 KiB, a limit no Catch can handle. Each job ends Failed, saying why, with every file in its
    errors file, never Running under a dead execution.

    Two jobs of 100 and 300 shards measure what grows with shards; it is projected to 10,000 shards (and for the
    state, 10^6) against the limits. Gathered, the children's outputs ({}) would hold 3 bytes a shard, 30 KB at
    10,000 and 3 MB at 10^6 shards, over 256 KiB; the Map's ResultWriter holds none. Plan and finalize read or
    write a few objects a shard: their projected requests at 10,000 shards must fit the Lambda's 15 minutes."""
    # One mini-batch a shard: 100 shards per instance at instance_count 100 (planning cuts 4 per instance, and a
    # deployment takes at most 1000 instances). Fewer child executions at once keep moto's threads few.
    monkeypatch.setattr(planning, "SHARDS_PER_INSTANCE", 100)

    @contextlib.contextmanager
    def containers_exit_at_once(step: str) -> Iterator[None]:
        if step == "batch job":
            raise RuntimeError("CannotPullContainerError: the image is gone")
        yield

    definition, functions = workflow_definition
    (map_state,) = [name for name, state in definition["States"].items() if state["Type"] == "Map"]
    deployed = deploy_workflow(monkeypatch, definition, functions, around=containers_exit_at_once)
    try:
        deployed.ready(tmp_path, ANY_SCRIPT, mini_batch_size=1, instance_count=100)
        small, large = (run_failing_job(deployed, aws_requests, map_state, shards) for shards in FAILING_JOB_SHARDS)
    finally:
        handlers.set_backend(None)

    assert len(deployed.batch_jobs) == sum(FAILING_JOB_SHARDS)
    assert not any(batch_job["succeeded"] for batch_job in deployed.batch_jobs)
    for failed in (small, large):
        job, execution = failed.job, failed.execution
        assert job.counts.shards == failed.shards, job.counts
        assert execution["status"] == "FAILED", execution
        assert execution.get("error") != "States.DataLimitExceeded", (execution.get("error"), execution.get("cause"))
        _, scratch = parse_s3_uri(job.scratch_uri)
        written = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{scratch.rstrip('/')}/map-results/")
        assert [o["Key"].rsplit("/", 1)[1] for o in written.get("Contents", [])] == ["manifest.json"], written
        entered = deployed.states_entered(execution["executionArn"])
        assert entered[-1] in {"Job failed", "Workflow failed"}, entered
        assert job.status == JobStatus.FAILED, job
        assert job.error and f"; {failed.shards} shards failed" in job.error, job.error
        errors_file = deployed.backend.blobs.get_bytes(f"{job.scratch_uri}/errors.jsonl")
        errors = [json.loads(line) for line in errors_file.splitlines()]
        assert sorted(e["file"] for e in errors) == [f"{n:05d}.txt" for n in range(failed.shards)]
        assert all(e["error"] for e in errors)

    map_results = (small.map_result_bytes, large.map_result_bytes)
    largest_states = (small.largest_state_bytes, large.largest_state_bytes)
    for to_shards in (DESIGNED_SHARDS, MILLION_SHARDS):
        assert projected(map_results, FAILING_JOB_SHARDS, to_shards) <= STATE_PAYLOAD_BYTES, (to_shards, map_results)
        assert projected(largest_states, FAILING_JOB_SHARDS, to_shards) <= STATE_PAYLOAD_BYTES, (
            to_shards,
            largest_states,
        )
    for step in ("plan", "finalize"):
        seconds = (small.step_seconds[step], large.step_seconds[step])
        assert projected(seconds, FAILING_JOB_SHARDS, DESIGNED_SHARDS) <= STEP_LIMITS_S[step], (step, seconds)
    aws_requests.assert_fits("plan")
    aws_requests.assert_fits("finalize")


# ---------------------------------------------------------------------------------- jobs planned at size


def planned_job(stack: Stack, files: int, **settings: Any) -> Job:
    """A job over `files` one-byte input files, invoked, then planned by the real Plan step, its execution
    waiting: what the API and finalize see of a job of that size while it runs. The files are given to Plan as a
    rerun gives them (the job's input.json), so that moto need not list them: its S3 lists a page in time that
    grows with the bucket."""
    names = [f"{n:06d}.txt" for n in range(files)]
    put_objects(INPUT_BUCKET, {f"big/{names[0]}": b"x"})
    overrides = InvokeOverrides(**settings)
    request = InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/big", overrides=overrides)
    job = stack.service.invoke(request)
    listing = {"root": f"s3://{INPUT_BUCKET}/big", "files": names}
    stack.backend.blobs.put_bytes(
        JobFiles(stack.backend.blobs, job.scratch_uri).input_listing, json.dumps(listing).encode()
    )
    workflow.plan_job(stack.backend, job.id)
    return stack.service.get_job(job.id)


def finish_mini_batches(job: Job, indexes: range, *, failed_every: int = 0) -> None:
    """What the runners leave for each finished mini-batch: its part file and, last, its result (one file each;
    with `failed_every`, every n-th mini-batch's file failed instead)."""
    files = JobFiles(S3BlobStore(BUCKET), job.scratch_uri, part_format=job.settings.part_format)
    objects = {}
    for index in indexes:
        name = f"{index:06d}.txt"
        failed = failed_every and index % failed_every == 0
        result = MiniBatchResult(
            index=index,
            files=1,
            succeeded=0 if failed else 1,
            rows=0 if failed else 1,
            attempts=1,
            failed=[FileError(name, "ValueError: not a digit")] if failed else [],
            columns=[] if failed else ["file", "prediction"],
        )
        if not failed:
            objects[files.part(index)] = f"file,prediction\n{name},0\n".encode()
        objects[files.result(index)] = result.to_json()
    put_objects(BUCKET, {parse_s3_uri(uri)[1]: body for uri, body in objects.items()})


@pytest.mark.parametrize("stack", ["aws"], indirect=True)
def test_a_cancel_of_a_100000_mini_batch_job_answers_within_api_gateways_29_s(
    ready: Stack,
    api: Api,
    aws_requests: RequestLedger,  # noqa: F811
) -> None:
    """The API Lambda only records the request and stops the execution: whatever grows with the job (counting,
    the errors file, the summary) is the workflow's. A step past 29 s is cut off there, as API Gateway answers
    504 then."""
    job = planned_job(ready, 100_000, mini_batch_size=1)
    assert (job.status, job.counts.mini_batches, job.counts.shards) == (JobStatus.RUNNING, 100_000, 100)
    finish_mini_batches(job, range(5_000))

    response = api("POST", f"/jobs/{job.id}/cancel")

    assert response.status == 202, response.text
    assert response.json()["status"] in {JobStatus.CANCEL_REQUESTED.value, JobStatus.CANCELED.value}
    execution = boto3.client("stepfunctions").describe_execution(executionArn=job.execution or "")
    assert execution["status"] == "ABORTED"
    projection = aws_requests.assert_fits("api")
    assert sum(projection.requests.values()) < 100, projection


MINI_BATCHES_A_SHARD = 100
FINALIZED_SHARDS = 200


def scheduling_bound_s(run: StepRun, *, threads: int, tasks: int) -> float:
    """The longest a step's run can take whichever of its pool threads takes which of its `tasks` like tasks: its
    own requests, plus its pools' requests shared out over `threads`, plus one task's (Graham's bound for list
    scheduling). Finalize's pools (journals, unscored files, S3 composing) all have READ_THREADS threads. The
    critical path measured in this process depends on how its threads happened to be scheduled; this does not."""
    own = sum(request_latency_s(service) for lane, service, _ in run.requests if lane == MAIN_LANE)
    pooled = sum(request_latency_s(service) for lane, service, _ in run.requests if lane != MAIN_LANE)
    return own + pooled / threads + pooled / tasks


@pytest.mark.parametrize("stack", ["aws"], indirect=True)
def test_finalize_of_200_shards_and_20000_mini_batches_fits_the_lambdas_15_minutes(
    ready: Stack,
    aws_requests: RequestLedger,  # noqa: F811
) -> None:
    """Finalize's work grows with the shards: shards of 100 mini-batches, all finished, one in ten failed. Finalize
    reads shards on its READ_THREADS threads, so its critical path grows by a shard's requests for every
    READ_THREADS shards: jobs of READ_THREADS and twice as many shards (one and two shards a thread) measure that
    slope, projected to 200 shards and 20,000 mini-batches against the Lambda's 15 minutes."""
    sizes = (workflow.READ_THREADS, 2 * workflow.READ_THREADS)
    seconds = []
    for shards in sizes:
        mini_batches = shards * MINI_BATCHES_A_SHARD
        job = planned_job(ready, mini_batches, mini_batch_size=1, instance_count=shards // planning.SHARDS_PER_INSTANCE)
        assert (job.counts.mini_batches, job.counts.shards) == (mini_batches, shards)
        finish_mini_batches(job, range(mini_batches), failed_every=10)
        handlers.set_backend(ready.backend)
        try:
            with aws_requests.step("finalize") as run:
                result = handlers.finalize({"job_id": job.id}, LAMBDA_CONTEXT)
        finally:
            handlers.set_backend(None)

        assert result["status"] == JobStatus.COMPLETED.value, result
        failed = mini_batches // 10
        assert (result["counts"]["files_succeeded"], result["counts"]["files_failed"]) == (
            mini_batches - failed,
            failed,
        )
        seconds.append(scheduling_bound_s(run, threads=workflow.READ_THREADS, tasks=shards))

    small, large = seconds
    assert large > small, f"finalize's critical path did not grow with shards: {seconds} s at {sizes} shards"
    assert projected((small, large), sizes, FINALIZED_SHARDS) <= STEP_LIMITS_S["finalize"], (seconds, sizes)
    aws_requests.assert_fits("finalize")
