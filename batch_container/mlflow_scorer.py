"""The scoring script of a no-code deployment: an MLflow model (a folder with an `MLmodel` file), loaded with
`mlflow.pyfunc` once per worker (init), scoring tabular mini-batches (run). It keeps the init()/run() contract of
any scoring script, so the runner treats it like one.

run() gets a DataFrame for tabular inputs and returns the model's predictions, one per row; the runner puts the
input's `file` and `row` next to them. Given file paths instead (input_format: files), it reads each file as a
table and names every row by file and row itself.
"""

from __future__ import annotations

import logging
import os
import re
from importlib import metadata
from typing import Any

import pandas as pd

MLMODEL = "MLmodel"
# The MLflow packages that provide `mlflow.pyfunc`: a model that asks for mlflow is served by mlflow-skinny too.
MLFLOW_DISTRIBUTIONS = ("mlflow", "mlflow-skinny")

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
    """Fail init() with the list to install when a package the model needs is missing here. Versions that
    differ only warn: pinned versions in requirements.txt are what the model was saved with, not a minimum."""
    path = os.path.join(model_dir, "requirements.txt")
    if not os.path.isfile(path):
        return
    missing = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            requirement = line.split("#", 1)[0].strip()
            if not requirement or requirement.startswith("-"):
                continue
            name = re.split(r"[\s<>=!~;\[@]", requirement, maxsplit=1)[0]
            names = MLFLOW_DISTRIBUTIONS if name.lower() in MLFLOW_DISTRIBUTIONS else (name,)
            versions = [_installed(candidate) for candidate in names]
            if not any(versions):
                missing.append(requirement)
            elif "==" in requirement and requirement.split("==", 1)[1].strip() not in versions:
                log.warning("the model was saved with %s; this environment has %s", requirement, versions)
    if missing:
        raise ModuleNotFoundError(
            f"the MLflow model needs packages this environment lacks: {', '.join(missing)}; install them "
            f"(pip install {' '.join(repr(r) for r in missing)}) or give the deployment an environment that has them"
        )


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
