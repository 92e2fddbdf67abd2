"""A pool of long-lived worker processes, each running the scoring script (see scoring.serve).

Workers live as long as the runner: init() runs once per worker, not per mini-batch or per shard. The pool
enforces the per-mini-batch timeout and replaces workers that hang, die or are killed; callers see only
"this worker is idle" and "this mini-batch attempt ended like this".
"""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from batch_container.scoring import InitFailed, Ready, RunReply, RunRequest, WorkerSetup, serve

log = logging.getLogger(__name__)

# A worker whose init() fails this many times in a row is given up on: the script is broken, not unlucky.
INIT_ATTEMPTS = 3
# How long a closing worker may take to return from its loop before it is killed.
CLOSE_GRACE_S = 2.0


class State(enum.Enum):
    STARTING = "starting"  # process started, init() not finished
    IDLE = "idle"
    BUSY = "busy"
    STOPPED = "stopped"  # not running; started again on demand
    BROKEN = "broken"  # init() failed INIT_ATTEMPTS times in a row


@dataclass(eq=False)
class Worker:
    slot: int
    state: State = State.STOPPED
    process: BaseProcess | None = None
    conn: Connection | None = None
    request: RunRequest | None = None
    deadline: float = 0.0
    init_failures: int = 0
    init_error: str = ""


class WorkerPool:
    """`size` worker processes started with the multiprocessing spawn context (fork is unsafe once the
    runner has threads, and CUDA cannot be re-initialised in a forked child)."""

    def __init__(self, size: int, setup_for: Callable[[int], WorkerSetup], *, timeout_s: float) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._setup_for = setup_for
        self.timeout_s = timeout_s
        self.workers = [Worker(slot) for slot in range(size)]

    # --- what the runner asks -------------------------------------------------------------------------

    def start(self) -> None:
        """Start every worker that is not running (and not given up on)."""
        for worker in self.workers:
            if worker.state is State.STOPPED:
                self._launch(worker)

    def idle(self) -> list[Worker]:
        return [w for w in self.workers if w.state is State.IDLE]

    @property
    def usable(self) -> bool:
        return any(w.state is not State.BROKEN for w in self.workers)

    @property
    def init_error(self) -> str:
        return next((w.init_error for w in self.workers if w.init_error), "")

    def assign(self, worker: Worker, request: RunRequest) -> None:
        assert worker.state is State.IDLE and worker.conn is not None
        worker.state = State.BUSY
        worker.request = request
        worker.deadline = time.monotonic() + self.timeout_s
        # If it died meanwhile, poll() sees its exit and reports the attempt as failed.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, EOFError):
            worker.conn.send(request)

    def poll(self, timeout: float) -> list[RunReply]:
        """Wait up to `timeout` s for something to happen; return the attempts that ended meanwhile."""
        live = [w for w in self.workers if w.state in (State.STARTING, State.IDLE, State.BUSY)]
        busy = [w for w in live if w.state is State.BUSY]
        if busy:
            timeout = max(0.0, min(timeout, min(w.deadline for w in busy) - time.monotonic()))
        # handle -> (worker, its process then, whether the handle is the process's exit sentinel)
        handles: dict[object, tuple[Worker, BaseProcess, bool]] = {}
        for worker in live:
            assert worker.conn is not None and worker.process is not None
            handles[worker.conn] = (worker, worker.process, False)
            handles[worker.process.sentinel] = (worker, worker.process, True)
        if handles:
            ready = wait(list(handles), timeout)
        else:
            time.sleep(timeout)
            ready = []
        ended: list[RunReply] = []
        # Messages first: a worker may have replied and then exited, and its reply still counts.
        for handle in ready:
            worker, process, exited = handles[handle]
            if not exited and worker.process is process:
                ended.extend(self._receive(worker))
        for handle in ready:
            worker, process, exited = handles[handle]
            # Skip a worker already replaced while its messages were read.
            if exited and worker.process is process:
                ended.extend(self._died(worker))
        now = time.monotonic()
        for worker in busy:
            if worker.state is State.BUSY and now >= worker.deadline:
                ended.extend(self._timed_out(worker))
        return ended

    def stop_busy(self) -> None:
        """Kill the workers in the middle of a run() (the job was canceled); they restart on `start()`."""
        for worker in self.workers:
            if worker.state is State.BUSY:
                self._kill(worker)

    def close(self) -> None:
        """End every worker: idle ones leave their loop when their connection closes, the rest are killed."""
        running = [w for w in self.workers if w.process is not None]
        for worker in running:
            if worker.state is not State.IDLE:
                worker.process.kill()
            if worker.conn is not None:
                worker.conn.close()
        deadline = time.monotonic() + CLOSE_GRACE_S
        for worker in running:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.process.close()
            worker.process, worker.conn = None, None
            if worker.state is not State.BROKEN:
                worker.state = State.STOPPED

    # --- life cycle -----------------------------------------------------------------------------------

    def _launch(self, worker: Worker) -> None:
        parent_end, child_end = self._context.Pipe()
        setup = self._setup_for(worker.slot)
        # Not daemonic: daemonic processes may not have children, and scoring code may (a torch DataLoader
        # with num_workers > 0). close() and the workers' parent watch make sure none outlives the runner.
        process = self._context.Process(target=serve, args=(child_end, setup), name=setup.name)
        process.start()
        # The child holds its own copy; closing ours lets recv() see EOF when the child dies.
        child_end.close()
        worker.process, worker.conn, worker.state, worker.request = process, parent_end, State.STARTING, None

    def _receive(self, worker: Worker) -> list[RunReply]:
        assert worker.conn is not None
        ended: list[RunReply] = []
        while worker.state is not State.STOPPED and worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                break  # it died; the sentinel says how
            if isinstance(message, Ready):
                worker.state, worker.init_failures, worker.init_error = State.IDLE, 0, ""
            elif isinstance(message, InitFailed):
                self._retire(worker)
                self._init_failed(worker, message.error)
                break
            elif isinstance(message, RunReply):
                worker.state, worker.request = State.IDLE, None
                ended.append(message)
        return ended

    def _died(self, worker: Worker) -> list[RunReply]:
        assert worker.process is not None
        worker.process.join(1.0)
        code = worker.process.exitcode
        if code is None:
            return []  # spurious wake-up
        request, state = worker.request, worker.state
        self._retire(worker)
        why = f"worker process died ({_exit_status(code)})"
        if state is State.STARTING:
            self._init_failed(worker, why)
            return []
        log.warning("worker %d: %s; starting a new one", worker.slot, why)
        self._launch(worker)
        return [RunReply(request.index, error=why)] if state is State.BUSY and request is not None else []

    def _timed_out(self, worker: Worker) -> list[RunReply]:
        request = worker.request
        assert request is not None
        log.warning(
            "worker %d: run() on mini-batch %d took over %s s; killing it and starting a new one",
            worker.slot,
            request.index,
            _seconds(self.timeout_s),
        )
        self._kill(worker)
        self._launch(worker)
        return [RunReply(request.index, error=f"run() timed out after {_seconds(self.timeout_s)} s")]

    def _init_failed(self, worker: Worker, error: str) -> None:
        worker.init_failures += 1
        worker.init_error = f"init() failed: {error}"
        if worker.init_failures >= INIT_ATTEMPTS:
            log.error("worker %d: init() failed %d times; giving up on it: %s", worker.slot, INIT_ATTEMPTS, error)
            worker.state = State.BROKEN
            return
        log.warning("worker %d: init() failed (attempt %d); retrying: %s", worker.slot, worker.init_failures, error)
        self._launch(worker)

    def _kill(self, worker: Worker) -> None:
        if worker.process is not None:
            worker.process.kill()
        self._retire(worker)

    def _retire(self, worker: Worker) -> None:
        """Forget a worker's process (after it ended or was killed), leaving the slot stopped."""
        if worker.conn is not None:
            worker.conn.close()
        if worker.process is not None:
            worker.process.join(5.0)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            worker.process.close()
        worker.process, worker.conn, worker.request, worker.state = None, None, None, State.STOPPED


def _exit_status(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = ", often out of memory" if -code == signal.SIGKILL else ""
    return f"exit code {code}: killed by {name}{hint}"


def _seconds(value: float) -> str:
    return f"{value:g}"
