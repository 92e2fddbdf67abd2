"""Inside a worker process: load the deployment's scoring script, call init() once, then run() per mini-batch.

`serve` is the worker process's entry point. This module imports only the standard library at the top: the
worker must set its environment (thread limits above all) before numpy, pandas or torch are first imported,
because they read those variables once, at import.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import logging
import multiprocessing
import os
import resource
import signal
import site
import sys
import threading
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import ModuleType
from typing import TYPE_CHECKING, Any

from batch_container.custom_outputs import CustomOutputs, RefusedOutput

if TYPE_CHECKING:
    from batch_endpoints.jobfiles import RowSlice

# Long tracebacks or messages embedding whole inputs would bloat every result file that repeats them.
MAX_ERROR_CHARS = 2000
TRACEBACK_FRAMES = 3
MAX_SOURCE_CHARS = 160


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker process needs, sent once when it starts (plain data: it crosses a spawn)."""

    name: str
    script_path: str
    code_dir: str
    environment: dict[str, str]
    logging_level: str
    log_path: str | None
    """Where the script's prints and logs go; None = the runner's stderr."""
    render_csv: bool
    """Whether results need a part file (append_row): rendering it here spreads the cost over the workers."""
    part_format: str = "csv"
    """The part file's format: the output's, "csv", "parquet" or "jsonl"."""
    input_format: str = "auto"
    keep_input_columns: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    """The job's literal inputs, for an init() that takes a parameter."""
    arguments: list[str] = field(default_factory=list)
    """The script's command line after its own path (see script_arguments.py): what it finds in sys.argv."""
    custom_outputs_dir: str = ""
    """Where this worker makes its AZUREML_BI_OUTPUT_PATH folder and stages what run() writes there (see
    custom_outputs.py); empty = the script gets no such folder."""
    reserved_outputs: list[str] = field(default_factory=list)
    """Names run() may not write there: the job's own output file, which finalize writes into the same folder."""
    custom_output_path_bytes: int = 1024
    """The longest path, in bytes, a file there may have under the job's output folder (custom_outputs.path_budget)."""


@dataclass(frozen=True)
class RunRequest:
    index: int
    paths: list[str]
    names: list[str]
    slices: list[RowSlice] = field(default_factory=list)
    """Tabular mini-batches: the rows of the files to read; run() then gets a DataFrame, not paths."""


@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class InitFailed:
    error: str


@dataclass(frozen=True)
class RunReply:
    """The outcome of one run() call. `error` set = the attempt failed; otherwise the rows it produced.
    `started` False = run() was never called (its worker was lost first): no attempt was used."""

    index: int
    started: bool = True
    error: str | None = None
    memory_mb: float = 0.0
    """The worker's resident memory once run() returned, for the pool's memory ceiling."""
    csv: bytes | None = None
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    custom_outputs: str | None = None
    """The folder holding the files this attempt wrote to AZUREML_BI_OUTPUT_PATH, staged for the runner to
    commit; None when it wrote none (or failed: a failed attempt's files are dropped)."""


def _exit_now() -> None:
    """End the worker once its work is over. A normal exit tears down torch, pandas and Pillow module by module,
    about a second that every job would wait for at its end; every output is already sent, so skip it."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def serve(conn: Connection, setup: WorkerSetup) -> None:
    """Worker process main: init() once, then answer RunRequests until the runner closes the connection."""
    # A process group of its own, led by this worker, so that whatever init() and run() start (a subprocess,
    # a data loader's workers) ends with it: the pool kills the group on a timeout, a cancel or a close.
    os.setpgid(0, 0)
    _send_output_to(setup.log_path)
    os.environ.update(setup.environment)
    _import_from(setup.environment.get("PYTHONPATH", ""))
    _exit_with_parent()
    # A Ctrl-C in a terminal reaches the whole process group; the runner alone decides when workers end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=setup.logging_level.upper(),
        format=f"%(asctime)s {setup.name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    log = logging.getLogger("batch_container.worker")
    # Imported only now, so that numpy sees the thread limits just set; and before init(), so the first
    # run() does not pay for importing pandas.
    from batch_container.rows import BadResult, to_rows

    sys.argv = [setup.script_path, *setup.arguments]
    outputs = (
        CustomOutputs.open(setup.custom_outputs_dir, setup.reserved_outputs, setup.custom_output_path_bytes)
        if setup.custom_outputs_dir
        else None
    )
    try:
        script = load_script(setup.script_path, setup.code_dir)
        init = getattr(script, "init", None)
        if init is not None:
            init(dict(setup.inputs)) if takes_an_argument(init) else init()
        if not callable(getattr(script, "run", None)):
            raise AttributeError(f"{os.path.basename(setup.script_path)} defines no run(mini_batch) function")
    except BaseException as exc:  # SystemExit from user code is a failed init too
        error = describe(exc, setup.code_dir)
        log.error("init() failed: %s", error)
        conn.send(InitFailed(error))
        return
    log.info("worker ready (pid %d)", os.getpid())
    conn.send(Ready(os.getpid()))

    while True:
        try:
            request: RunRequest = conn.recv()
        except EOFError:
            _exit_now()
        try:
            if request.slices:
                mini_batch = tabular_mini_batch(request, setup)
                result = script.run(mini_batch)
            else:
                result = script.run(list(request.paths))
        except BaseException as exc:
            if outputs is not None:
                outputs.drop()
            conn.send(RunReply(request.index, error=describe(exc, setup.code_dir), memory_mb=resident_mb()))
            continue
        try:
            if request.slices:
                rows = tabular_rows(result, mini_batch, request, setup)
            else:
                rows = to_rows(result, request.paths, request.names)
            reply = RunReply(
                request.index,
                csv=rows.to_bytes(setup.part_format) if setup.render_csv and rows.count else None,
                rows=rows.count,
                columns=rows.columns,
                failed=rows.failed,
            )
        except BadResult as exc:
            reply = RunReply(request.index, error=str(exc))
        except Exception as exc:
            reply = RunReply(request.index, error=f"could not turn run()'s result into rows: {_headline(exc)}")
        del result
        if outputs is not None:
            reply = _with_custom_outputs(reply, outputs)
        conn.send(dataclasses.replace(reply, memory_mb=resident_mb()))


def _with_custom_outputs(reply: RunReply, outputs: CustomOutputs) -> RunReply:
    """The reply with the attempt's files staged for the runner to commit; a failed attempt's are dropped."""
    if reply.error is not None:
        outputs.drop()
        return reply
    try:
        return dataclasses.replace(reply, custom_outputs=outputs.stage(reply.index))
    except RefusedOutput as exc:
        return RunReply(reply.index, error=str(exc))


def resident_mb() -> float:
    """This process's resident memory now (Linux), or its peak where the current figure is not available."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def tabular_mini_batch(request: RunRequest, setup: WorkerSetup) -> Any:
    from batch_container.tables import read_mini_batch

    return read_mini_batch(dict(zip(request.names, request.paths, strict=True)), request.slices, setup.input_format)


def tabular_rows(result: Any, mini_batch: Any, request: RunRequest, setup: WorkerSetup) -> Any:
    from batch_container.rows import to_table_rows
    from batch_container.tables import row_sources

    sources = row_sources(request.slices, dict.fromkeys(request.names, ""))
    return to_table_rows(result, mini_batch, sources, setup.keep_input_columns)


def takes_an_argument(function: Any) -> bool:
    """Whether init() accepts the job's inputs: Azure's init() takes none, so passing them is opt-in."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def load_script(script_path: str, code_dir: str) -> ModuleType:
    """Import the scoring script by file path, with the code folder importable, whatever the working dir."""
    for folder in (os.path.dirname(script_path), code_dir):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(script_path))[0]
    spec = importlib.util.spec_from_file_location(name, script_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {script_path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before running it, so the script's own dataclasses and pickling find their module.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def describe(exc: BaseException, code_dir: str) -> str:
    """`Type: message`, then the last few frames as `file:line in function: source`, always including the
    scoring script's own innermost frame (the line a user can fix), even when a library raised."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and not os.path.abspath(frame.filename).startswith(here)
    ]
    shown: list[traceback.FrameSummary | None] = list(frames[-TRACEBACK_FRAMES:])
    own = [frame for frame in frames if _inside(frame.filename, code_dir)]
    if own and own[-1] not in shown:
        shown = [own[-1], None, *shown[1:]]
    lines = [_headline(exc)]
    for frame in shown:
        if frame is None:
            lines.append("  ...")
            continue
        source = (frame.line or "").strip()
        source = source if len(source) <= MAX_SOURCE_CHARS else source[: MAX_SOURCE_CHARS - 3] + "..."
        lines.append(f"  at {_short_path(frame.filename, code_dir)}:{frame.lineno} in {frame.name}: {source}")
    text = "\n".join(lines)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _headline(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:  # a user exception whose __str__ itself fails
        message = ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _inside(filename: str, folder: str) -> bool:
    return os.path.abspath(filename).startswith(os.path.abspath(folder) + os.sep)


def _short_path(filename: str, code_dir: str) -> str:
    """Scripts by their path in the code folder; libraries by their last two path parts (pandas/io/...)."""
    if _inside(filename, code_dir):
        return os.path.relpath(filename, code_dir)
    return "/".join(os.path.abspath(filename).split(os.sep)[-2:])


def _import_from(python_path: str) -> None:
    """Put the folders of a PYTHONPATH given in the worker's environment first on its import path, as if it had
    started with them: the interpreter read PYTHONPATH before the environment was set. Their .pth files count."""
    for folder in reversed([f for f in python_path.split(os.pathsep) if f]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
            site.addsitedir(folder)


def _send_output_to(log_path: str | None) -> None:
    """Point file descriptors 1 and 2 at the log, so that C extensions and subprocesses write there too,
    and stdout never carries user output: in instance mode it is the runner's protocol channel."""
    if log_path is not None:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    else:
        os.dup2(2, 1)
    # Line-buffered, so a worker killed for a timeout still leaves what it printed before.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def _exit_with_parent() -> None:
    """End this worker and its group as soon as the runner is gone, even mid-run(): no orphans burning a GPU."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os.killpg(0, signal.SIGKILL)  # this worker's own group (see serve): it and what its code started

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
