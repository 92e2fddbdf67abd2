"""The Ray Data method of bench/throughput.py, as a whole process: what a user runs with Ray instead of us.

    python bench/ray_loop.py --code DIR --script batch_driver.py --model DIR --input FOLDER --output FILE.csv \
        --mini-batch-size 50 --actors 2 --threads 1

Starts a local Ray cluster, reads the file paths with Ray Data, calls the scoring script's run() on batches of
--mini-batch-size in an actor pool of --actors (init() once per actor), writes one CSV and shuts Ray down.
Whoever starts it times the whole process, as the baseline's: Ray's start is part of what a user waits for.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import ray


class Scorer:
    """A Ray Data actor: the scoring script, init() once, run() per batch."""

    def __init__(self, model: str, code: str, script: str, threads: int) -> None:
        os.environ["AZUREML_MODEL_DIR"] = model
        sys.path.insert(0, code)
        import torch

        torch.set_num_threads(threads)
        scoring = importlib.import_module(Path(script).stem)
        scoring.init()
        self.run = scoring.run

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        frame = self.run([str(p) for p in batch["path"]])
        return {"file": frame["file"].to_numpy(dtype=object), "class": frame["class"].to_numpy()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", required=True, help="folder of the scoring script (put on sys.path)")
    parser.add_argument("--script", default="batch_driver.py", help="the scoring script, in --code")
    parser.add_argument("--model", required=True, help="model folder (AZUREML_MODEL_DIR)")
    parser.add_argument("--input", type=Path, required=True, help="folder of files to score, recursively")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each actor")
    args = parser.parse_args()

    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        paths = sorted(str(p) for p in args.input.rglob("*") if p.is_file())
        rows = (
            ray.data.from_items([{"path": p} for p in paths])
            .map_batches(
                Scorer,
                fn_constructor_kwargs={
                    "model": args.model,
                    "code": args.code,
                    "script": args.script,
                    "threads": args.threads,
                },
                batch_size=args.mini_batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=args.actors),
                # A fraction of a CPU each: with one whole CPU per actor, Ray Data's own read tasks find no free
                # CPU on a machine with as many cores as actors, and the pipeline waits forever.
                num_cpus=round(cpus / (args.actors + 1), 2),
            )
            .take_all()
        )
    finally:
        ray.shutdown()
    pd.DataFrame(rows).to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
