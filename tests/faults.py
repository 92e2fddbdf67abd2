"""Faults to inject into real jobs, and the ledger that checks what each left behind.

The scoring script misbehaves on the input files whose name holds "bad", the way `MODE` (a deployment
environment variable) says. Faults that must strike once and then let the retry succeed remember what they did in
the folder `MARKS` (also a deployment variable), where every run() call also logs the files it was given.

`account` checks the promise every fault must keep, for the job or jobs it ran: each input file is either in
exactly one output row or in the errors file, never both, never neither. `LEDGER` collects one row per fault;
conftest.py prints it as a table at the end of the test session.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints.ports import RecordStore

SCRIPT = textwrap.dedent(
    """
    import multiprocessing
    import os
    import signal
    import subprocess
    import time

    import pandas as pd

    MODE = os.environ.get("MODE", "ok")
    MARKS = os.environ.get("MARKS", "")


    def first_time(name):
        # One marker file per input file: creating it succeeds once, in whichever worker gets there first.
        try:
            os.close(os.open(os.path.join(MARKS, name + ".seen"), os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False


    def hang_with_a_child():
        # As scoring code that shells out and waits: the child must not outlive a kill of its worker.
        with open(os.path.join(MARKS, "children"), "a") as pids:
            pids.write(f"{subprocess.Popen(['sleep', '300']).pid}\\n")
        time.sleep(300)


    def init():
        if MODE == "hang-init":
            hang_with_a_child()


    def run(mini_batch):
        names = [os.path.basename(path) for path in mini_batch]
        if MARKS:
            with open(os.path.join(MARKS, "runs.log"), "a") as log:
                log.write("".join(f"{name}\\n" for name in names))
        bad = [name for name in names if "bad" in name]
        if bad and MODE == "raise":
            raise ValueError(f"cannot score {bad[0]}")
        if bad and MODE == "raise-during-outage" and os.path.exists(os.path.join(MARKS, "outage")):
            raise ConnectionError(f"feature store unreachable for {bad[0]}")
        if bad and MODE == "hang":
            with open(os.path.join(MARKS, "hanging"), "a") as pids:
                pids.write(f"{os.getpid()}\\n")
            hang_with_a_child()
        if bad and MODE == "exit":
            os._exit(3)
        if bad and MODE == "sigkill-worker-once" and first_time(bad[0]):
            os.kill(os.getpid(), signal.SIGKILL)
        if bad and MODE == "sigkill-instance-once" and first_time("instance"):
            # The runner (the worker's parent may be a fork server): the whole instance goes, as on a Spot reclaim.
            os.kill(multiprocessing.parent_process().pid, signal.SIGKILL)
            time.sleep(60)
        if bad and MODE == "garbage":
            return {"class": object()}
        if MODE == "fewer":
            names = [name for name in names if "bad" not in name]
        if MODE == "slow":
            time.sleep(0.2)
        if MODE == "nothing":
            return None
        return pd.DataFrame({"file": names, "length": [len(name) for name in names]})
    """
)
GOOD, BAD = 18, 2
INPUT_FILES = frozenset({f"item-{n:02d}.txt" for n in range(GOOD)} | {f"item-{n:02d}-bad.txt" for n in range(BAD)})


@pytest.fixture(name="workspace")
def workspace_fixture(bep, tmp_path: Path) -> dict[str, Path]:
    """Model `echo`, endpoint `echo-endpoint`, the fault script, 20 input files (2 bad) and a MARKS folder."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("42")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in INPUT_FILES:
        (inputs / name).write_text(name)
    marks = tmp_path / "marks"
    marks.mkdir()
    bep("model", "create", "--name", "echo", "--path", model)
    bep("endpoint", "create", "--name", "echo-endpoint")
    return {"root": tmp_path, "code": code, "inputs": inputs, "marks": marks}


def deploy(bep, workspace: dict[str, Path], mode: str, **settings: object) -> None:
    spec = {
        "name": "echo",
        "endpoint_name": "echo-endpoint",
        "model": "azureml:echo:1",
        "code_configuration": {"code": str(workspace["code"]), "scoring_script": "score.py"},
        "compute": "azureml:cpu-cluster",
        "settings": {
            "mini_batch_size": 1,
            "max_concurrency_per_instance": 2,
            "retry_settings": {"max_retries": 1, "timeout": 10},
            "environment_variables": {"MODE": mode, "MARKS": str(workspace["marks"])},
            **settings,
        },
    }
    path = workspace["root"] / "deployment.yml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    command = "update" if (workspace["root"] / "deployed").exists() else "create"
    bep("deployment", command, "--file", path, "--set-default")
    (workspace["root"] / "deployed").touch()


def run_job(bep, workspace: dict[str, Path], *extra: str) -> dict:
    job_id = bep("endpoint", "invoke", "--name", "echo-endpoint", "--input", workspace["inputs"], *extra).out.strip()
    return follow(bep, job_id)


def follow(bep, job_id: str) -> dict:
    bep("job", "stream", "--name", job_id, ok=False)
    return bep("job", "show", "--name", job_id).json()


@contextlib.contextmanager
def hold_writes_until_both_arrive(records: RecordStore, kind: str) -> Iterator[None]:
    """Two clients race: each write of a `kind` record waits until the other client's write arrives too, so
    both have read the same version before either writes."""
    both_read = threading.Barrier(2, timeout=30)
    original_put = records.put

    def put_after_both_have_read(record_kind, key, data, **kwargs):
        if record_kind == kind:
            both_read.wait()
        return original_put(record_kind, key, data, **kwargs)

    records.put = put_after_both_have_read
    try:
        yield
    finally:
        records.put = original_put


def errors_of(job: dict) -> list[dict]:
    path = Path(job["scratch_uri"]) / "errors.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def runs_of(workspace: dict[str, Path]) -> Counter[str]:
    """How often run() was given each file."""
    log = workspace["marks"] / "runs.log"
    return Counter(log.read_text().splitlines() if log.exists() else [])


def rows_of(job: dict) -> list[str]:
    """The `file` of every row the job published: its output file, or the parts it kept when it has none."""
    output = job.get("output_uri")
    if output and Path(output).exists():
        return pd.read_csv(output)["file"].tolist()
    parts = sorted(Path(job["scratch_uri"]).glob("parts/*.csv"))
    return [name for part in parts for name in pd.read_csv(part)["file"]]


@dataclass(frozen=True)
class Outcome:
    """What one job left: its final status, the file of every row it published, the files it reported failed."""

    status: str
    rows: list[str]
    errors: list[str]

    @classmethod
    def of(cls, job: dict) -> Outcome:
        """A job of the local backend, as `bep job show` prints it."""
        return cls(job["status"], rows_of(job), [error["file"] for error in errors_of(job)])


@dataclass(frozen=True)
class FaultRow:
    fault: str
    jobs: int
    files_in: int
    rows_out: int
    lost: int
    duplicated: int
    status: str


LEDGER: list[FaultRow] = []


def check(jobs: Iterable[dict | Outcome], files: Iterable[str] = INPUT_FILES, *, fault: str = "") -> FaultRow:
    """Check that every file is in one output row or reported failed; return the tally.

    Jobs are given in the order they ran: a file that failed in one job and was scored by a later one (a rerun)
    counts as scored.
    """
    outcomes = [job if isinstance(job, Outcome) else Outcome.of(job) for job in jobs]
    files = set(files)
    published: list[str] = []
    failed: set[str] = set()
    for outcome in outcomes:
        assert len(outcome.errors) == len(set(outcome.errors)), "a file is listed twice in the errors file"
        assert not set(outcome.rows) & set(outcome.errors), "a file is both scored and reported failed"
        published += outcome.rows
        failed = (failed | set(outcome.errors)) - set(published)
    counts = Counter(published)
    row = FaultRow(
        fault=fault,
        jobs=len(outcomes),
        files_in=len(files),
        rows_out=len(published),
        lost=len(files - failed - set(counts)),
        duplicated=sum(n - 1 for n in counts.values()),
        status=outcomes[-1].status,
    )
    assert set(counts) <= files, f"rows for files that were not input: {set(counts) - files}"
    assert row.lost == 0, f"{row.lost} files neither scored nor reported failed"
    assert row.duplicated == 0, f"{row.duplicated} rows written twice"
    return row


def account(fault: str, jobs: Iterable[dict | Outcome], files: Iterable[str] = INPUT_FILES) -> FaultRow:
    """`check`, then the fault's row goes into the table printed at the end of the session (even if it fails)."""
    try:
        row = check(jobs, files, fault=fault)
    except AssertionError:
        LEDGER.append(FaultRow(fault, 0, 0, 0, -1, -1, "CHECK FAILED"))
        raise
    LEDGER.append(row)
    return row


def ledger_lines() -> list[str]:
    """LEDGER as a Markdown table (the README shows one)."""
    header = ("fault", "jobs run", "files in", "rows out", "rows lost", "rows duplicated", "final status")
    cells = [header, *((r.fault, r.jobs, r.files_in, r.rows_out, r.lost, r.duplicated, r.status) for r in LEDGER)]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(header))]

    def line(row: tuple) -> str:
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells[1:])]
