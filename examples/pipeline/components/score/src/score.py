"""Score each CSV file of a mini-batch with the MLflow model the step is given: one row per patient, named by its
file and row, with the predicted class."""

import os

import mlflow.pyfunc
import pandas as pd

model = None


def init():
    global model
    # The step's model input, as a parallel step's job finds its model.
    model = mlflow.pyfunc.load_model(os.environ["MODEL_DIR"])


def run(mini_batch):
    results = []
    for path in mini_batch:
        rows = pd.read_csv(path)
        predicted = model.predict(rows)
        results.append(pd.DataFrame({"file": path, "row": range(len(rows)), "prediction": predicted}))
    return pd.concat(results)
