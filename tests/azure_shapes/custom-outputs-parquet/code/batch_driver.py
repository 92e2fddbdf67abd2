"""Reads each CSV file of the mini-batch, predicts every row and writes the rows with their prediction as a Parquet
file of the same name into the output folder Azure gives the script (AZUREML_BI_OUTPUT_PATH). Nothing is
returned for the job's own output file: the deployment's output_action is summary_only."""

import os
import pickle
from pathlib import Path

import pandas as pd


def init():
    global model, output_path

    output_path = Path(os.environ["AZUREML_BI_OUTPUT_PATH"])
    (model_file,) = Path(os.environ["AZUREML_MODEL_DIR"]).glob("*/model.pkl")
    model = pickle.loads(model_file.read_bytes())


def run(mini_batch):
    for file_path in map(Path, mini_batch):
        scored = pd.read_csv(file_path).assign(prediction=model.predict)
        scored.to_parquet(output_path / f"{file_path.stem}.parquet", index=False)
    return mini_batch
