"""Throughput: digit PNGs scored by the digits CNN four ways, in one run, as files per second and ratios.

    python bench/throughput.py [--files 20000] [--repeats 3] [--mini-batch-size N]

All of (a)-(c) call run() on mini-batches of the same size: by default the example deployment's
(examples/digits/deployment.yml), or --mini-batch-size.

(a) baseline: one process, a plain loop calling the example's run() over the mini-batches, with one torch
    thread (--baseline-threads; see below): bench/plain_loop.py, what a user writes without us. Timed end to
    end like (b): process start, imports, init(), the loop, writing the CSV. Its loop alone is reported too.
(b) ours: the local backend end to end, invoke -> predictions file, with max_concurrency_per_instance = the
    number of cores and instance_count 1, in a throwaway BEP_HOME. Counts everything: job host, planning,
    runner and worker start, init() in every worker, scoring, finalize.
(c) Ray Data: bench/ray_loop.py, map_batches over the file paths with an actor pool (one actor per core)
    calling the same run(). Timed whole, like (a): Ray's start, the actors' init(), the CSV, Ray's shutdown.
    Prints "ray: not installed" and skips it when Ray is absent (`make bench` installs bench/requirements.txt).
(d) floor: decode every file with Pillow in one process per core, then batched forward passes over the decoded
    images, split over the same processes. Counts neither process start nor model load.

Predictions of (a), (b) and (c) must be the same class for every file; the script stops if they are not.

Why one torch thread in (a), and not torch's default of one per core: on shared or busy cores OpenMP threads
wait on each other, and a two-thread forward pass of this net measured anywhere from 750 to 13,000 images/s
on the same 2-core machine minutes apart, while one thread held 3,600-5,800. One thread is the faster and the
steadier single-process baseline, so the ratio against it is the harder one to meet. (b) gives each of its
workers cores // workers threads, and (c) does the same for its actors.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import (
    BENCH,
    EXAMPLE,
    LocalHome,
    Target,
    bar_chart,
    cores,
    digit_requests,
    digits_model,
    load_deployment,
    median,
    relative_files,
    report,
    spread,
    timed,
)
from PIL import Image

CODE = EXAMPLE / "code"
DEFAULT_FILES = 20_000
# Forward-pass batch for the floor: with one torch thread, 32-128 images per pass are the fastest for this net.
FLOOR_BATCH = 64
# Files per task when the floor decodes: large enough that pickling the arrays back costs nothing.
DECODE_CHUNK = 500

TARGETS = {"ours / Ray Data": 2.5, "ours / baseline": 1.7, "ours / floor": 0.7}
FIRST_PART_S = 1.5
RAY_NOT_INSTALLED = "Ray Data: not run: ray not installed (pip install -r bench/requirements.txt)"

Predictions = dict[str, int]  # file name -> class
Deploy = Callable[[LocalHome, int, int], str]
"""(home, workers, mini_batch_size) -> the name of an endpoint it deployed."""


# ------------------------------------------------------------------------------------ (a) the baseline
@dataclass(frozen=True)
class Scoring:
    """What a method scores, and with what: the same for every method compared."""

    model: Path
    requests: Path
    mini_batch_size: int
    code: Path
    script: str
    """The scoring script's file name in `code`."""


class ScriptProcess:
    """A method that runs in a process of its own over the input folder and writes one CSV: timed whole, from
    the process's start to its exit, as what a user waits for."""

    def __init__(self, program: str, scoring: Scoring, options: Sequence[str] = ()) -> None:
        self.scoring = scoring
        self.output = Path(tempfile.mkdtemp(prefix=f"bench-{Path(program).stem}-")) / "predictions.csv"
        self.command = [
            sys.executable,
            str(BENCH / program),
            *("--code", str(scoring.code), "--script", scoring.script, "--model", str(scoring.model)),
            *("--input", str(scoring.requests), "--output", str(self.output)),
            *("--mini-batch-size", str(scoring.mini_batch_size)),
            *options,
        ]

    def run(self) -> tuple[float, str, Predictions]:
        """(seconds, what it printed, predictions)."""
        self.output.unlink(missing_ok=True)
        seconds, done = timed(lambda: subprocess.run(self.command, check=True, capture_output=True, text=True))
        return seconds, done.stdout, classes_of(pd.read_csv(self.output))

    def close(self) -> None:
        shutil.rmtree(self.output.parent, ignore_errors=True)


class Baseline(ScriptProcess):
    """bench/plain_loop.py: the example's init() once, then run() per mini-batch."""

    def __init__(
        self,
        model: Path,
        requests: Path,
        *,
        threads: int,
        mini_batch_size: int,
        code: Path = CODE,
        script: str = "batch_driver.py",
    ) -> None:
        scoring = Scoring(model, requests, mini_batch_size, code, script)
        super().__init__("plain_loop.py", scoring, ("--threads", str(threads)))

    def score(self) -> tuple[float, float, Predictions]:
        """(seconds end to end, seconds of the loop alone, predictions)."""
        seconds, printed, predictions = self.run()
        return seconds, json.loads(printed.strip().splitlines()[-1])["loop_s"], predictions


# -------------------------------------------------------------------------------- (b) our local backend
class Ours:
    """The example's endpoint and deployment (or those `deploy` makes) in a throwaway local home; each score() is
    one job."""

    def __init__(self, *, workers: int, mini_batch_size: int, deploy: Deploy | None = None) -> None:
        self.home = LocalHome()
        if deploy is None:
            self.endpoint = self.home.deploy_digits(workers=workers, mini_batch_size=mini_batch_size)
        else:
            self.endpoint = deploy(self.home, workers, mini_batch_size)
        self.last_stages: list[dict[str, float]] = []

    def score(self, requests: Path) -> tuple[float, Predictions]:
        run = self.home.run_job(self.endpoint, requests)
        assert run.output is not None
        stages = {"first_part_written": round(run.first_output_s or float("nan"), 4), **run.stages}
        self.last_stages.append(dict(sorted(stages.items(), key=lambda item: item[1])))
        return run.wall_s, classes_of(pd.read_csv(run.output))

    def close(self) -> None:
        self.home.__exit__()


# ------------------------------------------------------------------------------------------- (c) Ray Data
class RayData(ScriptProcess):
    """bench/ray_loop.py, timed whole as the baseline is: Ray's start, the actors' start and init(), map_batches
    over the files, the CSV and Ray's shutdown. A fresh Ray cluster each round: Ray's own processes (GCS, raylet,
    idle workers) take CPU even when idle, and must not slow down the other measurements."""

    def score(self) -> tuple[float, Predictions]:
        seconds, _, predictions = self.run()
        return seconds, predictions


def ray_data(baseline: Baseline, *, workers: int) -> tuple[RayData | None, str | None]:
    """Ray Data over what `baseline` scores, with its script, model and mini-batch size; or None and why not."""
    if importlib.util.find_spec("ray") is None:
        return None, RAY_NOT_INSTALLED
    actors = ("--actors", str(workers), "--threads", str(max(1, cores() // workers)))
    return RayData("ray_loop.py", baseline.scoring, actors), None


# ------------------------------------------------------------------------------------------- (d) the floor
def decode(paths: list[str]) -> np.ndarray:
    """Files -> (n, 28, 28) uint8, as the scoring script decodes them (its images are already 28x28 gray)."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("L")))
    return np.stack(images)


_floor_net: Any = None


def _load_floor_net(model: str, code: str) -> None:
    global _floor_net
    sys.path.insert(0, code)
    import torch
    from digits_net import load_model

    torch.set_num_threads(1)
    _floor_net = load_model(Path(model))


def forward(images: np.ndarray) -> np.ndarray:
    """Classes of decoded images, in batched forward passes."""
    import torch
    from digits_net import to_tensor

    with torch.inference_mode():
        return np.concatenate(
            [
                _floor_net(to_tensor(images[start : start + FLOOR_BATCH])).argmax(dim=1).numpy()
                for start in range(0, len(images), FLOOR_BATCH)
            ]
        )


class Floor:
    """Decode in one process per core, then the forward passes split over the same processes (one torch thread
    each: on shared cores a multi-threaded forward is erratic, see the notes)."""

    def __init__(self, model: Path, *, workers: int) -> None:
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self.pool = context.Pool(workers, initializer=_load_floor_net, initargs=(str(model), str(CODE)))
        self.pool.map(time.sleep, [0.0] * workers)  # started, model loaded, before anything is timed

    def score(self, paths: list[str]) -> tuple[float, float, Predictions]:
        chunks = [paths[start : start + DECODE_CHUNK] for start in range(0, len(paths), DECODE_CHUNK)]
        decode_s, images = timed(lambda: np.concatenate(self.pool.map(decode, chunks)))
        shares = np.array_split(images, self.workers)
        forward_s, classes = timed(lambda: np.concatenate(self.pool.map(forward, shares)))
        return decode_s, forward_s, {os.path.basename(p): int(c) for p, c in zip(paths, classes, strict=True)}

    def close(self) -> None:
        self.pool.terminate()


# ------------------------------------------------------------------------------------------------ checks
def classes_of(frame: pd.DataFrame) -> Predictions:
    # The example's run() names files by base name; the merged output names them relative to the input folder.
    names = frame["file"].astype(str).map(os.path.basename)
    return dict(zip(names, frame["class"].astype(int), strict=True))


def differences(reference: Predictions, other: Predictions, *, allowed: float = 0.0) -> str | None:
    """None when both predict the same class for the same files, or differ on no more than the share `allowed`
    of them; else what differs. Missing or unexpected files are never allowed."""
    if reference.keys() != other.keys():
        missing, extra = reference.keys() - other.keys(), other.keys() - reference.keys()
        return f"{len(missing)} files missing, {len(extra)} unexpected (e.g. {sorted(missing | extra)[:3]})"
    wrong = [name for name in reference if reference[name] != other[name]]
    if len(wrong) <= allowed * len(reference):
        return None
    return f"{len(wrong)} files predicted differently (e.g. {wrong[:3]})"


def accuracy(predictions: Predictions, labels: Path) -> float:
    truth = pd.read_csv(labels)
    names = truth["file"].map(os.path.basename)
    return float(np.mean([predictions[name] == label for name, label in zip(names, truth["label"], strict=True)]))


# -------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="digit PNGs to score (up to 100,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (a)-(d); medians are reported")
    parser.add_argument(
        "--mini-batch-size",
        type=int,
        default=load_deployment(EXAMPLE / "deployment.yml").settings.mini_batch_size,
        help="files per run() call in (a)-(c); default: the example deployment's",
    )
    parser.add_argument("--workers", type=int, default=cores(), help="worker processes of (b), actors of (c)")
    parser.add_argument("--baseline-threads", type=int, default=1, help="torch threads of the baseline (a)")
    parser.add_argument("--no-ray", action="store_true", help="skip (c) even if Ray is installed")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument(
        "--workload",
        choices=["digits", "cnn", "both"],
        default="both",
        help="digits: the example's model (a)-(d); cnn: the compute-heavy MNIST CNN (compute_heavy.py); both",
    )
    args = parser.parse_args(argv)
    if args.workload in ("digits", "both"):
        digits(args)
    if args.workload in ("cnn", "both"):
        from compute_heavy import measure

        measure(files=args.files, repeats=args.repeats, workers=args.workers, no_ray=args.no_ray, out=args.out)


def digits(args: argparse.Namespace) -> None:
    """(a)-(d) on the digits example's model."""

    model = digits_model()
    requests, labels = digit_requests(args.files)
    paths = [str(p) for p in relative_files(requests)]
    print(f"{len(paths):,} files, mini-batches of {args.mini_batch_size}, {args.workers} workers, {cores()} cores")

    baseline = Baseline(model, requests, threads=args.baseline_threads, mini_batch_size=args.mini_batch_size)
    ours = Ours(workers=args.workers, mini_batch_size=args.mini_batch_size)
    ray, ray_skipped = (
        (None, "--no-ray given: (c) Ray Data skipped") if args.no_ray else ray_data(baseline, workers=args.workers)
    )
    if ray_skipped:
        print(ray_skipped)
    floor = Floor(model, workers=args.workers)

    seconds: dict[str, list[float]] = {"baseline": [], "loop": [], "ours": [], "ray": [], "floor": []}
    floor_parts: dict[str, list[float]] = {"decode": [], "forward": []}
    predictions: dict[str, Predictions] = {}

    def run_baseline() -> None:
        took, loop_s, predictions["baseline"] = baseline.score()
        seconds["baseline"].append(took)
        seconds["loop"].append(loop_s)

    def run_ours() -> None:
        took, predictions["ours"] = ours.score(requests)
        seconds["ours"].append(took)

    def run_ray() -> None:
        nonlocal ray, ray_skipped
        if ray is None:
            return
        try:
            took, predictions["ray"] = ray.score()
        except subprocess.CalledProcessError as exc:  # a Ray that cannot run here must not cost the others
            why = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit code {exc.returncode}"]
            ray.close()
            ray, ray_skipped = None, f"Ray Data failed ({why[0]}): (c) skipped"
            print(ray_skipped)
            return
        seconds["ray"].append(took)

    def run_floor() -> None:
        decode_s, forward_s, predictions["floor"] = floor.score(paths)
        floor_parts["decode"].append(decode_s)
        floor_parts["forward"].append(forward_s)
        seconds["floor"].append(decode_s + forward_s)

    runs: list[tuple[str, Callable[[], None]]] = [
        ("baseline", run_baseline),
        ("ours", run_ours),
        ("ray", run_ray),
        ("floor", run_floor),
    ]
    try:
        for round_number in range(args.repeats):
            # A different order each round, so that no method always runs right after the same other one.
            order = runs[round_number % len(runs) :] + runs[: round_number % len(runs)]
            for name, run in order:
                if name == "ray" and ray is None:
                    continue
                run()
                extra = f" (its loop alone {len(paths) / seconds['loop'][-1]:,.0f})" if name == "baseline" else ""
                print(f"round {round_number + 1}: {name:8s} {len(paths) / seconds[name][-1]:8,.0f} files/s{extra}")
            for name in ("ours", "ray"):
                if name in predictions and (problem := differences(predictions["baseline"], predictions[name])):
                    raise SystemExit(f"predictions of {name} differ from the baseline's: {problem}")
    finally:
        ours.close()
        floor.close()
        baseline.close()
        if ray is not None:
            ray.close()

    measured = [name for name in seconds if seconds[name]]
    rate = {name: len(paths) / median(seconds[name]) for name in measured}
    labels_of = {
        "baseline": "(a) baseline: one process, run() in a loop, end to end",
        "loop": "(a) the baseline's loop alone (no start, no init())",
        "ours": "(b) ours: local backend, invoke -> predictions file",
        "ray": "(c) Ray Data map_batches, actor pool",
        "floor": "(d) floor: parallel decode + batched forward",
    }
    short = {"baseline": "baseline", "loop": "baseline loop", "ours": "ours", "ray": "Ray Data", "floor": "floor"}
    rows = [
        {
            "method": labels_of[name],
            "files/s": rate[name],
            "median s": median(seconds[name]),
            "range s": spread(seconds[name]),
            "ours / this": rate["ours"] / rate[name] if name != "ours" else "",
        }
        for name in measured
    ]
    ratios = {f"ours / {short[name]}": rate["ours"] / rate[name] for name in measured if name != "ours"}
    targets = [Target(name, ratios[name], bound, at_least=True) for name, bound in TARGETS.items() if name in ratios]
    stages = {
        name: median([s[name] for s in ours.last_stages if name in s])
        for name in ours.last_stages[-1]
        if all(name in s for s in ours.last_stages)
    }
    if "first_part_written" in stages:
        targets.append(
            Target("ours: invoke -> first part", stages["first_part_written"], FIRST_PART_S, at_least=False, unit=" s")
        )
    steady = None
    if "first_part_written" in stages and "last_result_written" in stages:
        steady = len(paths) / (stages["last_result_written"] - stages["first_part_written"])
    stage_rows = [{"milestone (median of rounds)": name, "s after invoke": value} for name, value in stages.items()]
    agreeing = ["(a)", "(b)", "(c)"] if "ray" in predictions else ["(a)", "(b)"]
    floor_differs = differences(predictions["baseline"], predictions["floor"])
    notes = [
        f"predictions identical: {', '.join(agreeing[:-1])} and {agreeing[-1]} give the same class for all "
        f"{len(paths):,} files (checked every round); accuracy against the labels "
        f"{accuracy(predictions['baseline'], labels):.4f}",
        "floor's classes: " + ("the same" if floor_differs is None else floor_differs),
        f"floor = decode {median(floor_parts['decode']):.2f} s in {args.workers} processes + forward "
        f"{median(floor_parts['forward']):.2f} s in batches of {FLOOR_BATCH}, split over the same processes "
        "(one torch thread each)",
        "ours counts its fixed start (job host, plan, runner and workers, init()) and finalize; "
        + (f"its steady rate between first part and last result was {steady:,.0f} files/s" if steady else ""),
        (
            ray_skipped
            or f"Ray Data: an actor pool of {args.workers}, the whole process timed (Ray's start and shutdown "
            "included), as the baseline's"
        ),
    ]
    config = {
        "files": len(paths),
        "mini_batch_size": args.mini_batch_size,
        "max_concurrency_per_instance": args.workers,
        "instance_count": 1,
        "repeats": args.repeats,
    }
    data = {
        "files_per_s": rate,
        "seconds": seconds,
        "floor_seconds": floor_parts,
        "ratios": ratios,
        "ours_stages_s": stages,
        "ours_stages_each_round": ours.last_stages,
        "ours_steady_files_per_s": steady,
        "ray_skipped": ray_skipped,
    }

    def chart(path: Path) -> None:
        bar_chart(
            path,
            [short[n] for n in measured],
            [rate[n] for n in measured],
            title=f"{len(paths):,} digit PNGs, {cores()} cores (median of {args.repeats})",
            xlabel="files per second",
        )

    report(
        "throughput",
        title="Throughput: scoring digit PNGs",
        config=config,
        tables={"Files per second": rows, "Where ours spends its time": stage_rows},
        targets=targets,
        data=data,
        notes=[n for n in notes if n],
        chart=chart,
        **({"out_dir": args.out} if args.out else {}),
    )


if __name__ == "__main__":
    main()
