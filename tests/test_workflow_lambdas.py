"""The state machine's Lambda steps on the cloud backend (moto): plan writes shard files that a DISTRIBUTED Map
reads, finalize merges exactly what the local backend merges, mark_failed leaves a readable reason.

The runner is played by hand: tests write the part and result files a runner writes for each mini-batch.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pandas as pd
import pytest

from batch_endpoints import data_access, workflow
from batch_endpoints.adapters.aws.computes import attempt_duration_seconds
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import FileError, JobFiles, MiniBatchResult, Shard
from batch_endpoints.repository import Repository
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import InvokeOverrides, Job, JobStatus
from lambdas.core_logs import log_core_as
from lambdas.workflow import handlers
from lambdas.workflow.failures import describe_failure
from tests.aws_fixtures import BUCKET, INPUT_BUCKET, aws_backend, aws_fixture, put_objects, ready  # noqa: F401
from tests.core_fixtures import RecordingOrchestrator, write_tree

CONTEXT = SimpleNamespace(
    function_name="bep-workflow",
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bep-workflow",
    aws_request_id="request-1",
)
REPO = Path(__file__).resolve().parents[1]
# What a Lambda's environment gives Powertools and boto3 at import.
LAMBDA_ENVIRONMENT = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "INFO"}
MAP_ITEM_LIMIT = 1024
# Seven inputs in mini-batches of three: 0 = a, b, c; 1 = d/e, d/f, g; 2 = h.
INPUTS = ["a.png", "b.png", "c.png", "d/e.png", "d/f.png", "g.png", "h.png"]


@pytest.fixture(name="backend")
def backend_fixture(aws: None) -> Iterator[Backend]:
    backend = aws_backend(RecordingOrchestrator())
    handlers.set_backend(backend)
    yield backend
    handlers.set_backend(None)


@pytest.fixture(name="service")
def service_fixture(backend: Backend, tmp_path: Path) -> BatchEndpointService:
    return ready(BatchEndpointService(backend), tmp_path / "aws", mini_batch_size=3)


def invoke(service: BatchEndpointService, uri: str, **overrides: Any) -> Job:
    request = InvokeRequest(endpoint_name="digits", input=uri, overrides=InvokeOverrides(**overrides))
    return service.invoke(request)


def read_s3(bucket: str, key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def lambda_error(exc: Exception) -> dict[str, str]:
    """What a Catch hands on when a Lambda step raised `exc`."""
    cause = {"errorMessage": str(exc), "errorType": type(exc).__name__, "requestId": "r", "stackTrace": ["..."]}
    return {"Error": type(exc).__name__, "Cause": json.dumps(cause)}


def published_metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents printed since the last call: {"namespace", "dimensions", "metrics": {name: value}}."""
    documents = []
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        emf = json.loads(line)
        [directive] = emf["_aws"]["CloudWatchMetrics"]
        names = [metric["Name"] for metric in directive["Metrics"]]
        assert all(metric["Unit"] == "Count" for metric in directive["Metrics"])
        values = {name: emf[name][0] if isinstance(emf[name], list) else emf[name] for name in names}
        dimensions = {name: emf[name] for names_ in directive["Dimensions"] for name in names_}
        documents.append({"namespace": directive["Namespace"], "dimensions": dimensions, "metrics": values})
    return documents


def endpoint_metrics(**values: float) -> dict[str, Any]:
    return {"namespace": "BatchEndpoints", "dimensions": {"endpoint": "digits"}, "metrics": values}


# --------------------------------------------------------------------------------------------------- plan


def test_plan_shards_ten_thousand_nested_files_and_the_map_items_stay_tiny(service: BatchEndpointService) -> None:
    names = [f"site-{n % 7}/day-{n % 13:02d}/scan-{n:05d}.png" for n in range(10_000)]
    put_objects(INPUT_BUCKET, {f"scans/{name}": b"p" for name in names})
    job = invoke(service, f"s3://{INPUT_BUCKET}/scans", mini_batch_size=10, instance_count=2)

    started = time.monotonic()
    result = handlers.plan({"job_id": job.id, "instance_count": 2}, CONTEXT)
    elapsed = time.monotonic() - started

    # 1,000 mini-batches over 2 instances x 4 shards each: 125 mini-batches a shard.
    assert result == {
        "job_id": job.id,
        "planned": True,
        "shard_count": 8,
        "shards_bucket": BUCKET,
        "shards_key": f"jobs/{job.id}/shards/index.json",
        "attempt_duration_s": attempt_duration_seconds(job.settings, 125),
    }
    items = json.loads(read_s3(BUCKET, result["shards_key"]))
    assert len(items) == 8
    assert all(list(item) == ["shard"] and len(json.dumps(item).encode()) < MAP_ITEM_LIMIT for item in items)
    shard_files = [service.blobs.get_bytes(item["shard"]) for item in items]
    shards = [Shard.from_json(raw) for raw in shard_files]
    assert [mb.index for shard in shards for mb in shard.mini_batches] == list(range(1000))
    assert [name for shard in shards for mb in shard.mini_batches for name in mb.files] == sorted(names)
    planned = service.get_job(job.id)
    assert (planned.counts.files, planned.counts.mini_batches, planned.counts.shards) == (10_000, 1000, 8)
    assert planned.status == JobStatus.RUNNING
    sizes = [len(raw) for raw in shard_files]
    print(
        f"\nplan of 10,000 files: {elapsed:.1f} s; index {len(json.dumps(items))} B, largest Map item "
        f"{max(len(json.dumps(i)) for i in items)} B; shard files {min(sizes)}-{max(sizes)} B"
    )


def test_plan_of_a_single_object_is_one_shard_of_that_file(service: BatchEndpointService) -> None:
    put_objects(INPUT_BUCKET, {"one/scan.png": b"p", "one/other.png": b"p"})
    job = invoke(service, f"s3://{INPUT_BUCKET}/one/scan.png")
    assert job.input.type == "uri_file"

    result = handlers.plan({"job_id": job.id}, CONTEXT)

    assert result["shard_count"] == 1
    [item] = json.loads(read_s3(result["shards_bucket"], result["shards_key"]))
    shard = Shard.from_json(service.blobs.get_bytes(item["shard"]))
    assert shard.input_root == f"s3://{INPUT_BUCKET}/one"
    assert [mb.files for mb in shard.mini_batches] == [["scan.png"]]


@pytest.mark.parametrize(
    ("folder_marker", "reason"),
    [(True, "holds no files to score"), (False, "does not exist")],
    ids=["emptied-folder", "vanished-prefix"],
)
def test_plan_of_an_empty_prefix_raises_and_the_job_fails_saying_why(
    service: BatchEndpointService, folder_marker: bool, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    put_objects(INPUT_BUCKET, {"later/a.png": b"p", **({"later/": b""} if folder_marker else {})})
    job = invoke(service, f"s3://{INPUT_BUCKET}/later")
    boto3.client("s3").delete_object(Bucket=INPUT_BUCKET, Key="later/a.png")  # emptied before the job ran

    with pytest.raises(ValidationError, match=reason) as raised:
        handlers.plan({"job_id": job.id}, CONTEXT)
    assert published_metrics(capsys) == []  # a plan that failed started no job
    # The state machine's Catch hands the Lambda error to MarkFailed.
    result = handlers.mark_failed({"job_id": job.id, "error": lambda_error(raised.value)}, CONTEXT)
    assert published_metrics(capsys) == [endpoint_metrics(JobsFailed=1)]

    failed = service.get_job(job.id)
    assert result == {"job_id": job.id, "status": "Failed", "error": failed.error}
    assert failed.status == JobStatus.FAILED
    assert failed.error == str(raised.value) and f"s3://{INPUT_BUCKET}/later {reason}" in failed.error


# ----------------------------------------------------------------------------------------------- finalize

SAME_COLUMNS = {
    0: ('file,label,score\na.png,"cat, tabby",0.25\nb.png,"say ""hi""",1e-3\nc.png,ünïcødé,7\n', []),
    1: ("file,label,score\nd/e.png,dog,0.5\ng.png,,007\n", ["d/f.png"]),
    2: ("file,label,score\nh.png,NA,1\n", []),
}
MIXED_COLUMNS = {
    0: ('file,label\na.png,"two\nlines"\nb.png,x\nc.png,y\n', []),
    1: ("file,score,extra\nd/e.png,0.5,1\nd/f.png,007,\n", ["g.png"]),
    2: (None, ["h.png"]),
}


def run_by_hand(backend: Backend, job: Job, parts: dict[int, tuple[str | None, list[str]]]) -> None:
    """Write what runners write: a part per mini-batch with rows, then its result (which marks it done)."""
    files = JobFiles(backend.blobs, job.scratch_uri)
    job = Repository(backend.records).get_job(job.id)
    for number in range(job.counts.shards):
        shard = Shard.from_json(backend.blobs.get_bytes(files.shard(number)))
        for mini_batch in shard.mini_batches:
            part, failed = parts[mini_batch.index]
            rows = len(pd.read_csv(io.StringIO(part))) if part else 0
            if part is not None:
                backend.blobs.put_bytes(files.part(mini_batch.index), part.encode())
            result = MiniBatchResult(
                index=mini_batch.index,
                files=len(mini_batch.files),
                succeeded=len(mini_batch.files) - len(failed),
                rows=rows,
                attempts=1,
                failed=[FileError(name, "ValueError: cannot score") for name in failed],
                columns=part.partition("\n")[0].split(",") if part else [],
            )
            backend.blobs.put_bytes(files.result(mini_batch.index), result.to_json())


def local_output(tmp_path: Path, parts: dict[int, tuple[str | None, list[str]]]) -> bytes:
    """The same job run by hand on the local backend: the bytes the cloud must match."""
    backend = open_local_backend(str(tmp_path / "local-home"))
    backend.orchestrator = RecordingOrchestrator()
    # The cloud's allow-lists, set in this process's environment for the moto stack, are not this backend's.
    unrestricted = data_access.from_environment(backend.blobs.root, environ={})
    service = ready(BatchEndpointService(backend, unrestricted), tmp_path / "local", mini_batch_size=3)
    inputs = write_tree(tmp_path / "local-inputs", dict.fromkeys(INPUTS, "p"))
    job = invoke(service, str(inputs))
    workflow.plan_job(backend, job.id)
    run_by_hand(backend, job, parts)
    assert workflow.finalize_job(backend, job.id).status == JobStatus.COMPLETED
    return Path(to_path(job.output_uri)).read_bytes()


@pytest.mark.parametrize("parts", [SAME_COLUMNS, MIXED_COLUMNS], ids=["same-columns", "mixed-columns"])
def test_finalize_merges_byte_for_byte_what_the_local_backend_merges(
    service: BatchEndpointService, tmp_path: Path, parts: dict
) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in")
    handlers.plan({"job_id": job.id}, CONTEXT)
    run_by_hand(service.backend, job, parts)

    result = handlers.finalize({"job_id": job.id}, CONTEXT)

    failed = sum(len(f) for _, f in parts.values())
    assert result == {
        "job_id": job.id,
        "status": "Completed",
        "error": None,
        "counts": {
            "unit": "files",
            "files": 7,
            "mini_batches": 3,
            "shards": 3,
            "files_succeeded": 7 - failed,
            "files_failed": failed,
            "files_not_scored": 0,
            "mini_batches_failed": 1 if parts is MIXED_COLUMNS else 0,
            "rows": 7 - failed,
        },
        "output": job.output_uri,
    }
    assert service.blobs.get_bytes(job.output_uri) == local_output(tmp_path, parts)


def test_finalize_run_again_keeps_the_same_output_and_adds_no_rows(service: BatchEndpointService) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in")
    handlers.plan({"job_id": job.id}, CONTEXT)
    run_by_hand(service.backend, job, SAME_COLUMNS)

    first = handlers.finalize({"job_id": job.id}, CONTEXT)
    output = service.blobs.get_bytes(job.output_uri)
    again = handlers.finalize({"job_id": job.id}, CONTEXT)
    # A finalize that died after writing the output but before closing the record is retried by Step Functions.
    Repository(service.backend.records).update_job(job.id, lambda j: j.model_copy(update={"status": JobStatus.RUNNING}))
    retried = handlers.finalize({"job_id": job.id}, CONTEXT)

    assert first == again == retried
    assert service.blobs.get_bytes(job.output_uri) == output
    rows = output.decode().splitlines()[1:]
    assert len(rows) == first["counts"]["rows"] == 6
    assert len({row.split(",")[0] for row in rows}) == 6


def planning_logs(job: Job) -> list[dict[str, Any]]:
    """The JSON log lines of a plan step for `job`."""
    output = io.StringIO()
    previous = handlers.logger.registered_handler.setStream(output)
    try:
        handlers.plan({"job_id": job.id}, CONTEXT)
    finally:
        handlers.logger.registered_handler.setStream(previous)
    return [json.loads(text) for text in output.getvalue().splitlines()]


def test_the_workflow_logs_are_structured_and_name_the_job(service: BatchEndpointService) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in")
    [line] = planning_logs(job)
    assert (line["message"], line["job_id"], line["shards"]) == ("planned", job.id, 3)
    assert line["function_request_id"] == "request-1"


def test_a_core_modules_log_record_is_one_json_line_with_the_invocations_fields(
    service: BatchEndpointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in")
    plan_step = workflow.plan_step

    def plan_step_that_logs(backend: Backend, job_id: str) -> workflow.Plan:
        logging.getLogger("batch_endpoints.workflow").info("planning %s", job_id)
        return plan_step(backend, job_id)

    monkeypatch.setattr(workflow, "plan_step", plan_step_that_logs)
    # Again: each Lambda imports one handler module, but tests import both, and the last one's setup wins.
    log_core_as(handlers.logger)
    lines = planning_logs(job)
    assert [line["message"] for line in lines] == [f"planning {job.id}", "planned"]
    core = lines[0]
    assert (core["level"], core["service"]) == ("INFO", "bep-workflow")
    assert core["location"].startswith("plan_step_that_logs:")
    assert (core["function_request_id"], core["job_id"]) == ("request-1", job.id)


@pytest.mark.parametrize("module", ["lambdas.api.handler", "lambdas.workflow.handlers"])
def test_each_handler_module_sends_the_core_logs_through_its_own_logger(module: str) -> None:
    script = (
        f"import logging, {module} as handler; core = logging.getLogger('batch_endpoints'); "
        "print(core.handlers == handler.logger.handlers != [], core.propagate, core.level == handler.logger.log_level)"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=LAMBDA_ENVIRONMENT, check=False
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["True", "False", "True"]


def test_the_steps_publish_job_file_and_mini_batch_metrics_of_the_endpoint(
    service: BatchEndpointService, capsys: pytest.CaptureFixture[str]
) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in")
    capsys.readouterr()

    handlers.plan({"job_id": job.id}, CONTEXT)
    assert published_metrics(capsys) == [endpoint_metrics(JobsStarted=1, MiniBatchesPlanned=3, FilesPlanned=7)]

    run_by_hand(service.backend, job, MIXED_COLUMNS)
    handlers.finalize({"job_id": job.id}, CONTEXT)
    assert published_metrics(capsys) == [
        endpoint_metrics(JobsCompleted=1, FilesSucceeded=5, FilesFailed=2, FilesNotScored=0, MiniBatchesScored=3)
    ]

    # A job counts once: a finalize or a MarkFailed that finds it ended publishes nothing (and warns of nothing).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handlers.finalize({"job_id": job.id}, CONTEXT)
        handlers.mark_failed({"job_id": job.id, "error": {"Error": "States.Timeout"}}, CONTEXT)
    assert published_metrics(capsys) == []


def test_a_job_that_finalize_fails_counts_as_failed_with_its_failed_files(
    service: BatchEndpointService, capsys: pytest.CaptureFixture[str]
) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in", error_threshold=1)
    handlers.plan({"job_id": job.id}, CONTEXT)
    run_by_hand(service.backend, job, MIXED_COLUMNS)
    capsys.readouterr()

    result = handlers.finalize({"job_id": job.id}, CONTEXT)

    assert result["status"] == "Failed" and result["error"].startswith("error_threshold exceeded")
    assert published_metrics(capsys) == [
        endpoint_metrics(JobsFailed=1, FilesSucceeded=5, FilesFailed=2, FilesNotScored=0, MiniBatchesScored=3)
    ]


# ------------------------------------------------------------------------------------------- mark failed


def test_mark_failed_leaves_a_job_that_already_ended_as_it_is(service: BatchEndpointService) -> None:
    put_objects(INPUT_BUCKET, {f"in/{name}": b"p" for name in INPUTS})
    job = invoke(service, f"s3://{INPUT_BUCKET}/in")
    handlers.plan({"job_id": job.id}, CONTEXT)
    run_by_hand(service.backend, job, SAME_COLUMNS)
    handlers.finalize({"job_id": job.id}, CONTEXT)

    result = handlers.mark_failed({"job_id": job.id, "error": {"Error": "States.Timeout"}}, CONTEXT)

    assert result == {"job_id": job.id, "status": "Completed", "error": None}


def test_a_failure_reads_as_one_line_whatever_failed() -> None:
    batch_job = {
        "JobName": "digits-0123456789ab",
        "JobId": "5a1e",
        "Status": "FAILED",
        "StatusReason": "Essential container in task exited",
        "Container": {"ExitCode": 1, "LogStreamName": "bep-digits_blue/default/77c1"},
    }
    assert describe_failure({"Error": "States.TaskFailed", "Cause": json.dumps(batch_job)}) == (
        "AWS Batch job digits-0123456789ab (5a1e) failed: Essential container in task exited (exit code 1); "
        "its log stream is bep-digits_blue/default/77c1"
    )
    assert describe_failure(lambda_error(KeyError("job_id"))) == "KeyError: 'job_id'"
    assert describe_failure(lambda_error(ValidationError("no files", field="input"))) == "input: no files"
    assert describe_failure({"Error": "States.Timeout", "Cause": "Task timed out"}) == "States.Timeout: Task timed out"
    assert describe_failure({"Error": "States.Timeout"}) == "States.Timeout"
    assert describe_failure(None) == "an unknown error"
    assert len(describe_failure({"Error": "E", "Cause": "x" * 10_000})) == 2000
