"""Train a breast cancer classifier (scikit-learn's bundled dataset, seconds) and save it as an MLflow model.

    python examples/tabular/train.py --output examples/tabular/model --requests examples/tabular/requests

The model folder is what a no-code deployment needs: an `MLmodel` file, the pickled model, and the
requirements.txt that becomes the deployment's environment. The requests are the held-out rows as CSV files
(features only), for invoking the endpoint on.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REQUEST_FILES = 3


def train(output: Path) -> object:
    import mlflow.sklearn

    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    train_x, _, train_y, _ = train_test_split(features, labels, test_size=0.3, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train_x, train_y)
    shutil.rmtree(output, ignore_errors=True)
    # Listing the requirements skips MLflow's inference of them (seconds); cloudpickle needs no extra package.
    mlflow.sklearn.save_model(
        model,
        str(output),
        serialization_format="cloudpickle",
        pip_requirements=[
            f"scikit-learn=={sklearn.__version__}",
            f"cloudpickle=={cloudpickle.__version__}",
            f"pandas=={pd.__version__}",
        ],
    )
    return model


def write_requests(folder: Path) -> pd.DataFrame:
    """The held-out rows, split over a few CSV files; returns them all, in file order."""
    features, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    _, test_x = train_test_split(features, test_size=0.3, random_state=0)
    test_x = test_x.reset_index(drop=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for number, rows in enumerate(np.array_split(np.arange(len(test_x)), REQUEST_FILES)):
        test_x.iloc[rows].to_csv(folder / f"patients-{number}.csv", index=False)
    return test_x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the MLflow model folder to write")
    parser.add_argument("--requests", type=Path, required=True, help="the folder of CSV files to write")
    args = parser.parse_args()
    train(args.output)
    rows = write_requests(args.requests)
    print(f"model: {args.output}\nrequests: {len(rows)} rows in {REQUEST_FILES} files under {args.requests}")


if __name__ == "__main__":
    main()
