"""Job logs from CloudWatch: the lines of the job's own Batch jobs' streams, oldest first, a page at a time.

moto's Batch runs nothing; it names each submitted job's stream `<job definition name>/default/<Batch job id>`
as Batch does, so the test writes the lines a container would have printed into those streams. A pipeline job's
lines are its command steps' Batch jobs', each named after the step's child job (`<job id>-<step>`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import boto3
import pytest

from batch_endpoints import yaml_specs
from batch_endpoints.adapters.aws.logs import CloudWatchJobLogReader
from batch_endpoints.data_access import ALLOWED_INPUTS, ALLOWED_OUTPUTS, from_environment
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.ports import LogLine
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import Job, NamedInput
from tests.aws_fixtures import INPUT_BUCKET, LOG_GROUP, aws_backend, aws_fixture, put_objects, ready  # noqa: F401
from tests.core_fixtures import RecordingOrchestrator
from tests.test_pipeline_deployments_local import write_project


@pytest.fixture(name="service")
def service_fixture(aws: None, tmp_path: Path) -> BatchEndpointService:
    service = BatchEndpointService(aws_backend(RecordingOrchestrator()))
    put_objects(INPUT_BUCKET, {"images/0.png": b"png"})
    boto3.client("logs").create_log_group(logGroupName=LOG_GROUP)
    return ready(service, tmp_path)


def invoke(service: BatchEndpointService) -> Job:
    return service.invoke(InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/images"))


def run_shard(job: Job, lines: list[tuple[int, str]], shard: int = 0, *, name: str = "") -> str:
    """Submit a Batch job as the state machine does for one shard (named <job id>-s<shard>, unless `name`), and
    log `lines` (ms after the job's creation, message) into its stream; returns the stream's name."""
    batch = boto3.client("batch")
    queue = batch.describe_job_queues(jobQueues=["bep-cpu"])["jobQueues"][0]["jobQueueArn"]
    batch_job = batch.submit_job(
        jobName=name or f"{job.id}-s{shard}",
        jobQueue=queue,
        jobDefinition=job.deployment.compute_handle,
        parameters={"job_id": job.id, "shard": "s3://bep-storage/jobs/x/shards/shard-00000.json"},
    )
    [described] = batch.describe_jobs(jobs=[batch_job["jobId"]])["jobs"]
    stream = described["container"]["logStreamName"]
    logs = boto3.client("logs")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    created = int(datetime.fromisoformat(job.created_at).timestamp() * 1000)
    events = [{"timestamp": created + offset, "message": message} for offset, message in lines]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)
    return stream


def read_all(service: BatchEndpointService, job: Job, limit: int, *, job_id: str = "") -> list[list[LogLine]]:
    pages, token = [], None
    while True:
        page = service.job_logs(job_id or job.id, next_token=token, limit=limit)
        pages.append(page.lines)
        token = page.next_token
        if token is None:
            return pages


def test_a_jobs_logs_are_its_batch_jobs_lines_oldest_first_in_pages(service: BatchEndpointService) -> None:
    job = invoke(service)
    first = run_shard(job, [(1000, "shard 0 starts"), (3000, "shard 0 scored 10 files"), (5000, "shard 0 done")])
    second = run_shard(job, [(2000, "shard 1 starts\n"), (4000, "shard 1 done")], shard=1)
    other = invoke(service)  # the same deployment's next job logs under the same stream prefix
    run_shard(other, [(2500, "another job's line")])

    pages = read_all(service, job, limit=2)

    assert [len(p) for p in pages] == [2, 2, 1]
    lines = [line for page in pages for line in page]
    assert [line.message for line in lines] == [
        "shard 0 starts",
        "shard 1 starts",
        "shard 0 scored 10 files",
        "shard 1 done",
        "shard 0 done",
    ]
    assert [line.source for line in lines] == [first, second, first, second, first]
    assert first.startswith("bep-digits_blue/default/")
    assert lines == sorted(lines, key=lambda line: line.timestamp_ms)


def test_a_job_whose_id_starts_with_this_ones_is_not_read(service: BatchEndpointService) -> None:
    job = invoke(service)
    run_shard(job, [(1000, "mine")], shard=12)
    # Endpoint "<this job's id>-s1" would name its jobs' Batch jobs "<this job's id>-s1-<hex>-s<shard>".
    run_shard(job, [(2000, "another endpoint's job")], name=f"{job.id}-s1-0123456789ab-s0")
    run_shard(job, [(3000, "a job named without a shard number")], name=f"{job.id}-s")

    assert [line.message for page in read_all(service, job, limit=100) for line in page] == ["mine"]


def test_a_command_steps_batch_job_is_never_taken_for_a_shard(service: BatchEndpointService) -> None:
    job = invoke(service)
    run_shard(job, [(1000, "shard 3")], shard=3)
    # Named as a pipeline job of this id would name its command steps' Batch jobs (<job id>-<step>), listed by the
    # shards' JOB_NAME prefix filter.
    for step in ("score", "s1_x", "s_2"):
        run_shard(job, [(2000, f"step {step}")], name=f"{job.id}-{step}")

    assert [line.message for page in read_all(service, job, limit=100) for line in page] == ["shard 3"]


def test_lines_outside_the_jobs_time_window_are_not_its_own(service: BatchEndpointService) -> None:
    job = invoke(service)
    run_shard(job, [(-3_600_000, "an hour before the job existed"), (1000, "scoring")])

    assert [line.message for page in read_all(service, job, limit=100) for line in page] == ["scoring"]


def test_a_job_whose_shards_have_not_started_has_no_lines_yet(service: BatchEndpointService) -> None:
    page = service.job_logs(invoke(service).id)

    assert page.lines == [] and page.next_token is None


def test_a_token_not_from_an_earlier_page_is_refused(service: BatchEndpointService) -> None:
    job = invoke(service)
    run_shard(job, [(1000, "scoring")])

    with pytest.raises(ValidationError, match="next_token"):
        service.job_logs(job.id, next_token="not-a-token")


def test_constructing_the_reader_calls_no_aws() -> None:
    reader = CloudWatchJobLogReader("/bep/scoring")

    assert reader.log_group == "/bep/scoring"


@pytest.fixture(name="pipeline_job")
def pipeline_job_fixture(service: BatchEndpointService, tmp_path: Path) -> Job:
    """A job of the two-step pipeline deployment `shop/summarize` (prepare_job, then summarize_job), by a service
    whose jobs may use the whole of the system's storage and the input bucket (a pipeline job's outputs go under
    azureml/)."""
    everywhere = f"{service.backend.blobs.root},s3://{INPUT_BUCKET}"
    access = from_environment(
        service.backend.blobs.root, environ={ALLOWED_INPUTS: everywhere, ALLOWED_OUTPUTS: everywhere}
    )
    service = BatchEndpointService(service.backend, access=access)
    root = write_project(tmp_path / "project")
    service.create_endpoint(yaml_specs.load_endpoint_mapping({"name": "shop"}))
    service.create_deployment(yaml_specs.load_deployment(root / "deployment.yml"), set_default=True)
    data = NamedInput(type="uri_folder", path=f"s3://{INPUT_BUCKET}/images")
    return service.invoke(InvokeRequest(endpoint_name="shop", named_inputs={"input_data": data}))


def test_a_command_steps_logs_are_its_batch_jobs_lines(service: BatchEndpointService, pipeline_job: Job) -> None:
    job = pipeline_job
    prepare = run_shard(job, [(1000, "prepared 2")], name=f"{job.id}-prepare_job")
    run_shard(job, [(2000, "summarized")], name=f"{job.id}-summarize_job")
    run_shard(job, [(3000, "a shard's line, no step's")], shard=0)

    step_lines = [line for page in read_all(service, job, 100, job_id=f"{job.id}-prepare_job") for line in page]
    job_lines = [line.message for page in read_all(service, job, 1) for line in page]

    assert [(line.source, line.message) for line in step_lines] == [(prepare, "prepared 2")]
    assert prepare.startswith("bep-shop_summarize/default/")
    assert job_lines == ["prepared 2", "summarized"]


def test_a_step_the_pipeline_does_not_have_is_not_found(service: BatchEndpointService, pipeline_job: Job) -> None:
    with pytest.raises(NotFoundError, match=f"{pipeline_job.id}-score_job"):
        service.job_logs(f"{pipeline_job.id}-score_job")
