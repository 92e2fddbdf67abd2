"""What AWS enforces and moto does not: the limits the cloud path is designed to (DESIGN.md, "AWS limits we
design to"), enforced around moto in every moto-backed test, and a projection of each step's duration from the
AWS requests it makes.

Limits, each where AWS applies it:

- Step Functions: a state's input or output, and a task's or a Map's result, is at most 256 KiB (UTF-8). moto
  checks a state's output after OutputPath and a task's result, but not a Distributed Map's aggregated child
  results, which AWS checks before ResultSelector and ResultPath apply (so `ResultPath: null` does not help).
  A Map with a ResultWriter holds no such array: its children's outputs go to S3, and its result is the
  description of where (MapRunArn, ResultWriterDetails), which is what must fit then. moto evaluates a
  ResultWriter's Parameters against the children's results, where AWS evaluates them against the Map's input,
  so a `Prefix.$` or `Bucket.$` path would fail under moto alone; here they read the Map's input, as on AWS.
  `States.DataLimitExceeded` is terminal: `States.ALL` in a Catch or Retry does not match it, where moto's does.
  An execution's name is at most 80 characters, none of them white space, brackets, wildcards, the special
  characters " # % \\ ^ | ~ ` $ & , ; : / or control characters (StartExecution: InvalidName); moto's
  interpreting backend checks none of that.
- Batch: a SubmitJob request is at most 30 KiB, a job's name at most 128 letters, digits, hyphens and
  underscores, the first a letter or digit, and its retryStrategy 1 to 10 attempts with at most 5 conditions
  (ClientException). moto's Batch without Docker checks none of that.
- Lambda: a synchronous invocation's payload and its response are at most 6 MB each. Checked where the tests run
  handlers in this process: the workflow's Lambda tasks and the API Lambda.
- DynamoDB: an item is at most 400 KB. moto already refuses items over 405,000 bytes (ValidationException);
  tests/test_aws_limits.py holds it to that.

Time: a Lambda ends at its timeout, the workflow's at 900 s, and API Gateway answers 504 after 29 s whatever the
API Lambda does. A test cannot take minutes to show that, so every AWS request is counted, attributed to the
step that made it (`RequestLedger.step`), and projected with the per-request latencies below over the step's
critical path: the requests of the step's own thread, plus, for each thread pool it used, those of the pool's
busiest thread. `RequestLedger.assert_fits(step)` says "this step, at this size, must fit".
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.dynamodb.models import DynamoDBBackend

# Step Functions quotas: "Maximum input or output size for a task, state, or execution: 256 KiB of data as a UTF-8
# encoded string."
STATE_PAYLOAD_BYTES = 256 * 1024
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
# StartExecution, name: length 1 to 80, and the characters it must not contain.
EXECUTION_NAME_CHARACTERS = 80
EXECUTION_NAME_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff]")
# AWS Batch quotas: the maximum size of a SubmitJob request (its JSON) is 30 KiB. SubmitJob, jobName: "up to 128
# characters long. The first character must be alphanumeric, can contain uppercase and lowercase letters, numbers,
# hyphens (-), and underscores (_)."
SUBMIT_JOB_BYTES = 30 * 1024
BATCH_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# RetryStrategy: 1 to 10 attempts, at most 5 EvaluateOnExit conditions (Batch API reference, RetryStrategy).
RETRY_ATTEMPTS = range(1, 11)
RETRY_CONDITIONS = 5
# Lambda quotas: "Invocation payload (request and response): 6 MB each for request and response (synchronous)";
# Lambda counts 6 MB as 6,291,456 bytes.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
# DynamoDB: "The maximum item size in DynamoDB is 400 KB"; moto refuses items over 405,000 bytes (its own
# measurement put AWS's real limit between 409 and 410 KB), which is within it.
MOTO_DYNAMODB_ITEM_BYTES = 405_000

# How long a step may run: API Gateway's integration timeout (29 s) for the API Lambda, the workflow Lambdas'
# timeout (15 minutes, infra/workflow.py, Lambda's maximum). A Batch job's runs as long as its attempt timeout
# (`batch_attempt`).
STEP_LIMITS_S = {
    "api": 29.0,
    "plan": 900.0,
    "finalize": 900.0,
    "mark_failed": 900.0,
    "cancel": 900.0,
    # A pipeline round's Lambdas (infra/pipeline_workflow.py).
    "pipeline_round": 60.0,
    "pipeline_step_ended": 60.0,
}
# Per-request latencies, from a Lambda or a container in the same region. They are a floor, not an estimate: a
# step projected over its limit at these latencies is over it on AWS. S3: small-object GET, PUT, HEAD and LIST
# take tens of milliseconds to the first byte (S3's performance guidelines); 20 ms is the quick end. DynamoDB:
# single-digit milliseconds per GetItem/PutItem/UpdateItem at any scale (DynamoDB's documentation); 10 ms with
# the round trip. Control-plane APIs (Step Functions, Batch, CloudWatch Logs, IAM): 50 ms.
REQUEST_LATENCY_S = {"s3": 0.020, "dynamodb": 0.010}
OTHER_REQUEST_LATENCY_S = 0.050
ROUNDING_S = 1e-9
"""Sums of these latencies in floating point are off by that much: 50 x 20 ms is 1 s, not a little more."""


class AwsLimitExceeded(AssertionError):
    """A test made a request, a payload or a step that AWS would refuse or cut short: the test fails."""


class StepCutOff(BaseException):
    """A step in the test's own thread ran past its time limit, so AWS stops it there (API Gateway answers 504;
    Lambda ends the invocation). A BaseException, like the end of a process: the step's code cannot catch it and
    carry on, and the test fails at once instead of finishing work nobody would wait for."""


def request_latency_s(service: str) -> float:
    return REQUEST_LATENCY_S.get(service, OTHER_REQUEST_LATENCY_S)


def json_bytes(value: Any) -> int:
    """Size of a value as the compact UTF-8 JSON AWS measures (a string counts as itself)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------- requests


MAIN_LANE = "main"
_local = threading.local()
"""Per thread: .run, the StepRun its requests count for; .lane, MAIN_LANE or (pool, thread) for pool workers;
.in_request, set while a request is being made (a request moto serves by making another counts once)."""


@dataclass
class StepRun:
    """One run of a step (one Lambda invocation, one Batch job): its AWS requests, (lane, service, operation)."""

    step: str
    requests: list[tuple[Hashable, str, str]] = field(default_factory=list, repr=False)
    cut_off_after_s: float | None = None
    """Stop the run (StepCutOff) at the request that takes its projection over this."""
    failed_its_test: bool = False
    """Stopped or raised in the test's own thread (the API's steps): the test has failed already."""
    cut_off: bool = False
    """Stopped at `cut_off_after_s`: in the test's thread a failure, in a Batch attempt its timeout."""
    _lane_seconds: dict[Hashable, float] = field(default_factory=dict, repr=False)
    _lanes_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """A step's pool threads record at once: one of them adding its lane must not change the lanes another sums."""

    def record(self, lane: Hashable, service: str, operation: str) -> None:
        self.requests.append((lane, service, operation))
        if self.cut_off_after_s is None:
            return
        with self._lanes_lock:
            self._lane_seconds[lane] = self._lane_seconds.get(lane, 0.0) + request_latency_s(service)
            critical_seconds = self._critical_seconds()
        if critical_seconds > self.cut_off_after_s + ROUNDING_S:
            self.cut_off = True
            raise StepCutOff(f"cut off at its time limit: {self.projection(self.cut_off_after_s)}")

    def _critical_seconds(self) -> float:
        busiest: dict[Hashable, float] = {}
        for lane, seconds in self._lane_seconds.items():
            if lane != MAIN_LANE:
                pool, _thread = lane
                busiest[pool] = max(busiest.get(pool, 0.0), seconds)
        return self._lane_seconds.get(MAIN_LANE, 0.0) + sum(busiest.values())

    def projection(self, limit_s: float | None) -> Projection:
        lanes: dict[Hashable, Counter[str]] = {}
        for lane, service, _ in self.requests:
            lanes.setdefault(lane, Counter())[service] += 1
        critical = Counter(lanes.get(MAIN_LANE, Counter()))
        pools: dict[Hashable, list[Counter[str]]] = {}
        for lane, counts in lanes.items():
            if lane != MAIN_LANE:
                pool, _thread = lane
                pools.setdefault(pool, []).append(counts)
        for threads in pools.values():
            critical += max(threads, key=_seconds)
        return Projection(
            step=self.step,
            requests=Counter(service for _, service, _ in self.requests),
            operations=Counter(f"{service}:{operation}" for _, service, operation in self.requests),
            critical_path=critical,
            threads=max([1, *(len(threads) for threads in pools.values())]),
            seconds=_seconds(critical),
            limit_s=limit_s,
        )


def _seconds(counts: Counter[str]) -> float:
    return sum(count * request_latency_s(service) for service, count in counts.items())


@dataclass(frozen=True)
class Projection:
    step: str
    requests: Counter[str]
    """Every request the run made, by service."""
    operations: Counter[str]
    """Every request, by service:operation."""
    critical_path: Counter[str]
    """The requests on its critical path, by service."""
    threads: int
    """The most threads of one pool that made requests (1: none)."""
    seconds: float
    limit_s: float | None

    @property
    def fits(self) -> bool:
        return self.limit_s is None or self.seconds <= self.limit_s + ROUNDING_S

    def __str__(self) -> str:
        def listed(counts: Counter[str]) -> str:
            return ", ".join(f"{name} {count:,}" for name, count in counts.most_common())

        latencies = ", ".join(
            f"{service} {int(latency * 1000)} ms" for service, latency in sorted(REQUEST_LATENCY_S.items())
        )
        limit = "no limit" if self.limit_s is None else f"limit {self.limit_s:,.0f} s"
        return (
            f"step {self.step!r}: {sum(self.requests.values()):,} AWS requests ({listed(self.requests)}; "
            f"{listed(self.operations)}), {sum(self.critical_path.values()):,} on the critical path "
            f"({listed(self.critical_path)}; {self.threads} thread(s) at most) -> projected {self.seconds:,.1f} s "
            f"at {latencies}, others {int(OTHER_REQUEST_LATENCY_S * 1000)} ms; {limit}"
        )


class RequestLedger:
    """Every AWS request made in a step's context, by step run."""

    def __init__(self) -> None:
        self.runs: list[StepRun] = []
        self.unlike_aws: list[str] = []
        self.state_results: list[tuple[str, int]] = []
        """(state name, bytes) of every Map's and Parallel's result as AWS measures it against 256 KiB, in the
        order they ended: what a test projects to sizes it cannot run."""
        """What moto did that AWS does not, seen in moto's threads: the test fails at its end, whatever a Catch
        in the workflow made of it."""
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepRun]:
        """Count the requests this thread (and the thread pools it starts) makes as one run of `name`. A run
        projected over its step's limit (STEP_LIMITS_S) stops: in the test's own thread at the request that
        crosses it (StepCutOff), elsewhere (a Lambda task in moto's threads) as it ends (AwsLimitExceeded, which
        the workflow sees as the Lambda's failure, as a timeout)."""
        limit = STEP_LIMITS_S.get(name)
        in_test_thread = threading.current_thread() is threading.main_thread()
        attempt: BatchAttempt | None = getattr(_local, "attempt", None)
        if limit is None and attempt is not None:
            limit = attempt.seconds  # Batch stops the attempt wherever it runs
        run = StepRun(name, cut_off_after_s=limit if in_test_thread or attempt is not None else None)
        outer = (getattr(_local, "run", None), getattr(_local, "lane", None))
        _local.run, _local.lane = run, MAIN_LANE
        try:
            yield run
        finally:
            _local.run, _local.lane = outer
            with self._lock:
                self.runs.append(run)
            if run.cut_off:
                run.failed_its_test = in_test_thread
                if attempt is not None:
                    attempt.timed_out = True
        projection = run.projection(limit)
        if not projection.fits and not run.cut_off:
            run.failed_its_test = in_test_thread
            raise AwsLimitExceeded(f"over the time limit: {projection}")

    def projection(self, name: str, limit_s: float | None = None) -> Projection:
        """The slowest run of `name` projected (each run is its own invocation, with its own time limit)."""
        with self._lock:
            runs = [run for run in self.runs if run.step == name]
        if not runs:
            raise AssertionError(f"step {name!r} never ran; steps that ran: {sorted({r.step for r in self.runs})}")
        limit = limit_s if limit_s is not None else STEP_LIMITS_S.get(name)
        return max((run.projection(limit) for run in runs), key=lambda p: p.seconds)

    def assert_fits(self, name: str, limit_s: float | None = None) -> Projection:
        """The step's slowest run fits its limit (STEP_LIMITS_S, or `limit_s`); fails the test saying why not."""
        projection = self.projection(name, limit_s)
        if not projection.fits:
            raise AwsLimitExceeded(f"over the time limit: {projection}")
        return projection

    def over_limit(self) -> list[Projection]:
        with self._lock:
            runs = list(self.runs)
        checked = (run for run in runs if not (run.failed_its_test or run.cut_off))
        projections = (run.projection(STEP_LIMITS_S.get(run.step)) for run in checked)
        return [projection for projection in projections if not projection.fits]


@dataclass
class BatchAttempt:
    """One attempt of a Batch job: AWS Batch terminates it `seconds` after it started (attemptDurationSeconds, at
    least 60; SIGTERM, then SIGKILL 30 s later), and does not retry an attempt it terminated for its timeout
    (AWS Batch user guide, "Job timeouts")."""

    seconds: float | None
    timed_out: bool = False


@contextlib.contextmanager
def batch_attempt(seconds: float | None) -> Iterator[BatchAttempt]:
    """A Batch job attempt in this thread: a step started in it (a runner's "batch job") is stopped at the request
    that takes its projection past the attempt's timeout (StepCutOff, which no code of the runner may survive,
    like the SIGKILL), and the attempt says it timed out."""
    attempt = BatchAttempt(seconds)
    outer = (getattr(_local, "attempt", None), getattr(_local, "in_request", False))
    # The attempt's requests are its container's own, not part of the SubmitJob whose handling runs it here.
    _local.attempt, _local.in_request = attempt, False
    try:
        yield attempt
    finally:
        _local.attempt, _local.in_request = outer


_ledger: RequestLedger | None = None


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """`RequestLedger.step` on the current test's ledger; nothing outside a moto-backed test."""
    if _ledger is None:
        yield
        return
    with _ledger.step(name):
        yield


@pytest.fixture
def aws_requests() -> RequestLedger:
    """The AWS requests of this test, by step (needs the `aws` or `executing_aws` fixture first)."""
    assert _ledger is not None, "aws_requests needs moto with the limits on: the aws or executing_aws fixture"
    return _ledger


def _count_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every boto3 request made in a step's context is recorded; SubmitJob's size is checked on the way."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, parameters: dict[str, Any]) -> Any:
        if getattr(_local, "in_request", False):
            return original(client, operation, parameters)
        service = client.meta.service_model.service_name
        _check_request(client, service, operation, parameters)
        run = getattr(_local, "run", None)
        if run is not None:
            run.record(_local.lane, service, operation)
        _local.in_request = True
        try:
            return original(client, operation, parameters)
        finally:
            _local.in_request = False

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)


def _credit_thread_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task submitted to a thread pool in a step counts for that step, on a lane of its pool's thread, so the
    step's critical path takes only the pool's busiest thread."""
    original = ThreadPoolExecutor.submit

    def submit(pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        run = getattr(_local, "run", None)
        if run is None:
            return original(pool, fn, *args, **kwargs)

        def in_step() -> Any:
            outer = (getattr(_local, "run", None), getattr(_local, "lane", None))
            _local.run, _local.lane = run, (id(pool), threading.get_ident())
            try:
                return fn(*args, **kwargs)
            finally:
                _local.run, _local.lane = outer

        return original(pool, in_step)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)


def _check_request(client: Any, service: str, operation: str, parameters: dict[str, Any]) -> None:
    if service == "batch" and operation == "SubmitJob" and (problem := submit_job_problem(parameters)):
        error = {"Error": {"Code": "ClientException", "Message": problem}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        raise client.exceptions.from_code("ClientException")(error, operation)


def submit_job_problem(parameters: dict[str, Any]) -> str | None:
    size = json_bytes(parameters)
    if size > SUBMIT_JOB_BYTES:
        return f"SubmitJob request of {size:,} bytes exceeds the maximum of {SUBMIT_JOB_BYTES:,}"
    name = str(parameters.get("jobName", ""))
    if not BATCH_JOB_NAME.fullmatch(name):
        return (
            f"jobName {name[:40]!r} ({len(name)} characters) must be 1 to 128 letters, digits, hyphens and "
            "underscores, starting with a letter or digit"
        )
    strategy = parameters.get("retryStrategy")
    if strategy is not None:
        if strategy.get("attempts") not in RETRY_ATTEMPTS:
            return f"retryStrategy.attempts {strategy.get('attempts')!r} must be 1 to 10"
        if len(strategy.get("evaluateOnExit") or []) > RETRY_CONDITIONS:
            return f"retryStrategy.evaluateOnExit has more than {RETRY_CONDITIONS} conditions"
    return None


# -------------------------------------------------------------------------------------------- Lambda


def lambda_payload_error(kind: str, payload: Any) -> str | None:
    """Why Lambda would refuse this invocation payload or response (`kind`: "request" or "response")."""
    size = len(payload) if isinstance(payload, bytes) else json_bytes(payload)
    if size > LAMBDA_PAYLOAD_BYTES:
        return f"Lambda {kind} payload of {size:,} bytes exceeds the maximum of {LAMBDA_PAYLOAD_BYTES:,}"
    return None


def check_lambda_payload(kind: str, payload: Any) -> None:
    """Fail the test if Lambda would refuse `payload` (an API event or response in the test's own thread)."""
    if error := lambda_payload_error(kind, payload):
        raise AwsLimitExceeded(error)


# ------------------------------------------------------------------------------------------ Step Functions


def _enforce_step_functions_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.exceptions import InvalidName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
        ResultWriter,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.state_parallel import StateParallel
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start_execution = StepFunctionsParserBackend.start_execution

    def start_named_execution(backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any):
        if name is not None and (problem := execution_name_problem(name)):
            raise InvalidName(f"Invalid Name: '{name}': {problem}")
        return start_execution(backend, state_machine_arn, name, *args, **kwargs)

    monkeypatch.setattr(StepFunctionsParserBackend, "start_execution", start_named_execution)

    matches = ErrorEqualsDecl._eval_body

    def terminal_errors_uncaught(decl: Any, env: Any) -> None:
        # States.ALL does not match States.DataLimitExceeded (Step Functions, "Error names"); only its own name does.
        error_name = env.stack[-1]
        if getattr(error_name, "error_name", None) == DATA_LIMIT_EXCEEDED and not any(
            name.error_name == DATA_LIMIT_EXCEEDED for name in decl.error_names
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        matches(decl, env)

    monkeypatch.setattr(ErrorEqualsDecl, "_eval_body", terminal_errors_uncaught)

    for state_class in (StateMap, StateParallel):
        monkeypatch.setattr(state_class, "_eval_execution", _results_within_limit(state_class._eval_execution))
    monkeypatch.setattr(ResultWriter, "_eval_body", _reading_the_state_input(ResultWriter._eval_body))


def execution_name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= EXECUTION_NAME_CHARACTERS:
        return f"{len(name)} characters, expected 1 to {EXECUTION_NAME_CHARACTERS}"
    if match := EXECUTION_NAME_FORBIDDEN.search(name):
        return f"{match.group()!r} is not allowed in an execution name"
    return None


def _results_within_limit(evaluate: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A Map's or Parallel's evaluation, then the size check of its result (before ResultSelector and ResultPath,
    as AWS checks it): the aggregated array of its children's outputs, or for a Map with a ResultWriter the
    description of where they went."""

    def evaluate_and_check(state: Any, env: Any) -> None:
        evaluate(state, env)
        if not env.is_running():
            return  # stopped: the state has no result (and the ResultWriter did not run)
        result = env.stack[-1]
        if getattr(state, "result_writer", None) is not None and not is_result_writer_description(result):
            departure = (
                f"the Map {state.name!r} has a ResultWriter but its result is not where its children's outputs "
                f"went: moto kept them in the state ({json_bytes(result):,} bytes), which AWS does not"
            )
            if _ledger is not None:
                _ledger.unlike_aws.append(departure)
            raise AwsLimitExceeded(departure)
        size = json_bytes(result)
        if _ledger is not None:
            _ledger.state_results.append((state.name, size))
        if size > STATE_PAYLOAD_BYTES:
            raise _data_limit_exceeded(
                env,
                f"The state/task '{state.name}' returned a result with a size exceeding the maximum number of "
                f"bytes service limit: {size:,} bytes, at most {STATE_PAYLOAD_BYTES:,}.",
            )

    return evaluate_and_check


def is_result_writer_description(result: Any) -> bool:
    """A Map's result once its ResultWriter wrote the children's outputs to S3 (Step Functions, "ResultWriter"):
    {"MapRunArn": ..., "ResultWriterDetails": {"Bucket": ..., "Key": "<prefix>/<map run id>/manifest.json"}}."""
    return (
        isinstance(result, dict)
        and set(result) == {"MapRunArn", "ResultWriterDetails"}
        and isinstance(result["ResultWriterDetails"], dict)
        and set(result["ResultWriterDetails"]) == {"Bucket", "Key"}
    )


def _reading_the_state_input(evaluate: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A ResultWriter whose Parameters' paths read the Map's input, as AWS's do, in place of the children's
    results, which moto leaves on its stack for them (and then drops: it writes only the manifest)."""

    def evaluate_on_state_input(writer: Any, env: Any) -> None:
        env.stack.pop()
        env.stack.append(copy.deepcopy(env.states.get_input()))
        evaluate(writer, env)

    return evaluate_on_state_input


def _data_limit_exceeded(env: Any, cause: str) -> Exception:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error_type = StatesErrorNameType.StatesStatesDataLimitExceeded
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error_type),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                executionFailedEventDetails=ExecutionFailedEventDetails(error=error_type.to_name(), cause=cause)
            ),
        )
    )


# -------------------------------------------------------------------------------------------- all of it


def enforce_aws_limits(monkeypatch: pytest.MonkeyPatch) -> RequestLedger:
    """Every limit above, on moto in this process, until `monkeypatch` is undone; returns the test's ledger."""
    ledger = RequestLedger()
    monkeypatch.setattr(sys.modules[__name__], "_ledger", ledger)
    _enforce_step_functions_limits(monkeypatch)
    _count_requests(monkeypatch)
    _credit_thread_pools(monkeypatch)
    _apply_dynamodb_writes_atomically(monkeypatch)
    return ledger


# DynamoDB applies each write whole: an UpdateItem's ADD counts every call, however many run at once. moto's
# writes read, change and store an item without a lock, so concurrent ones (a Map's children each recording their
# failure) can lose an update that AWS never loses.
_DYNAMODB_WRITES = ("update_item", "put_item", "delete_item", "transact_write_items", "batch_write_item")


def _apply_dynamodb_writes_atomically(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.RLock()

    def atomic(write: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(write)
        def applied_whole(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return write(*args, **kwargs)

        return applied_whole

    for name in _DYNAMODB_WRITES:
        monkeypatch.setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))


def fail_on_steps_over_limit(ledger: RequestLedger) -> None:
    """At a test's end: a workflow step that ran in moto's threads over its limit, or anything moto did there that
    AWS does not, fails the test."""
    if ledger.unlike_aws:
        pytest.fail("moto did what AWS does not:\n" + "\n".join(ledger.unlike_aws), pytrace=False)
    if over := ledger.over_limit():
        pytest.fail("AWS steps over their time limit:\n" + "\n".join(str(p) for p in over), pytrace=False)
