"""A GPU scoring script as Azure's image tutorials write one: init() puts the model on the GPU when there is one,
run() decodes the mini-batch's images on the CPU with Pillow and scores them in one forward pass.

The model is a ResNet-18 (11.7M parameters: torchvision's `resnet18` layout, written out here so nothing beyond
torch is needed) with the random weights bench/gpu.py saved: time, not accuracy, is measured. bench/gpu.py's
DataLoader loop imports `ResNet18`, `read_image` and `to_batch` from this file, so both methods do the same work.
"""

import glob
import os

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

# ImageNet's channel statistics, as every torchvision classifier normalises its input.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        stages, inputs = [], 64
        for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
            inputs = outputs
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def read_image(path):
    """A file as an RGB uint8 array, height x width x 3."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def to_batch(images, device):
    """uint8 images (n, h, w, 3), an array or a tensor -> normalised float (n, 3, h, w) on `device`: the bytes
    cross to the GPU as uint8, a quarter of their float size, and are converted there."""
    batch = torch.as_tensor(images).to(device, non_blocking=True)
    batch = batch.permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return (batch - mean) / std


def init():
    global model, device
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    path = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "**", "model.pt"), recursive=True)[0]
    model = ResNet18()
    model.load_state_dict(torch.load(path, map_location=device))
    model.to(device).eval()


def run(mini_batch):
    images = np.stack([read_image(path) for path in mini_batch])
    with torch.inference_mode():
        classes = model(to_batch(images, device)).argmax(dim=1).cpu().numpy()
    return pd.DataFrame({"file": [os.path.basename(p) for p in mini_batch], "class": classes})
