"""Classifies the mini-batch's images in one call; each class carries the job's label_prefix input, read from the
variable the deployment's literal inputs arrive in."""

import glob
import os
import pickle

import numpy as np
import pandas as pd
from PIL import Image


def init():
    global model, prefix

    prefix = os.environ.get("BEP_INPUT_LABEL_PREFIX", "")
    (model_file,) = glob.glob(f"{os.environ['AZUREML_MODEL_DIR']}/*/model.pkl")
    with open(model_file, "rb") as file:
        model = pickle.load(file)


def run(mini_batch):
    pixels = np.stack([np.asarray(Image.open(path), dtype=np.float32).ravel() / 255.0 for path in mini_batch])
    classes = [f"{prefix}{digit}" for digit in model.predict(pixels)]
    return pd.DataFrame({"file": [os.path.basename(path) for path in mini_batch], "class": classes})
