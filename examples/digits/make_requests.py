"""Write sample requests: PNG digits the model never trained on, in nested folders, with their labels.

    python examples/digits/make_requests.py --output examples/digits/sample-requests --count 200

Files go to OUTPUT/batch-K/digit-NNNNN.png (100 per folder, so listing the input has to recurse). The labels
go NEXT to the folder, because the folder itself is what gets scored: labels.csv in OUTPUT's parent folder
unless --labels says otherwise (columns file,label; file relative to OUTPUT). File names are unique across
folders: predictions name files by base name, as Azure's tutorial does, and that is how they join back to the
labels.

The held-out split has 450 images. Beyond that the script cycles through them again, each copy shifted by up
to 2 pixels and with a little noise, so that every file differs (any count up to 100,000 is fine).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from digits_data import shift, train_test_images
from PIL import Image

FILES_PER_FOLDER = 100
MAX_COUNT = 100_000
MAX_SHIFT = 2
NOISE = 12.0  # standard deviation of the added noise, in 8-bit gray levels


def request_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct 28x28 uint8 images with their labels: the held-out split, then varied copies of it."""
    _, _, images, labels = train_test_images()
    rounds = -(-count // len(images))
    rng = np.random.default_rng(seed)
    batches = [images]
    for _ in range(1, rounds):
        moved = shift(images, *rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, (2, len(images))))
        noisy = moved + rng.normal(0.0, NOISE, moved.shape)
        batches.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return np.concatenate(batches)[:count], np.tile(labels, rounds)[:count]


def holds_only_requests(folder: Path) -> bool:
    """True when everything in `folder` is a batch-K folder of PNG files, as this script writes them."""
    return all(
        (path.is_dir() and path.parent == folder and path.name.startswith("batch-"))
        or (path.suffix == ".png" and path.parent.parent == folder)
        for path in folder.rglob("*")
    )


def write_requests(
    output: Path, count: int, *, labels_file: Path | None = None, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write `count` PNGs under `output` and their labels (by default beside it); returns the labels' path."""
    labels_file = labels_file or output.parent / "labels.csv"
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output} is not empty; pass --overwrite to replace it")
        # Never delete what this script did not write: a wrong --output must not cost anyone their files.
        if not holds_only_requests(output):
            raise FileExistsError(f"{output} holds files other than sample requests; not replacing it")
        shutil.rmtree(output)
    images, labels = request_images(count, seed)
    rows = []
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        relative = f"batch-{index // FILES_PER_FOLDER}/digit-{index:05d}.png"
        if index % FILES_PER_FOLDER == 0:
            (output / relative).parent.mkdir(parents=True, exist_ok=True)
        # compress_level=1: a 28x28 image barely compresses anyway, and level 1 is the fastest to write.
        Image.fromarray(image).save(output / relative, compress_level=1)
        rows.append((relative, int(label)))
    labels_file.parent.mkdir(parents=True, exist_ok=True)
    with labels_file.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "label"])
        writer.writerows(rows)
    return labels_file


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="folder to fill with PNG files")
    parser.add_argument("--count", type=int, default=200, help=f"number of files, 1-{MAX_COUNT:,}")
    parser.add_argument("--labels", type=Path, help="labels file to write (default: labels.csv beside OUTPUT)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the shifts and noise of repeated images")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it is not empty")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= MAX_COUNT:
        parser.error(f"--count must be between 1 and {MAX_COUNT:,}")

    started = time.perf_counter()
    try:
        labels_file = write_requests(
            args.output, args.count, labels_file=args.labels, seed=args.seed, overwrite=args.overwrite
        )
    except FileExistsError as exc:
        sys.exit(f"error: {exc}")
    print(
        f"wrote {args.count} PNG files under {args.output} and their labels to {labels_file} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return labels_file


if __name__ == "__main__":
    main()
