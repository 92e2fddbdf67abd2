"""The digits classifier, in one place: train.py builds and saves it, batch_driver.py loads it.

The net sees what MNIST looks like: a 28x28 8-bit grayscale image, white digit on black, scaled to [0, 1].
Two sizes share one architecture, so a second deployment can serve a cheaper model with the same scoring
script. A model folder holds the weights (`model.pt`, a state_dict) and `model.json`, which records the
layer sizes the weights need, so loading never depends on this file's defaults staying the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

INPUT_SIZE = 28
CLASSES = 10
WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "model.json"

# variant -> (channels of the two conv layers, width of the hidden dense layer)
VARIANTS: dict[str, tuple[tuple[int, int], int]] = {
    "standard": ((16, 32), 64),
    "small": ((8, 16), 32),
}


class DigitsNet(nn.Module):
    """Two conv + max-pool stages (28 -> 14 -> 7) and a small dense head; returns logits for 10 digits."""

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 64) -> None:
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = INPUT_SIZE // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(second * side * side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, CLASSES),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


def build_net(variant: str) -> DigitsNet:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    channels, hidden = VARIANTS[variant]
    return DigitsNet(channels, hidden)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images shaped (n, 28, 28) -> float tensor (n, 1, 28, 28) in [0, 1], as the net expects."""
    if images.ndim != 3 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected images shaped (n, {INPUT_SIZE}, {INPUT_SIZE}), got {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / 255.0).unsqueeze(1)


def save_model(net: DigitsNet, folder: Path, *, variant: str, **facts: Any) -> None:
    """Write the model folder: weights plus the config needed to rebuild the net (and `facts` for people)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / WEIGHTS_FILE)
    channels, hidden = VARIANTS[variant]
    config = {
        "architecture": "DigitsNet",
        "variant": variant,
        "channels": list(channels),
        "hidden": hidden,
        "input": {"height": INPUT_SIZE, "width": INPUT_SIZE, "mode": "L", "scale": "pixel / 255"},
        "classes": list(range(CLASSES)),
        **facts,
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def load_model(folder: Path, device: torch.device | str = "cpu") -> DigitsNet:
    """Rebuild the net recorded in `folder/model.json`, load its weights, and put it in eval mode on `device`."""
    config = json.loads((Path(folder) / CONFIG_FILE).read_text())
    net = DigitsNet(tuple(config["channels"]), config["hidden"])
    state = torch.load(Path(folder) / WEIGHTS_FILE, map_location=device, weights_only=True)
    net.load_state_dict(state)
    return net.to(device).eval()
