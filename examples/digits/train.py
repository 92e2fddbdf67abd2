"""Train the digits classifier and write a model folder ready to register.

    python examples/digits/train.py --output examples/digits/model
    python examples/digits/train.py --output examples/digits/model-small --variant small

The data is scikit-learn's bundled digits (see digits_data.py), so training needs no download and takes
seconds on a CPU. Training is seeded and deterministic: the same command writes the same weights.
The output folder holds `model.pt` (a state_dict) and `model.json` (what the scoring script needs to rebuild
the net, plus the measured test accuracy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from digits_data import train_test_images
from torch import nn

# The network lives with the scoring code, so the deployment's code folder is all a worker needs.
sys.path.insert(0, str(Path(__file__).resolve().parent / "code"))
from digits_net import VARIANTS, build_net, save_model, to_tensor

DEFAULT_EPOCHS = 12
BATCH_SIZE = 32
LEARNING_RATE = 5e-3
# One thread by default. Float sums are ordered differently with more threads, so one thread makes the weights
# bit-identical on every machine. It also keeps training fast when the cores are shared: measured on 2 cores
# for the standard variant, two threads take 3.8 s instead of 5-7 s when the cores are idle, but 99 s instead
# of 11 s when other processes keep them busy (OpenMP threads wait on each other).
DEFAULT_THREADS = 1
# Random shifts of up to 2 pixels each way: the sample requests include shifted copies, and real scans are
# never perfectly centred.
MAX_SHIFT = 2


def shifted(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    offsets = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (len(batch), 2), generator=generator)
    # The 4-pixel black margin around each digit makes roll's wrap-around harmless.
    return torch.stack(
        [torch.roll(image, (int(dy), int(dx)), dims=(1, 2)) for image, (dy, dx) in zip(batch, offsets, strict=True)]
    )


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    with torch.inference_mode():
        predicted = net(images).argmax(dim=1)
    return float((predicted == labels).float().mean())


def train(variant: str, epochs: int, seed: int) -> tuple[nn.Module, float]:
    """Train one variant; returns the net and its accuracy on the held-out split."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    x_train, y_train, x_test, y_test = train_test_images()
    train_images, train_labels = to_tensor(x_train), torch.from_numpy(y_train)
    test_images, test_labels = to_tensor(x_test), torch.from_numpy(y_test)

    net = build_net(variant)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARNING_RATE, total_steps=epochs * -(-len(train_images) // BATCH_SIZE)
    )
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(train_images), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = loss_fn(net(shifted(train_images[index], generator)), train_labels[index])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        print(f"epoch {epoch}/{epochs}: loss {total / len(order):.4f}")
    return net, accuracy(net, test_images, test_labels)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="model folder to write (created if missing)")
    parser.add_argument(
        "--variant",
        choices=list(VARIANTS),
        default="standard",
        help="'small' has half the channels: the cheaper second deployment",
    )
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    net, test_accuracy = train(args.variant, args.epochs, args.seed)
    seconds = time.perf_counter() - started
    save_model(
        net,
        args.output,
        variant=args.variant,
        test_accuracy=round(test_accuracy, 4),
        training={
            "epochs": args.epochs,
            "seed": args.seed,
            "threads": args.threads,
            "seconds": round(seconds, 1),
            "torch": torch.__version__.split("+")[0],
        },
    )
    parameters = sum(p.numel() for p in net.parameters())
    print(
        f"variant {args.variant} ({parameters:,} parameters): test accuracy {test_accuracy:.4f} "
        f"after {args.epochs} epochs in {seconds:.1f} s -> {args.output}"
    )
    return test_accuracy


if __name__ == "__main__":
    main()
