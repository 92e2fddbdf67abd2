"""Scoring script for the digits deployments, written as Azure ML's batch endpoint tutorial writes one.

The runner calls `init()` once per worker process and `run(mini_batch)` once per mini-batch, with a list of
local file paths. `run` returns one row per file it could score: files it cannot decode are logged and left
out, so they count as failed files against the deployment's `error_threshold` instead of failing the whole
mini-batch (which would be retried, and fail again).

Nothing here is specific to AWS: the same file runs on Azure ML unchanged.
"""

import glob
import logging
import os
from os.path import basename, dirname, join

import numpy as np
import pandas as pd
import torch
from digits_net import CONFIG_FILE, INPUT_SIZE, load_model, to_tensor  # the code folder is on sys.path
from PIL import Image

logger = logging.getLogger(__name__)

model = None
device = None


def init():
    global model, device

    # A registered model folder lies in AZUREML_MODEL_DIR under its own name, here as on Azure. Looking in
    # AZUREML_MODEL_DIR itself too lets the script be called with the model folder, as the tests do.
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    configs = sorted(glob.glob(join(model_dir, CONFIG_FILE)) + glob.glob(join(model_dir, "*", CONFIG_FILE)))
    if not configs:
        raise FileNotFoundError(f"no {CONFIG_FILE} in {model_dir} or its subfolders")

    # torch already uses the thread count the environment sets (OMP_NUM_THREADS), so it is left alone here.
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    model = load_model(dirname(configs[0]), device)
    logger.info("loaded %s on %s", dirname(configs[0]), device)


def read_image(path):
    """A file as a 28x28 8-bit grayscale array; other sizes and colour images are converted."""
    with Image.open(path) as image:
        image = image.convert("L")
        if image.size != (INPUT_SIZE, INPUT_SIZE):
            image = image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
        return np.asarray(image)


def run(mini_batch):
    logger.info("scoring a mini-batch of %d files", len(mini_batch))

    files, images = [], []
    for path in mini_batch:
        try:
            images.append(read_image(path))
        except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
            logger.warning("skipping %s: %s", path, exc)
            continue
        files.append(basename(path))
    if not files:
        return pd.DataFrame({"file": [], "class": [], "probability": []})

    # One forward pass for the whole mini-batch: per-file calls would leave most of a GPU idle.
    with torch.inference_mode():
        logits = model(to_tensor(np.stack(images)).to(device))
        probabilities, classes = torch.softmax(logits, dim=1).max(dim=1)

    return pd.DataFrame({"file": files, "class": classes.cpu().numpy(), "probability": probabilities.cpu().numpy()})
