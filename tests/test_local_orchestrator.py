"""The local orchestrator tells a live job host from a dead one by the host's lock, not by its PID: a host that
died unreaped (a zombie) or whose PID now names another process is dead, and a new host may take the job over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batch_endpoints.adapters.local import host_lock
from batch_endpoints.adapters.local.orchestrator import LocalOrchestrator
from batch_endpoints.errors import ConflictError
from batch_endpoints.specs import Job


@pytest.fixture
def job(tmp_path: Path) -> Job:
    # Only the scratch folder (where the lock lies) and the handle matter to the orchestrator's liveness.
    return Job.model_construct(id="job-1", scratch_uri=str(tmp_path / "jobs" / "job-1"), execution="")


def fork_lock_holder(job: Job) -> tuple[int, int]:
    """A child process that takes the job's host lock, says so, and exits when told: (its pid, the pipe to tell
    it). Forked, not started with subprocess, so that nothing in this process waits on it."""
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(go_write)  # else its own copy keeps the pipe open, and the read below never ends
            held = host_lock.take(job) is not None
            os.write(ready_write, b"1" if held else b"0")
            os.read(go_read, 1)
        finally:
            os._exit(0)
    os.close(ready_write)
    os.close(go_read)
    assert os.read(ready_read, 1) == b"1", "the child could not take the lock"
    os.close(ready_read)
    return pid, go_write


def state_of(pid: int) -> str:
    """The process's state letter from /proc/<pid>/stat (Z = zombie); '' when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def wait_for_zombie(pid: int) -> None:
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # returns once it has exited, and leaves it unreaped
    assert state_of(pid) == "Z"


def test_a_job_no_host_was_started_for_is_not_running(job: Job):
    assert not LocalOrchestrator({}).is_running(job)


def test_a_host_holding_the_lock_is_running_and_a_second_host_is_refused(job: Job):
    holder, go = fork_lock_holder(job)
    try:
        orchestrator = LocalOrchestrator({})
        assert orchestrator.is_running(job)
        with pytest.raises(ConflictError, match="already has a running job host"):
            orchestrator.start(job)
    finally:
        os.close(go)
        os.waitpid(holder, 0)


def test_a_dead_unreaped_host_is_not_running(job: Job):
    holder, go = fork_lock_holder(job)
    os.close(go)  # it exits; nothing reaps it
    try:
        wait_for_zombie(holder)
        os.kill(holder, 0)  # a PID check would call it alive

        assert not LocalOrchestrator({}).is_running(job.model_copy(update={"execution": f"local-process:{holder}"}))
    finally:
        os.waitpid(holder, 0)


def test_a_host_whose_pid_now_names_another_process_is_not_running(job: Job):
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        reused = job.model_copy(update={"execution": f"local-process:{unrelated.pid}"})
        lock = host_lock.take(job)  # a host locked the job once, and is gone
        assert lock is not None
        os.close(lock)
        assert not LocalOrchestrator({}).is_running(reused)
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_started_host_holds_the_lock_from_the_start_and_is_reaped_once_it_ends(
    job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A host that does nothing but live: what start() hands it is what the real host keeps.
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nexec sleep 60\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    orchestrator = LocalOrchestrator({})

    handle = orchestrator.start(job)

    assert orchestrator.is_running(job), "running from the moment start() returns"
    host = int(handle.rpartition(":")[2])
    os.kill(host, signal.SIGKILL)
    os.waitid(os.P_PID, host, os.WEXITED | os.WNOWAIT)
    assert not orchestrator.is_running(job)
    assert state_of(host) == "", "the orchestrator reaped the host it started"
