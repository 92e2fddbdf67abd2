"""A scoring script for a registered MLflow model, in the shape of Azure's custom MLflow drivers: the model
folder is AZUREML_MODEL_DIR/<its own name>, each mini-batch is a list of CSV file paths, and the result has one
row per CSV row with the file it came from."""

import glob
import os

import mlflow
import pandas as pd


def init():
    global model

    (model_path,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "*", "MLmodel"))
    model = mlflow.pyfunc.load_model(os.path.dirname(model_path))


def run(mini_batch):
    results = []
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        results.append(pd.DataFrame({"file": os.path.basename(file_path), "prediction": model.predict(data)}))
    return pd.concat(results)
