"""Overhead: what our orchestration costs per mini-batch, and how soon after invoke the first part is written.

    python bench/overhead.py [--mini-batches 5000] [--repeats 3]

A job of 5,000 one-byte files at mini_batch_size 1, scored by a script whose run() does no work
(bench/noop_code/score.py: one row per file, nothing computed), on the local backend with
max_concurrency_per_instance = the number of cores. Everything such a job spends is orchestration: planning,
starting the runner and its workers, handing each mini-batch to a worker, turning its result into rows, writing
its part and result files and the job's counters, and finalize merging 5,000 parts.

    per mini-batch = (wall time of the 5,000-mini-batch job - wall time of a 1-file job) / 4,999
    raw            = wall time of the 5,000-mini-batch job / 5,000

The 1-file job is the fixed start cost (job host, plan, runner, workers, finalize). Wall time is invoke ->
the job record's end. Time to first part is invoke -> the first part file in the job's scratch `parts/` folder,
for the no-op job and for the digits example (examples/digits/deployment.yml as written, 200 PNGs).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import (
    EXAMPLE,
    JobRun,
    LocalHome,
    Target,
    bar_chart,
    cores,
    digit_requests,
    median,
    report,
    spread,
    tiny_files,
)

from batch_endpoints.yaml_specs import load_deployment

MAX_OVERHEAD_MS = 2.0
MAX_FIRST_PART_S = 3.0
DIGITS_FILES = 200  # what `make quickstart` scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mini-batches", type=int, default=5000, help="mini-batches (one file each) of the job")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--workers", type=int, default=cores(), help="max_concurrency_per_instance")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)

    big = tiny_files(args.mini_batches)
    one = tiny_files(1)
    requests, _ = digit_requests(DIGITS_FILES)
    runs: dict[str, list[JobRun]] = {"one": [], "big": [], "digits": []}
    with LocalHome() as home:
        noop = home.deploy_noop(workers=args.workers)
        digits = home.deploy_digits()
        for round_number in range(1, args.repeats + 1):
            for name, endpoint, folder in (("one", noop, one), ("big", noop, big), ("digits", digits, requests)):
                run = home.run_job(endpoint, folder)
                runs[name].append(run)
                first = f"{run.first_output_s:.2f} s" if run.first_output_s is not None else "-"
                print(f"round {round_number}: {name:6s} job {run.wall_s:6.2f} s, first part after {first}", flush=True)

    wall = {name: [r.wall_s for r in items] for name, items in runs.items()}
    first = {name: [r.first_output_s for r in items if r.first_output_s is not None] for name, items in runs.items()}
    fixed, total = median(wall["one"]), median(wall["big"])
    per_mini_batch_ms = (total - fixed) / (args.mini_batches - 1) * 1000
    raw_ms = total / args.mini_batches * 1000
    first_part_digits = median(first["digits"])
    stages = _median_stages(runs["big"])
    steady_ms = (stages["last_result_written"] - stages["first_part_written"]) / (args.mini_batches - 1) * 1000

    rows = [
        {"measure": "per mini-batch, start cost taken out", "value": f"{per_mini_batch_ms * 1000:,.0f} µs"},
        {"measure": "per mini-batch, raw (job wall / mini-batches)", "value": f"{raw_ms * 1000:,.0f} µs"},
        {"measure": "per mini-batch, steady (first part -> last result)", "value": f"{steady_ms * 1000:,.0f} µs"},
        {
            "measure": f"job of {args.mini_batches:,} mini-batches",
            "value": f"{total:.2f} s",
            "range": spread(wall["big"]),
        },
        {"measure": "job of 1 file (the fixed start cost)", "value": f"{fixed:.2f} s", "range": spread(wall["one"])},
        {
            "measure": f"first part written, digits example ({DIGITS_FILES} PNGs)",
            "value": f"{first_part_digits:.2f} s",
            "range": spread(first["digits"]),
        },
        {
            "measure": "first part written, no-op job",
            "value": f"{median(first['big']):.2f} s",
            "range": spread(first["big"]),
        },
        {
            "measure": f"digits example job ({DIGITS_FILES} PNGs), invoke -> output",
            "value": f"{median(wall['digits']):.2f} s",
            "range": spread(wall["digits"]),
        },
    ]
    stage_rows = [{"milestone (median of rounds)": name, "s after invoke": value} for name, value in stages.items()]
    targets = [
        Target("orchestration overhead per mini-batch", per_mini_batch_ms, MAX_OVERHEAD_MS, at_least=False, unit=" ms"),
        Target("first part written after invoke (digits)", first_part_digits, MAX_FIRST_PART_S, False, unit=" s"),
    ]
    data: dict[str, Any] = {
        "per_mini_batch_ms": per_mini_batch_ms,
        "raw_per_mini_batch_ms": raw_ms,
        "steady_per_mini_batch_ms": steady_ms,
        "wall_s": wall,
        "first_part_s": first,
        "stages_big_job_s": stages,
        "stages_each_round": {name: [r.stages for r in items] for name, items in runs.items()},
    }
    notes = [
        f"{args.mini_batches:,} one-byte files at mini_batch_size 1; run() returns one row per file and computes "
        "nothing (bench/noop_code/score.py)",
        "wall time = invoke -> the job record's end (finalize done, output merged); first part = invoke -> the "
        "first file published in the job's scratch parts/ folder",
        f"the digits job uses examples/digits/deployment.yml as written (mini_batch_size 10, "
        f"{load_deployment(EXAMPLE / 'deployment.yml').settings.max_concurrency_per_instance} workers)",
    ]

    def chart(path: Path) -> None:
        names = [n for n in stages if n != "planned"]
        bar_chart(
            path,
            ["planned", *names],
            [stages["planned"], *[stages[n] for n in names]],
            title=f"No-op job of {args.mini_batches:,} mini-batches: milestones (median of {args.repeats})",
            xlabel="seconds after invoke",
        )

    report(
        "overhead",
        title="Overhead: orchestration cost per mini-batch and time to first part",
        config={
            "mini_batches": args.mini_batches,
            "mini_batch_size": 1,
            "max_concurrency_per_instance": args.workers,
            "instance_count": 1,
            "repeats": args.repeats,
        },
        tables={"Measured": rows, f"Where the {args.mini_batches:,}-mini-batch job spends its time": stage_rows},
        targets=targets,
        data=data,
        notes=notes,
        chart=chart,
        **({"out_dir": args.out} if args.out else {}),
    )


def _median_stages(runs: list[JobRun]) -> dict[str, float]:
    names = [name for name in runs[-1].stages if all(name in r.stages for r in runs)]
    firsts = [r.first_output_s for r in runs if r.first_output_s is not None]
    stages = {name: median([r.stages[name] for r in runs]) for name in names}
    if firsts:
        stages["first_part_written"] = median(firsts)
    return dict(sorted(stages.items(), key=lambda item: item[1]))


if __name__ == "__main__":
    main()
