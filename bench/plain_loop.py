"""The baseline of bench/throughput.py: what a user writes without us. One process imports the scoring script,
calls init() once, calls run() over the mini-batches in order and writes one CSV.

    python bench/plain_loop.py --code DIR --script batch_driver.py --model DIR --input FOLDER --output FILE.csv

Prints one JSON line: {"loop_s": seconds spent in the loop of run() calls}. Whoever starts it times the rest.
It imports nothing of this project, so its start costs what a user's script costs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="folder of the scoring script (put on sys.path)")
    parser.add_argument("--script", default="batch_driver.py")
    parser.add_argument("--model", type=Path, required=True, help="model folder (AZUREML_MODEL_DIR)")
    parser.add_argument("--input", type=Path, required=True, help="folder of files to score, recursively")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (OMP_NUM_THREADS); 0: torch's default")
    args = parser.parse_args()

    # Set before numpy and torch are imported: they read it once, at import.
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["AZUREML_MODEL_DIR"] = str(args.model)
    sys.path.insert(0, str(args.code))
    spec = importlib.util.spec_from_file_location("scoring_script", args.code / args.script)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    import pandas as pd

    script.init()
    # The order a job cuts mini-batches in: relative paths, sorted.
    paths = sorted((str(p) for p in args.input.rglob("*") if p.is_file()), key=lambda p: os.path.relpath(p, args.input))
    started = time.perf_counter()
    frames = [
        script.run(paths[start : start + args.mini_batch_size]) for start in range(0, len(paths), args.mini_batch_size)
    ]
    loop_s = time.perf_counter() - started
    pd.concat(frames, ignore_index=True).to_csv(args.output, index=False)
    print(json.dumps({"loop_s": loop_s}))


if __name__ == "__main__":
    main()
