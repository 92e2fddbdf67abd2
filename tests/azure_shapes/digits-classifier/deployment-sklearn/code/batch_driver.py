"""The second deployment's scoring script: a pickled scikit-learn classifier in a registered folder, returning
one class per image, in the mini-batch's order."""

import argparse
import glob
import os
import pickle

import numpy as np
from PIL import Image


def init():
    global model

    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--logging_level", type=str, default="info")
    args, _ = parser.parse_known_args()
    print(f"logging level {args.logging_level}")

    (model_file,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "*", "model.pkl"))
    with open(model_file, "rb") as file:
        model = pickle.load(file)


def run(mini_batch):
    pixels = np.stack([np.asarray(Image.open(path), dtype=np.float32).ravel() / 255.0 for path in mini_batch])
    return [int(digit) for digit in model.predict(pixels)]
