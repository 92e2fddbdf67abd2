"""The scoring script of a no-code deployment: an MLflow model (a folder with an `MLmodel` file), loaded with
`mlflow.pyfunc` once per worker (init), scoring tabular mini-batches (run). It keeps the init()/run() contract of
any scoring script, so the runner treats it like one.

By default (input_format: auto, as on Azure) run() gets file paths, reads each file whole as one table and names
every prediction by its file and row itself; a file larger than the worker's memory fails, as on Azure. Given a
DataFrame instead (row mini-batches: input_format: tables or a format), it returns the model's predictions, one
per row, and the runner puts the input's `file` and `row` next to them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd

from batch_container import requirements
from batch_endpoints.mlflow_models import CONDA_FILE, REQUIREMENTS_FILE, model_requirements

MLMODEL = "MLmodel"

log = logging.getLogger(__name__)
model: Any = None


def init() -> None:
    global model
    model_dir = find_model_dir(os.environ["MODEL_DIR"])
    check_requirements(model_dir)
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_dir)
    log.info("loaded the MLflow model in %s", model_dir)


def run(mini_batch: Any) -> Any:
    if isinstance(mini_batch, pd.DataFrame):
        return model.predict(mini_batch)
    from batch_container.tables import read_whole_table

    frames = []
    for path in mini_batch:
        table = read_whole_table(path)
        predictions = _frame(model.predict(table))
        predictions.insert(0, "row", range(len(predictions)))
        predictions.insert(0, "file", path)
        frames.append(predictions)
    return pd.concat(frames, ignore_index=True)


def _frame(predictions: Any) -> pd.DataFrame:
    if isinstance(predictions, pd.DataFrame):
        return predictions.reset_index(drop=True)
    if isinstance(predictions, pd.Series):
        return predictions.reset_index(drop=True).to_frame(name=predictions.name or "prediction")
    return pd.DataFrame({"prediction": list(predictions)})


def find_model_dir(folder: str) -> str:
    """The folder holding MLmodel: the model folder itself, or one folder down (a registered parent folder)."""
    if os.path.isfile(os.path.join(folder, MLMODEL)):
        return folder
    for name in sorted(os.listdir(folder)):
        if os.path.isfile(os.path.join(folder, name, MLMODEL)):
            return os.path.join(folder, name)
    raise FileNotFoundError(f"no {MLMODEL} file in the model folder {folder} or the folders in it")


def check_requirements(model_dir: str) -> None:
    """Fail init() with the pip line to run when a package the model needs is missing here. The runner checked
    (or, in the cloud, installed) the deployment's recorded requirements already; this catches a model deployed
    with an image of the user's own, whose environment records none."""
    wanted = model_requirements(_text(model_dir, CONDA_FILE), _text(model_dir, REQUIREMENTS_FILE), where=model_dir)
    requirements.check_installed(requirements.without_azure_only(wanted), needed_by="the MLflow model")


def _text(folder: str, name: str) -> str | None:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()
