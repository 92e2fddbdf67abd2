"""Fork servers kept warm between jobs (batch_container.warm_fork): the guarantees a per-job fork server gives,
kept by one shared between jobs, and its own failure modes (killed, stale socket, stuck, cannot start, idle)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_container import warm_fork
from batch_container.scoring import RunReply, RunRequest, WorkerSetup
from batch_container.warm_fork import IDLE_VARIABLE, WarmForkServer, WarmProcess
from batch_container.workers import WorkerPool

pytestmark = pytest.mark.skipif(not warm_fork.supported(), reason="needs pidfds (Linux 5.3+)")

REPO = Path(__file__).resolve().parents[1]
PRELOAD = ["json"]  # a library to import: the server's work, kept small here
SCRIPT = """
import contextlib
import os
import time


def run(mini_batch):
    for path in mini_batch:
        what = open(path).read()
        if what == "exit":
            os._exit(7)
        if what == "hang":
            time.sleep(300)
        if what == "where":
            with open(path + ".out", "w") as out:
                out.write(f"{os.getcwd()} {os.umask(0):o}")
    return [str(os.getpid()) for _ in mini_batch]
"""
# Stops a stuck test instead of hanging the suite; never what a test asserts.
GIVE_UP_S = 60


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text(SCRIPT)
    for what in ("ok", "exit", "hang", "where"):
        (tmp_path / f"{what}.txt").write_text(what)
    return tmp_path


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[str]:
    """The fork servers' folder; servers a test leaves are killed after it."""
    folder = tmp_path / "fork-servers"
    yield str(folder)
    for pid in _server_pids(folder):
        os.kill(pid, signal.SIGKILL)


def _server_pids(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"batch_container.warm_fork_server" in command and any(str(folder).encode() in c for c in command):
                found.append(int(entry.name))
    return found


def pool_for(job: Path, server: WarmForkServer | None, *, size: int = 1, timeout_s: float = 60) -> WorkerPool:
    def setup(slot: int) -> WorkerSetup:
        return WorkerSetup(
            name=f"worker-{slot}",
            script_path=str(job / "code" / "score.py"),
            code_dir=str(job / "code"),
            environment={"PYTHONPATH": str(REPO)},
            logging_level="WARNING",
            log_path=str(job / f"worker-{slot}.log"),
            render_csv=False,
        )

    return WorkerPool(size, setup, timeout_s=timeout_s, init_timeout_s=GIVE_UP_S, preload=PRELOAD, warm_server=server)


def warm(servers: str, **environment: str) -> WarmForkServer:
    return WarmForkServer(servers, PRELOAD, {**os.environ, "PYTHONPATH": str(REPO), **environment})


def score(pool: WorkerPool, job: Path, what: str, index: int = 0) -> RunReply:
    """Run one mini-batch of the file `what`.txt on the pool's first free worker; its reply."""
    pool.start()
    give_up = time.monotonic() + GIVE_UP_S
    while not pool.accepting():
        assert time.monotonic() < give_up, f"no worker started: {pool.init_error}"
        pool.poll(0.1)
    path = str(job / f"{what}.txt")
    pool.assign(pool.accepting()[0], RunRequest(index, [path], [f"{what}.txt"]))
    while time.monotonic() < give_up:
        for reply in pool.poll(0.1):
            return reply
    raise AssertionError("no reply")


def worker_process(pool: WorkerPool) -> WarmProcess:
    process = pool.workers[0].process
    assert isinstance(process, WarmProcess), "the worker did not come from the warm server"
    return process


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def gone(pid: int, within: float = GIVE_UP_S) -> bool:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], within)[0])
    finally:
        os.close(pidfd)


@contextlib.contextmanager
def warmed(job: Path, server: WarmForkServer, *, timeout_s: float = 60) -> Iterator[tuple[WorkerPool, int, int]]:
    """A pool whose worker has scored a mini-batch: the pool, the worker's PID, and its warm server's."""
    pool = pool_for(job, server, timeout_s=timeout_s)
    try:
        assert score(pool, job, "ok").error is None
        worker = worker_process(pool).pid or 0
        yield pool, worker, parent_of(worker)
    finally:
        pool.close()


def test_one_server_forks_the_workers_of_successive_and_simultaneous_jobs(job: Path, servers: str) -> None:
    with warmed(job, warm(servers)) as (_, _, server), warmed(job, warm(servers)) as (_, _, at_once):
        assert at_once == server  # two jobs at once
    with warmed(job, warm(servers)) as (_, _, later):
        assert later == server  # and the next job: it stayed warm


def test_its_workers_lead_their_own_group_and_the_server_is_in_no_group_of_the_runners(job: Path, servers: str) -> None:
    with warmed(job, warm(servers)) as (_, worker, server):
        assert os.getpgid(worker) == worker
        assert os.getpgid(server) == server and os.getsid(server) == server
        assert os.getpgid(server) != os.getpgid(0)


@pytest.mark.parametrize(
    ("how", "said"), [("exit", "exit code 7"), ("kill", "exit code -9: killed by SIGKILL, often out of memory")]
)
def test_a_workers_exit_status_reaches_the_runner_that_started_it(job: Path, servers: str, how: str, said: str) -> None:
    with warmed(job, warm(servers)) as (pool, worker, _):
        if how == "kill":
            os.kill(worker, signal.SIGKILL)
        reply = score(pool, job, "exit" if how == "exit" else "hang", index=1)
        assert reply.error == f"worker process died ({said})"
        assert score(pool, job, "ok", index=2).error is None  # and its replacement works


def test_a_worker_works_in_the_runners_folder_with_its_umask(
    job: Path, servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if forked by a server the runner started itself, whichever runner started the warm one.
    with warmed(job, warm(servers)) as (_, _, server):
        pass
    monkeypatch.chdir(job / "code")
    umask = os.umask(0o027)
    try:
        with warmed(job, warm(servers)) as (pool, _, same):
            assert score(pool, job, "where", index=1).error is None
    finally:
        os.umask(umask)
    assert same == server
    assert (job / "where.txt.out").read_text() == f"{job / 'code'} 27"


def test_a_timed_out_run_is_killed_with_its_group(job: Path, servers: str) -> None:
    with warmed(job, warm(servers), timeout_s=0.5) as (pool, worker, _):
        assert score(pool, job, "hang", index=1).error == "run() timed out after 0.5 s"
        assert gone(worker)


def test_a_server_killed_mid_job_leaves_its_workers_running_and_is_replaced(job: Path, servers: str) -> None:
    with warmed(job, warm(servers)) as (pool, _, server):
        os.kill(server, signal.SIGKILL)
        assert gone(server)
        assert score(pool, job, "ok", index=1).error is None  # the same worker goes on
        reply = score(pool, job, "exit", index=2)
        assert reply.error == "worker process died (exit status unknown: the fork server that started it ended first)"
        assert score(pool, job, "ok", index=3).error is None
        replacement = worker_process(pool).pid or 0
        assert parent_of(replacement) not in (server, os.getpid())  # from a new warm server


def test_a_stale_socket_of_a_dead_server_is_replaced(job: Path, servers: str) -> None:
    server = warm(servers)
    os.makedirs(servers, mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(server.path)  # bound, never listening: what a killed server leaves
    stale.close()
    with warmed(job, server) as (_, _, pid):
        assert pid != os.getpid()


def test_a_changed_environment_gets_a_server_of_its_own(job: Path, servers: str) -> None:
    one, two = warm(servers, OMP_NUM_THREADS="1"), warm(servers, OMP_NUM_THREADS="2")
    assert one.path != two.path
    with warmed(job, one) as (_, _, first), warmed(job, two) as (_, _, second):
        assert first != second
        for server, threads in ((first, b"1"), (second, b"2")):
            # What it imported its libraries with.
            assert b"OMP_NUM_THREADS=" + threads in Path(f"/proc/{server}/environ").read_bytes().split(b"\0")


def test_another_version_of_our_code_gets_a_server_of_its_own(servers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # An older server's workers would run its own copy of the worker code, and its protocol may differ.
    before = warm(servers).path
    monkeypatch.setattr(warm_fork, "_code_version", lambda: [("batch_container/scoring.py", 1, 2)])
    assert warm(servers).path != before


def test_an_idle_server_exits_and_removes_its_socket(job: Path, servers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IDLE_VARIABLE, "0.2")
    server = warm(servers)
    with warmed(job, server) as (_, _, pid):
        assert not gone(pid, within=0.5)  # a worker alive: not idle
    assert gone(pid)
    assert not os.path.exists(server.path)


def test_a_server_whose_home_is_deleted_exits_without_waiting_to_be_idle(
    job: Path, servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE_VARIABLE, "600")
    with warmed(job, warm(servers)) as (_, _, pid):
        pass
    shutil.rmtree(servers)
    assert gone(pid)


def test_a_stuck_server_is_killed_and_the_job_uses_a_fork_server_of_its_own(
    job: Path, servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with warmed(job, warm(servers)) as (_, _, server):
        pass
    monkeypatch.setattr(warm_fork, "ANSWER_TIMEOUT_S", 0.2)
    os.kill(server, signal.SIGSTOP)
    try:
        assert_falls_back(job, warm(servers))
        assert gone(server)  # killed, so that the next job does not wait on it too
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server, signal.SIGCONT)
    with warmed(job, warm(servers)) as (_, _, replacement):
        assert replacement != server


@pytest.mark.parametrize("why", ["cannot start", "folder open to others"])
def test_a_server_that_cannot_be_had_leaves_the_job_to_a_fork_server_of_its_own(
    job: Path, servers: str, why: str
) -> None:
    if why == "cannot start":
        assert_falls_back(job, WarmForkServer(servers, ["no_such_library_here"], dict(os.environ)))
    else:
        os.makedirs(servers, mode=0o755)
        os.chmod(servers, 0o755)
        assert_falls_back(job, warm(servers))


def assert_falls_back(job: Path, server: WarmForkServer) -> None:
    pool = pool_for(job, server)
    try:
        assert score(pool, job, "ok").error is None
        assert not isinstance(pool.workers[0].process, WarmProcess)
    finally:
        pool.close()


RUNNER = """
import os, sys, time
sys.path.insert(0, {repo!r})
from tests.test_warm_fork import pool_for, score, warm, worker_process
from pathlib import Path
pool = pool_for(Path({job!r}), warm({servers!r}))
score(pool, Path({job!r}), "ok")
pool.assign(pool.accepting()[0], __import__("batch_container.scoring").scoring.RunRequest(1, [{hang!r}], ["hang.txt"]))
print(worker_process(pool).pid, flush=True)
time.sleep(300)
"""


def test_a_killed_runners_workers_end_with_it_and_the_server_stays(job: Path, servers: str) -> None:
    code = RUNNER.format(repo=str(REPO), job=str(job), servers=servers, hang=str(job / "hang.txt"))
    runner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=job)
    try:
        assert runner.stdout is not None
        worker = int(runner.stdout.readline())
        server = parent_of(worker)
        runner.kill()
        runner.wait()
        assert gone(worker)  # mid-run(): it watched the runner, not the server
        assert not gone(server, within=0)
    finally:
        runner.kill()
        runner.wait()
