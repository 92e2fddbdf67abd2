"""The baseline of bench/gpu.py: what a user writes for a GPU without us. One process loads the model on the
device, a torch DataLoader decodes the images in `--workers` processes, and the loop forwards each batch.

    python bench/gpu_loop.py --code DIR --model DIR --input FOLDER --output FILE.csv --batch-size N --workers N

The model and the decoding come from the scoring script in --code (ResNet18, read_image, to_batch), so the loop
does the same work as the deployment. Prints one JSON line: {"loop_s": seconds in the loop, "device": what scored}.
It imports nothing of this project, so its start costs what a user's script costs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="folder of the scoring script (put on sys.path)")
    parser.add_argument("--model", type=Path, required=True, help="model folder holding model.pt")
    parser.add_argument("--input", type=Path, required=True, help="folder of images, recursively")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True, help="DataLoader processes decoding the images")
    args = parser.parse_args()

    sys.path.insert(0, str(args.code))
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, Dataset

    script = importlib.import_module("score")
    ResNet18, read_image, to_batch = script.ResNet18, script.read_image, script.to_batch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model = ResNet18()
    model.load_state_dict(torch.load(args.model / "model.pt", map_location=device))
    model.to(device).eval()

    # The order a job cuts mini-batches in: relative paths, sorted.
    paths = sorted(str(p.relative_to(args.input)) for p in args.input.rglob("*") if p.is_file())

    class Images(Dataset[object]):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, index: int) -> object:
            return read_image(args.input / paths[index])

    # Pinned host memory lets the copy to the GPU run asynchronously, as PyTorch's tutorials set it up.
    loader = DataLoader(Images(), batch_size=args.batch_size, num_workers=args.workers, pin_memory=cuda)
    started = time.perf_counter()
    classes = []
    with torch.inference_mode():
        for images in loader:
            classes.append(model(to_batch(images, device)).argmax(dim=1).cpu())
    loop_s = time.perf_counter() - started
    names = [Path(p).name for p in paths]
    pd.DataFrame({"file": names, "class": torch.cat(classes).numpy()}).to_csv(args.output, index=False)
    name = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
    print(json.dumps({"loop_s": loop_s, "device": name}))


if __name__ == "__main__":
    main()
