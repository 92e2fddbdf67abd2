"""The compute-heavy workload of throughput.py (`--workload cnn`): where the model, not the orchestration, is the work.

N digit PNGs (the digits example's, 28x28 gray) scored by the classic MNIST CNN (bench/mnist_code/score.py:
two convolutions and a 128-unit dense layer, 1.2M parameters, about 10x the example's compute per image), with
a run() written as Azure's tutorials write it: open each file, forward it alone, one row per file.

(a) baseline: bench/plain_loop.py over the same script, one process, torch's default threads (one per core):
    what a user runs without us, end to end.
(b) ours at mini_batch_size 50 and 10: the local backend, invoke -> predictions file, one worker per core.
(c) ours with one worker of one torch thread, mini_batch_size 50: its steady rate (first part -> last result)
    against (b)'s at 50 shows how close N workers come to N times one.
(d) Ray Data, when installed (bench/requirements.txt): bench/ray_loop.py, map_batches with an actor pool of one
    actor per core calling the same run(), the whole process timed as the baseline's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from common import BENCH, DATA, LocalHome, Target, cores, digit_requests, median, relative_files, report, spread
from throughput import Baseline, Deploy, Ours, Predictions, differences, ray_data

CODE = BENCH / "mnist_code"
# The targets, as ratios: ours against the default-thread loop, invoke to output file included.
TARGETS = {"ours (50) / baseline": 1.45, "ours (10) / baseline": 1.4, "ours (50) / Ray Data": 2.5}
# N workers' steady rate against N times one worker's.
SCALING_TARGET = 0.9
# Random weights make near-ties between two classes possible, and a forward pass on one thread and on two may
# round differently: a few files in 10,000 may change class between methods without anything being wrong.
DIFFERENT_CLASSES_ALLOWED = 0.001


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mnist_score", CODE / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mnist_model() -> Path:
    """The CNN's weights, random from a fixed seed, saved once and kept."""
    folder = DATA / "mnist-cnn"
    if not (folder / "model.pt").exists():
        import torch

        torch.manual_seed(0)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(script().MnistCnn().state_dict(), folder / "model.pt")
    return folder


def deploy(model: Path, *, threads: int = 0) -> Deploy:
    def on(home: LocalHome, workers: int, mini_batch_size: int) -> str:
        return home.deploy_code("mnist", CODE, model, workers=workers, mini_batch_size=mini_batch_size, threads=threads)

    return on


def measure(*, files: int, repeats: int, workers: int, no_ray: bool, out: Path | None) -> None:
    model = mnist_model()
    requests, _ = digit_requests(files)
    count = len(relative_files(requests))
    print(f"\ncompute-heavy: {count:,} files, the MNIST CNN, {workers} workers, {cores()} cores")
    baseline = Baseline(model, requests, threads=0, mini_batch_size=50, code=CODE, script="score.py")
    methods = {
        "ours (50)": Ours(workers=workers, mini_batch_size=50, deploy=deploy(model)),
        "ours (10)": Ours(workers=workers, mini_batch_size=10, deploy=deploy(model)),
        # One thread, as each of the N workers has: N workers against N times this one is then a fair ratio (the
        # runner would give a lone worker every core, and this net gains only ~15% from a second thread).
        "ours, 1 worker (50)": Ours(workers=1, mini_batch_size=50, deploy=deploy(model, threads=1)),
    }
    ray, ray_skipped = (None, "Ray Data: not run (--no-ray)") if no_ray else ray_data(baseline, workers=workers)
    if ray_skipped:
        print(ray_skipped)
    seconds: dict[str, list[float]] = {name: [] for name in ["baseline", *methods, "Ray Data"]}
    steady: dict[str, list[float]] = {name: [] for name in methods}
    predictions: dict[str, Predictions] = {}
    try:
        for round_number in range(repeats):
            names = ["baseline", *methods, *(["Ray Data"] if ray is not None else [])]
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                if name == "baseline":
                    took, _, predictions[name] = baseline.score()
                elif name == "Ray Data":
                    assert ray is not None
                    took, predictions[name] = ray.score()
                else:
                    took, predictions[name] = methods[name].score(requests)
                    stages = methods[name].last_stages[-1]
                    steady[name].append(count / (stages["last_result_written"] - stages["first_part_written"]))
                seconds[name].append(took)
                print(f"round {round_number + 1}: {name:20s} {count / took:8,.0f} files/s")
            for name, classes in predictions.items():
                if problem := differences(predictions["baseline"], classes, allowed=DIFFERENT_CLASSES_ALLOWED):
                    raise SystemExit(f"predictions of {name} differ from the baseline's: {problem}")
    finally:
        for method in methods.values():
            method.close()
        baseline.close()
        if ray is not None:
            ray.close()

    measured = [name for name in seconds if seconds[name]]
    rate = {name: count / median(seconds[name]) for name in measured}
    steady_rate = {name: median(values) for name, values in steady.items()}
    ratios = {f"{name} / baseline": rate[name] / rate["baseline"] for name in methods}
    if "Ray Data" in rate:
        ratios["ours (50) / Ray Data"] = rate["ours (50)"] / rate["Ray Data"]
    scaling = steady_rate["ours (50)"] / (workers * steady_rate["ours, 1 worker (50)"])
    targets = [Target(name, ratios[name], bound, at_least=True) for name, bound in TARGETS.items() if name in ratios]
    if workers > 1:
        targets.append(
            Target(f"{workers} workers' steady rate / ({workers} x one worker's)", scaling, SCALING_TARGET, True)
        )
    rows = [
        {
            "method": name,
            "files/s": rate[name],
            "median s": median(seconds[name]),
            "range s": spread(seconds[name]),
            "steady files/s": steady_rate.get(name, ""),
        }
        for name in measured
    ]
    notes = [
        "baseline: bench/plain_loop.py with torch's default threads, end to end (start, imports, init(), loop, CSV)",
        "ours: invoke -> predictions file; steady = files / (last result - first part), which leaves start and "
        "finalize out",
        f"{workers} workers' steady rate is {steady_rate['ours (50)'] / steady_rate['ours, 1 worker (50)']:.2f}x "
        "one worker's",
        ray_skipped or f"Ray Data: the same run() in an actor pool of {workers}, the whole process timed",
    ]
    report(
        "compute_heavy",
        title="Throughput: a compute-heavy model (MNIST CNN, one file per forward pass)",
        config={"files": count, "workers": workers, "repeats": repeats, "cores": cores()},
        tables={"Files per second": rows},
        targets=targets,
        data={
            "files_per_s": rate,
            "seconds": seconds,
            "steady_files_per_s": steady_rate,
            "ratios": ratios,
            "scaling": scaling,
            "ray_skipped": ray_skipped,
        },
        notes=notes,
        **({"out_dir": out} if out else {}),
    )
