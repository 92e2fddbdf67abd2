"""GPU throughput: 224x224 images decoded on the CPU and scored by a ResNet-18, ours on gpu-cluster against a
hand-written DataLoader loop, in one run, as images per second and their ratio.

    python bench/gpu.py [--images N] [--repeats 3] [--workers N] [--mini-batch-size 64] [--image-size 224]

Runs on the GPU when torch finds one (CUDA), else on the CPU at a size small enough for a test: the same code
path, numbers that say nothing about a GPU. Inputs are made once under bench/.data (BENCH_DATA): a few hundred
distinct RGB JPEGs (the digit PNGs, upscaled and tinted), repeated under new names up to --images files.

(a) loop: bench/gpu_loop.py, one process with the model on the device, DataLoader(num_workers=--workers)
    decoding with Pillow, batches of --mini-batch-size; what a user writes without us. Timed end to end (process
    start, imports, CUDA start, model load, the loop, the CSV); its loop alone is reported too.
(b) ours: the local backend on gpu-cluster, invoke -> predictions file, --workers workers sharing the one GPU,
    mini_batch_size --mini-batch-size, bench/resnet_code/score.py: each run() decodes its mini-batch on the CPU
    and forwards it in one pass. Its steady rate (first part -> last result) leaves the fixed start out.

Why as many workers as cores, by default: decoding a 224x224 JPEG costs the CPU about a millisecond, and a
forward pass of 64 such images costs a data-centre GPU a few, so the CPU feeds the GPU and every core should be
decoding. The loop gets the same number of decoding processes. Each of ours' workers holds its own CUDA context
(a few hundred MB of GPU memory) and the GPU time-slices their forward passes; the loop funnels every batch
through one process instead, which collates, pins and copies it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from common import BENCH, DATA, LocalHome, Target, cores, digit_requests, median, relative_files, report, spread, timed
from PIL import Image
from throughput import Deploy, Ours, Predictions, classes_of, differences

CODE = BENCH / "resnet_code"
TARGET = 0.9  # ours / the loop, images per second end to end
DISTINCT_IMAGES = 256
PER_FOLDER = 1000
# Sizes per device: a GPU run long enough that the fixed start of either method is a small part of it, and a CPU
# run short enough for a test.
DEFAULT_IMAGES = {"cuda": 100_000, "cpu": 128}
# Random weights make near-ties between two of 1,000 classes possible, and the two methods' forward passes may
# round differently (one torch thread against several, or another cuDNN algorithm): a few files in 10,000 may
# change class without anything being wrong.
DIFFERENT_CLASSES_ALLOWED = 0.001


def cuda_available() -> bool:
    # Asks the driver how many devices there are; no CUDA context is created in this process.
    import torch

    return torch.cuda.is_available()


def resnet_model() -> Path:
    """The ResNet-18's weights, random from a fixed seed, saved once and kept."""
    folder = DATA / "resnet18"
    if not (folder / "model.pt").exists():
        sys.path.insert(0, str(CODE))
        import torch

        torch.manual_seed(0)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(importlib.import_module("score").ResNet18().state_dict(), folder / "model.pt")
    return folder


def rgb_images(count: int, size: int) -> Path:
    """`count` size x size RGB JPEGs, PER_FOLDER to a folder (made once, kept): DISTINCT_IMAGES digits upscaled
    and tinted, then copied under new names."""
    folder = DATA / f"rgb-{size}-{count}"
    done = DATA / f".rgb-{size}-{count}.complete"  # beside the folder: anything inside it would be an input
    if done.exists():
        return folder
    print(f"writing {count:,} {size}x{size} JPEGs into {folder} (once) ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    digits, _ = digit_requests(DISTINCT_IMAGES)
    sources = relative_files(digits)[:DISTINCT_IMAGES]

    def image(index: int) -> Path:
        return folder / f"part-{index // PER_FOLDER:04d}" / f"image-{index:07d}.jpg"

    for index in range(count):
        if index % PER_FOLDER == 0:
            image(index).parent.mkdir(parents=True)
        if index < len(sources):
            with Image.open(sources[index]) as digit:
                gray = digit.convert("L").resize((size, size), Image.Resampling.BILINEAR)
            tint = (64 + index * 37 % 192, 64 + index * 91 % 192, 64 + index * 53 % 192)
            channels = [gray.point(lambda value, top=top: value * top // 255) for top in tint]
            Image.merge("RGB", channels).save(image(index), quality=90)
        else:
            shutil.copyfile(image(index % len(sources)), image(index))
    done.touch()
    return folder


class DataLoaderLoop:
    """bench/gpu_loop.py in a process of its own."""

    def __init__(self, model: Path, images: Path, *, workers: int, batch_size: int) -> None:
        self.output = Path(tempfile.mkdtemp(prefix="bench-gpu-loop-")) / "predictions.csv"
        self.command = [
            *(sys.executable, str(BENCH / "gpu_loop.py"), "--code", str(CODE), "--model", str(model)),
            *("--input", str(images), "--output", str(self.output)),
            *("--batch-size", str(batch_size), "--workers", str(workers)),
        ]
        self.device = ""

    def score(self) -> tuple[float, float, Predictions]:
        """(seconds end to end, seconds of the loop alone, predictions)."""
        self.output.unlink(missing_ok=True)
        seconds, done = timed(lambda: subprocess.run(self.command, check=True, capture_output=True, text=True))
        said = json.loads(done.stdout.strip().splitlines()[-1])
        self.device = said["device"]
        return seconds, said["loop_s"], classes_of(pd.read_csv(self.output))

    def close(self) -> None:
        shutil.rmtree(self.output.parent, ignore_errors=True)


def deploy(model: Path) -> Deploy:
    def on(home: LocalHome, workers: int, mini_batch_size: int) -> str:
        return home.deploy_code(
            "resnet", CODE, model, workers=workers, mini_batch_size=mini_batch_size, compute="gpu-cluster"
        )

    return on


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="images to score (default: 100,000 on a GPU, 128)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (a) and (b); medians are reported")
    parser.add_argument("--workers", type=int, default=cores(), help="ours' workers and the loop's DataLoader's")
    parser.add_argument("--mini-batch-size", type=int, default=64, help="images per run() and per loop batch")
    parser.add_argument("--image-size", type=int, default=224, help="pixels a side (tests make it small)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)

    device = "cuda" if cuda_available() else "cpu"
    count = args.images or DEFAULT_IMAGES[device]
    model = resnet_model()
    images = rgb_images(count, args.image_size)
    print(f"{count:,} {args.image_size}x{args.image_size} images on {device}, {args.workers} workers, {cores()} cores")
    loop = DataLoaderLoop(model, images, workers=args.workers, batch_size=args.mini_batch_size)
    ours = Ours(workers=args.workers, mini_batch_size=args.mini_batch_size, deploy=deploy(model))
    seconds: dict[str, list[float]] = {"loop": [], "loop alone": [], "ours": []}
    steady: list[float] = []
    try:
        for round_number in range(args.repeats):
            # A different order each round, so that neither always runs on a machine the other just warmed.
            for name in ["loop", "ours"] if round_number % 2 == 0 else ["ours", "loop"]:
                if name == "loop":
                    took, loop_s, reference = loop.score()
                    seconds["loop alone"].append(loop_s)
                else:
                    took, predicted = ours.score(images)
                    stages = ours.last_stages[-1]
                    steady.append(count / (stages["last_result_written"] - stages["first_part_written"]))
                seconds[name].append(took)
                print(f"round {round_number + 1}: {name:5s} {count / took:9,.0f} images/s", flush=True)
            if problem := differences(reference, predicted, allowed=DIFFERENT_CLASSES_ALLOWED):
                raise SystemExit(f"ours' predictions differ from the loop's: {problem}")
    finally:
        ours.close()
        loop.close()

    rate = {name: count / median(values) for name, values in seconds.items()}
    ratio = rate["ours"] / rate["loop"]
    steady_rate = median(steady)
    rows = [
        {
            "method": label,
            "images/s": rate[name],
            "median s": median(seconds[name]),
            "range s": spread(seconds[name]),
            "ours / this": rate["ours"] / rate[name] if name != "ours" else "",
        }
        for name, label in (
            ("loop", f"(a) DataLoader(num_workers={args.workers}) loop, end to end"),
            ("loop alone", "(a) its loop alone (no start, no model load)"),
            ("ours", f"(b) ours, gpu-cluster, {args.workers} workers, invoke -> predictions file"),
        )
    ]
    notes = [
        f"device: {loop.device}; {args.workers} workers of ours share it, and {args.workers} DataLoader processes "
        "feed the loop's one model",
        f"ours' steady rate (first part -> last result): {steady_rate:,.0f} images/s, "
        f"{steady_rate / rate['loop alone']:.2f}x the loop alone",
        "predictions: the same class for every file, or all but "
        f"{DIFFERENT_CLASSES_ALLOWED:.1%} (near-ties of random weights), checked every round",
    ]
    if device == "cpu":
        notes.append("no CUDA here: both ran on the CPU at a test's size, which says nothing about a GPU")
    report(
        "gpu" if device == "cuda" else "gpu-on-cpu",
        title=f"GPU throughput: ResNet-18 on {args.image_size}x{args.image_size} JPEGs decoded on the CPU",
        config={
            "images": count,
            "image_size": args.image_size,
            "mini_batch_size": args.mini_batch_size,
            "workers": args.workers,
            "device": loop.device,
            "repeats": args.repeats,
        },
        tables={"Images per second": rows},
        targets=[Target("ours / DataLoader loop", ratio, TARGET, at_least=True)],
        data={
            "images_per_s": rate,
            "seconds": seconds,
            "ours_steady_images_per_s": steady_rate,
            "ratio": ratio,
            "ours_stages_each_round": ours.last_stages,
        },
        notes=notes,
        **({"out_dir": args.out} if args.out else {}),
    )


if __name__ == "__main__":
    main()
