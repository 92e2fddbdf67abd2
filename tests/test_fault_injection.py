"""The fault-injection suite: each test injects one fault into real jobs and checks, with `faults.account`, that
every input file ends up in exactly one output row or in the errors file. Each adds its row to the table printed at
the end of the test session.

Faults in scoring code come from the script in tests/faults.py (its MODE); faults in the system's own processes
are injected by killing them, and faults in storage through the ports (a blob store that crashes mid-write, an
S3 client whose requests fail). Jobs run on the local backend through the CLI, except the S3 one (moto).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import moto.core.models
import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from batch_container.runner import ShardRunner
from batch_endpoints import workflow, yaml_specs
from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.records import DynamoDbRecordStore, table_definition
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.adapters.local import host_lock, job_host
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ConflictError
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.ports import BlobRange
from batch_endpoints.repository import DEPLOYMENT, Repository
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import JobStatus
from tests.aws_fixtures import BUCKET, INPUT_BUCKET, TABLE, aws_backend, aws_fixture, ready  # noqa: F401 (a fixture)
from tests.core_fixtures import RecordingOrchestrator
from tests.faults import (
    BAD,
    GOOD,
    Outcome,
    account,
    deploy,
    errors_of,
    follow,
    hold_writes_until_both_arrive,
    run_job,
    runs_of,
    workspace_fixture,  # noqa: F401 (a fixture)
)
from tests.server_fixtures import Flood, chunked_flood, raw_head, serving

pytestmark = pytest.mark.slow


def wait_for(condition, what: str, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """Whether the process has exited: a zombie has, though its PID still answers until it is reaped."""
    return pid not in dict(sessions())


def children_gone(workspace) -> bool:
    """Whether every process the scoring code started (tests/faults.py's hang_with_a_child) has exited."""
    children = workspace["marks"] / "children"
    return all(gone(int(pid)) for pid in children.read_text().split()) if children.exists() else True


def invoke(bep, workspace) -> str:
    return bep("endpoint", "invoke", "--name", "echo-endpoint", "--input", workspace["inputs"]).out.strip()


# ------------------------------------------------------------------------------------------------ scoring code
def test_run_raising_on_chosen_files_fails_only_those_files_after_their_retries(bep, workspace):
    deploy(bep, workspace, "raise")
    job = run_job(bep, workspace)

    account("run() raises on 2 chosen files", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("ValueError: cannot score" in e["error"] for e in errors_of(job))
    assert runs_of(workspace)["item-00-bad.txt"] == 2, "tried once, retried once (max_retries 1)"


def test_run_returning_fewer_rows_fails_the_files_without_a_row(bep, workspace):
    deploy(bep, workspace, "fewer", mini_batch_size=5)
    job = run_job(bep, workspace)

    account("run() returns fewer rows than files", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("no row" in e["error"] for e in errors_of(job))


def test_run_returning_garbage_fails_its_mini_batch(bep, workspace):
    deploy(bep, workspace, "garbage")
    job = run_job(bep, workspace)

    account("run() returns a garbage type (a dict)", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("must return a pandas DataFrame, a list or an array; got dict" in e["error"] for e in errors_of(job))


def test_run_hanging_past_the_timeout_is_killed_and_the_job_goes_on(bep, workspace):
    deploy(bep, workspace, "hang", retry_settings={"max_retries": 0, "timeout": 2})
    job = run_job(bep, workspace)

    account("run() hangs past the timeout (2 s), its child process too", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("timed out after 2 s" in e["error"] for e in errors_of(job))
    assert (workspace["marks"] / "children").exists() and children_gone(workspace), "a child of run() survived"


def test_init_hanging_past_init_timeout_ends_the_job_with_every_file_in_the_errors(bep, workspace):
    deploy(bep, workspace, "hang-init", init_timeout=1)
    job = run_job(bep, workspace)

    account("init() hangs past init_timeout (1 s), its child process too", [job])
    assert job["status"] == "Failed" and job["counts"]["files_failed"] == GOOD + BAD
    assert job["error"].startswith("no file was scored; the first error: init() did not finish within 1 s")
    assert {e["error"] for e in errors_of(job)} == {"init() did not finish within 1 s"}
    assert (workspace["marks"] / "children").exists() and children_gone(workspace), "a child of init() survived"


def test_worker_exiting_is_replaced_and_only_its_files_fail(bep, workspace):
    deploy(bep, workspace, "exit")
    job = run_job(bep, workspace)

    account("the worker process exits in run()", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("worker process died (exit code 3)" in e["error"] for e in errors_of(job))


# ------------------------------------------------------------------------------------------------ processes
def test_worker_sigkilled_mid_mini_batch_is_replaced_and_the_retry_scores_it(bep, workspace):
    deploy(bep, workspace, "sigkill-worker-once")
    job = run_job(bep, workspace)

    account("a worker is SIGKILLed mid-mini-batch (then retried)", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == 0
    assert runs_of(workspace)["item-00-bad.txt"] == 2


def test_instance_dying_mid_shard_is_replaced_and_the_shard_retried(bep, workspace):
    # As a Spot reclaim: the runner and its workers vanish; its shard goes to a new instance, which skips the
    # mini-batches that have a result.
    deploy(bep, workspace, "sigkill-instance-once")
    job = run_job(bep, workspace)

    account("the runner instance dies mid-shard (Spot reclaim)", [job])
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == 0
    assert "attempt 1 failed: instance exited (code -9)" in (Path(job["scratch_uri"]) / "logs/job-host.log").read_text()


def machine_down_mid_run(bep, workspace) -> str:
    """A job that has scored a few mini-batches when the machine goes down: the job host, its runner instances
    and their workers, all at once. Returns the job's id."""
    deploy(bep, workspace, "slow")
    job_id = invoke(bep, workspace)
    service = bep.service
    wait_for(lambda: service.job_progress(job_id).get("mini_batches_done", 0) >= 4, "four mini-batches scored")
    host = int(service.get_job(job_id).execution.rpartition(":")[2])
    kill_session(host)
    reap(host)
    return job_id


def test_job_host_killed_mid_run_is_resumed_without_rescoring_finished_mini_batches(bep, workspace):
    job_id = machine_down_mid_run(bep, workspace)
    service = bep.service
    scratch = Path(service.get_job(job_id).scratch_uri)
    done_before = {name for part in scratch.glob("parts/*.csv") for name in pd.read_csv(part)["file"]}
    assert service.get_job(job_id).status == JobStatus.RUNNING and len(done_before) < GOOD + BAD

    resumed = bep("job", "resume", "--name", job_id, "--stream", ok=False)

    assert resumed.code == 0, resumed.err
    job = bep("job", "show", "--name", job_id).json()
    account("the job host dies mid-run; `bep job resume`", [job])
    assert job["status"] == "Completed" and job["resumes"] == 1
    runs = runs_of(workspace)
    assert {name: runs[name] for name in done_before} == dict.fromkeys(done_before, 1), "finished work ran again"


def kill_session(leader: int) -> None:
    """SIGKILL every process of the session `leader` leads (a job host leads one: its runners and their workers,
    each in a process group of its own, are in it), until none is left."""
    while members := [pid for pid, session in sessions() if session == leader]:
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def sessions() -> Iterator[tuple[int, int]]:
    """(pid, session id) of every live process, from /proc/<pid>/stat; zombies are not live."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _parent, _group, session = stat.read_text().rpartition(")")[2].split()[:4]
            if state != "Z":
                yield int(stat.parent.name), int(session)


DEAD_HOSTS = {"zombie": "the job host died unreaped (a zombie)", "reused": "the job host died, its PID reused"}


@contextlib.contextmanager
def host_that_looks_alive(job_id: str, how: str) -> Iterator[None]:
    """Record as the job's host a process that answers a PID check but is no host: one that held the job's host
    lock and died unreaped (`zombie`), or an unrelated live process that got the PID (`reused`)."""
    backend = from_environment()
    job = Repository(backend.records).get_job(job_id)
    if how == "zombie":
        pid = os.fork()
        if pid == 0:  # the child: a host that locks the job and dies at once; nothing here waits on it
            os._exit(0 if host_lock.take(job) is not None else 1)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # it has exited; still unreaped
    else:
        unrelated = subprocess.Popen(["sleep", "300"])
        pid = unrelated.pid
    os.kill(pid, 0)  # alive, as far as its PID tells
    Repository(backend.records).update_job(job_id, lambda j: j.model_copy(update={"execution": f"local-process:{pid}"}))
    try:
        yield
    finally:
        if how == "reused":
            unrelated.kill()
        reap(pid)


@pytest.mark.parametrize("how", sorted(DEAD_HOSTS))
def test_job_host_dead_but_its_pid_alive_is_resumed(bep, workspace, how: str):
    job_id = machine_down_mid_run(bep, workspace)
    with host_that_looks_alive(job_id, how):
        resumed = bep("job", "resume", "--name", job_id, "--stream", ok=False)

    assert resumed.code == 0, resumed.err
    job = bep("job", "show", "--name", job_id).json()
    label = DEAD_HOSTS[how]
    account(f"{label}; `bep job resume`", [job])
    assert job["status"] == "Completed" and job["resumes"] == 1


@pytest.mark.parametrize("how", sorted(DEAD_HOSTS))
def test_job_host_dead_but_its_pid_alive_is_canceled(bep, workspace, how: str):
    job_id = machine_down_mid_run(bep, workspace)
    with host_that_looks_alive(job_id, how):
        bep("job", "cancel", "--name", job_id)
        wait_for(lambda: bep.service.get_job(job_id).status.is_final, "the canceled job to end")
    job = bep("job", "show", "--name", job_id).json()

    label = DEAD_HOSTS[how]
    account(f"{label}; `bep job cancel`", [job])
    assert job["status"] == "Canceled" and not Path(job["output_uri"]).exists()


def reap(pid: int) -> None:
    """Collect a killed child of this process (the CLI ran in-process and started it), as init would."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def test_cancel_mid_run_stops_the_workers_keeps_the_parts_and_writes_no_output(bep, workspace):
    deploy(bep, workspace, "hang", retry_settings={"max_retries": 0, "timeout": 600})
    job_id = invoke(bep, workspace)
    service = bep.service
    wait_for(lambda: service.job_progress(job_id).get("mini_batches_done", 0) >= 1, "a mini-batch scored")
    wait_for(lambda: (workspace["marks"] / "hanging").exists(), "a worker stuck in run()")

    bep("job", "cancel", "--name", job_id)
    job = follow(bep, job_id)

    account("the job is canceled mid-run, run() with a child process", [job])
    assert job["status"] == "Canceled" and not Path(job["output_uri"]).exists()
    assert list(Path(job["scratch_uri"]).glob("parts/*.csv")), "finished mini-batches are kept"
    hanging = [int(pid) for pid in (workspace["marks"] / "hanging").read_text().split()]
    wait_for(lambda: all(gone(pid) for pid in hanging), "the stuck workers to be gone", within_s=10)
    wait_for(lambda: children_gone(workspace), "the children of run() to be gone", within_s=10)


# ------------------------------------------------------------------------------------------------ finalize
class Crash(BaseException):
    """The process dies here: nothing after it runs, no handler catches it."""


@dataclasses.dataclass
class CrashingMidWrite:
    """A blob store that dies half-way through streaming the one object `target`."""

    blobs: object
    target: str

    def __getattr__(self, name: str):
        return getattr(self.blobs, name)

    def write_stream(self, uri: str, chunks: Iterable[bytes], *, if_absent: bool = False) -> int:
        if uri != self.target:
            return self.blobs.write_stream(uri, chunks, if_absent=if_absent)
        all_chunks = list(chunks)

        def half_then_crash() -> Iterator[bytes]:
            yield from all_chunks[: len(all_chunks) // 2]
            raise Crash

        return self.blobs.write_stream(uri, half_then_crash(), if_absent=if_absent)

    def compose(self, uri: str, pieces: Sequence[BlobRange], *, if_absent: bool = False) -> int:
        if uri != self.target:
            return self.blobs.compose(uri, pieces, if_absent=if_absent)
        # The same bytes, through the stream that dies half-way.
        return self.write_stream(
            uri, (self.blobs.read_range(p.uri, p.start, p.end) for p in pieces), if_absent=if_absent
        )


def test_finalize_crashing_half_way_through_the_output_is_run_again(bep, workspace):
    deploy(bep, workspace, "ok")
    backend = from_environment()
    queued = BatchEndpointService(dataclasses.replace(backend, orchestrator=RecordingOrchestrator())).invoke(
        InvokeRequest(endpoint_name="echo-endpoint", input=str(workspace["inputs"]))
    )
    crashing = dataclasses.replace(backend, blobs=CrashingMidWrite(backend.blobs, queued.output_uri))

    with pytest.raises(Crash):
        job_host.run_job(crashing, queued.id)  # the job host, in this process: scoring, then finalize dies

    assert bep.service.get_job(queued.id).status == JobStatus.FINALIZING
    output_folder = Path(queued.output_uri).parent  # made only when something is published in it
    assert not output_folder.exists() or os.listdir(output_folder) == [], "no half-written output, under any name"
    assert bep("job", "resume", "--name", queued.id, "--stream", ok=False).code == 0
    job = bep("job", "show", "--name", queued.id).json()
    account("finalize crashes half-way through the output; resumed", [job])
    assert job["status"] == "Completed" and job["counts"]["rows"] == GOOD + BAD


# ------------------------------------------------------------------------------------------------ requests
def test_the_same_invoke_sent_twice_at_once_starts_one_job(bep, workspace):
    deploy(bep, workspace, "ok")
    request = InvokeRequest(endpoint_name="echo-endpoint", input=str(workspace["inputs"]))
    both_sent = threading.Barrier(2, timeout=30)

    def send(_: int) -> str:
        service = bep.service
        both_sent.wait()
        return service.invoke_idempotent(request, "nightly-2026-11-21").id

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(send, range(2))
    assert first == second
    job = follow(bep, first)

    assert [j.id for j in bep.service.list_jobs("echo-endpoint")] == [first]
    account("the same invoke sent twice at once (Idempotency-Key)", [job])
    assert job["status"] == "Completed"


def test_two_clients_updating_a_deployment_at_once_one_wins_and_nothing_is_lost(bep, workspace):
    deploy(bep, workspace, "ok")
    service = bep.service
    spec = yaml_specs.load_deployment(str(workspace["root"] / "deployment.yml"))

    def update(mini_batch_size: int):
        settings = spec.settings.model_copy(update={"mini_batch_size": mini_batch_size})
        try:
            return service.update_deployment(dataclasses.replace(spec, settings=settings))
        except ConflictError as conflict:
            return conflict

    with hold_writes_until_both_arrive(service.backend.records, DEPLOYMENT), ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(update, [2, 4]))
    [winner] = [o for o in outcomes if not isinstance(o, ConflictError)]
    [conflict] = [o for o in outcomes if isinstance(o, ConflictError)]
    assert "changed by another request" in conflict.message
    assert service.get_deployment("echo-endpoint", "echo") == winner

    job = run_job(bep, workspace)
    account("two clients update the deployment at once; then invoke", [job])
    assert job["status"] == "Completed" and job["settings"]["mini_batch_size"] == winner.settings.mini_batch_size


def test_a_chunked_body_flood_at_the_api_server_while_a_job_runs_leaves_both_whole(bep, workspace, home):
    deploy(bep, workspace, "slow")
    job_id = invoke(bep, workspace)
    stop = threading.Event()
    floods: list[Flood] = []

    with serving(from_environment(), home) as api:
        head = raw_head("PUT", "/endpoints/echo-endpoint", {"Host": "localhost", "Transfer-Encoding": "chunked"})

        def flood_until_stopped() -> None:
            while not stop.is_set():
                floods.append(chunked_flood(api, head, total_bytes=24 * 1024 * 1024))

        with ThreadPoolExecutor(4) as pool:
            flooding = [pool.submit(flood_until_stopped) for _ in range(4)]
            wait_for(lambda: len(floods) >= 4, "the flood under way")
            shown = api.call("GET", f"/jobs/{job_id}")
            job = follow(bep, job_id)
            stop.set()
            for flooder in flooding:
                flooder.result()

    account("a chunked-body flood at `bep serve` while the job runs", [job])
    assert shown.status == 200 and shown.json()["id"] == job_id, "the server answered while flooded"
    assert job["status"] == "Completed"
    assert {flood.reply.status for flood in floods} == {403}
    assert all(flood.sent_bytes < 24 * 1024 * 1024 for flood in floods), "a flood was read whole"


# ------------------------------------------------------------------------------------------------ rerun
def test_rerun_failed_after_an_outage_scores_only_the_failed_files(bep, workspace):
    (workspace["marks"] / "outage").touch()
    deploy(bep, workspace, "raise-during-outage", retry_settings={"max_retries": 0, "timeout": 10})
    first = run_job(bep, workspace)
    assert first["status"] == "Completed" and first["counts"]["files_failed"] == BAD
    (workspace["marks"] / "outage").unlink()

    rerun_id = bep("job", "rerun", "--name", first["id"], "--failed", "--stream").out.splitlines()[0]

    rerun = bep("job", "show", "--name", rerun_id).json()
    account("run() fails during an outage; `bep job rerun --failed`", [first, rerun])
    assert rerun["status"] == "Completed" and rerun["rerun_of"] == first["id"] and rerun["counts"]["files"] == BAD
    assert rerun["output_uri"] != first["output_uri"]
    assert set(runs_of(workspace).values()) == {1, 2}, "good files ran once, bad ones once per job"


# ------------------------------------------------------------------------------------------------ storage (S3)
def s3_error(code: str) -> bytes:
    return f'<?xml version="1.0"?><Error><Code>{code}</Code><Message>injected</Message></Error>'.encode()


def dynamodb_error(code: str) -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()


# botocore lets every before-send hook run and sends the first response one returns: moto's hook would still
# apply a request that FailingRequests answers. A request answered with an injected error carries this header,
# and moto skips it (fixture `moto_skips_injected`), as AWS applies nothing it throttles.
INJECTED = "x-test-injected-error"


@pytest.fixture
def moto_skips_injected(monkeypatch: pytest.MonkeyPatch) -> None:
    stubber = type(moto.core.models.botocore_stubber)
    answer = stubber.__call__

    def skip_injected(self, event_name: str, request, **kwargs):
        return None if request.headers.get(INJECTED) else answer(self, event_name, request, **kwargs)

    monkeypatch.setattr(stubber, "__call__", skip_injected)


class FailingRequests:
    """A botocore hook answering chosen requests with an error instead of AWS (moto): every `every`-th request
    of each operation, `times` times in a row, as S3 does while it throttles (503 SlowDown) or fails. With
    `applied`, AWS (moto) carries the request out first and only its answer is the error, as a 500 or a dropped
    connection may come after the write happened."""

    def __init__(
        self, status: int, body: bytes, *, every: int, times: int = 1, limit: int = 1000, applied: bool = False
    ) -> None:
        self.status, self.body, self.every, self.times, self.limit = status, body, every, times, limit
        self.applied = applied
        self.seen: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.injected = 0
        self.lock = threading.Lock()

    def __call__(self, request, event_name: str, **_: object) -> AWSResponse | None:
        operation = event_name.rpartition(".")[2]
        with self.lock:
            if not self.pending.get(operation):
                self.seen[operation] = self.seen.get(operation, 0) + 1
                if self.seen[operation] % self.every or self.injected >= self.limit:
                    return None
                self.pending[operation] = self.times
            self.pending[operation] -= 1
            self.injected += 1
        if self.applied:
            moto.core.models.botocore_stubber(event_name, request)
        request.headers[INJECTED] = "1"
        return AWSResponse(request.url, self.status, {}, RawBody(self.body))


class RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def cloud(aws: None, tmp_path: Path) -> Backend:
    backend = aws_backend(RecordingOrchestrator())
    ready(BatchEndpointService(backend), tmp_path, mini_batch_size=2)
    s3 = boto3.client("s3")
    for n in range(7):
        s3.put_object(Bucket=INPUT_BUCKET, Key=f"batch/{n}.txt", Body=b"x" * n)
    return backend


def test_storage_errors_on_writes_are_retried(cloud: Backend, moto_skips_injected: None):
    job = BatchEndpointService(cloud).invoke(InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/batch"))
    # The blob store and record store of a runner and of the workflow Lambdas, with their own retrying clients.
    blobs = S3BlobStore(BUCKET)
    # Throttling makes the adaptive clients slow down for a while (to 0.5 requests/s at worst): once each is
    # enough to see it retried, and keeps the test fast. Errors 5xx are retried without slowing down.
    s3_hooks = [
        FailingRequests(503, s3_error("SlowDown"), every=5, limit=1),
        FailingRequests(500, s3_error("InternalError"), every=3, times=2),
    ]
    for hook in s3_hooks:
        blobs.client.meta.events.register_first("before-send.s3.PutObject", hook)
    records = DynamoDbRecordStore(TABLE)
    dynamodb_hooks = [
        FailingRequests(400, dynamodb_error("ProvisionedThroughputExceededException"), every=7, limit=1),
        FailingRequests(500, dynamodb_error("InternalServerError"), every=3),
    ]
    for hook in dynamodb_hooks:
        records.client.meta.events.register_first("before-send.dynamodb.UpdateItem", hook)
    flaky = dataclasses.replace(cloud, blobs=blobs, records=records)

    plan = workflow.plan_job(flaky, job.id)
    with ShardRunner(records, blobs, job.id) as runner:
        for uri in plan.shard_uris:
            runner.run_shard(runner.load_shard(uri))
    done = workflow.finalize_job(flaky, job.id)

    assert all(hook.injected for hook in s3_hooks + dynamodb_hooks)
    files = JobFiles(cloud.blobs, done.scratch_uri)
    output = pd.read_csv(pd.io.common.BytesIO(cloud.blobs.get_bytes(done.output_uri)))
    errors = cloud.blobs.get_bytes(files.errors).decode().splitlines() if cloud.blobs.exists(files.errors) else []
    account(
        "S3 answers 503 SlowDown and 500 to puts, DynamoDB throttles",
        [Outcome(done.status.value, output["file"].tolist(), errors)],
        files=[f"{n}.txt" for n in range(7)],
    )
    assert done.status == JobStatus.COMPLETED and done.counts.files_succeeded == 7
    assert cloud.records.get("job", job.id).counters["mini_batches_done"] == 4


def test_storage_writes_applied_then_answered_with_errors_are_retried_without_loss_or_duplicates(
    cloud: Backend, moto_skips_injected: None
):
    # S3 wrote each of these objects, then answered 500: the retry writes the same bytes to the same key again,
    # and a conditional write (the output file, never overwriting) finds its own file there. DynamoDB applied
    # these record updates, then answered 500: the retry fails its condition and finds its own write there.
    job = BatchEndpointService(cloud).invoke(InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/batch"))
    blobs = S3BlobStore(BUCKET)
    hooks = {
        operation: FailingRequests(500, s3_error("InternalError"), every=2, applied=True)
        for operation in ("PutObject", "CopyObject", "UploadPartCopy", "CompleteMultipartUpload")
    }
    for operation, hook in hooks.items():
        blobs.client.meta.events.register_first(f"before-send.s3.{operation}", hook)
    # The workflow's record writes too: plan's and finalize's conditional updates of the job record.
    records = DynamoDbRecordStore(TABLE)
    hooks["UpdateItem"] = FailingRequests(500, dynamodb_error("InternalServerError"), every=2, applied=True)
    records.client.meta.events.register_first("before-send.dynamodb.UpdateItem", hooks["UpdateItem"])
    flaky = dataclasses.replace(cloud, blobs=blobs, records=records)

    plan = workflow.plan_job(flaky, job.id)
    with ShardRunner(cloud.records, blobs, job.id) as runner:
        for uri in plan.shard_uris:
            runner.run_shard(runner.load_shard(uri))
    done = workflow.finalize_job(flaky, job.id)

    assert hooks["PutObject"].injected >= 3 and hooks["UpdateItem"].injected >= 2
    output = pd.read_csv(pd.io.common.BytesIO(cloud.blobs.get_bytes(done.output_uri)))
    account(
        "S3 and DynamoDB write, then answer 500 (the retry writes again)",
        [Outcome(done.status.value, output["file"].tolist(), [])],
        files=[f"{n}.txt" for n in range(7)],
    )
    assert done.status == JobStatus.COMPLETED and done.counts.files_succeeded == 7
    assert output["file"].tolist() == [f"{n}.txt" for n in range(7)]


@pytest.mark.parametrize("applied", [True, False])
def test_an_injected_error_is_applied_first_only_when_asked(aws: None, moto_skips_injected: None, applied: bool):
    s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    s3.create_bucket(Bucket="faults")
    s3.meta.events.register_first(
        "before-send.s3.PutObject", FailingRequests(500, s3_error("InternalError"), every=1, applied=applied)
    )

    with pytest.raises(ClientError, match="InternalError"):
        s3.put_object(Bucket="faults", Key="k", Body=b"written")

    assert [o["Key"] for o in s3.list_objects_v2(Bucket="faults").get("Contents", [])] == (["k"] if applied else [])


def test_a_record_write_applied_then_answered_500_is_the_writes_success_and_a_stale_one_still_conflicts(
    aws: None, moto_skips_injected: None
):
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    records = DynamoDbRecordStore(TABLE)
    lost_answers = [
        FailingRequests(500, dynamodb_error("InternalServerError"), every=1, limit=1, applied=True) for _ in range(2)
    ]

    records.client.meta.events.register_first("before-send.dynamodb.UpdateItem", lost_answers[0])
    created = records.put("job", "j-1", {"status": "Queued"}, expected_version=0)
    records.client.meta.events.unregister("before-send.dynamodb.UpdateItem", lost_answers[0])
    records.client.meta.events.register_first("before-send.dynamodb.UpdateItem", lost_answers[1])
    updated = records.put("job", "j-1", {"status": "Running"}, expected_version=1)

    assert (created, updated) == (1, 2) and all(hook.injected == 1 for hook in lost_answers)
    stored = records.get("job", "j-1")
    assert stored is not None and (stored.data, stored.version) == ({"status": "Running"}, 2)
    with pytest.raises(ConflictError, match="was changed by another request"):
        records.put("job", "j-1", {"status": "Failed"}, expected_version=1)
    with pytest.raises(ConflictError, match="already exists"):
        records.put("job", "j-1", {"status": "Queued"}, expected_version=0)
