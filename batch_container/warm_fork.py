"""Fork servers kept warm between jobs of a deployment, on the local backend (see warm_fork_server.py).

A cold start imports numpy, pandas and torch in a fresh fork server: two thirds of a local job's path to its first
part. A server per import environment (the interpreter, the libraries to preload, and every environment variable
the server imports them with: thread limits, PYTHONPATH with installed requirements, CUDA_VISIBLE_DEVICES) is
kept listening on a Unix socket under the local home, named after a hash of that environment, so that a changed
environment gets a server of its own; it exits when idle. In AWS Batch every job is a fresh container: there is
nothing to keep warm, and the runner uses multiprocessing's per-job fork server.

Protocol, one connection per worker: the runner sends HEADER (its PID, the payload's size) with four file
descriptors, its end of the worker's connection, the read end of its "alive" pipe, and its stdout and stderr
(where a worker's output goes, as it would from a fork server of the runner's own), then the pickled (working
folder, umask, WorkerSetup). The server forks and answers the worker's PID, then, once the worker has ended, its
exit status (multiprocessing's convention: the code, or minus the signal). The runner hangs up when done with the
worker.

What makes it safe to share: the worker leads its own process group and watches the runner, not the server, for
its parent's death (the alive pipe); the server runs in a session of its own, outside the runner's process
group that a stuck runner's cancel kills; the runner waits on the worker through a pidfd, so a server killed
mid-job loses only the exit statuses of the workers it had started. A server that cannot start or answer in time
is given up on for the job, which falls back to the per-job fork server: a job never fails because of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection

import batch_endpoints

log = logging.getLogger(__name__)

HEADER = struct.Struct("!qq")
STATUS = struct.Struct("!q")
FDS_PER_REQUEST = 4
READY_LINE = "ready"
IDLE_VARIABLE = "BEP_FORK_SERVER_IDLE_S"
IDLE_S = 600.0
# Importing torch and pandas takes a couple of seconds of CPU; on a loaded machine many more.
START_TIMEOUT_S = 120.0
# A fork of a server that has imported torch takes milliseconds: no answer in this long means it is stuck.
ANSWER_TIMEOUT_S = 10.0
# The exit status of a worker whose server ended before it: not a code a process can exit with.
UNKNOWN_EXIT = 256


class Unavailable(Exception):
    """The warm server could not start or answer: use the per-job fork server instead."""


def supported() -> bool:
    """pidfds (Linux 5.3) are how a runner waits on, and safely kills, a worker that is not its child."""
    return hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


def lock_path(socket_path: str) -> str:
    return socket_path + ".lock"


class WarmProcess:
    """A worker forked by a warm server, as the worker pool sees a process: pid, sentinel, join, kill, close."""

    def __init__(self, pid: int, server: socket.socket) -> None:
        self.pid: int | None = pid
        self._server = server
        self._pidfd = os.pidfd_open(pid)
        self.sentinel = self._pidfd
        self.exitcode: int | None = None

    def join(self, timeout: float | None = None) -> None:
        if self.exitcode is not None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        if not select.select([self._pidfd], [], [], timeout)[0]:
            return  # still running
        # The server sends the status once it has seen the exit too: a moment later.
        self._server.settimeout(ANSWER_TIMEOUT_S + (0.0 if deadline is None else max(0.0, deadline - time.monotonic())))
        try:
            answer = receive_exactly(self._server, STATUS.size)
            self.exitcode = STATUS.unpack(answer)[0]
        except (OSError, ConnectionError):
            self.exitcode = UNKNOWN_EXIT

    def kill(self) -> None:
        # By pidfd: the PID may be another process's by now, the pidfd can only be this one's.
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        os.close(self._pidfd)
        self._server.close()  # the server reaps the worker now
        self.pid = None


class WarmForkServer:
    """The warm server for one import environment, and the runner's end of the workers' alive pipe."""

    def __init__(self, folder: str, preload: Sequence[str], environment: Mapping[str, str]) -> None:
        """`environment`: the whole environment the server imports `preload` with (the runner's and the
        deployment's), never what changes per job."""
        self.preload = list(preload)
        self.environment = dict(environment)
        identity = {
            "python": [sys.executable, sys.version],
            "code": _code_version(),
            "preload": self.preload,
            "environment": self.environment,
        }
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        self.folder = folder
        self.path = os.path.join(folder, f"{key}.sock")
        # Held open as long as the runner lives, never inherited: its end is how each worker sees the runner go.
        self._alive_read, self._alive_write = os.pipe()

    def start(self, child_end: Connection, setup: object) -> WarmProcess:
        """Fork a worker running scoring.serve(child_end, setup); raises Unavailable if the server cannot."""
        try:
            server = self._connect()
        except OSError as exc:
            raise Unavailable(f"cannot start or reach the fork server {self.path}: {exc}") from None
        # What a worker forked from the runner's own server would have from it: its folder and its umask.
        payload = pickle.dumps((os.getcwd(), _umask(), setup))
        try:
            server.settimeout(ANSWER_TIMEOUT_S)
            socket.send_fds(
                server, [HEADER.pack(os.getpid(), len(payload))], [child_end.fileno(), self._alive_read, 1, 2]
            )
            server.sendall(payload)
            pid = STATUS.unpack(receive_exactly(server, STATUS.size))[0]
            return WarmProcess(pid, server)
        except (OSError, ConnectionError) as exc:
            if isinstance(exc, TimeoutError):
                self._end_stuck(server)
            server.close()
            raise Unavailable(f"the fork server {self.path} did not answer: {exc}") from None

    def _end_stuck(self, server: socket.socket) -> None:
        """Kill a server that took the request and did not answer, and remove its socket: the next job starts a
        new one instead of waiting on it too. Its workers run on: they watch their runners, not it."""
        credentials = server.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", credentials)
        with open(lock_path(self.path), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if uid == os.getuid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        log.warning(
            "killed the fork server %s (pid %d): it did not answer within %g s", self.path, pid, ANSWER_TIMEOUT_S
        )

    def close(self) -> None:
        os.close(self._alive_read)
        os.close(self._alive_write)

    def _connect(self) -> socket.socket:
        _private_folder(self.folder)
        with open(lock_path(self.path), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return _connected(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                pass  # none yet, or a dead one's socket: replaced
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._start_server()
            return _connected(self.path)

    def _start_server(self) -> None:
        log_path = os.path.join(self.folder, os.path.basename(self.path).removesuffix(".sock") + ".log")
        idle_s = os.environ.get(IDLE_VARIABLE, str(IDLE_S))
        with open(log_path, "ab") as server_log:
            server = subprocess.Popen(
                [sys.executable, "-m", "batch_container.warm_fork_server", self.path, idle_s, *self.preload],
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=server_log,
                # Outside the runner's process group and session: a stuck runner's cancel kills its group.
                start_new_session=True,
            )
        assert server.stdout is not None
        with server.stdout:
            ready = select.select([server.stdout], [], [], START_TIMEOUT_S)[0] and server.stdout.readline()
        if ready != f"{READY_LINE}\n".encode():
            server.kill()
            server.wait()
            raise OSError(f"it did not start within {START_TIMEOUT_S:g} s (see {log_path})")
        log.info("started a fork server for %s (pid %d)", ", ".join(self.preload), server.pid)


def _code_version() -> list[tuple[str, int, int]]:
    """Our code as this runner sees it: a server started by an older version (its workers run its own copy of
    scoring.py, and its protocol may differ) is not the one this runner may use."""
    packages = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(batch_endpoints.__file__))]
    found = []
    for package in packages:
        for folder, _, names in os.walk(package):
            for name in sorted(names):
                if name.endswith(".py"):
                    status = os.stat(os.path.join(folder, name))
                    found.append((os.path.join(folder, name), status.st_size, status.st_mtime_ns))
    return sorted(found)


def _umask() -> int:
    """This process's umask, read without setting it (os.umask would change it for every thread meanwhile)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("Umask:"))
    return int(line.split()[1], 8)


def _private_folder(folder: str) -> None:
    os.makedirs(folder, mode=0o700, exist_ok=True)
    status = os.stat(folder)
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise PermissionError(f"{folder} must be owned by this user and closed to others (mode 700)")


def _connected(path: str) -> socket.socket:
    """Connected to the server at `path`, however deep: a socket's path is limited to 107 bytes."""
    directory = os.open(os.path.dirname(path), os.O_PATH)
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(f"/proc/self/fd/{directory}/{os.path.basename(path)}")
        except OSError:
            client.close()
            raise
        return client
    finally:
        os.close(directory)


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the other end hung up")
        chunks += chunk
    return bytes(chunks)
