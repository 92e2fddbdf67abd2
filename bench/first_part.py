"""Invoke -> first part for the digits example: the wall time, and the CPU each step on its path costs.

    python bench/first_part.py [--files 200] [--repeats 5]

1. Wall: the digits example as examples/digits/deployment.yml declares it, on --files PNGs, invoke -> the first
   part file in the job's scratch folder, with the milestones the job's record and logs give, median of --repeats
   jobs of each kind: a deployment's first job (each in a fresh local home: its runner starts the fork server,
   which imports the libraries), and its later jobs (one home: the fork server kept warm since the job before,
   see batch_container/warm_fork.py). Target: ≤ 1.5 s.
2. CPU: each step on that path, run alone in fresh interpreters (median of --repeats), in CPU seconds (user +
   system of the process and its children): a wall time moves with the machine's load, a CPU time much less.
   The steps are the chain a job waits on, one after the other: the job host (an interpreter and its imports),
   the runner (the same), the fork server (an interpreter importing the libraries preload.py picks from the
   scoring script), and a worker (importing the scoring script, init(), run() on the first mini-batch).

Their sum is what the first part costs on an idle machine with nothing overlapping; without the fork server's
step it is what a fork server kept warm between jobs of a deployment leaves.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from common import EXAMPLE, JobRun, LocalHome, Target, digit_requests, digits_model, median, report, spread

from batch_container import preload
from batch_endpoints.yaml_specs import load_deployment

TARGET_S = 1.5
FIRST = "a deployment's first job, s after invoke"
LATER = "its later jobs (fork server warm), s"
SCRIPT = EXAMPLE / "code" / "batch_driver.py"
# A worker's own part of the path, timed inside the process after the fork server's imports (which a forked
# worker inherits): the scoring script's import, init(), and run() on the first mini-batch.
WORKER = """
import json, os, sys, time
import {preload}
sys.path.insert(0, {code!r})
started = time.process_time()
import batch_driver
batch_driver.init()
ready = time.process_time()
batch_driver.run({paths!r})
print(json.dumps({{"init": ready - started, "run": time.process_time() - ready}}))
"""


def cpu_of(code: str) -> tuple[float, str]:
    """CPU seconds a fresh interpreter running `code` costs, with what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def step_costs(repeats: int, first_batch: list[str], model: Path) -> dict[str, list[float]]:
    libraries = preload.libraries(str(SCRIPT))
    costs: dict[str, list[float]] = {
        name: [] for name in ("interpreter", "job host imports", "runner imports", "fork server imports")
    }
    costs.update({"worker: script import + init()": [], "worker: first run()": []})
    os.environ["AZUREML_MODEL_DIR"] = str(model)
    worker = WORKER.format(preload=", ".join(libraries), code=str(SCRIPT.parent), paths=first_batch)
    for _ in range(repeats):
        interpreter, _ = cpu_of("pass")
        costs["interpreter"].append(interpreter)
        for name, imports in (
            ("job host imports", "batch_endpoints.adapters.local.job_host"),
            ("runner imports", "batch_container.__main__"),
            ("fork server imports", ", ".join(libraries)),
        ):
            costs[name].append(cpu_of(f"import {imports}")[0] - interpreter)
        _, printed = cpu_of(worker)
        inside = json.loads(printed.strip().splitlines()[-1])
        costs["worker: script import + init()"].append(inside["init"])
        costs["worker: first run()"].append(inside["run"])
    return costs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="digit PNGs the job scores (make quickstart's 200)")
    parser.add_argument("--repeats", type=int, default=5, help="jobs of each kind, and fresh interpreters per step")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)

    requests, _ = digit_requests(args.files)
    mini_batch_size = load_deployment(EXAMPLE / "deployment.yml").settings.mini_batch_size
    first_batch = sorted(str(p) for p in requests.rglob("*.png"))[:mini_batch_size]
    model = digits_model()

    cold: list[JobRun] = []
    for round_number in range(args.repeats):
        with LocalHome() as home:
            cold.append(first_part(home, home.deploy_digits(), requests, f"first job {round_number + 1}"))
    warm: list[JobRun] = []
    with LocalHome() as home:
        endpoint = home.deploy_digits()
        first_part(home, endpoint, requests, "warming the fork server")
        for round_number in range(args.repeats):
            warm.append(first_part(home, endpoint, requests, f"later job {round_number + 1}"))
    costs = step_costs(args.repeats, first_batch, model)
    cpu = {name: median(values) for name, values in costs.items()}
    # Three interpreters start one after the other on the path: the job host's, the runner's, the fork server's.
    cold_cpu = 3 * cpu["interpreter"] + sum(value for name, value in cpu.items() if name != "interpreter")
    warm_cpu = cold_cpu - cpu["interpreter"] - cpu["fork server imports"]
    cold_wall, warm_wall = (median([run.first_output_s or 0.0 for run in runs]) for runs in (cold, warm))
    rows = [
        {"step (CPU, fresh interpreters)": name, "CPU s": cpu[name], "range s": spread(costs[name])} for name in cpu
    ]
    rows += [
        {"step (CPU, fresh interpreters)": "the path, cold: 3 interpreters + every step", "CPU s": cold_cpu},
        {"step (CPU, fresh interpreters)": "the path with a warm fork server (no server start)", "CPU s": warm_cpu},
    ]
    cold_stages, warm_stages = milestones(cold), milestones(warm)
    wall_rows = [{"milestone (median of jobs)": "first part written", FIRST: cold_wall, LATER: warm_wall}]
    wall_rows += [
        {"milestone (median of jobs)": name, FIRST: value, LATER: warm_stages.get(name, float("nan"))}
        for name, value in cold_stages.items()
    ]
    report(
        "first_part",
        title="Invoke -> first part, digits example",
        config={"files": args.files, "mini_batch_size": mini_batch_size, "repeats": args.repeats},
        tables={"Wall time": wall_rows, "CPU of each step on the path": rows},
        targets=[
            Target("invoke -> first part, a deployment's later jobs", warm_wall, TARGET_S, at_least=False, unit=" s"),
            Target("invoke -> first part, its first job", cold_wall, TARGET_S, at_least=False, unit=" s"),
            Target("its CPU path, cold (a bound on an idle machine)", cold_cpu, TARGET_S, at_least=False, unit=" s"),
            Target("its CPU path with a warm fork server", warm_cpu, TARGET_S, at_least=False, unit=" s"),
        ],
        data={
            "wall_s": {
                "first_job": [run.first_output_s for run in cold],
                "later_jobs": [r.first_output_s for r in warm],
            },
            "milestones_s": {"first_job": cold_stages, "later_jobs": warm_stages},
            "cpu_s": costs,
            "cold_path_cpu_s": cold_cpu,
            "warm_cpu_s": warm_cpu,
        },
        notes=[
            f"fork server preloads {', '.join(preload.libraries(str(SCRIPT)))} (preload.py, from the script's imports)",
            "not counted in the CPU path: invoke in the caller (validate, record the job, start the job host), the "
            "job host's plan (it runs while the runner starts), forking a worker, writing the part",
        ],
        **({"out_dir": args.out} if args.out else {}),
    )


def first_part(home: LocalHome, endpoint: str, requests: Path, what: str) -> JobRun:
    run = home.run_job(endpoint, requests)
    assert run.first_output_s is not None, "the job ended before a first part was seen"
    print(f"{what}: invoke -> first part {run.first_output_s:.2f} s")
    return run


def milestones(runs: list[JobRun]) -> dict[str, float]:
    """The median of each milestone every run reached."""
    names = [name for name in runs[-1].stages if all(name in run.stages for run in runs)]
    return {name: median([run.stages[name] for run in runs]) for name in names}


if __name__ == "__main__":
    main()
