"""Cloud cost model: what orchestrating a 1,000,000-file job costs on AWS, ours against one Batch job per mini-batch.

    python bench/cloud_cost.py [--files 410] [--instance-counts 1,10,100] [--job-overhead-s 45] [...prices]

1. Measure. The stack is synthesized (CDK, as `cdk synth` does) and its state machine executed under moto for a
   small job (410 one-byte files at the default settings: mini_batch_size 10, instance_count 1, so 41
   mini-batches in 4 shards), with the Lambda tasks running the real workflow handlers and each Batch job the real
   scoring runner (bench/noop_code/score.py), on moto's S3 and DynamoDB (tests/workflow_fixtures.py). Counted:
   - state transitions, from the parent execution's history and from the Distributed Map's child executions
     (moto keeps those out of the parent's history; they are read from the map run's own event list);
   - Batch jobs (SubmitJob calls), per shard;
   - every S3 and DynamoDB request the job makes, by the step that made it (API invoke, Plan, Batch job,
     Finalize, the state machine itself) and by what it touches (an input file, a part, a shard file, ...).
2. Project to 1,000,000 input files at the default settings: 100,000 mini-batches, in as many shards as
   batch_endpoints.planning cuts for each instance count. Each request is scaled by what it is per (a file, a
   mini-batch, a shard, a Batch job, a job, a page of 1,000 listed keys), as measured.
3. Compare with the naive design: the same workflow with one Batch job per mini-batch, each its own Map
   iteration (as many state transitions per iteration as one of our shard iterations, as many requests per
   Batch job as ours), and price both at the list prices below.

Needs the `cdk` and `dev` extras (aws-cdk-lib, moto, pytest). Takes about a minute: most of it synthesis and the
runner starting its worker for each of the 4 Batch jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from common import BENCH, Target, bar_chart, report

from batch_endpoints import planning
from batch_endpoints.specs import RunSettings

PROJECTED_FILES = 1_000_000
MIN_RATIO = 20.0


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
    plan_seconds: float = 60.0
    finalize_seconds: float = 900.0
    """Lambda durations assumed for a 1,000,000-file job: Plan lists and plans 1,000,000 keys (bench/planner.py
    measures that part in seconds); Finalize is charged at its whole 15-minute timeout, an upper bound. Both are
    the same in both designs."""


# ---------------------------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class Request:
    step: str
    """What made it: invoke (the API), plan, finalize, batch job, or workflow (the state machine itself)."""
    service: str
    operation: str
    what: str
    """What it touches, e.g. "input file", "part", "job record"; decides how it scales."""


# What each kind of request is counted per, to scale it from the small job to the projected one. A shard file is
# per shard, and the naive design has one shard (one Batch job) per mini-batch.
UNIT_OF_WHAT = {
    "input file": "file",
    "input listing": "1,000 listed files",
    "part": "mini-batch",
    "result": "mini-batch",
    "progress counters": "mini-batch",
    "shard file": "shard",
    "code and model": "Batch job",
    "job record (runner)": "Batch job",
    "Batch job": "Batch job",
}
PER_JOB = "job"

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
class Meter:
    """Records every AWS request made in this process (moto answers them all) and the child executions' events."""

    input_bucket: str = ""
    requests: list[Request] = field(default_factory=list)
    child_events: list[dict[str, Any]] = field(default_factory=list)
    counting: bool = False
    _step: str = "workflow"
    _local: threading.local = field(default_factory=threading.local)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A workflow step runs: the state machine runs one at a time (the Map at instance_count 1 runs one shard
        at a time), so every request until it ends is the step's, from whichever thread of it."""
        before, self._step = self._step, name
        try:
            yield
        finally:
            self._step = before

    @contextlib.contextmanager
    def caller(self, name: str | None) -> Iterator[None]:
        """Requests from this thread are `name`'s (None: not counted), whatever step runs meanwhile."""
        self._local.name = name
        try:
            yield
        finally:
            del self._local.name

    def record(self, event_name: str, url: str) -> None:
        if not self.counting:
            return
        step = getattr(self._local, "name", self._step)
        if step is None:
            return
        _, service, operation = event_name.split(".", 2)
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
            meter.record(event_name, request.url)
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


# --------------------------------------------------------------------------------------- the small job
@dataclass
class Measured:
    files: int
    mini_batches: int
    shards: int
    status: str
    run_seconds: float
    parent_history: list[str]
    parent: dict[str, int]
    child_executions: int
    child: dict[str, int]
    submit_jobs_per_shard: dict[str, int]
    requests: Counter[tuple[str, str, str, str]]
    """(step, what, price class, operation) -> count."""
    lambda_memory_mb: dict[str, int]
    job_item_bytes: int


def measure(files: int, settings: RunSettings) -> Measured:
    import boto3
    import pytest

    from lambdas.workflow import handlers
    from tests.aws_fixtures import INPUT_BUCKET, TABLE, put_objects
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
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        executing_moto(monkeypatch),
        metered(meter, monkeypatch),
        tempfile.TemporaryDirectory(prefix="bep-cloud-cost-") as scratch,
    ):
        deployed = deploy_workflow(monkeypatch, definition, functions, around=meter.step)
        try:
            script = (BENCH / "noop_code" / "score.py").read_text()
            deployed.ready(Path(scratch), script, **settings.model_dump(include={"mini_batch_size", "instance_count"}))
            put_objects(INPUT_BUCKET, {f"inputs/file-{i:06d}.txt": b"x" for i in range(files)})
            print(f"running a job of {files} files through the executed state machine ...", flush=True)
            meter.counting = True
            started = time.perf_counter()
            with meter.caller("invoke"):
                job = deployed.service.invoke(deployed.invocation(f"s3://{INPUT_BUCKET}/inputs"))
            with meter.caller(None):  # the benchmark's own polling
                execution = deployed.wait(job.execution or "", timeout_s=300)
            run_seconds = time.perf_counter() - started
            meter.counting = False
            job = deployed.service.get_job(job.id)
            history = deployed.history(execution["executionArn"])
            child_executions = deployed.map_run_items(execution["executionArn"])["total"]
            items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
            job_item = max((i for i in items if job.id in str(i)), key=item_bytes)
        finally:
            handlers.set_backend(None)
    if execution["status"] != "SUCCEEDED" or job.counts.files_succeeded != files:
        raise SystemExit(f"the measured job did not succeed: {execution['status']}, {job.counts}")
    per_shard = Counter(j["parameters"]["shard"].rsplit("/", 1)[-1] for j in deployed.batch_jobs)
    requests: Counter[tuple[str, str, str, str]] = Counter()
    for r in meter.requests:
        requests[(r.step, r.what, price_class(r.service, r.operation) or "", f"{r.service} {r.operation}")] += 1
    return Measured(
        files=files,
        mini_batches=job.counts.mini_batches,
        shards=job.counts.shards,
        status=execution["status"],
        run_seconds=run_seconds,
        parent_history=[event_type(e) for e in history],
        parent=billed_transitions(history),
        child_executions=child_executions,
        child=billed_transitions(meter.child_events),
        submit_jobs_per_shard=dict(sorted(per_shard.items())),
        requests=requests,
        lambda_memory_mb=memory,
        job_item_bytes=item_bytes(job_item),
    )


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


# ------------------------------------------------------------------------------------------- projection
@dataclass(frozen=True)
class Scale:
    """How many of each unit a job has."""

    files: int
    mini_batches: int
    shards: int
    batch_jobs: int

    def of(self, unit: str) -> float:
        return {
            "file": self.files,
            "1,000 listed files": math.ceil(self.files / 1000),
            "mini-batch": self.mini_batches,
            "shard": self.shards,
            "Batch job": self.batch_jobs,
            PER_JOB: 1,
        }[unit]


def projected_scale(files: int, settings: RunSettings, instance_count: int, *, naive: bool) -> Scale:
    mini_batches = math.ceil(files / settings.mini_batch_size)
    per_shard = 1 if naive else planning.mini_batches_per_shard(mini_batches, instance_count)
    shards = math.ceil(mini_batches / per_shard)
    return Scale(files, mini_batches, shards, shards)


def project(measured: Measured, scale: Scale, prices: Prices) -> dict[str, float]:
    small = Scale(measured.files, measured.mini_batches, measured.shards, sum(measured.submit_jobs_per_shard.values()))
    # State transitions: the parent's are per job; each shard's iteration is one child execution, billed one
    # transition for its start plus its own states.
    per_iteration = 1 + sum(measured.child.values()) / measured.child_executions
    transitions = sum(measured.parent.values()) + scale.shards * per_iteration
    requests: Counter[str] = Counter()
    for (_, what, price, _), count in measured.requests.items():
        if price:
            unit = UNIT_OF_WHAT.get(what, PER_JOB)
            requests[price] += count / small.of(unit) * scale.of(unit)
    write_units = math.ceil(measured.job_item_bytes / 1024)
    read_units = math.ceil(measured.job_item_bytes / 4096)
    memory = measured.lambda_memory_mb
    gb_seconds = (memory["plan"] * prices.plan_seconds + memory["finalize"] * prices.finalize_seconds) / 1024
    costs = {
        "Step Functions": transitions / 1000 * prices.sfn_per_1000_transitions,
        "Batch job start-up": scale.batch_jobs * prices.job_overhead_s / 3600 * prices.instance_per_hour,
        "Lambda (Plan, Finalize)": 2 / 1e6 * prices.lambda_per_million_requests
        + gb_seconds * prices.lambda_per_gb_second,
        "DynamoDB": requests["DynamoDB write"] * write_units / 1e6 * prices.ddb_per_million_writes
        + requests["DynamoDB read"] * read_units / 1e6 * prices.ddb_per_million_reads,
        "S3 requests": requests["S3 PUT/LIST"] / 1000 * prices.s3_put_per_1000
        + requests["S3 GET"] / 1000 * prices.s3_get_per_1000,
    }
    return {
        "shards": scale.shards,
        "batch_jobs": scale.batch_jobs,
        "transitions": transitions,
        "dynamodb_writes": requests["DynamoDB write"],
        "dynamodb_reads": requests["DynamoDB read"],
        "s3_put_list": requests["S3 PUT/LIST"],
        "s3_get": requests["S3 GET"],
        **{f"usd {name}": value for name, value in costs.items()},
        "usd orchestration": costs["Step Functions"] + costs["Batch job start-up"],
        "usd total": sum(costs.values()),
    }


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=410, help="files in the measured job (default settings)")
    parser.add_argument("--instance-counts", default="1,10,100", help="instance counts to project at, comma-separated")
    for name, value in dataclasses.asdict(Prices()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=value, help=f"default {value}")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)
    prices = Prices(**{name: getattr(args, name) for name in dataclasses.asdict(Prices())})
    instance_counts = [int(n) for n in args.instance_counts.split(",")]
    settings = RunSettings()  # Azure's defaults: mini_batch_size 10, instance_count 1

    measured = measure(args.files, settings)
    designs = {
        f"ours, instance_count {n}": project(
            measured, projected_scale(PROJECTED_FILES, settings, n, naive=False), prices
        )
        for n in instance_counts
    }
    naive = project(measured, projected_scale(PROJECTED_FILES, settings, 1, naive=True), prices)
    designs["naive: one Batch job per mini-batch"] = naive
    print_report(args, measured, designs, naive, prices, instance_counts)


def print_report(
    args: argparse.Namespace,
    measured: Measured,
    designs: dict[str, dict[str, float]],
    naive: dict[str, float],
    prices: Prices,
    instance_counts: list[int],
) -> None:
    per_iteration = sum(measured.child.values()) / measured.child_executions
    transition_rows = [
        {
            "execution": "parent",
            "executions": 1,
            "states entered": measured.parent["states_entered"],
            "retries": measured.parent["retries"],
            "billed per execution": sum(measured.parent.values()),
        },
        {
            "execution": "Map child (one per shard)",
            "executions": measured.child_executions,
            "states entered": measured.child["states_entered"],
            "retries": measured.child["retries"],
            "billed per execution": f"{per_iteration:g} + 1 for its start",
        },
    ]
    small = Scale(measured.files, measured.mini_batches, measured.shards, sum(measured.submit_jobs_per_shard.values()))
    request_rows = []
    for (step, what, price, operation), count in sorted(measured.requests.items()):
        unit = UNIT_OF_WHAT.get(what, PER_JOB)
        request_rows.append(
            {
                "step": step,
                "what": what,
                "request": operation,
                "billed as": price or "-",
                "count": count,
                "per": unit,
                "per unit": round(count / small.of(unit), 3),
            }
        )
    labels = list(designs)
    lines = [
        ("shards (Map iterations)", "shards", "{:,.0f}"),
        ("Batch jobs", "batch_jobs", "{:,.0f}"),
        ("state transitions", "transitions", "{:,.0f}"),
        ("DynamoDB writes", "dynamodb_writes", "{:,.0f}"),
        ("DynamoDB reads", "dynamodb_reads", "{:,.0f}"),
        ("S3 PUT/LIST requests", "s3_put_list", "{:,.0f}"),
        ("S3 GET/HEAD requests", "s3_get", "{:,.0f}"),
        *[(f"$ {k[4:]}", k, "{:,.2f}") for k in designs[labels[0]] if k.startswith("usd ")],
    ]
    projection_rows = [
        {"per 1,000,000 files": name, **{label: fmt.format(designs[label][key]) for label in labels}}
        for name, key, fmt in lines
    ]
    ratio_rows = []
    targets = []
    for n in instance_counts:
        ours = designs[f"ours, instance_count {n}"]
        total_ratio = naive["usd total"] / ours["usd total"]
        orchestration_ratio = naive["usd orchestration"] / ours["usd orchestration"]
        ratio_rows.append(
            {
                "instance_count": n,
                "ours $": f"{ours['usd total']:,.2f}",
                "naive $": f"{naive['usd total']:,.2f}",
                "naive / ours, all request costs": f"{total_ratio:,.1f}x",
                "naive / ours, Step Functions + Batch start-up": f"{orchestration_ratio:,.1f}x",
            }
        )
        targets.append(
            Target(f"orchestration cost per 1M files, naive / ours, instance_count {n}", total_ratio, MIN_RATIO, True)
        )
    notes = [
        f"measured: a job of {measured.files} one-byte files at mini_batch_size 10, instance_count 1 "
        f"({measured.mini_batches} mini-batches, {measured.shards} shards), through the synthesized state machine "
        f"executed by moto, Lambda tasks in the real handlers, Batch jobs in the real runner (no-op scoring); "
        f"{measured.status} in {measured.run_seconds:.1f} s",
        "state transitions: *StateEntered events plus retried task attempts, as Standard workflows bill them; a "
        "Distributed Map is also billed one transition per child execution it starts (docs.aws.amazon.com/"
        "step-functions/latest/dg/concepts-transitions.html). The child executions' states are counted from "
        "moto's map run (moto drops them from every history, so they are captured as it runs).",
        f"Batch jobs per shard (SubmitJob calls): {sorted(set(measured.submit_jobs_per_shard.values()))} "
        f"over {len(measured.submit_jobs_per_shard)} shards",
        "requests: every S3 and DynamoDB request of the job, from the API's invoke to the end of the execution, by "
        "the step that made it and what it touched; each is scaled by what it is per (see the table). The "
        "naive design makes the same requests per mini-batch and per Batch job as ours, with one Batch job "
        "and one shard file per mini-batch",
        f"DynamoDB units: the job record is {measured.job_item_bytes:,} bytes, so each counter update costs "
        f"{math.ceil(measured.job_item_bytes / 1024)} write units and each consistent read "
        f"{math.ceil(measured.job_item_bytes / 4096)} read units. The runner also reads the record once a second "
        "while it runs (stop conditions): time-based, counted here only as moto's run made them",
        f"Batch job start-up: {prices.job_overhead_s:g} s of an instance at ${prices.instance_per_hour}/h per Batch "
        "job; the scoring itself is the same instance time in both designs and is left out",
        f"Lambda: Plan at {measured.lambda_memory_mb['plan']} MB for {prices.plan_seconds:g} s and Finalize at "
        f"{measured.lambda_memory_mb['finalize']} MB for {prices.finalize_seconds:g} s (assumed; the same in both "
        "designs); the API Lambda's one invocation is left out",
        "not priced: CloudWatch Logs and metrics, data transfer (none leaves the region), S3 storage; the naive "
        "design would also need 100,000 SubmitJob calls at about 50 a second (over half an hour just submitting)",
        "prices: " + ", ".join(f"{k} = {v}" for k, v in dataclasses.asdict(prices).items()),
    ]

    def chart(path: Path) -> None:
        bar_chart(
            path,
            labels,
            [designs[label]["usd total"] for label in labels],
            title="Projected request and start-up cost per 1,000,000 files",
            xlabel="USD",
        )

    report(
        "cloud_cost",
        title="Cloud cost model: orchestration cost per 1,000,000 files, ours vs one Batch job per mini-batch",
        config={
            "measured_files": measured.files,
            "projected_files": PROJECTED_FILES,
            "instance_counts": instance_counts,
            "mini_batch_size": 10,
        },
        tables={
            "State transitions measured (small job)": transition_rows,
            "Requests measured (small job)": request_rows,
            "Projected per 1,000,000 files": projection_rows,
            "Ours against naive": ratio_rows,
        },
        targets=targets,
        data={
            "measured": {**dataclasses.asdict(measured), "requests": request_rows},
            "projected": designs,
            "prices": dataclasses.asdict(prices),
        },
        notes=notes,
        chart=chart,
        **({"out_dir": args.out} if args.out else {}),
    )


if __name__ == "__main__":
    main()
