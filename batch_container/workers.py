"""A pool of long-lived worker processes, each running the scoring script (see scoring.serve).

Workers live as long as the runner: init() runs once per worker, not per mini-batch or per shard. The pool
enforces the init() deadline and the per-mini-batch timeout and replaces workers that hang, die or are killed;
callers see only
"this worker can take a mini-batch" and "this mini-batch attempt ended like this".

A worker whose mini-batches are short holds two requests: the next mini-batch waits in its pipe while it scores
the current one, so it starts at once instead of waiting for the runner to handle the reply and send another.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

from batch_container.preload import available as fork_server_available
from batch_container.scoring import InitFailed, Ready, RunReply, RunRequest, WorkerSetup, serve
from batch_container.warm_fork import UNKNOWN_EXIT, Unavailable, WarmForkServer, WarmProcess
from batch_endpoints.process_groups import kill_group

log = logging.getLogger(__name__)

# A worker whose init() fails (or outlives its deadline) this many times in a row is given up on: the script is
# broken, not unlucky.
INIT_ATTEMPTS = 3
# How long a closing worker may take to return from its loop before it is killed.
CLOSE_GRACE_S = 2.0
# The runner's turn-around between two mini-batches is about a millisecond: worth hiding behind run() calls of
# a few milliseconds, not worth holding a long mini-batch back from a worker that may free up sooner. After a
# failed attempt a worker holds one request again, so retries and error_threshold stops stay exact.
PIPELINE_BELOW_S = 1.0
PIPELINED_REQUESTS = 2

WorkerProcess = BaseProcess | WarmProcess


class State(enum.Enum):
    STARTING = "starting"  # process started, init() not finished
    IDLE = "idle"
    BUSY = "busy"  # scoring requests[0]
    STOPPED = "stopped"  # not running; started again on demand
    BROKEN = "broken"  # init() failed INIT_ATTEMPTS times in a row


@dataclass(eq=False)
class Worker:
    slot: int
    state: State = State.STOPPED
    process: WorkerProcess | None = None
    conn: Connection | None = None
    requests: deque[RunRequest] = field(default_factory=deque)
    """Sent and not answered yet, in the order the worker takes them."""
    started: float = 0.0
    """When the worker began requests[0]."""
    deadline: float = 0.0
    """Starting: when init() must have finished. Busy: when requests[0] times out."""
    pipelined: bool = False
    """Its last run() succeeded in under PIPELINE_BELOW_S: it may hold a second request."""
    served: int = 0
    """Mini-batches this process answered."""
    retiring: str = ""
    """Why it is to be replaced once it has answered what it holds (recycling); empty = it is not."""

    init_failures: int = 0
    init_error: str = ""


class WorkerPool:
    """`size` worker processes, forked from a fork server that has imported `preload` (see preload.py): a warm
    one kept between jobs where given (see warm_fork.py), else one of its own; spawned where there is none.
    Never forked from the runner itself: fork is unsafe once the runner has threads, and CUDA cannot be
    re-initialised in a forked child."""

    def __init__(
        self,
        size: int,
        setup_for: Callable[[int], WorkerSetup],
        *,
        timeout_s: float,
        init_timeout_s: float,
        max_mini_batches: int = 0,
        max_memory_mb: float = 0,
        preload: Sequence[str] = (),
        warm_server: WarmForkServer | None = None,
    ) -> None:
        """`max_mini_batches` and `max_memory_mb` (0 = no limit) recycle workers: scoring code that leaks
        (caches that only grow, fragmented native allocations) gets a fresh process instead of an OOM kill."""
        self._context: ForkServerContext | SpawnContext
        if preload and fork_server_available():
            fork_server = multiprocessing.get_context("forkserver")
            fork_server.set_forkserver_preload(list(preload))
            self._context = fork_server
        else:
            self._context = multiprocessing.get_context("spawn")
        self._server_started = False
        self._warm_server = warm_server if preload and fork_server_available() else None
        self._warm_failed = False
        self._setup_for = setup_for
        self.timeout_s = timeout_s
        self.init_timeout_s = init_timeout_s
        self.max_mini_batches = max_mini_batches
        self.max_memory_mb = max_memory_mb
        self.workers = [Worker(slot) for slot in range(size)]

    # --- what the runner asks -------------------------------------------------------------------------

    def start(self) -> None:
        """Start every worker that is not running (and not given up on)."""
        for worker in self.workers:
            if worker.state is State.STOPPED:
                self._launch(worker)

    def accepting(self) -> list[Worker]:
        """Workers that can take another request, idle ones first."""
        ready = [w for w in self.workers if w.state in (State.IDLE, State.BUSY) and self._room(w) > 0]
        return sorted(ready, key=lambda w: len(w.requests))

    @property
    def free_slots(self) -> int:
        return sum(self._room(w) for w in self.accepting())

    @property
    def usable(self) -> bool:
        return any(w.state is not State.BROKEN for w in self.workers)

    @property
    def init_error(self) -> str:
        return next((w.init_error for w in self.workers if w.init_error), "")

    def assign(self, worker: Worker, request: RunRequest) -> None:
        assert worker.state in (State.IDLE, State.BUSY) and worker.conn is not None
        assert self._room(worker) > 0
        if worker.state is State.IDLE:
            worker.state = State.BUSY
            self._begin(worker, time.monotonic())
        worker.requests.append(request)
        # If it died meanwhile, poll() sees its exit and reports the attempt as failed.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, EOFError):
            worker.conn.send(request)

    def poll(self, timeout: float) -> list[RunReply]:
        """Wait up to `timeout` s for something to happen; return the attempts that ended meanwhile."""
        live = [w for w in self.workers if w.state in (State.STARTING, State.IDLE, State.BUSY)]
        timed = [w for w in live if w.state in (State.STARTING, State.BUSY)]
        if timed:
            timeout = max(0.0, min(timeout, min(w.deadline for w in timed) - time.monotonic()))
        # handle -> (worker, its process then, whether the handle is the process's exit sentinel)
        handles: dict[Connection | int, tuple[Worker, WorkerProcess, bool]] = {}
        for worker in live:
            assert worker.conn is not None and worker.process is not None
            handles[worker.conn] = (worker, worker.process, False)
            handles[worker.process.sentinel] = (worker, worker.process, True)
        if handles:
            ready = set(wait(list(handles), timeout))
        else:
            time.sleep(timeout)
            ready = set()
        woken = [why for handle, why in handles.items() if handle in ready]
        ended: list[RunReply] = []
        # Messages first: a worker may have replied and then exited, and its reply still counts.
        for worker, process, exited in woken:
            if not exited and worker.process is process:
                ended.extend(self._receive(worker))
        for worker, process, exited in woken:
            # Skip a worker already replaced while its messages were read.
            if exited and worker.process is process:
                ended.extend(self._died(worker))
        now = time.monotonic()
        for worker in timed:
            if now < worker.deadline:
                continue
            if worker.state is State.BUSY:
                ended.extend(self._timed_out(worker))
            elif worker.state is State.STARTING:
                self._init_timed_out(worker)
        return ended

    def stop_busy(self) -> None:
        """Kill the workers in the middle of a run() (the job was canceled); they restart on `start()`."""
        for worker in self.workers:
            if worker.state is State.BUSY:
                self._retire(worker)

    def close(self) -> None:
        """End every worker: idle ones leave their loop when their connection closes, the rest are killed.
        Whatever their code started and left running is killed with them."""
        running = [(w, w.process) for w in self.workers if w.process is not None]
        for worker, process in running:
            if worker.state is not State.IDLE:
                _kill_group(process)
            if worker.conn is not None:
                worker.conn.close()
        deadline = time.monotonic() + CLOSE_GRACE_S
        for worker, process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            _kill_group(process)
            process.join()
            process.close()
            worker.process, worker.conn = None, None
            if worker.state is not State.BROKEN:
                worker.state = State.STOPPED
        if self._warm_server is not None:
            self._warm_server.close()
            self._warm_server = None

    # --- life cycle -----------------------------------------------------------------------------------

    def _launch(self, worker: Worker) -> None:
        setup = self._setup_for(worker.slot)
        process, parent_end = self._start_warm(setup) or self._start_own(setup)
        worker.process, worker.conn, worker.state, worker.pipelined = process, parent_end, State.STARTING, False
        worker.served, worker.retiring = 0, ""
        worker.deadline = time.monotonic() + self.init_timeout_s
        worker.requests.clear()

    def _start_warm(self, setup: WorkerSetup) -> tuple[WarmProcess, Connection] | None:
        """A worker from the warm fork server; None once it has failed this pool (kept open until close(): its
        alive pipe is what the workers it did start watch)."""
        if self._warm_server is None or self._warm_failed:
            return None
        parent_end, child_end = self._context.Pipe()
        try:
            return self._warm_server.start(child_end, setup), parent_end
        except Unavailable as exc:
            log.warning("%s; this job's workers use a fork server of their own", exc)
            self._warm_failed = True
            # A worker the server forked before it failed to answer sees this end close, and exits.
            parent_end.close()
            return None
        finally:
            child_end.close()

    def _start_own(self, setup: WorkerSetup) -> tuple[BaseProcess, Connection]:
        if self._context.get_start_method() == "forkserver" and not self._server_started:
            _start_fork_server(setup.environment)
            self._server_started = True
        parent_end, child_end = self._context.Pipe()
        # Not daemonic: daemonic processes may not have children, and scoring code may (a torch DataLoader
        # with num_workers > 0). close() and the workers' parent watch make sure none outlives the runner.
        process = self._context.Process(target=serve, args=(child_end, setup), name=setup.name)
        process.start()
        # The child holds its own copy; closing ours lets recv() see EOF when the child dies.
        child_end.close()
        return process, parent_end

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
                self._init_failed(worker, f"init() failed: {message.error}")
                break
            elif isinstance(message, RunReply):
                now = time.monotonic()
                worker.requests.popleft()
                worker.pipelined = message.error is None and now - worker.started < PIPELINE_BELOW_S
                worker.served += 1
                worker.retiring = worker.retiring or self._why_recycle(worker, message)
                if worker.requests:
                    self._begin(worker, now)  # it went straight on to the next request
                else:
                    worker.state = State.IDLE
                ended.append(message)
        if worker.retiring and worker.state is State.IDLE:
            log.info("worker %d: %s; starting a new one", worker.slot, worker.retiring)
            self._retire(worker)  # idle: it holds nothing, and its output is all sent
            self._launch(worker)
        return ended

    def _died(self, worker: Worker) -> list[RunReply]:
        assert worker.process is not None
        worker.process.join(1.0)
        code = worker.process.exitcode
        if code is None:
            return []  # spurious wake-up
        requests, state = list(worker.requests), worker.state
        self._retire(worker)
        why = f"worker process died ({_exit_status(code)})"
        if state is State.STARTING:
            self._init_failed(worker, f"init() failed: {why}")
            return []
        log.warning("worker %d: %s; starting a new one", worker.slot, why)
        self._launch(worker)
        return _ended_with(requests, why)

    def _room(self, worker: Worker) -> int:
        """How many more requests the worker may hold now."""
        if worker.retiring:
            return 0
        room = (PIPELINED_REQUESTS if worker.pipelined else 1) - len(worker.requests)
        if self.max_mini_batches:
            room = min(room, self.max_mini_batches - worker.served - len(worker.requests))
        return room

    def _why_recycle(self, worker: Worker, reply: RunReply) -> str:
        if self.max_mini_batches and worker.served >= self.max_mini_batches:
            return f"scored {worker.served} mini-batches (max_mini_batches_per_worker)"
        if self.max_memory_mb and reply.memory_mb > self.max_memory_mb:
            return f"uses {reply.memory_mb:.0f} MB > {self.max_memory_mb:g} MB (max_worker_memory_mb)"
        return ""

    def _begin(self, worker: Worker, now: float) -> None:
        worker.started, worker.deadline = now, now + self.timeout_s

    def _timed_out(self, worker: Worker) -> list[RunReply]:
        requests = list(worker.requests)
        log.warning(
            "worker %d: run() on mini-batch %d took over %s s; killing it and starting a new one",
            worker.slot,
            requests[0].index,
            _seconds(self.timeout_s),
        )
        self._retire(worker)
        self._launch(worker)
        return _ended_with(requests, f"run() timed out after {_seconds(self.timeout_s)} s")

    def _init_timed_out(self, worker: Worker) -> None:
        # Killed with its group: whatever init() started (a download, a server it waits for) goes too.
        self._retire(worker)
        self._init_failed(worker, f"init() did not finish within {_seconds(self.init_timeout_s)} s")

    def _init_failed(self, worker: Worker, error: str) -> None:
        """`error` says what went wrong, "init() ..."."""
        worker.init_failures += 1
        worker.init_error = error
        if worker.init_failures >= INIT_ATTEMPTS:
            log.error("worker %d: giving up on it after %d tries: %s", worker.slot, INIT_ATTEMPTS, error)
            worker.state = State.BROKEN
            return
        log.warning("worker %d: try %d at init(): %s; trying again", worker.slot, worker.init_failures, error)
        self._launch(worker)

    def _retire(self, worker: Worker) -> None:
        """End a worker's process, whether it ended already, is ending or is to be killed, with its process
        group: what its code started (a run() that timed out, a worker that died) is left running nowhere.
        The slot is left stopped."""
        if worker.conn is not None:
            worker.conn.close()
        if worker.process is not None:
            _kill_group(worker.process)
            worker.process.join()
            worker.process.close()
        worker.process, worker.conn, worker.state = None, None, State.STOPPED
        worker.requests.clear()


def _kill_group(process: WorkerProcess) -> None:
    """Kill a worker and its process group. The worker itself too, by PID: one killed at its very start has
    not made its group yet."""
    if process.pid is not None:
        kill_group(process.pid)
    process.kill()


def _start_fork_server(environment: Mapping[str, str]) -> None:
    """Start the fork server with the workers' environment: the libraries it preloads read some of it at import
    (OpenMP its thread count), and could not see it set later in each worker."""
    saved = os.environ.copy()
    os.environ.update(environment)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _ended_with(requests: list[RunRequest], error: str) -> list[RunReply]:
    """The attempts a lost worker held: the one it was scoring failed with `error`; the ones waiting behind it
    never started, and go back to be run elsewhere without using an attempt."""
    if not requests:
        return []
    head, *unstarted = requests
    return [RunReply(head.index, error=error), *(RunReply(r.index, started=False) for r in unstarted)]


def _exit_status(code: int) -> str:
    if code == UNKNOWN_EXIT:
        return "exit status unknown: the fork server that started it ended first"
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
