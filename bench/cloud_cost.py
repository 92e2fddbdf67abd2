"""Scale model: what a job of 10^4, 10^6 and 10^8 files asks of each AWS step, against AWS's limits, and what it costs.

    python bench/cloud_cost.py [--sizes 10000,1000000,100000000] [--instance-counts 1,100,10000] [--fail-on-limit]

1. Measure. The stack is synthesized (CDK, as `cdk synth` does) and its state machine executed under moto for six
   small jobs (RUNS: 100 to 1,100 one-byte files, mini-batches of 1 to 100, 1 to 16 instances), with the Lambda
   tasks running the real workflow handlers and each Batch job the real scoring runner (bench/noop_code/score.py),
   on moto's S3 and DynamoDB (tests/workflow_fixtures.py). After each job ends, its record is set back to Running
   and the API's cancel is called on it, through the backend the API Lambda opens, then the workflow's
   execution_ended step with the stopped execution's event: the cancel of a job whose every mini-batch is done,
   the most a cancel can find to do. Counted, for each job:
   - every S3, DynamoDB, Step Functions and Batch request, by the step that made it (API invoke, API cancel,
     cancel's bookkeeping, Plan, Batch job, Finalize, the state machine itself), by what it touches, and by how
     many threads made them;
   - state transitions and history events, from the parent execution's history and from the Distributed Map's
     child executions (moto keeps those out of the parent's history; they are read from the map run's events);
   - the largest input, output or parameters of every state, the Distributed Map's own output (where its
     ResultWriter put the children's outputs), the SubmitJob request bodies, the shard index file (what the Map's
     S3 JSON ItemReader reads) and the largest shard file.
2. Fit. The six jobs' counts of files, mini-batches, shards (= Batch jobs) and 1,000-key listing pages are
   linearly independent, so each request count is solved for what it is per: the job, a shard, a mini-batch, a
   file, a listing page. Nothing is assumed about which request is per what: a finalize that becomes O(shards)
   shows as such when this script is run again. Sizes (payloads, files) are fitted as constant + per shard.
3. Project to each size at the default settings (mini_batch_size 10) and each instance count: shards as
   batch_endpoints.planning cuts them, each request count and size from its fit. Time per step = its S3 requests
   x 20 ms + its DynamoDB requests x 10 ms + its other AWS requests x 20 ms, divided by the threads the step was
   seen to use; compared with the step's limit (API Gateway 29 s, Lambda 900 s). Sizes are compared with theirs
   (state payload 256 KiB, SubmitJob 30 KiB, parent history 25,000 events, the ItemReader's JSON file). A
   "limit crossed" column says where; `--fail-on-limit` exits 1 if any is.
4. Price (us-east-1 list prices, constants at the top, each a flag) at 10^6 files, ours against the naive design
   of one Batch job per mini-batch, each its own Map iteration (the same fits with a shard per mini-batch).

Needs the `cdk` and `dev` extras (aws-cdk-lib, moto, pytest). Takes a few minutes on 2 cores: synthesis, and the
runner starting its worker for each of the jobs' 87 Batch jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from common import BENCH, Target, report

from batch_endpoints import planning
from batch_endpoints.specs import RunSettings

PROJECTED_FILES = 1_000_000
MIN_RATIO = 20.0
SIZES = (10_000, 1_000_000, 100_000_000)
INSTANCE_COUNTS = (1, 100, 10_000)
COST_INSTANCE_COUNTS = (1, 10, 100)

# Latencies per request, as the scale model states them (typical in-region figures for small objects and
# items; a request that waits on a Batch job or an execution is not counted here).
SECONDS_PER_REQUEST = {"s3": 0.020, "dynamodb": 0.010}
OTHER_SECONDS_PER_REQUEST = 0.020
# Each step's time limit: API Gateway's integration timeout (docs.aws.amazon.com/apigateway/latest/developerguide/
# limits.html, 29 s) for the API, Lambda's 900 s (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html)
# for the workflow's Lambda tasks. A Batch job has no limit of AWS's own (its attemptDurationSeconds is ours).
STEP_LIMIT_S = {
    "invoke": 29.0,
    "cancel": 29.0,
    "execution_ended": 900.0,
    "plan": 900.0,
    "finalize": 900.0,
    "mark_failed": 900.0,
}
STEP_NAMES = {
    "invoke": "API invoke",
    "cancel": "API cancel",
    "execution_ended": "Cancel's bookkeeping (Lambda)",
    "plan": "Plan (Lambda)",
    "batch job": "each Batch job",
    "finalize": "Finalize (Lambda)",
    "mark_failed": "Mark failed (Lambda)",
    "workflow": "the state machine",
}
CANCEL_STEPS = ("cancel", "execution_ended")
KIB = 1024
# Size limits, each with its source:
STATE_PAYLOAD_MAX = 256 * KIB
"""A state's input or output, a Distributed Map's result included (docs.aws.amazon.com/step-functions/latest/dg/
service-quotas.html, "Maximum input or output size for a task, state, or execution")."""
SUBMIT_JOB_MAX = 30 * KIB
"""A SubmitJob request (docs.aws.amazon.com/batch/latest/userguide/service_limits.html, "Maximum size of a
SubmitJob request")."""
HISTORY_EVENTS_MAX = 25_000
"""Events in one execution's history (service-quotas.html, "Maximum execution history size"); a Distributed
Map's child executions keep histories of their own."""
ITEM_READER_JSON_MAX = 10 * KIB**3
"""The JSON file a Distributed Map's ItemReader reads from S3 (docs.aws.amazon.com/step-functions/latest/dg/
input-output-itemreader.html: at most 10 GB)."""

# Six small jobs (files, mini_batch_size, instance_count) whose counts of files, mini-batches, shards and listing
# pages of 1,000 keys are linearly independent: 10, 20, 40, 20, 11 and 128 mini-batches in 4, 4, 4, 7, 4 and 64
# shards, the fifth listed in two pages. Each request count is solved from them for what it is per. The last has
# more shards than Finalize has threads to read their journals (workflow.READ_THREADS, 32): the threads a step is
# seen to use divide its time, so the jobs must give each step all the work it can spread.
RUNS = ((100, 10, 1), (200, 10, 1), (200, 5, 1), (200, 10, 2), (1100, 100, 1), (128, 1, 16))
UNITS = ("job", "shard", "mini-batch", "file", "1,000 listed files")
# A shard file lists its mini-batches' files, so it grows with the files a shard holds (at most 1,000 mini-batches).
SIZE_UNITS = {"largest shard file": ("job", "file in a shard")}
MAP_OUTPUT = "parent: the Distributed Map's output (where its ResultWriter put the results)"
"""What the Map state holds once its children end: with a ResultWriter, not their outputs (those go to S3) but
{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}} (docs.aws.amazon.com/step-functions/latest/dg/
input-output-resultwriter.html), the same size at any shard count."""


# ------------------------------------------------------------------------------------------------- prices
@dataclass(frozen=True)
class Prices:
    """US East (N. Virginia) list prices in USD, as published on the pages named, checked in 2025. Each one is a
    command-line flag (--sfn-per-1000-transitions, ...)."""

    sfn_per_1000_transitions: float = 0.025
    """Step Functions Standard workflows (aws.amazon.com/step-functions/pricing)."""
    lambda_per_million_requests: float = 0.20
    lambda_per_gb_second: float = 0.0000166667
    """Lambda, x86 (aws.amazon.com/lambda/pricing)."""
    s3_put_per_1000: float = 0.005
    """S3 Standard PUT, COPY, POST, LIST requests (aws.amazon.com/s3/pricing); DELETE is free."""
    s3_get_per_1000: float = 0.0004
    """S3 Standard GET, HEAD and all other requests."""
    ddb_per_million_writes: float = 0.625
    ddb_per_million_reads: float = 0.125
    """DynamoDB on-demand write and read request units (aws.amazon.com/dynamodb/pricing/on-demand), the table's
    billing mode; a write is one unit per KB of the item, a strongly consistent read one per 4 KB."""
    instance_per_hour: float = 0.17
    """EC2 On-Demand c6i.xlarge, Linux (aws.amazon.com/ec2/pricing/on-demand): 4 vCPUs, what cpu-cluster's
    default job (4 vCPUs, 7 GiB) fills. AWS Batch itself costs nothing on top of its instances."""
    job_overhead_s: float = 45.0
    """Instance time a Batch job spends before its first mini-batch: container start, imports, code and model
    download, init(). 30-60 s is typical of a Python image with a framework loaded; Batch's own scheduling delay
    is not counted (the instance may serve another job meanwhile)."""


# ---------------------------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Request:
    step: str
    """What made it: invoke (the API), plan, finalize, batch job, or workflow (the state machine itself)."""
    service: str
    operation: str
    what: str
    """What it touches, e.g. "input file", "part", "job record"; decides how it scales."""


S3_PUT_CLASS = {
    "PutObject",
    "CopyObject",
    "PostObject",
    "ListObjects",
    "ListObjectsV2",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
}
S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}
# A job's scratch objects (batch_endpoints.jobfiles.JobFiles): jobs/<job id>/parts/..., results/..., shards/...
SCRATCH_KEY = re.compile(r"jobs/[^/]+/(parts/|results/|shards/shard-)?")
DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DDB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


def price_class(service: str, operation: str) -> str | None:
    """The request class it is billed in, or None when it is not billed per request."""
    if service == "s3":
        return None if operation in S3_FREE else "S3 PUT/LIST" if operation in S3_PUT_CLASS else "S3 GET"
    if service == "dynamodb":
        return "DynamoDB write" if operation in DDB_WRITES else "DynamoDB read" if operation in DDB_READS else None
    return None


@dataclass
class Invocation:
    """One run of a step: the threads its requests came from, and whether another run of it overlapped."""

    threads: set[int] = field(default_factory=set)
    overlapped: bool = False


@dataclass
class Meter:
    """Records every AWS request made in this process (moto answers them all) and the child executions' events."""

    input_bucket: str = ""
    requests: list[Request] = field(default_factory=list)
    child_events: list[dict[str, Any]] = field(default_factory=list)
    submit_job_bytes: list[int] = field(default_factory=list)
    threads: dict[str, int] = field(default_factory=dict)
    """Per step, the most threads one run of it made requests from (runs that overlapped another left out)."""
    counting: bool = False
    _running: list[tuple[str, Invocation]] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A workflow step runs: every request until it ends is the latest running step's, from whichever thread of
        it (the state machine runs one step at a time, but a Map over several instances runs Batch jobs at once)."""
        run = Invocation()
        same = [other for step, other in self._running if step == name]
        for other in (run, *same):
            other.overlapped = other.overlapped or bool(same)
        self._running.append((name, run))
        outer = getattr(self._local, "step", None)
        self._local.step = name
        try:
            yield
        finally:
            self._local.step = outer
            self._running.remove((name, run))
            if not run.overlapped and run.threads:
                self.threads[name] = max(self.threads.get(name, 1), len(run.threads))

    @contextlib.contextmanager
    def caller(self, name: str | None) -> Iterator[None]:
        """Requests from this thread are `name`'s (None: not counted), whatever step runs meanwhile."""
        self._local.name = name
        try:
            yield
        finally:
            del self._local.name

    def record(self, event_name: str, url: str, body: bytes | str | None) -> None:
        if not self.counting:
            return
        running = self._running[-1] if self._running else ("workflow", None)
        if hasattr(self._local, "name"):
            step = self._local.name
        elif getattr(self._local, "step", None):
            step = self._local.step  # this thread runs the step
        elif _from_state_machine():
            # The state machine's own requests (SubmitJob, DescribeJobs, its DynamoDB and S3 integrations) come
            # from moto's interpreter threads while Batch jobs of other shards run: they are the workflow's.
            step = "workflow"
        else:
            step = running[0]  # a thread a running step started (a prefetch or read pool)
        if step is None:
            return
        _, service, operation = event_name.split(".", 2)
        if running[1] is not None and step == running[0]:
            running[1].threads.add(threading.get_ident())
        if service == "batch" and operation == "SubmitJob":
            self.submit_job_bytes.append(len(body or b""))
        self.requests.append(Request(step, service, operation, self._what(step, service, operation, url)))

    def _what(self, step: str, service: str, operation: str, url: str) -> str:
        if service == "dynamodb":
            if step == "batch job":
                return "progress counters" if operation in DDB_WRITES else "job record (runner)"
            return "job record"
        if service == "batch" and operation == "SubmitJob":
            return "Batch job"
        if service != "s3":
            return service
        parts = urlsplit(url)
        bucket = parts.netloc.split(".", 1)[0]
        key = unquote(parts.path.lstrip("/")) or parse_qs(parts.query).get("prefix", [""])[0]
        if bucket == self.input_bucket:
            if operation == "GetObject":
                return "input file"
            # A listing of one key (max-keys=1) or a HEAD is a check that the input exists and is a folder.
            paged = operation.startswith("List") and parse_qs(parts.query).get("max-keys") != ["1"]
            return "input listing" if paged else "input checks"
        if scratch := SCRATCH_KEY.match(key):
            return {"parts/": "part", "results/": "result", "shards/shard-": "shard file"}.get(
                scratch.group(1), "job files"
            )
        if key.startswith(("code/", "models/")):
            return "code and model"
        return "output file" if key.startswith("outputs/") else "other objects"


def _from_state_machine() -> bool:
    """Whether this request is made by moto's state machine interpreter itself (not by a task it runs here)."""
    frame = sys._getframe(2)
    while frame is not None:
        if "moto/stepfunctions/parser" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def metered(meter: Meter, monkeypatch: Any) -> Iterator[None]:
    """Count moto's requests, and keep the Distributed Map's child events, which moto drops."""
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )

    answer = BotocoreStubber.__call__

    def counted(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if self.enabled:
            meter.record(event_name, request.url, request.body)
        return answer(self, event_name, request, **kwargs)

    map_run = distributed.DistributedIterationComponent._map_run

    def kept(self: Any, env: Any, eval_input: Any) -> None:
        # The map run gives its child executions a fresh event list (env.event_manager) and drops it afterwards.
        try:
            map_run(self, env, eval_input)
        finally:
            meter.child_events.extend(env.event_manager._history_event_list)

    monkeypatch.setattr(BotocoreStubber, "__call__", counted)
    monkeypatch.setattr(distributed.DistributedIterationComponent, "_map_run", kept)
    yield


# ------------------------------------------------------------------------------------ state transitions
def billed_transitions(events: list[dict[str, Any]]) -> dict[str, int]:
    """Standard workflows bill a state transition each time a state is entered, retries included
    (docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html). Counted: every *StateEntered event,
    plus each task attempt beyond the first (a Retry re-runs the task without entering the state again: one
    more *Scheduled event). Exited, Scheduled/Started/Succeeded, MapRun* and Execution* events are the same
    transitions seen from other sides, or no transition at all."""
    types = Counter(event_type(e) for e in events)
    entered = sum(n for t, n in types.items() if t.endswith("StateEntered"))
    task_states = types["TaskStateEntered"]
    scheduled = types["TaskScheduled"] + types["LambdaFunctionScheduled"]
    return {"states_entered": entered, "retries": max(0, scheduled - task_states)}


def event_type(event: dict[str, Any]) -> str:
    """A history event's type: text from the API, an enum of moto's in the events kept from a map run."""
    return getattr(event["type"], "value", event["type"])


def largest_payloads(events: list[dict[str, Any]], where: str) -> dict[str, int]:
    """The largest input, output or parameters of each state, in bytes, keyed "<where>: <state>"."""
    largest: dict[str, int] = {}
    state = "(execution)"
    for event in events:
        for key, details in event.items():
            if not (key.endswith("EventDetails") and isinstance(details, dict)):
                continue
            state = details.get("name", state)
            for kind in ("input", "output", "parameters"):
                if isinstance(details.get(kind), str):
                    name = f"{where}: {state}"
                    largest[name] = max(largest.get(name, 0), len(details[kind].encode()))
    return largest


# --------------------------------------------------------------------------------------------- the jobs
@dataclass
class Measured:
    """One small job, as run and counted."""

    files: int
    mini_batch_size: int
    instance_count: int
    mini_batches: int
    shards: int
    batch_jobs: int
    status: str
    run_seconds: float
    transitions: int
    """Billed: the parent's, and for each child execution its start plus its own."""
    parent_events: int
    requests: Counter[tuple[str, str, str, str]]
    """(step, what, price class, "service operation") -> count."""
    sizes: dict[str, int]
    """The largest of each state payload, request body or scratch file, in bytes."""
    job_item_bytes: int

    def of(self, unit: str) -> int:
        return unit_count(unit, self.files, self.mini_batches, self.shards, self.mini_batch_size)


@dataclass
class Measurements:
    runs: list[Measured]
    threads: dict[str, int]
    lambda_memory_mb: dict[str, int]


def measure_all(runs: tuple[tuple[int, int, int], ...]) -> Measurements:
    import pytest

    from lambdas.workflow import handlers
    from tests.aws_fixtures import INPUT_BUCKET
    from tests.infra_fixtures import executing_moto, state_machine_definition, synthesize
    from tests.workflow_fixtures import deploy_workflow

    print("synthesizing the stack ...", flush=True)
    synthesis = synthesize()
    definition, functions = state_machine_definition(synthesis)
    memory = {
        props["Handler"].rsplit(".", 1)[-1]: props.get("MemorySize", 128)
        for props in synthesis.resources("AWS::Lambda::Function").values()
    }
    meter = Meter(input_bucket=INPUT_BUCKET)
    measured = []
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        executing_moto(monkeypatch),
        metered(meter, monkeypatch),
        tempfile.TemporaryDirectory(prefix="bep-cloud-cost-") as scratch,
    ):
        deployed = deploy_workflow(monkeypatch, definition, functions, around=meter.step)
        try:
            deployed.ready(Path(scratch), (BENCH / "noop_code" / "score.py").read_text())
            for number, run in enumerate(runs):
                measured.append(measure_one(deployed, meter, monkeypatch, number, *run))
        finally:
            handlers.set_backend(None)
    return Measurements(measured, dict(meter.threads), memory)


def aborted_event(job: Any) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event of the job's execution stopped by a cancel: the fields
    of its detail that execution_ended reads (lambdas/workflow/ended_executions.py)."""
    from lambdas.workflow.ended_executions import EVENT_DETAIL_TYPE, EVENT_SOURCE

    detail = {
        "executionArn": job.execution,
        "name": job.id,
        "status": "ABORTED",
        "input": json.dumps({"job_id": job.id}),
    }
    return {"detail-type": EVENT_DETAIL_TYPE, "source": EVENT_SOURCE, "detail": detail}


def map_output_bytes(s3: Any, bucket: str, scratch_uri: str, execution_arn: str) -> int:
    """The Distributed Map's output as its ResultWriter leaves it: the map run and the manifest it wrote under the
    job's scratch, both read back from moto (the Map's ResultPath discards it from the history)."""
    import boto3

    prefix = scratch_uri.split(f"s3://{bucket}/", 1)[1].rstrip("/") + "/map-results/"
    (manifest,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    (run,) = boto3.client("stepfunctions").list_map_runs(executionArn=execution_arn)["mapRuns"]
    output = {"MapRunArn": run["mapRunArn"], "ResultWriterDetails": {"Bucket": bucket, "Key": manifest}}
    return len(json.dumps(output, separators=(",", ":")).encode())


def measure_one(
    deployed: Any,
    meter: Meter,
    monkeypatch: Any,
    number: int,
    files: int,
    mini_batch_size: int,
    instance_count: int,
) -> Measured:
    import boto3

    from batch_endpoints.adapters.aws import backend as aws
    from batch_endpoints.service import BatchEndpointService, InvokeRequest
    from batch_endpoints.specs import InvokeOverrides, JobStatus
    from lambdas.workflow import handlers
    from tests.aws_fixtures import BUCKET, INPUT_BUCKET, TABLE, put_objects
    from tests.infra_fixtures import LAMBDA_CONTEXT

    folder = f"inputs/run-{number}"
    put_objects(INPUT_BUCKET, {f"{folder}/file-{i:06d}.txt": b"x" for i in range(files)})
    print(f"job {number + 1} of {len(RUNS)}: {files} files, mini_batch_size {mini_batch_size}, ...", flush=True)
    meter.requests.clear()
    meter.child_events.clear()
    meter.submit_job_bytes.clear()
    batch_jobs_before = len(deployed.batch_jobs)
    overrides = InvokeOverrides(mini_batch_size=mini_batch_size, instance_count=instance_count)
    meter.counting = True
    started = time.perf_counter()
    with meter.caller("invoke"):
        job = deployed.service.invoke(
            InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/{folder}", overrides=overrides)
        )
    with meter.caller(None):  # the benchmark's own polling
        execution = deployed.wait(job.execution or "", timeout_s=600)
    run_seconds = time.perf_counter() - started
    meter.counting = False
    job = deployed.service.get_job(job.id)
    if execution["status"] != "SUCCEEDED" or job.counts.files_succeeded != files:
        raise SystemExit(f"a measured job did not succeed: {execution['status']}, {job.counts}")
    history = deployed.history(execution["executionArn"])
    sizes = {
        **largest_payloads(history, "parent"),
        **largest_payloads(meter.child_events, "Map child"),
        MAP_OUTPUT: map_output_bytes(boto3.client("s3"), BUCKET, job.scratch_uri, execution["executionArn"]),
        "SubmitJob request": max(meter.submit_job_bytes),
        **scratch_file_sizes(boto3.client("s3"), BUCKET, job.scratch_uri),
    }
    transitions = sum(billed_transitions(history).values())
    children = deployed.map_run_items(execution["executionArn"])["total"]
    transitions += children + sum(billed_transitions(meter.child_events).values())

    # The cancel the API Lambda would run, on its own backend, of this job as if it were still running.
    deployed.service.repo.update_job(job.id, lambda current: current.model_copy(update={"status": JobStatus.RUNNING}))
    for name, value in {
        aws.TABLE: TABLE,
        aws.BUCKET: BUCKET,
        aws.STATE_MACHINE_ARN: deployed.state_machine_arn,
    }.items():
        monkeypatch.setenv(name, value)
    meter.counting = True
    with meter.caller("cancel"):
        BatchEndpointService(aws.open_aws_backend()).cancel_job(job.id)
    # What the cancel leaves to the workflow: the stopped execution's end, which EventBridge delivers to the
    # execution_ended Lambda, which finalizes the job as Canceled.
    with meter.caller("execution_ended"):
        handlers.execution_ended(aborted_event(deployed.service.get_job(job.id)), LAMBDA_CONTEXT)
    meter.counting = False

    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    requests: Counter[tuple[str, str, str, str]] = Counter()
    for r in meter.requests:
        requests[(r.step, r.what, price_class(r.service, r.operation) or "", f"{r.service} {r.operation}")] += 1
    return Measured(
        files=files,
        mini_batch_size=mini_batch_size,
        instance_count=instance_count,
        mini_batches=job.counts.mini_batches,
        shards=job.counts.shards,
        batch_jobs=len(deployed.batch_jobs) - batch_jobs_before,
        status=execution["status"],
        run_seconds=run_seconds,
        transitions=transitions,
        parent_events=len(history),
        requests=requests,
        sizes=sizes,
        job_item_bytes=max(item_bytes(i) for i in items if job.id in str(i)),
    )


def scratch_file_sizes(s3: Any, bucket: str, scratch_uri: str) -> dict[str, int]:
    """The shard index (the Map's ItemReader reads it) and the largest shard file, in bytes."""
    prefix = scratch_uri.split(f"s3://{bucket}/", 1)[1].rstrip("/") + "/shards/"
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    index = [o["Size"] for o in objects if o["Key"].endswith("index.json")]
    shard_files = [o["Size"] for o in objects if not o["Key"].endswith("index.json")]
    return {"shard index file (ItemReader JSON)": max(index, default=0), "largest shard file": max(shard_files)}


def item_bytes(item: dict[str, Any]) -> int:
    """A DynamoDB item's size by DynamoDB's rules (names plus values; a number about half its digits)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 1
    if kind == "M":
        return 3 + item_bytes(inner)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in inner)
    if kind in {"SS", "NS", "BS"}:
        return sum(len(str(v).encode()) for v in inner)
    return 1  # BOOL, NULL


# ---------------------------------------------------------------------------------------------- fitting
def unit_count(
    unit: str, files: int, mini_batches: int, shards: int, mini_batch_size: int, largest_shard: int | None = None
) -> int:
    """How many of `unit` a job has; "file in a shard" counts the files of its largest shard (`largest_shard`
    mini-batches; the measured jobs' shards are as even as planning cuts them)."""
    largest = math.ceil(mini_batches / shards) if largest_shard is None else largest_shard
    return {
        "job": 1,
        "shard": shards,
        "mini-batch": mini_batches,
        "file": files,
        "1,000 listed files": math.ceil(files / 1000),
        "file in a shard": min(files, largest * mini_batch_size),
    }[unit]


def fit(runs: list[Measured], values: list[float], units: tuple[str, ...] = UNITS) -> dict[str, float]:
    """What `values` (one per run) is per: least squares over the runs' counts of each unit, rounded to what the
    runs can tell apart (a thousandth), and never below zero."""
    import numpy as np

    counts = np.array([[run.of(unit) for unit in units] for run in runs], dtype=float)
    solution, *_ = np.linalg.lstsq(counts, np.array(values, dtype=float), rcond=None)
    return {unit: max(0.0, round(float(x), 3)) for unit, x in zip(units, solution, strict=True)}


@dataclass(frozen=True)
class Scale:
    """How many of each unit a job has."""

    files: int
    mini_batches: int
    shards: int
    largest_shard: int
    """Mini-batches in the largest shard."""
    plan_steps: int = 1
    """Plan's invocations: one per window of planning.PLAN_WINDOW_FILES listed files."""

    def of(self, unit: str) -> float:
        mini_batch_size = RunSettings().mini_batch_size
        return unit_count(unit, self.files, self.mini_batches, self.shards, mini_batch_size, self.largest_shard)

    def project(self, per: dict[str, float]) -> float:
        return sum(coefficient * self.of(unit) for unit, coefficient in per.items())


def projected_scale(files: int, instance_count: int, *, naive: bool = False) -> Scale:
    mini_batch_size = RunSettings().mini_batch_size
    mini_batches = math.ceil(files / mini_batch_size)
    if naive:
        return Scale(files, mini_batches, mini_batches, 1)
    shards, largest = windowed_shards(files, mini_batch_size, instance_count)
    return Scale(files, mini_batches, shards, largest, math.ceil(files / planning.PLAN_WINDOW_FILES))


def windowed_shards(
    files: int, mini_batch_size: int, instance_count: int, window: int = planning.PLAN_WINDOW_FILES
) -> tuple[int, int]:
    """(shards, mini-batches in the largest) that planning cuts for `files` files listed `window` at a time,
    counted without names: planning.cut_window's rule (shards sized by the mini-batches seen so far, whole shards
    only until the listing ends), replayed. `check_windowed_shards` holds it to cut_window itself."""
    shards = largest = listed = planned = pending = 0
    while True:
        taken = min(window, files - listed)
        listed += taken
        exhausted = listed == files
        waiting = pending + taken
        mini_batches = math.ceil(waiting / mini_batch_size)
        per_shard = planning.mini_batches_per_shard(planned + mini_batches, instance_count)
        if exhausted:
            ready = mini_batches
        else:
            whole = waiting // mini_batch_size
            ready = whole - whole % per_shard
        shards += math.ceil(ready / per_shard)
        largest = max(largest, min(per_shard, ready))
        planned += ready
        pending = waiting - ready * mini_batch_size
        if exhausted:
            return shards, largest


def check_windowed_shards() -> None:
    """The replay against the planner itself, on small numbers where names are cheap: several windows, shards
    that grow, a last partial mini-batch."""
    for files, mini_batch_size, instance_count, window in ((3001, 7, 3, 250), (5000, 10, 1, 1000), (999, 1, 50, 100)):
        names = [f"f{n:06d}" for n in range(files)]
        cursor, shards, largest = planning.PlanCursor(), 0, 0
        for start in range(0, files, window):
            chunk = names[start : start + window]
            listed = planning.ListedWindow(
                planning.InputListing("s3://b/in", chunk), chunk[-1], exhausted=start + window >= files
            )
            cut = planning.cut_window("job", listed, cursor, mini_batch_size, instance_count)
            shards += len(cut.shards)
            largest = max([largest, *(len(shard.mini_batches) for shard in cut.shards)])
            cursor = cut.cursor
        replayed = windowed_shards(files, mini_batch_size, instance_count, window)
        if replayed != (shards, largest):
            raise SystemExit(f"the shard count replay is off: {replayed} against the planner's {(shards, largest)}")


@dataclass
class Model:
    """The fits: per step and request, per size, and the job-wide counts."""

    requests: dict[tuple[str, str, str, str], dict[str, float]]
    sizes: dict[str, dict[str, float]]
    transitions: dict[str, float]
    parent_events: dict[str, float]
    threads: dict[str, int]
    job_item_bytes: int
    lambda_memory_mb: dict[str, int]


def build_model(measurements: Measurements) -> Model:
    runs = measurements.runs
    keys = sorted({key for run in runs for key in run.requests})
    constant_and_shard = ("job", "shard")
    names = sorted({name for run in runs for name in run.sizes})
    return Model(
        requests={key: fit(runs, [run.requests.get(key, 0) for run in runs]) for key in keys},
        sizes={
            name: (
                # A child execution's state holds one shard's item, and the Map's output names one map run, whatever
                # the number of shards: the largest seen.
                {"job": float(max(run.sizes.get(name, 0) for run in runs))}
                if name.startswith("Map child") or name == MAP_OUTPUT
                else fit(runs, [run.sizes.get(name, 0) for run in runs], SIZE_UNITS.get(name, constant_and_shard))
            )
            for name in names
        },
        transitions=fit(runs, [run.transitions for run in runs], constant_and_shard),
        parent_events=fit(runs, [run.parent_events for run in runs], constant_and_shard),
        threads=measurements.threads,
        job_item_bytes=max(run.job_item_bytes for run in runs),
        lambda_memory_mb=measurements.lambda_memory_mb,
    )


# ------------------------------------------------------------------------------------------- projection
def step_requests(model: Model, scale: Scale) -> dict[str, Counter[str]]:
    """Per step, its projected requests by service."""
    steps: dict[str, Counter[str]] = {}
    for (step, _, _, operation), per in model.requests.items():
        steps.setdefault(step, Counter())[operation.split(" ", 1)[0]] += scale.project(per)
    return steps


# The measured jobs were listed in one Plan step; each further window loops once through Plan and the "Input
# listed?" Choice: 2 billed transitions, and 7 history events (task state entered, scheduled, started,
# succeeded, exited; choice entered, exited).
PLAN_TURN_TRANSITIONS = 2
PLAN_TURN_EVENTS = 7


def transitions(model: Model, scale: Scale) -> float:
    return scale.project(model.transitions) + (scale.plan_steps - 1) * PLAN_TURN_TRANSITIONS


def parent_events(model: Model, scale: Scale) -> float:
    return scale.project(model.parent_events) + (scale.plan_steps - 1) * PLAN_TURN_EVENTS


def step_seconds(model: Model, step: str, by_service: Counter[str]) -> float:
    """All of a step's requests, at their latencies, over the threads it makes them from."""
    seconds = sum(n * SECONDS_PER_REQUEST.get(service, OTHER_SECONDS_PER_REQUEST) for service, n in by_service.items())
    return seconds / model.threads.get(step, 1)


def limits_at(model: Model, files: int, instance_count: int) -> list[dict[str, Any]]:
    """Every step's time and every size at `files` files, each against its limit."""
    scale = projected_scale(files, instance_count)
    rows = []
    for step, by_service in sorted(step_requests(model, scale).items(), key=lambda kv: list(STEP_NAMES).index(kv[0])):
        # Each Batch job and each Plan invocation (a window of the listing) is held to the limit on its own.
        invocations = {"batch job": scale.shards, "plan": scale.plan_steps}.get(step, 1)
        seconds = step_seconds(model, step, by_service) / invocations
        limit = STEP_LIMIT_S.get(step)
        total = sum(by_service.values()) / invocations
        measured = f"{total:,.0f} requests" + (f" a call, {invocations:,} calls" if step == "plan" else "")
        rows.append(_limit_row(STEP_NAMES[step], measured, seconds, limit, "s", model.threads.get(step, 1)))
    for name, per in model.sizes.items():
        limit = (
            STATE_PAYLOAD_MAX
            if name.startswith(("parent", "Map child"))
            else SUBMIT_JOB_MAX
            if name == "SubmitJob request"
            else ITEM_READER_JSON_MAX
            if name.startswith("shard index")
            else None
        )
        size = scale.project(per)
        rows.append(_limit_row(name, _per_text(per), size, limit, "bytes", None))
    events = parent_events(model, scale)
    rows.append(
        _limit_row(
            "parent execution's history", _per_text(model.parent_events), events, HISTORY_EVENTS_MAX, "events", None
        )
    )
    return rows


def summary_rows(model: Model, sizes: list[int]) -> list[dict[str, Any]]:
    """One row per step or size, one column per job size: what the README's scale table shows."""
    at = {files: {row["what"]: row for row in limits_at(model, files, 1)} for files in sizes}
    shown = [name for name in at[sizes[0]] if not name.startswith(("parent: ", "Map child: "))]
    shown.insert(shown.index("SubmitJob request"), "largest state payload")
    rows = []
    for name in shown:
        row: dict[str, Any] = {"step or size": name}
        for files in sizes:
            if name == "largest state payload":
                payloads = [r for w, r in at[files].items() if w.startswith(("parent: ", "Map child: "))]
                cell = max(payloads, key=lambda r: float(r["projected"].split()[0].replace(",", "")))
                text = f"{cell['projected']} ({cell['what']})"
            else:
                cell = at[files][name]
                how = f"{cell['measured as']}, " if "requests" in cell["measured as"] else ""
                text = how + cell["projected"]
            limit = "" if cell["limit"] == "-" else f" / {cell['limit']}"
            row[f"{files:,} files"] = text + limit + (" **CROSSED**" if cell["limit crossed"] != "no" else "")
        rows.append(row)
    for label, value in (
        ("shards = Batch jobs", lambda s: f"{s.shards:,}"),
        ("Map runs", lambda s: "1"),
        ("state transitions", lambda s: f"{transitions(model, s):,.0f}"),
    ):
        rows.append({"step or size": label, **{f"{f:,} files": value(projected_scale(f, 1)) for f in sizes}})
    return rows


def _per_text(per: dict[str, float]) -> str:
    terms = [f"{v:g} per {unit}" if unit != "job" else f"{v:g}" for unit, v in per.items() if v]
    return " + ".join(terms) or "0"


def _limit_row(
    what: str, how: str, value: float, limit: float | None, unit: str, threads: int | None
) -> dict[str, Any]:
    crossed = limit is not None and value > limit
    shown = f"{value:,.1f} s" if unit == "s" else f"{value:,.0f} {unit}"
    return {
        "what": what,
        "measured as": how,
        "threads": threads if threads is not None else "",
        "projected": shown,
        "limit": "-" if limit is None else (f"{limit:,.0f} s" if unit == "s" else f"{limit:,.0f} {unit}"),
        "limit crossed": "CROSSED" if crossed else "no",
    }


def counts_at(model: Model, files: int, instance_count: int, prices: Prices) -> dict[str, Any]:
    scale = projected_scale(files, instance_count)
    return {
        "files": f"{files:,}",
        "instance_count": f"{instance_count:,}",
        "mini-batches": f"{scale.mini_batches:,}",
        "shards (Map items)": f"{scale.shards:,}",
        "Map runs": 1,
        "Batch jobs": f"{scale.shards:,}",
        "state transitions": f"{transitions(model, scale):,.0f}",
        "$ orchestration": f"{cost(model, scale, prices)['usd total']:,.2f}",
    }


def cost(model: Model, scale: Scale, prices: Prices) -> dict[str, float]:
    requests: Counter[str] = Counter()
    for (step, _, price, _), per in model.requests.items():
        # A job's price is that of a job that runs to its end: a cancel is measured, not billed.
        if price and step not in CANCEL_STEPS:
            requests[price] += scale.project(per)
    write_units = math.ceil(model.job_item_bytes / 1024)
    read_units = math.ceil(model.job_item_bytes / 4096)
    steps = step_requests(model, scale)
    lambda_seconds = {
        step: min(
            STEP_LIMIT_S[step] * (scale.plan_steps if step == "plan" else 1),
            step_seconds(model, step, steps.get(step, Counter())),
        )
        for step in ("plan", "finalize")
    }
    gb_seconds = sum(model.lambda_memory_mb[step] * seconds for step, seconds in lambda_seconds.items()) / 1024
    costs = {
        "Step Functions": transitions(model, scale) / 1000 * prices.sfn_per_1000_transitions,
        "Batch job start-up": scale.shards * prices.job_overhead_s / 3600 * prices.instance_per_hour,
        "Lambda (Plan, Finalize)": (scale.plan_steps + 1) / 1e6 * prices.lambda_per_million_requests
        + gb_seconds * prices.lambda_per_gb_second,
        "DynamoDB": requests["DynamoDB write"] * write_units / 1e6 * prices.ddb_per_million_writes
        + requests["DynamoDB read"] * read_units / 1e6 * prices.ddb_per_million_reads,
        "S3 requests": requests["S3 PUT/LIST"] / 1000 * prices.s3_put_per_1000
        + requests["S3 GET"] / 1000 * prices.s3_get_per_1000,
    }
    return {
        "shards": scale.shards,
        "transitions": transitions(model, scale),
        "s3_put_list": requests["S3 PUT/LIST"],
        "s3_get": requests["S3 GET"],
        "dynamodb_writes": requests["DynamoDB write"],
        "dynamodb_reads": requests["DynamoDB read"],
        **{f"usd {name}": value for name, value in costs.items()},
        "usd orchestration": costs["Step Functions"] + costs["Batch job start-up"],
        "usd total": sum(costs.values()),
    }


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="files per job to project to")
    parser.add_argument(
        "--instance-counts", default=",".join(map(str, INSTANCE_COUNTS)), help="instance counts to project at"
    )
    parser.add_argument("--fail-on-limit", action="store_true", help="exit 1 if a projection crosses a limit")
    for name, value in dataclasses.asdict(Prices()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=value, help=f"default {value}")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)
    prices = Prices(**{name: getattr(args, name) for name in dataclasses.asdict(Prices())})
    sizes = [int(n) for n in args.sizes.split(",")]
    instance_counts = [int(n) for n in args.instance_counts.split(",")]

    check_windowed_shards()
    measurements = measure_all(RUNS)
    model = build_model(measurements)
    crossed = print_report(args, measurements, model, prices, sizes, instance_counts)
    if crossed:
        print(f"limit crossed: {', '.join(crossed)}")
    return 1 if crossed and args.fail_on_limit else 0


def print_report(
    args: argparse.Namespace,
    measurements: Measurements,
    model: Model,
    prices: Prices,
    sizes: list[int],
    instance_counts: list[int],
) -> list[str]:
    """Print and write the tables; returns what crossed a limit, as "<what> at <files> files"."""
    runs = measurements.runs
    run_rows = [
        {
            "files": run.files,
            "mini_batch_size": run.mini_batch_size,
            "instance_count": run.instance_count,
            "mini-batches": run.mini_batches,
            "shards": run.shards,
            "Batch jobs": run.batch_jobs,
            "state transitions": run.transitions,
            "parent history events": run.parent_events,
            "seconds": f"{run.run_seconds:.1f}",
        }
        for run in runs
    ]
    request_rows = [
        {
            "step": STEP_NAMES[step],
            "what": what,
            "request": operation,
            "billed as": price or "-",
            **{f"job {i + 1}": run.requests.get((step, what, price, operation), 0) for i, run in enumerate(runs)},
            "fitted": _per_text(per),
        }
        for (step, what, price, operation), per in sorted(model.requests.items())
    ]
    tables: dict[str, list[dict[str, Any]]] = {
        "Measured jobs": run_rows,
        "Requests per step, measured and fitted": request_rows,
    }
    tables["Summary: each step at each size (instance_count 1)"] = summary_rows(model, sizes)
    crossed = []
    for files in sizes:
        for n in instance_counts:
            rows = limits_at(model, files, n)
            # Every size and instance count is checked; shown are instance_count 1 and the most shards.
            if n == 1 or (files, n) == (max(sizes), max(instance_counts)):
                tables[f"{files:,} files (instance_count {n:,}): each step against its limits"] = rows
            where = f"{files:,} files, instance_count {n:,}"
            crossed += [f"{row['what']} at {where}" for row in rows if row["limit crossed"] != "no"]
    tables["Shards, Map runs, Batch jobs, state transitions"] = [
        counts_at(model, files, n, prices) for files in sizes for n in instance_counts
    ]
    ours = {n: cost(model, projected_scale(PROJECTED_FILES, n), prices) for n in COST_INSTANCE_COUNTS}
    naive = cost(model, projected_scale(PROJECTED_FILES, 1, naive=True), prices)
    ratio_rows = []
    targets = []
    for n, design in ours.items():
        ratio = naive["usd total"] / design["usd total"]
        ratio_rows.append(
            {
                "instance_count": n,
                "ours $": f"{design['usd total']:,.2f}",
                "naive $": f"{naive['usd total']:,.2f}",
                "naive / ours, all request costs": f"{ratio:,.1f}x",
                "naive / ours, Step Functions + Batch start-up": (
                    f"{naive['usd orchestration'] / design['usd orchestration']:,.1f}x"
                ),
            }
        )
        targets.append(
            Target(f"orchestration cost per 1M files, naive / ours, instance_count {n}", ratio, MIN_RATIO, True)
        )
    tables["Cost per 1,000,000 files, ours against one Batch job per mini-batch"] = ratio_rows
    notes = [
        "measured: six jobs of one-byte files (table above) through the synthesized state machine executed by moto, "
        "Lambda tasks in the real handlers, Batch jobs in the real runner (no-op scoring); after each, the API's "
        "cancel of it (its record set back to Running), through the backend the API Lambda opens, and the "
        "execution_ended step that the stopped execution's event runs",
        "fitted: each request count solved for what it is per from the six jobs (least squares, to a thousandth, "
        "never below zero); sizes as constant + per shard (a shard file: + per file it lists; a child's payload and "
        "the Map's output: the largest seen). The runner reads the "
        "job record about once a second while it runs: time-based, fitted as moto's runs made them",
        "time: S3 requests x 20 ms, DynamoDB x 10 ms, other AWS requests x 20 ms, divided by the most threads one "
        "run of the step made requests from; a Batch job's time is its requests only (no scoring), against no limit",
        "limits: API Gateway 29 s; Lambda 900 s; state input/output 256 KiB (a Distributed Map's result included: "
        "with its ResultWriter, where the children's outputs went, not the outputs); SubmitJob 30 KiB; parent "
        "history 25,000 events; the ItemReader's JSON file 10 GB; "
        "instance_count at most 10,000 (a Distributed Map's concurrency)",
        f"DynamoDB units: the job record is {model.job_item_bytes:,} bytes",
        "prices: " + ", ".join(f"{k} = {v}" for k, v in dataclasses.asdict(prices).items()),
    ]
    report(
        "cloud_cost",
        title="Scale model: each AWS step against its limits at 10^4-10^8 files, and what orchestration costs",
        config={"runs": list(RUNS), "sizes": sizes, "instance_counts": instance_counts, "mini_batch_size": 10},
        tables=tables,
        targets=targets,
        data={
            "runs": [{**dataclasses.asdict(run), "requests": None} for run in runs],
            "threads": model.threads,
            "fits": {
                "requests": {" | ".join(key): per for key, per in model.requests.items()},
                "sizes": model.sizes,
                "transitions": model.transitions,
                "parent_events": model.parent_events,
            },
            "crossed": crossed,
            "prices": dataclasses.asdict(prices),
        },
        notes=notes,
        **({"out_dir": args.out} if args.out else {}),
    )
    return crossed


if __name__ == "__main__":
    sys.exit(main())
