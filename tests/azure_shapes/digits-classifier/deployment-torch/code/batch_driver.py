"""A scoring script in the shape of Azure's image classifiers: the logging level from the command line Azure's
batch driver passes, the weights found by glob under AZUREML_MODEL_DIR (a registered folder lies there under its
own name), and a DataFrame of file, class and probability per mini-batch."""

import argparse
import glob
import logging
import os

import numpy as np
import pandas as pd
import torch
from digits_network import DigitsNetwork
from PIL import Image


def init():
    global model

    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--logging_level", type=str)
    args, _ = parser.parse_known_args()
    logging.getLogger().setLevel(args.logging_level.upper())

    model_file = glob.glob(f"{os.environ['AZUREML_MODEL_DIR']}/*/model.pt")[-1]
    model = DigitsNetwork()
    model.load_state_dict(torch.load(model_file))
    model.eval()


def run(mini_batch):
    logging.info("scoring %d images", len(mini_batch))
    results = []
    with torch.no_grad():
        for image_path in mini_batch:
            pixels = np.asarray(Image.open(image_path), dtype=np.float32) / 255.0
            probabilities = torch.softmax(model(torch.from_numpy(pixels)), dim=-1)
            probability, digit = torch.max(probabilities, dim=-1)
            results.append(
                {"file": os.path.basename(image_path), "class": int(digit[0]), "probability": float(probability[0])}
            )
    return pd.DataFrame(results)
