"""What every benchmark shares: cached inputs and model, a throwaway local home, timing, targets, results.

Benchmarks print ratios measured in one run, on one machine, at one load: absolute numbers move with whatever
else the machine runs, ratios much less. Each script writes `bench/results/<name>.json` (everything measured,
with the machine and the settings) and `<name>.md` (the tables it printed), and `<name>.png` when matplotlib
is installed.

Inputs are made once and kept under `bench/.data/` (git-ignored): the digits model (examples/digits/train.py),
digit PNGs (examples/digits/make_requests.py) and folders of tiny files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# BENCH_DATA moves the cached inputs elsewhere: the test that runs a benchmark small keeps them out of the checkout.
DATA = Path(os.environ.get("BENCH_DATA") or BENCH / ".data")
RESULTS = BENCH / "results"
EXAMPLE = REPO / "examples" / "digits"

# The runner and the job host are started as `python -m ...` by the local backend: make sure they find this
# checkout whether or not it is installed, and whatever the working directory.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)

from batch_endpoints.adapters.local.backend import open_local_backend  # noqa: E402
from batch_endpoints.adapters.local.blobs import to_path  # noqa: E402
from batch_endpoints.service import BatchEndpointService, InvokeRequest  # noqa: E402
from batch_endpoints.specs import InvokeOverrides, Job, JobStatus  # noqa: E402
from batch_endpoints.yaml_specs import (  # noqa: E402
    load_deployment,
    load_deployment_mapping,
    load_endpoint,
    load_endpoint_mapping,
)

# How often a benchmark looks at a running job. Wall times come from the job record's own timestamps, so
# this bounds only how late the benchmark notices, not what it measures.
FIRST_OUTPUT_POLL_S = 0.02
LOAD_AT_START = os.getloadavg()[0]
STATUS_POLL_S = 0.05


def cores() -> int:
    return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """What the numbers were measured on; the load average says how busy the machine was meanwhile."""
    facts: dict[str, Any] = {
        "cores": cores(),
        # Other processes' load takes cores from the benchmark: ratios hold up better than absolute numbers.
        "load_average_1m_start": round(LOAD_AT_START, 2),
        "load_average_1m_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "processor": platform.processor() or platform.machine(),
    }
    with contextlib.suppress(ImportError):
        import torch

        facts["torch"] = torch.__version__
    return facts


# ------------------------------------------------------------------------------------------------ inputs
def digits_model() -> Path:
    """The example's standard digits CNN, trained once (seconds) and kept."""
    folder = DATA / "digits-model"
    if not (folder / "model.pt").exists():
        print(f"training the digits model into {folder} (once) ...", flush=True)
        subprocess.run(
            [sys.executable, str(EXAMPLE / "train.py"), "--output", str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return folder


def digit_requests(count: int) -> tuple[Path, Path]:
    """`count` digit PNGs in nested folders (made once, kept) and their labels file."""
    root = DATA / f"digits-{count}"
    requests, labels = root / "requests", root / "labels.csv"
    # make_requests.py writes the labels last: their presence means the images are complete.
    if not labels.exists():
        print(f"writing {count:,} digit PNGs into {requests} (once) ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(EXAMPLE / "make_requests.py"),
                "--output",
                str(requests),
                "--count",
                str(count),
                "--labels",
                str(labels),
                "--overwrite",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return requests, labels


def tiny_files(count: int, *, content: bytes = b"x", per_folder: int = 1000) -> Path:
    """`count` files holding `content`, `per_folder` to a folder (made once, kept)."""
    kind = "empty" if not content else "tiny"
    folder = DATA / f"{kind}-{count}"
    done = DATA / f".{kind}-{count}.complete"  # beside the folder: anything inside it would be an input
    if not done.exists():
        print(f"writing {count:,} {kind} files into {folder} (once) ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        for index in range(count):
            sub = folder / f"part-{index // per_folder:04d}"
            if index % per_folder == 0:
                sub.mkdir(parents=True)
            (sub / f"file-{index:07d}.txt").write_bytes(content)
        done.touch()
    return folder


def relative_files(folder: Path) -> list[Path]:
    """Every file under `folder`, in the order a job cuts them into mini-batches."""
    return sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())


# ------------------------------------------------------------------------------------------- local jobs
@dataclass
class JobRun:
    """One job, invoke to final status, as seen from outside (seconds since the invoke call)."""

    job: Job
    wall_s: float
    """Invoke called -> job record ended (finalize done, output file written)."""
    first_output_s: float | None
    """Invoke called -> first part (or result) file published in the job's scratch folder."""
    stages: dict[str, float] = field(default_factory=dict)
    """Milestones from the job record and logs, in seconds since invoke (see `job_stages`)."""

    @property
    def output(self) -> Path | None:
        return Path(to_path(self.job.output_uri)) if self.job.output_uri else None


class _NotStarted:
    """An orchestrator that records jobs and starts nothing: the benchmark runs workflow steps itself."""

    def start(self, job: Job) -> str:
        return "bench:not-started"

    def cancel(self, job: Job) -> None:
        return None


class LocalHome:
    """A throwaway BEP_HOME with its service; deleted on exit. With start_jobs=False, an invoke only records
    the job (Queued), so that a benchmark can time a workflow step on its own."""

    def __init__(self, *, start_jobs: bool = True) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="bep-bench-"))
        backend = open_local_backend(str(self.path))
        if not start_jobs:
            backend = dataclasses.replace(backend, orchestrator=_NotStarted())
        self.backend = backend
        self.service = BatchEndpointService(backend)

    def __enter__(self) -> LocalHome:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def deploy_digits(self, *, workers: int | None = None, mini_batch_size: int | None = None) -> str:
        """The example's endpoint and deployment (examples/digits/*.yml) with the cached model; returns the
        endpoint's name. `workers` and `mini_batch_size` override the deployment file's settings."""
        service = self.service
        service.register_model("digits", str(digits_model()))
        endpoint = service.create_endpoint(load_endpoint(EXAMPLE / "endpoint.yml")).name
        overrides: dict[str, Any] = {"resources.instance_count": 1}
        if workers is not None:
            overrides["settings.max_concurrency_per_instance"] = workers
        if mini_batch_size is not None:
            overrides["settings.mini_batch_size"] = mini_batch_size
        service.create_deployment(load_deployment(EXAMPLE / "deployment.yml", overrides), set_default=True)
        return endpoint

    def deploy_noop(self, *, workers: int = 1, mini_batch_size: int = 1) -> str:
        """An endpoint whose deployment scores with bench/noop_code/score.py (no work, one row per file)."""
        model = DATA / "noop-model"
        model.mkdir(parents=True, exist_ok=True)
        (model / "weights.txt").write_text("nothing to load\n")
        return self.deploy_code(
            "overhead", BENCH / "noop_code", model, workers=workers, mini_batch_size=mini_batch_size
        )

    def deploy_code(
        self,
        endpoint: str,
        code: Path,
        model: Path,
        *,
        workers: int,
        mini_batch_size: int,
        threads: int = 0,
        compute: str = "cpu-cluster",
    ) -> str:
        """An endpoint whose default deployment scores with `code`/score.py and the model folder `model`, one
        instance, `output_action` append_row; returns the endpoint's name. `threads` sets each worker's torch
        threads (OpenMP's and MKL's); 0 leaves the runner's choice, the cores shared out among the workers.
        `compute` is a local cluster: the GPU is visible to the workers on `gpu-cluster` only."""
        service = self.service
        service.create_endpoint(load_endpoint_mapping({"name": endpoint}))
        deployment = {
            "name": "bench",
            "endpoint_name": endpoint,
            "model": {"path": str(model)},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
            "compute": f"azureml:{compute}",
            "resources": {"instance_count": 1},
            "settings": {
                "mini_batch_size": mini_batch_size,
                "max_concurrency_per_instance": workers,
                "output_action": "append_row",
                "environment_variables": dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS"), str(threads))
                if threads
                else {},
            },
        }
        service.create_deployment(load_deployment_mapping(deployment, BENCH), set_default=True)
        return endpoint

    def run_job(
        self, endpoint: str, input_folder: Path, *, overrides: InvokeOverrides | None = None, timeout_s: float = 3600
    ) -> JobRun:
        """Invoke, wait for the job to end, and time it; fails unless the job completed."""
        service = self.service
        started = time.time()
        job = service.invoke(
            InvokeRequest(endpoint, str(input_folder), overrides=overrides or InvokeOverrides(), caller="bench")
        )
        first_output = _wait_for_first_output(service, job, started, timeout_s)
        while not (job := service.get_job(job.id)).status.is_final:
            if time.time() - started > timeout_s:
                service.cancel_job(job.id)
                raise TimeoutError(f"job {job.id} still {job.status.value} after {timeout_s:g} s")
            time.sleep(STATUS_POLL_S)
        if job.status != JobStatus.COMPLETED:
            raise RuntimeError(f"job {job.id} ended {job.status.value}: {job.error}")
        stages = job_stages(job, started)
        return JobRun(job, stages["ended"], first_output, stages)


def _wait_for_first_output(service: BatchEndpointService, job: Job, started: float, timeout_s: float) -> float | None:
    """Seconds from invoke until the first part or result file appears; None if the job ended before."""
    scratch = Path(to_path(job.scratch_uri))
    folders = [scratch / "parts", scratch / "results"]
    polls = 0
    while time.time() - started < timeout_s:
        for folder in folders:
            with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
                # Files are written in the store's staging folder and renamed here: a visible name is a whole file.
                if any(True for _ in entries):
                    return time.time() - started
        polls += 1
        if polls % 40 == 0 and service.get_job(job.id).status.is_final:
            return None
        time.sleep(FIRST_OUTPUT_POLL_S)
    return None


# Log lines start with logging's default asctime: local time, milliseconds after a comma.
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def _log_times(path: Path, marker: str) -> list[float]:
    times = []
    with contextlib.suppress(FileNotFoundError), path.open(errors="replace") as lines:
        for line in lines:
            if marker in line and (match := _LOG_TIME.match(line)):
                stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
                times.append(stamp + int(match.group(2)) / 1000)
    return times


def _record_time(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def job_stages(job: Job, started: float) -> dict[str, float]:
    """Milestones of a finished local job in seconds since invoke: the record's own timestamps (planned =
    Running, ended) and the logs' (runner starting its workers, every worker ready, last mini-batch written)."""
    logs = Path(to_path(job.scratch_uri)) / "logs"
    stages: dict[str, float] = {}
    for name, value in (("planned", job.started_at), ("ended", job.ended_at)):
        if (stamp := _record_time(value)) is not None:
            stages[name] = stamp - started
    workers_starting = _log_times(logs / "job-host.log", "workers for job")
    if workers_starting:
        stages["runner_starting_workers"] = workers_starting[0] - started
    ready = [t for log in sorted(logs.glob("*-worker-*.log")) for t in _log_times(log, "worker ready")[:1]]
    if ready:
        stages["all_workers_ready"] = max(ready) - started
    results = Path(to_path(job.scratch_uri)) / "results"
    with contextlib.suppress(FileNotFoundError):
        stages["last_result_written"] = max(p.stat().st_mtime for p in results.iterdir()) - started
    return {name: round(value, 4) for name, value in sorted(stages.items(), key=lambda item: item[1])}


# --------------------------------------------------------------------------------------------- timing
def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """`min-max` of the repeats, for the tables: how much the machine's load moved the numbers."""
    return f"{min(values):,.3g} - {max(values):,.3g}" if len(values) > 1 else ""


# --------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    bound: float
    at_least: bool
    """True: the measured value must be at least the bound (a ratio); False: at most (a time, a size)."""
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.measured >= self.bound if self.at_least else self.measured <= self.bound

    def verdict(self) -> str:
        if self.met:
            return "met"
        gap = abs(self.measured - self.bound)
        share = gap / self.bound if self.bound else float("inf")
        way = "short" if self.at_least else "over"
        return f"MISSED by {_number(gap)}{self.unit} ({share:.0%} {way})"

    def line(self) -> str:
        sign = "≥" if self.at_least else "≤"
        return (
            f"{self.name}: {_number(self.measured)}{self.unit} (target {sign} {_number(self.bound)}{self.unit}) "
            f"-> {self.verdict()}"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "verdict": self.verdict()}


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


# --------------------------------------------------------------------------------------------- results
Row = dict[str, Any]


def markdown_table(rows: Sequence[Row]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    return str(value).replace("|", "\\|")


def report(
    name: str,
    *,
    title: str,
    config: dict[str, Any],
    tables: dict[str, Sequence[Row]],
    targets: Sequence[Target],
    data: dict[str, Any],
    notes: Sequence[str] = (),
    chart: Callable[[Path], None] | None = None,
    out_dir: Path = RESULTS,
) -> None:
    """Print the tables and the targets' verdicts, and write <name>.json, <name>.md (and <name>.png)."""
    facts = machine()
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"# {title}", "", f"Measured {when} on {_machine_line(facts)}.", ""]
    sections += [f"Settings: {', '.join(f'{k} = {v}' for k, v in config.items())}.", ""]
    for heading, rows in tables.items():
        sections += [f"## {heading}", "", markdown_table(rows), ""]
    if targets:
        sections += ["## Targets", "", markdown_table([_target_row(t) for t in targets]), ""]
    if notes:
        sections += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    text = "\n".join(sections)
    print("\n" + text)
    missed = [t for t in targets if not t.met]
    print(f"{len(targets) - len(missed)} of {len(targets)} targets met" + ("" if not missed else ":"))
    for target in missed:
        print(f"  {target.line()}")
    (out_dir / f"{name}.md").write_text(text)
    record = {
        "benchmark": name,
        "when": when,
        "machine": facts,
        "config": config,
        "results": data,
        "targets": [t.to_json() for t in targets],
        "notes": list(notes),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    written = [f"{name}.json", f"{name}.md"]
    if chart is not None:
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:
            print("matplotlib is not installed: no chart written")
        else:
            chart(out_dir / f"{name}.png")
            written.append(f"{name}.png")
    print(f"results: {', '.join(str(out_dir / w) for w in written)}")


def _machine_line(facts: dict[str, Any]) -> str:
    extras = f", torch {facts['torch']}" if "torch" in facts else ""
    return (
        f"{facts['cores']} cores ({facts['processor']}), load average {facts['load_average_1m_start']} at the start "
        f"and {facts['load_average_1m_end']} at the end, "
        f"Python {facts['python']}{extras}"
    )


def _target_row(target: Target) -> Row:
    sign = "≥" if target.at_least else "≤"
    return {
        "target": target.name,
        "measured": f"{_number(target.measured)}{target.unit}",
        "bound": f"{sign} {_number(target.bound)}{target.unit}",
        "verdict": target.verdict(),
    }


def bar_chart(path: Path, labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.4))
    bars = axes.barh(list(labels)[::-1], list(values)[::-1], color="#4472c4")
    axes.bar_label(bars, labels=[_number(v) for v in list(values)[::-1]], padding=3)
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.margins(x=0.15)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
