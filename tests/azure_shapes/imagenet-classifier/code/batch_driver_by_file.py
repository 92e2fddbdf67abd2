"""Classifies each image of the mini-batch on its own: one row per file, its name and class."""

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def init():
    global model

    (model_file,) = Path(os.environ["AZUREML_MODEL_DIR"]).glob("*/model.pkl")
    model = pickle.loads(model_file.read_bytes())


def run(mini_batch):
    rows = []
    for image_path in mini_batch:
        pixels = np.asarray(Image.open(image_path), dtype=np.float32).reshape(1, -1) / 255.0
        rows.append({"file": os.path.basename(image_path), "class": str(model.predict(pixels)[0])})
    return pd.DataFrame(rows)
