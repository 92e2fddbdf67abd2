"""The scoring runner end to end: real runner and worker processes, real files, the local backend's stores.

Each test writes a scoring script and a few input files, records a job and its shards the way the planner
does, runs `python -m batch_container` and reads back what it wrote: parts, results, counters, logs.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from batch_container.runner import ShardRunner
from batch_endpoints.adapters.local.blobs import FolderBlobStore, to_path
from batch_endpoints.adapters.local.records import SqliteRecordStore
from batch_endpoints.jobfiles import JobFiles, MiniBatch, MiniBatchResult, Shard, ShardJournal
from batch_endpoints.specs import (
    CodeConfiguration,
    Deployment,
    Job,
    JobInput,
    JobStatus,
    OutputAction,
    RetrySettings,
    RunSettings,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ENDPOINT = "digits"


@dataclass
class Home:
    """A local backend's home folder, with the same stores the runner opens from BEP_HOME."""

    path: Path
    records: SqliteRecordStore
    blobs: FolderBlobStore

    def environment(self, **extra: str) -> dict[str, str]:
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "BEP_BACKEND": "local", "BEP_HOME": str(self.path), "PYTHONPATH": pythonpath, **extra}


@dataclass
class ScoringJob:
    home: Home
    job: Job
    shard_uris: list[str]
    inputs: Path
    marks: Path
    """A folder the scoring scripts write what they saw into (init calls, files run, environment)."""
    files: JobFiles = field(init=False)

    def __post_init__(self) -> None:
        self.files = JobFiles(self.home.blobs, self.job.scratch_uri)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        shards = [a for uri in self.shard_uris for a in ("--shard", uri)]
        return subprocess.run(
            [sys.executable, "-m", "batch_container", "--job-id", self.job.id, *shards, *args],
            env=self.home.environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.marks,
        )

    def start_instance(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "batch_container", "--job-id", self.job.id, "--shards-from-stdin", *args],
            env=self.home.environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.marks,
        )

    def results(self) -> dict[int, MiniBatchResult]:
        blobs = self.home.blobs
        if not blobs.exists(self.files.results_folder):
            return {}
        found = [
            MiniBatchResult.from_json(blobs.get_bytes(info.uri)) for info in blobs.list_files(self.files.results_folder)
        ]
        return {result.index: result for result in found}

    def part(self, index: int) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.home.blobs.get_bytes(self.files.part(index))))

    def journal(self, shard: int = 0) -> ShardJournal | None:
        uri = self.files.journal(shard)
        return ShardJournal.from_json(self.home.blobs.get_bytes(uri)) if self.home.blobs.exists(uri) else None

    def shard_errors(self, shard: int = 0) -> list[dict]:
        raw = self.home.blobs.get_bytes(self.files.shard_errors(shard)).decode()
        return [json.loads(line) for line in raw.splitlines()]

    def has_part(self, index: int) -> bool:
        return self.home.blobs.exists(self.files.part(index))

    def counters(self) -> dict[str, int]:
        record = self.home.records.get("job", self.job.id)
        assert record is not None
        return record.counters

    def set_status(self, status: JobStatus) -> None:
        self.home.records.put(
            "job", self.job.id, {**self.job.model_dump(mode="json"), "status": status.value}, expected_version=None
        )

    def mark_lines(self, name: str) -> list[str]:
        path = self.marks / name
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def local_home(tmp_path: Path) -> Home:
    path = tmp_path / "home"
    path.mkdir()
    return Home(path, SqliteRecordStore(str(path / "records.db")), FolderBlobStore(str(path / "storage")))


@pytest.fixture
def make_job(local_home: Home, tmp_path: Path):
    """Record a job scoring `files` (name -> text) with `script`, cut into mini-batches and shards."""
    counter = iter(range(1000))

    def make(
        script: str,
        files: dict[str, str] | int = 4,
        *,
        mini_batch_size: int = 1,
        shards: int = 1,
        workers: int = 1,
        max_retries: int = 0,
        timeout: int = 30,
        **settings,
    ) -> ScoringJob:
        job_id = f"job-{next(counter)}"
        if isinstance(files, int):
            files = {f"in/file-{i}.txt": f"text {i}" for i in range(files)}
        inputs = tmp_path / f"{job_id}-inputs"
        for name, text in files.items():
            (inputs / name).parent.mkdir(parents=True, exist_ok=True)
            (inputs / name).write_text(text)
        marks = tmp_path / f"{job_id}-marks"
        marks.mkdir()

        blobs = local_home.blobs
        code = blobs.join(blobs.root, "code", job_id)
        source = f"MARKS = {str(marks)!r}\n{MARK}\n{textwrap.dedent(script)}"
        blobs.put_bytes(blobs.join(code, "score.py"), source.encode())
        # Laid out as registration lays out a folder named "model": models/<name>/<version>/model/.
        model = blobs.join(blobs.root, "models", job_id, "1", "model")
        blobs.put_bytes(blobs.join(model, "weights.txt"), b"42")

        run_settings = RunSettings(
            mini_batch_size=mini_batch_size,
            max_concurrency_per_instance=workers,
            retry_settings=RetrySettings(max_retries=max_retries, timeout=timeout),
            **settings,
        )
        deployment = Deployment(
            name="blue",
            endpoint_name=ENDPOINT,
            model="digits-model:1",
            code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
            settings=run_settings,
        )
        job = Job(
            id=job_id,
            endpoint_name=ENDPOINT,
            deployment_name="blue",
            deployment=deployment,
            model_path=model,
            input=JobInput(uri=str(inputs)),
            output_uri=None,
            scratch_uri=blobs.join(blobs.root, "jobs", job_id),
            settings=run_settings,
            status=JobStatus.RUNNING,
        )
        local_home.records.put("job", job_id, job.model_dump(mode="json"), parent=ENDPOINT, expected_version=None)

        names = sorted(files)
        batches = [
            MiniBatch(i, names[start : start + mini_batch_size])
            for i, start in enumerate(range(0, len(names), mini_batch_size))
        ]
        per_shard = -(-len(batches) // shards)
        job_files = JobFiles(blobs, job.scratch_uri)
        uris = []
        for number in range(shards):
            shard = Shard(job_id, number, str(inputs), batches[number * per_shard : (number + 1) * per_shard])
            blobs.put_bytes(job_files.shard(number), shard.to_json())
            uris.append(job_files.shard(number))
        return ScoringJob(local_home, job, uris, inputs, marks)

    return make


# Every script starts with this: scripts append what they see to files in MARKS.
MARK = """
import os

def mark(name, text):
    with open(os.path.join(MARKS, name), "a") as f:
        f.write(f"{text}\\n")
"""


def _end(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _worker_pids(job: ScoringJob, count: int, deadline_s: float = 20) -> list[int]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        pids = [int(p) for p in job.mark_lines("busy")]
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError("the workers never started scoring")


def _gone(pid: int, within_s: float = 10) -> bool:
    """Whether the process has exited within `within_s`: a zombie has (its parent has yet to collect it)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rpartition(")")[2].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


# run() starts a child process of its own, as scoring code that shells out does, and hangs.
HANGING = """
    import subprocess
    import time

    def run(mini_batch):
        mark("children", subprocess.Popen(["sleep", "300"]).pid)
        mark("busy", os.getpid())
        time.sleep(120)
    """


def test_scores_every_file_into_parts_results_and_counters(make_job):
    job = make_job(
        """
        def run(mini_batch):
            return [{"chars": len(open(p).read()), "upper": open(p).read().upper()} for p in mini_batch]
        """,
        {"a.txt": "alpha", "b.txt": "be", "sub/c.txt": "gamma ray", "d.txt": "δ", "e.txt": "eps"},
        mini_batch_size=2,
        shards=2,
        workers=2,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""

    results = job.results()
    assert sorted(results) == [0, 1, 2]
    assert [(r.files, r.succeeded, r.rows, r.attempts, r.failed) for r in results.values()] == [
        (2, 2, 2, 1, []),
        (2, 2, 2, 1, []),
        (1, 1, 1, 1, []),
    ]
    assert results[0].columns == ["file", "chars", "upper"]
    merged = pd.concat([job.part(i) for i in range(3)])
    assert merged["file"].tolist() == ["a.txt", "b.txt", "d.txt", "e.txt", "sub/c.txt"]
    assert merged["chars"].tolist() == [5, 2, 1, 3, 9]
    assert merged["upper"].tolist() == ["ALPHA", "BE", "Δ", "EPS", "GAMMA RAY"]
    assert job.counters() == {"mini_batches_done": 3, "mini_batches_failed": 0, "files_succeeded": 5, "files_failed": 0}
    # Each done shard is sealed: its parts merged in mini-batch order under one header, then its journal.
    for shard, indexes, files in ((0, [0, 1], 4), (1, [2], 1)):
        sealed = job.home.blobs.get_bytes(job.files.shard_output(shard))
        assert pd.read_csv(io.BytesIO(sealed)).equals(pd.concat([job.part(i) for i in indexes], ignore_index=True))
        journal = job.journal(shard)
        assert journal is not None and journal.output_size == len(sealed)
        assert sealed[: journal.header_size] == b"file,chars,upper\n"
        assert (journal.mini_batches, journal.succeeded, journal.rows, journal.errors_size) == (
            len(indexes),
            files,
            files,
            0,
        )


def test_run_raising_fails_its_files_after_the_retries(make_job):
    job = make_job(
        """
        def run(mini_batch):
            mark("attempts", " ".join(os.path.basename(p) for p in mini_batch))
            for path in mini_batch:
                if "bad" in path:
                    check(path)
            return [1] * len(mini_batch)

        def check(path):
            raise ValueError(f"cannot score {os.path.basename(path)}")
        """,
        {"good-1.txt": "", "bad.txt": "", "good-2.txt": "", "good-3.txt": ""},
        mini_batch_size=2,
        max_retries=2,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr

    results = job.results()
    bad = results[0]  # bad.txt, good-1.txt
    assert (bad.files, bad.succeeded, bad.rows, bad.attempts) == (2, 0, 0, 3)
    assert [f.file for f in bad.failed] == ["bad.txt", "good-1.txt"]
    error = bad.failed[0].error
    assert error.startswith("ValueError: cannot score bad.txt")
    assert "score.py:" in error and "in check" in error and "in run" in error
    assert not job.has_part(0)
    assert (results[1].succeeded, results[1].attempts) == (2, 1)
    assert job.mark_lines("attempts").count("bad.txt good-1.txt") == 3
    assert job.counters() == {"mini_batches_done": 2, "mini_batches_failed": 1, "files_succeeded": 2, "files_failed": 2}
    assert "attempt 3 of 3 failed" in run.stderr


def test_fewer_rows_than_files_fails_the_mini_batch(make_job):
    job = make_job(
        """
        def run(mini_batch):
            return ["only one"]
        """,
        3,
        mini_batch_size=3,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    result = job.results()[0]
    assert result.succeeded == 0
    assert {f.error for f in result.failed} == {
        "run() returned 1 rows for 3 files; return one row per file, or include a 'file' column naming each row's input"
    }
    assert job.counters()["mini_batches_failed"] == 1


def test_dataframe_with_a_file_column_missing_one_file_fails_only_that_file(make_job):
    job = make_job(
        """
        import os
        import pandas as pd

        def run(mini_batch):
            kept = [p for p in mini_batch if "skip" not in p]
            sizes = [os.path.getsize(p) for p in kept]
            return pd.DataFrame({"file": [os.path.basename(p) for p in kept], "size": sizes})
        """,
        {"x/one.txt": "1", "x/skip.txt": "22", "y/three.txt": "333"},
        mini_batch_size=3,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    result = job.results()[0]
    assert (result.files, result.succeeded, result.rows) == (3, 2, 2)
    assert [(f.file, f.error) for f in result.failed] == [("x/skip.txt", "run() returned no row for this file")]
    part = job.part(0)
    assert part.to_dict("list") == {"file": ["x/one.txt", "y/three.txt"], "size": [1, 3]}


def test_garbage_return_type_fails_the_attempt(make_job):
    job = make_job("def run(mini_batch):\n    return 42\n", 1)
    run = job.run()
    assert run.returncode == 0, run.stderr
    [failure] = job.results()[0].failed
    assert failure.error == "run() must return a pandas DataFrame, a list or an array; got int"


def test_run_past_the_timeout_is_killed_and_its_worker_replaced(make_job):
    job = make_job(
        """
        import time

        def init():
            mark("inits", os.getpid())

        def run(mini_batch):
            if any("hang" in p for p in mini_batch):
                time.sleep(120)
            time.sleep(0.5)
            mark("scored", os.getpid())
            return ["ok"] * len(mini_batch)
        """,
        {"a-hang.txt": "", **{f"file-{i}.txt": "" for i in range(9)}},
        workers=2,
        timeout=2,
    )
    started = time.monotonic()
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 20

    results = job.results()
    assert [f.error for f in results[0].failed] == ["run() timed out after 2 s"]
    assert all(results[i].succeeded == 1 for i in range(1, 10))
    inits = job.mark_lines("inits")
    assert len(inits) == 3  # two workers, then the replacement of the killed one
    assert inits[2] in job.mark_lines("scored")  # which went on scoring


def test_a_timed_out_run_is_killed_with_the_processes_it_started(make_job):
    job = make_job(HANGING, 1, timeout=1)
    instance = job.start_instance()
    try:
        assert instance.stdin is not None and instance.stdout is not None
        instance.stdin.write(job.shard_uris[0] + "\n")
        instance.stdin.flush()
        # The instance answers once the timeout has ended the attempt, and keeps its workers for more shards:
        # nothing but the timeout has killed anything yet.
        assert instance.stdout.readline().startswith("done ")
        [child] = job.mark_lines("children")
        assert _gone(int(child)), "the sleep that run() started outlived the timeout"
    finally:
        _end(instance)
    assert [f.error for f in job.results()[0].failed] == ["run() timed out after 1 s"]


def test_a_worker_is_replaced_after_max_mini_batches_per_worker(make_job):
    job = make_job(
        """
        def init():
            mark("inits", os.getpid())

        def run(mini_batch):
            return [os.getpid()] * len(mini_batch)
        """,
        9,
        max_mini_batches_per_worker=3,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    pids = [job.part(i)["prediction"].item() for i in range(9)]
    # Three processes, each scoring three mini-batches in a row, each with its own init().
    assert [pids.count(pid) for pid in dict.fromkeys(pids)] == [3, 3, 3]
    assert {str(pid) for pid in pids} <= set(job.mark_lines("inits"))
    assert run.stderr.count("scored 3 mini-batches (max_mini_batches_per_worker); starting a new one") >= 2


def test_a_leaking_worker_is_replaced_above_max_worker_memory_mb_so_memory_stays_bounded(make_job):
    job = make_job(
        """
        import numpy as np
        from batch_container.scoring import resident_mb
        kept = []

        def run(mini_batch):
            # A leak: 40 MB that is written (so resident) and never freed.
            kept.append(np.ones(40 * 2**20 // 8))
            mark("memory", f"{os.getpid()} {resident_mb():.0f}")
            return [1] * len(mini_batch)
        """,
        12,
        max_worker_memory_mb=200,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert sorted(job.results()) == list(range(12))
    seen = [line.split() for line in job.mark_lines("memory")]
    assert len({pid for pid, _ in seen}) >= 2  # 12 x 40 MB in one process would be 480 MB
    # Replaced once above the ceiling, after the mini-batch it may already hold: at most two leak steps beyond.
    assert max(float(mb) for _, mb in seen) < 200 + 2 * 40 + 10
    assert "(max_worker_memory_mb); starting a new one" in run.stderr


def test_worker_that_exits_in_run_is_replaced(make_job):
    job = make_job(
        """
        def init():
            mark("inits", os.getpid())

        def run(mini_batch):
            if any("crash" in p for p in mini_batch):
                os._exit(3)
            return [os.getpid()] * len(mini_batch)
        """,
        {"a.txt": "", "b-crash.txt": "", "c.txt": ""},
        max_retries=1,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    results = job.results()
    assert results[1].attempts == 2
    assert [f.error for f in results[1].failed] == ["worker process died (exit code 3)"]
    assert results[0].succeeded == results[2].succeeded == 1
    # One worker slot: a replacement per crash (the last one may be closed before its init() ends).
    assert run.stderr.count("worker process died (exit code 3); starting a new one") == 2
    assert job.part(0)["prediction"].item() != job.part(2)["prediction"].item()


def test_init_failing_every_time_fails_the_files_and_exits_non_zero(make_job):
    job = make_job(
        """
        def init():
            mark("inits", os.getpid())
            raise RuntimeError("the model file is corrupt")

        def run(mini_batch):
            return [1] * len(mini_batch)
        """,
        3,
    )
    run = job.run()
    assert run.returncode == 1
    assert "no worker could start: init() failed: RuntimeError: the model file is corrupt" in run.stderr
    assert "score.py:" in run.stderr
    assert len(job.mark_lines("inits")) == 3  # tried three times, then gave up

    results = job.results()
    assert sorted(results) == [0, 1, 2]
    for result in results.values():
        assert (result.succeeded, result.attempts) == (0, 0)
        assert result.failed[0].error.startswith(
            "init() failed: RuntimeError: the model file is corrupt\n  at score.py:"
        )
    assert job.counters()["files_failed"] == 3
    journal = job.journal()
    assert journal is not None and (journal.mini_batches, journal.succeeded, journal.output_size) == (3, 0, 0)
    assert [line["mini_batch"] for line in job.shard_errors()] == [0, 1, 2]


def test_init_hanging_past_init_timeout_is_killed_with_what_it_started_and_fails_the_files(make_job):
    job = make_job(
        """
        import subprocess
        import time

        def init():
            mark("children", subprocess.Popen(["sleep", "300"]).pid)
            mark("inits", os.getpid())
            time.sleep(300)

        def run(mini_batch):
            return [1] * len(mini_batch)
        """,
        2,
        init_timeout=1,
    )
    run = job.run()
    assert run.returncode == 1
    assert "no worker could start: init() did not finish within 1 s" in run.stderr
    assert len(job.mark_lines("inits")) == 3  # tried three times, as an init() that raises
    # The first two tries' workers were replaced, not closed with the runner: only their kill took their sleep.
    assert all(_gone(int(child)) for child in job.mark_lines("children")), "what init() started survived"

    results = job.results()
    assert sorted(results) == [0, 1]
    for result in results.values():
        assert (result.succeeded, result.attempts) == (0, 0)
        assert [failure.error for failure in result.failed] == ["init() did not finish within 1 s"]
    assert job.counters()["files_failed"] == 2


def test_instance_mode_keeps_workers_and_init_across_shards(make_job):
    job = make_job(
        """
        import time

        def init():
            mark("inits", os.getpid())
            print("loading the model")  # user output never reaches the protocol channel

        def run(mini_batch):
            print("scoring", mini_batch)
            time.sleep(0.4)  # slow enough that both workers get work
            return [os.getpid()] * len(mini_batch)
        """,
        6,
        shards=3,
        workers=2,
    )
    instance = job.start_instance("--instance", "7")
    missing = job.files.shard(99)
    stdin = "\n".join([job.shard_uris[0], missing, *job.shard_uris[1:]]) + "\n"
    stdout, stderr = instance.communicate(stdin, timeout=60)
    assert instance.returncode == 0, stderr

    lines = stdout.splitlines()
    assert lines[0] == f"done {job.shard_uris[0]}"
    assert lines[1].startswith(f"error {missing} ") and "does not exist" in lines[1]
    assert lines[2:] == [f"done {uri}" for uri in job.shard_uris[1:]]
    inits = job.mark_lines("inits")
    assert len(inits) == len(set(inits)) == 2
    assert sorted(job.results()) == list(range(6))
    assert "loading the model" in stderr  # without --log-dir, user output joins the runner's stderr


def test_instance_mode_answers_each_shard_as_it_finishes(make_job):
    job = make_job("def run(mini_batch):\n    return [0] * len(mini_batch)\n", 2, shards=2)
    instance = job.start_instance()
    try:
        assert instance.stdin is not None and instance.stdout is not None
        for uri in job.shard_uris:
            instance.stdin.write(uri + "\n")
            instance.stdin.flush()
            assert instance.stdout.readline() == f"done {uri}\n"
        instance.stdin.close()
        assert instance.wait(timeout=30) == 0
    finally:
        _end(instance)


def test_error_threshold_zero_stops_after_the_first_bad_file(make_job):
    job = make_job(
        """
        def run(mini_batch):
            mark("runs", mini_batch[0])
            raise ValueError("bad")
        """,
        8,
        error_threshold=0,
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert len(job.mark_lines("runs")) == 1
    assert list(job.results()) == [0]
    assert (
        "error_threshold exceeded: 1 failed, 0 allowed; the mini-batches not started are left not scored" in run.stderr
    )
    assert job.journal() is None, "a shard stopped early is not done"


def test_canceled_job_runs_nothing_and_never_calls_init(make_job):
    job = make_job("\ndef init():\n    mark('inits', 1)\n\ndef run(mini_batch):\n    return [1]\n", 2)
    job.set_status(JobStatus.CANCEL_REQUESTED)
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert job.results() == {}
    assert job.mark_lines("inits") == []
    assert job.journal() is None


def test_cancel_during_a_run_stops_the_runner_within_seconds(make_job):
    job = make_job(HANGING, 3, timeout=300)
    runner = subprocess.Popen(
        [sys.executable, "-m", "batch_container", "--job-id", job.job.id, "--shard", job.shard_uris[0]],
        env=job.home.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        [pid] = _worker_pids(job, 1)
        job.set_status(JobStatus.CANCEL_REQUESTED)
        _, stderr = runner.communicate(timeout=15)
        assert runner.returncode == 0, stderr
        assert "the job is CancelRequested" in stderr
        assert _gone(pid)
        assert all(_gone(int(child)) for child in job.mark_lines("children")), "what run() started survived"
        assert job.results() == {}
    finally:
        _end(runner)


def test_summary_only_writes_results_but_no_parts(make_job):
    job = make_job(
        "def run(mini_batch):\n    return [1] * len(mini_batch)\n", 3, output_action=OutputAction.SUMMARY_ONLY
    )
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert [r.rows for r in job.results().values()] == [1, 1, 1]
    assert not any(job.has_part(i) for i in range(3))


def test_returning_none_counts_files_as_succeeded_without_rows(make_job):
    job = make_job("def run(mini_batch):\n    return None\n", 2)
    run = job.run()
    assert run.returncode == 0, run.stderr
    assert [(r.succeeded, r.rows, r.columns) for r in job.results().values()] == [(1, 0, []), (1, 0, [])]
    assert not job.has_part(0)


def test_resumed_shard_skips_mini_batches_that_have_a_result(make_job):
    job = make_job(
        """
        def run(mini_batch):
            mark("runs", os.path.basename(mini_batch[0]))
            return ["new"] * len(mini_batch)
        """,
        3,
    )
    blobs = job.home.blobs
    blobs.put_bytes(job.files.result(1), MiniBatchResult(1, 1, 1, 1, 1, columns=["file", "prediction"]).to_json())
    blobs.put_bytes(job.files.part(1), b"file,prediction\nin/file-1.txt,old\n")
    # A part left by a run that died before its result: rewritten, never duplicated.
    blobs.put_bytes(job.files.part(2), b"file,prediction\nin/file-2.txt,stale\n")

    run = job.run()
    assert run.returncode == 0, run.stderr
    assert job.mark_lines("runs") == ["file-0.txt", "file-2.txt"]
    assert job.part(1)["prediction"].tolist() == ["old"]
    assert job.part(2)["prediction"].tolist() == ["new"]
    assert job.counters()["mini_batches_done"] == 2
    assert "1 already done before" in run.stderr
    # Sealed with the mini-batch an earlier run finished: its result read back, its part merged in order.
    sealed = pd.read_csv(io.BytesIO(job.home.blobs.get_bytes(job.files.shard_output(0))))
    assert sealed["prediction"].tolist() == ["new", "old", "new"]
    journal = job.journal()
    assert journal is not None and (journal.mini_batches, journal.rows, journal.columns) == (
        3,
        3,
        ["file", "prediction"],
    )


def test_scripts_see_the_model_folder_and_the_deployments_environment(make_job):
    job = make_job(
        """
        import glob
        import os

        def init():
            global weights
            # Azure's own examples find a folder model one level under AZUREML_MODEL_DIR, by the folder's name.
            (path,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "*", "weights.txt"))
            weights = open(path).read()
            assert open(os.path.join(os.environ["MODEL_DIR"], "weights.txt")).read() == weights

        def run(mini_batch):
            names = ["MODEL_DIR", "AZUREML_MODEL_DIR", "GREETING", "OMP_NUM_THREADS", "MKL_NUM_THREADS"]
            return [{"weights": weights, **{n: os.environ.get(n) for n in names}} for _ in mini_batch]
        """,
        1,
        workers=2,
        environment_variables={"GREETING": "hello", "MKL_NUM_THREADS": "3"},
    )
    run = job.run(env={"BEP_CPUS": "8"})
    assert run.returncode == 0, run.stderr
    row = job.part(0).iloc[0]
    assert row["weights"] == 42
    version_folder = job.home.blobs.join(job.home.blobs.root, "models", job.job.id, "1")
    assert row["AZUREML_MODEL_DIR"] == version_folder
    assert row["MODEL_DIR"] == job.home.blobs.join(version_folder, "model")
    assert row["GREETING"] == "hello"
    assert row["OMP_NUM_THREADS"] == 4  # 8 cores shared by 2 workers
    assert row["MKL_NUM_THREADS"] == 3  # the deployment's own setting wins


def test_user_output_goes_to_one_log_per_worker(make_job, tmp_path: Path):
    job = make_job(
        """
        import logging
        import sys

        def init():
            print("init says hi")

        def run(mini_batch):
            print("printed while scoring")
            print("to stderr", file=sys.stderr)
            logging.getLogger("score").debug("a debug line")
            logging.getLogger("score").warning("a warning")
            return [1] * len(mini_batch)
        """,
        1,
        logging_level="warning",
    )
    logs = tmp_path / "logs"
    run = job.run("--log-dir", str(logs), "--instance", "3")
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert "printed while scoring" not in run.stderr
    assert os.listdir(logs) == ["3-worker-0.log"]
    text = (logs / "3-worker-0.log").read_text()
    for line in ("init says hi", "printed while scoring", "to stderr", "a warning"):
        assert line in text
    assert "a debug line" not in text


class DownloadingBlobStore(FolderBlobStore):
    """Storage that, like S3, hands the runner downloaded copies rather than the stored files."""

    reads_in_place = False

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.copies: list[str] = []

    def localize(self, uri: str, scratch_dir: str) -> str:
        target = os.path.join(scratch_dir, f"{len(self.copies)}-{os.path.basename(uri)}")
        shutil.copyfile(to_path(uri), target)
        self.copies.append(target)
        return target

    def download_folder(self, uri: str, local_dir: str) -> str:
        shutil.copytree(to_path(uri), local_dir)
        return local_dir


def test_downloaded_inputs_are_deleted_once_their_mini_batch_is_done(make_job, local_home: Home):
    job = make_job(
        """
        def run(mini_batch):
            mark("model", os.environ["MODEL_DIR"])
            seen = os.path.join(MARKS, "seen")
            earlier = open(seen).read().split() if os.path.exists(seen) else []
            mark("left over", sum(os.path.exists(p) for p in earlier))
            for path in mini_batch:
                mark("seen", path)
            return [open(p).read() for p in mini_batch]
        """,
        5,
        mini_batch_size=2,
        max_retries=0,
    )
    blobs = DownloadingBlobStore(local_home.blobs.root)
    with ShardRunner(local_home.records, blobs, job.job.id) as runner:
        report = runner.run_shard(runner.load_shard(job.shard_uris[0]))
        scratch = runner.scratch
        assert report.done == 3
        assert len(blobs.copies) == 5
        # Each mini-batch's copies go once it is done: a run() sees at most those of the mini-batch just before
        # (the worker may go straight on to the next one it holds, before the runner has handled the reply).
        left_over = [int(n) for n in job.mark_lines("left over")]
        assert left_over[0] == 0 and max(left_over) <= 2
        assert not any(os.path.exists(copy) for copy in blobs.copies)
        assert {os.path.dirname(os.path.dirname(m)) for m in job.mark_lines("model")} == {scratch}
    assert not os.path.exists(scratch)
    assert sorted(os.listdir(job.inputs / "in")) == [f"file-{i}.txt" for i in range(5)]
    assert pd.concat([job.part(i) for i in range(3)])["prediction"].tolist() == [f"text {i}" for i in range(5)]


def test_missing_job_or_shard_exits_non_zero(make_job, local_home: Home):
    job = make_job("def run(mini_batch):\n    return None\n", 1)
    job.shard_uris = [job.files.shard(5)]
    run = job.run()
    assert run.returncode == 1
    assert "does not exist" in run.stderr

    run = subprocess.run(
        [sys.executable, "-m", "batch_container", "--job-id", "no-such-job", "--shard", "x"],
        env=local_home.environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert "job 'no-such-job' does not exist" in run.stderr


def test_missing_scoring_script_exits_non_zero(make_job):
    job = make_job("def run(mini_batch):\n    return None\n", 1)
    code = job.job.deployment.code_configuration.code
    os.unlink(os.path.join(code, "score.py"))
    run = job.run()
    assert run.returncode == 1
    assert "scoring script score.py is not in the code folder" in run.stderr


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_workers_end_with_the_runner(make_job, how: signal.Signals):
    job = make_job(HANGING, 2, workers=2, timeout=300)
    instance = job.start_instance()
    try:
        assert instance.stdin is not None
        instance.stdin.write(job.shard_uris[0] + "\n")
        instance.stdin.flush()
        pids = _worker_pids(job, 2)
        instance.send_signal(how)
        instance.wait(timeout=20)
        if how == signal.SIGTERM:
            assert instance.returncode == 128 + signal.SIGTERM
        assert all(_gone(pid) for pid in pids)
        assert all(_gone(int(child)) for child in job.mark_lines("children")), "what run() started survived"
    finally:
        _end(instance)
    assert job.results() == {}


def test_result_files_are_json_the_finalizer_can_read(make_job):
    job = make_job("def run(mini_batch):\n    raise KeyError('label')\n", 1)
    assert job.run().returncode == 0
    raw = json.loads(job.home.blobs.get_bytes(job.files.result(0)))
    assert raw == {
        "index": 0,
        "files": 1,
        "succeeded": 0,
        "rows": 0,
        "attempts": 1,
        "failed": [{"file": "in/file-0.txt", "error": raw["failed"][0]["error"]}],
        "columns": [],
    }
    assert raw["failed"][0]["error"].startswith("KeyError: 'label'\n  at score.py:")


def test_workers_fork_from_a_server_that_imported_torch_with_their_thread_limit(make_job):
    job = make_job(
        """
        import multiprocessing
        import os
        import sys

        PRELOADED = "torch" in sys.modules  # before this script's own import runs
        import torch

        def run(mini_batch):
            forked = multiprocessing.parent_process().pid != os.getppid()
            return [{"preloaded": PRELOADED, "forked": forked, "threads": torch.get_num_threads()} for _ in mini_batch]
        """,
        1,
        workers=2,
    )
    # Two cores for two workers: one thread each, where torch would otherwise take both cores.
    run = job.run(env={"BEP_CPUS": "2"})
    assert run.returncode == 0, run.stderr
    row = job.part(0).iloc[0]
    assert row["preloaded"] and row["forked"]
    assert row["threads"] == 1  # OpenMP read the workers' limit when the server imported torch


def test_the_runner_starts_its_workers_without_importing_pandas_itself():
    # Half a second at every start: only the workers (and the fork server) need pandas.
    check = "import sys, batch_container.__main__; print('pandas' in sys.modules)"
    finished = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == "False"
