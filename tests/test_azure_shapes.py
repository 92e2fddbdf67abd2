"""Azure's published batch walk-throughs, in our own files of the same shapes (tests/azure_shapes/<example>/):
each example's deploy-and-run.sh runs as a real bash script, unchanged, with the az shim (examples/azure/bin/az)
first on PATH, against a local home; then its outputs are checked against the models' own predictions.

One test function per example folder. The models are trained here, in seconds, into the folder's copy, where the
script's `az ml model create --path` finds them, as Azure's examples keep theirs beside the script."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.infra_fixtures import REPOSITORY_ROOT

SHAPES = Path(__file__).resolve().parent / "azure_shapes"
SHIM = REPOSITORY_ROOT / "examples" / "azure" / "bin"
DIGIT_IMAGES = 24
# Where `az ml job download --output-name score --download-path DIR` writes a job's output file in DIR.
SCORES = Path("named-outputs", "score", "predictions.csv")


def example_copy(name: str, workspace: Path) -> Path:
    """The example's folder in workspace, beside the status check its script sources."""
    shutil.copy(SHAPES / "check_job_status.sh", workspace)
    return Path(shutil.copytree(SHAPES / name, workspace / name))


def deploy_and_run(folder: Path, workspace: Path) -> subprocess.CompletedProcess[str]:
    """The folder's deploy-and-run.sh as a user runs it: `bash deploy-and-run.sh` in the folder, the shim first on
    PATH, then `bep` (this interpreter's), a local home of its own."""
    environment = {
        "PATH": os.pathsep.join([str(SHIM), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "PYTHONPATH": str(REPOSITORY_ROOT),
        "HOME": str(workspace),
        "BEP_HOME": str(workspace / "bep-home"),
    }
    finished = subprocess.run(
        ["bash", "deploy-and-run.sh"], cwd=folder, env=environment, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, (
        f"deploy-and-run.sh exited {finished.returncode}:\n{finished.stdout}\n{finished.stderr}"
    )
    return finished


def digit_images(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A few of scikit-learn's 8x8 digits as grey PNG files in folder: their names, pixels (0..1) and labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir()
    names, pixels = [], []
    for index in range(DIGIT_IMAGES):
        image = (digits.images[index] * 15).astype(np.uint8)
        names.append(f"digit-{index:02d}.png")
        Image.fromarray(image, mode="L").save(folder / names[-1])
        pixels.append(image.astype(np.float32).ravel() / 255.0)
    return names, np.stack(pixels), digits.target[:DIGIT_IMAGES]


def train_torch_model(folder: Path, code: Path, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The example's network trained on the images, its state dict saved as folder/model.pt; its classes."""
    import torch

    sys.path.insert(0, str(code))
    try:
        from digits_network import DigitsNetwork
    finally:
        sys.path.remove(str(code))
    torch.manual_seed(0)
    network = DigitsNetwork()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1)
    inputs, targets = torch.from_numpy(pixels), torch.from_numpy(labels)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(network(inputs), targets).backward()
        optimizer.step()
    folder.mkdir()
    torch.save(network.state_dict(), folder / "model.pt")
    with torch.no_grad():
        return network(inputs).argmax(dim=-1).numpy()


def train_sklearn_model(folder: Path, pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(n_neighbors=3).fit(pixels, labels)
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    return model.predict(pixels)


@pytest.mark.slow
def test_digits_classifier_walkthrough_runs_through_the_az_shim(tmp_path: Path) -> None:
    folder = example_copy("digits-classifier", tmp_path)
    names, pixels, labels = digit_images(folder / "data")
    torch_classes = train_torch_model(
        folder / "deployment-torch" / "model", folder / "deployment-torch" / "code", pixels, labels
    )
    sklearn_classes = train_sklearn_model(folder / "deployment-sklearn" / "model", pixels, labels)
    assert (torch_classes == labels).mean() > 0.5  # a model that learnt something, so a wrong file would show

    finished = deploy_and_run(folder, tmp_path)

    # The torch deployment's output, downloaded by `az ml job download --output-name score --download-path ./`.
    by_torch = pd.read_csv(folder / SCORES).sort_values("file")
    assert by_torch["file"].tolist() == names
    assert by_torch["class"].tolist() == torch_classes.tolist()
    assert by_torch["probability"].between(0, 1).all()
    # The job with its own output file name, written under the datastore path the script gave.
    (renamed,) = (folder / "named-output" / "named-outputs" / "score").glob("predictions_*.csv")
    assert pd.read_csv(renamed).sort_values("file")["class"].tolist() == torch_classes.tolist()
    # The second deployment, made the default with `--set defaults.deployment_name=...`, scored the last job.
    by_default = pd.read_csv(folder / "default-output" / SCORES)
    by_default = by_default.sort_values("file")
    assert by_default["file"].tolist() == names
    assert by_default.iloc[:, -1].tolist() == sklearn_classes.tolist()
    assert "Job completed" in finished.stdout and "digits-sklearn-dpl" in finished.stdout


def iris_data(folder: Path, parts: int = 3, rows: int = 4) -> tuple[pd.DataFrame, np.ndarray]:
    """Iris measurements and species; a few rows of each species, without it, as CSV files data/iris-<n>.csv."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.drop(columns="target")
    frame.columns = [name.removesuffix(" (cm)").replace(" ", "_") for name in frame.columns]
    folder.mkdir()
    for index in range(parts):
        frame.iloc[index * 7 :: 50][:rows].to_csv(folder / f"iris-{index}.csv", index=False)
    return frame, iris.target.to_numpy()


@pytest.mark.slow
def test_iris_mlflow_walkthrough_scores_without_and_with_a_scoring_script(tmp_path: Path) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    folder = example_copy("iris-classifier-mlflow", tmp_path)
    features, species = iris_data(folder / "data")
    model = LogisticRegression(max_iter=500).fit(features, species)
    # mlflow's own serialization format (skops); the requirements named, as inferring them takes seconds.
    mlflow.sklearn.save_model(model, str(folder / "model"), pip_requirements=["mlflow", "scikit-learn", "pandas"])

    deploy_and_run(folder, tmp_path)

    # Without a scoring script (each CSV file read whole, as Azure's scorer reads it) and with one (given the files'
    # paths), every row of every file gets the prediction the model's own predict() gives it.
    for output in (folder / SCORES, folder / "custom-output" / SCORES):
        predictions = pd.read_csv(output)
        assert sorted(predictions["file"].unique()) == ["iris-0.csv", "iris-1.csv", "iris-2.csv"]
        for name, rows in predictions.groupby("file"):
            written = pd.read_csv(folder / "data" / str(name))
            assert rows["prediction"].tolist() == model.predict(written).tolist(), output


@pytest.mark.slow
def test_custom_outputs_walkthrough_writes_one_parquet_file_per_input_and_downloads_them(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    folder = example_copy("custom-outputs-parquet", tmp_path)
    features, species = iris_data(folder / "data")
    model = LogisticRegression(max_iter=500).fit(features, species)
    (folder / "model").mkdir()
    (folder / "model" / "model.pkl").write_bytes(pickle.dumps(model))

    deploy_and_run(folder, tmp_path)

    # What the script wrote to AZUREML_BI_OUTPUT_PATH came down with `az ml job download --output-name score`;
    # found by name, wherever the download puts them.
    downloaded = {path.name: path for path in folder.rglob("*.parquet")}
    assert sorted(downloaded) == ["iris-0.parquet", "iris-1.parquet", "iris-2.parquet"]
    for name, path in downloaded.items():
        written = pd.read_csv(folder / "data" / name.replace(".parquet", ".csv"))
        assert pd.read_parquet(path)["prediction"].tolist() == model.predict(written).tolist(), name
    assert not list(folder.rglob("predictions.csv"))  # summary_only: no output file of the job's own


def downloaded_classes(folder: Path) -> dict[str, str]:
    """The class of each file in the one predictions.csv downloaded under folder."""
    (predictions,) = folder.rglob("predictions.csv")
    frame = pd.read_csv(predictions, dtype=str)
    return dict(zip(frame["file"], frame["class"], strict=True))


@pytest.mark.slow
def test_imagenet_walkthrough_updates_its_deployment_in_place_and_takes_inputs_by_set_and_by_file(
    tmp_path: Path,
) -> None:
    folder = example_copy("imagenet-classifier", tmp_path)
    names, pixels, labels = digit_images(folder / "data")
    classes = train_sklearn_model(folder / "model", pixels, labels)

    deploy_and_run(folder, tmp_path)

    expected = {name: str(digit) for name, digit in zip(names, classes, strict=True)}
    # The first deployment, one image at a time; then the same name created again from the by-batch YAML and
    # updated with --set settings.mini_batch_size=8.
    assert downloaded_classes(folder / "by-file") == expected
    assert (folder / "mini-batch-size.txt").read_text().strip() == "8"
    # Invoked with --set inputs.NAME.type/path and outputs.score.path, then with inputs.yml's literal input.
    assert downloaded_classes(folder / "by-set") == expected
    assert (folder / "set-mini-batch-size.txt").read_text().strip() == "3"
    assert downloaded_classes(folder / "by-inputs-file") == {name: f"digit-{c}" for name, c in expected.items()}
