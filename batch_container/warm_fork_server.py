"""`python -m batch_container.warm_fork_server SOCKET IDLE_S MODULE...`: a fork server that outlives a job.

It imports MODULE... (libraries only, see preload.py: never a scoring script, never CUDA), listens on SOCKET, and
forks one worker per connection (see warm_fork.py for the client and the protocol). Single-threaded, so forking
is safe. It keeps each worker unreaped until the runner that asked has read its exit status and hung up: while
the runner may still kill the worker's process group, that PID, and so the group's number, cannot be reused.
It exits once it has had no worker and no request for IDLE_S seconds, or when its socket is no longer its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import multiprocessing.process
import os
import pickle
import selectors
import signal
import socket
import sys
import time
import traceback
from multiprocessing.connection import Connection

from batch_container.scoring import serve
from batch_container.warm_fork import (
    ANSWER_TIMEOUT_S,
    FDS_PER_REQUEST,
    HEADER,
    READY_LINE,
    STATUS,
    lock_path,
    receive_exactly,
)

# How often an idle server checks that its socket is still there.
LOOK_AGAIN_S = 5.0


class Server:
    def __init__(self, path: str, idle_s: float) -> None:
        self.path = path
        self.idle_s = idle_s
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o077)  # the socket is the owner's alone: whoever connects runs code as this user
        self.listener.bind(os.path.basename(path))  # relative: a socket's path is limited to 107 bytes
        os.umask(umask)
        self.listener.listen(64)
        self.inode = os.stat(os.path.basename(path)).st_ino
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.runners: dict[int, socket.socket] = {}
        """Worker PID -> the connection of the runner that asked for it (until that runner hangs up)."""
        self.pidfds: dict[int, int] = {}
        """Worker PID -> its pidfd, while it runs."""
        self.exited: set[int] = set()
        """Workers that ended and are not reaped yet."""

    def serve(self) -> None:
        idle_since = time.monotonic()
        while True:
            idle = not self.runners and not self.pidfds
            events = self.selector.select(min(self.idle_s, LOOK_AGAIN_S) if idle else None)
            if not events and idle:
                # Its home deleted, or its socket taken over: no runner can reach it any more.
                if not self._socket_is_ours():
                    return
                if time.monotonic() - idle_since >= self.idle_s and self._leave():
                    return
            for key, _ in events:
                if key.data == "accept":
                    self._accept()
                elif key.data[0] == "exited":
                    self._exited(key.data[1])
                else:
                    self._hung_up(key.data[1])
            if events:
                idle_since = time.monotonic()

    def _accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            connection.settimeout(ANSWER_TIMEOUT_S)  # a runner that dies mid-request must not stop the server
            header, fds, _, _ = socket.recv_fds(connection, HEADER.size, FDS_PER_REQUEST)
            if len(header) != HEADER.size or len(fds) != FDS_PER_REQUEST:
                raise ConnectionError("incomplete request")
            runner_pid, size = HEADER.unpack(header)
            payload = receive_exactly(connection, size)
        except (OSError, ConnectionError):
            connection.close()
            for fd in locals().get("fds", []):
                os.close(fd)
            return
        pid = os.fork()
        if pid == 0:
            self._become_worker(connection, fds, runner_pid, payload)
        for fd in fds:
            os.close(fd)
        self.pidfds[pid] = os.pidfd_open(pid)
        self.selector.register(self.pidfds[pid], selectors.EVENT_READ, ("exited", pid))
        try:
            connection.sendall(STATUS.pack(pid))
        except OSError:
            connection.close()
            return
        self.runners[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ, ("hung up", pid))

    def _become_worker(self, connection: socket.socket, fds: list[int], runner_pid: int, payload: bytes) -> None:
        """In the forked child: drop the server's sockets, then run the worker; never return."""
        code = 1
        try:
            self.selector.close()
            for held in [self.listener, connection, *self.runners.values()]:
                held.close()
            for fd in self.pidfds.values():
                os.close(fd)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            conn_fd, alive_fd, stdout, stderr = fds
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            os.close(stdout)
            os.close(stderr)
            # As multiprocessing does for its own children: the runner is this worker's parent, and the end of
            # its "alive" pipe tells when it is gone (scoring.serve's parent watch, a script's parent_process()).
            process = multiprocessing.process
            process._parent_process = process._ParentProcess("runner", runner_pid, alive_fd)  # type: ignore[attr-defined]
            folder, umask, setup = pickle.loads(payload)
            os.chdir(folder)
            os.umask(umask)
            multiprocessing.current_process().name = setup.name
            serve(Connection(conn_fd), setup)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _exited(self, pid: int) -> None:
        pidfd = self.pidfds.pop(pid)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        # Not reaped (WNOWAIT): the runner may still kill the group the worker led.
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        code = 255 if info is None else info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        self.exited.add(pid)
        runner = self.runners.get(pid)
        if runner is None:
            self._reap(pid)
            return
        with contextlib.suppress(OSError):
            runner.sendall(STATUS.pack(code))

    def _hung_up(self, pid: int) -> None:
        runner = self.runners.pop(pid)
        self.selector.unregister(runner)
        runner.close()
        if pid in self.exited:
            self._reap(pid)
        # Otherwise the runner is gone with its worker still running: the worker ends itself (its parent watch);
        # it is reaped when it has.

    def _reap(self, pid: int) -> None:
        self.exited.discard(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def _leave(self) -> bool:
        """Exit if still idle, under the lock runners connect under: one that connected before is served."""
        try:
            lock = open(lock_path(os.path.basename(self.path)), "a")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return True  # its folder is gone
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.selector.select(0):
                return False
            if self._socket_is_ours():
                os.unlink(os.path.basename(self.path))
        return True

    def _socket_is_ours(self) -> bool:
        try:
            return os.stat(os.path.basename(self.path)).st_ino == self.inode
        except FileNotFoundError:
            return False


def main(argv: list[str]) -> None:
    path, idle_s, *modules = argv
    os.chdir(os.path.dirname(path))
    for module in modules:
        importlib.import_module(module)
    server = Server(path, float(idle_s))
    print(READY_LINE, flush=True)
    os.dup2(2, 1)  # the runner that started it stops reading: later prints go to the server's log
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
