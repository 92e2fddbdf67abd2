"""A scoring script written as Azure's batch tutorials write one: init() loads the model, run() opens each file of
the mini-batch, forwards it alone and returns one row per file. The model is the classic MNIST CNN (two
convolutions, a 128-unit dense layer: 1.2M parameters), with the weights bench/throughput.py saved (random: time,
not accuracy, is measured).
"""

import glob
import os

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn


class MnistCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(64 * 12 * 12, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, 10),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def init():
    global model
    # As Azure's examples find it: the registered folder lies in AZUREML_MODEL_DIR under its own name.
    model_path = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "**", "model.pt"), recursive=True)[0]
    model = MnistCnn()
    model.load_state_dict(torch.load(model_path))
    model.eval()


def run(mini_batch):
    results = []
    for image_path in mini_batch:
        image = np.asarray(Image.open(image_path).convert("L"), dtype=np.float32) / 255.0
        with torch.no_grad():
            prediction = model(torch.from_numpy(image).reshape(1, 1, 28, 28)).argmax(dim=1).item()
        results.append([os.path.basename(image_path), prediction])
    return pd.DataFrame(results, columns=["file", "class"])
