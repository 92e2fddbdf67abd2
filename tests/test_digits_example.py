"""The digits example on its own, as its README walks it: train, write sample requests, score them.

train.py and make_requests.py run as the commands a user types; the scoring script is loaded the way a runner
loads it (by path, with its code folder on sys.path and the model folder in AZUREML_MODEL_DIR).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import torch
from PIL import Image

from tests.example_scripts import EXAMPLE, import_by_path, run_scripts

CODE = EXAMPLE / "code"
# More than the 450 held-out images, so the shifted and noisy copies are written and scored too.
FILES = 500
MINI_BATCH_SIZE = 10


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("digits")


@pytest.fixture(scope="module")
def models(digits_models: dict[str, Path]) -> dict[str, Path]:
    return digits_models


@pytest.fixture(scope="module")
def requests(workdir: Path) -> Path:
    run_scripts(("make_requests.py", "--output", workdir / "requests", "--count", str(FILES)))
    return workdir / "requests"


@pytest.fixture
def example_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a user's `python examples/digits/<script>.py` and the runner put on sys.path.
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(CODE))


@pytest.fixture
def load_driver(monkeypatch: pytest.MonkeyPatch, example_modules: None):
    def load(model_dir: Path) -> ModuleType:
        monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
        driver = import_by_path(CODE / "batch_driver.py", f"batch_driver_{model_dir.name.replace('-', '_')}")
        driver.init()
        return driver

    return load


def score(driver: ModuleType, files: list[Path]) -> pd.DataFrame:
    batches = [files[i : i + MINI_BATCH_SIZE] for i in range(0, len(files), MINI_BATCH_SIZE)]
    return pd.concat([driver.run([str(f) for f in batch]) for batch in batches], ignore_index=True)


def accuracy(predictions: pd.DataFrame, labels_csv: Path) -> float:
    labels = pd.read_csv(labels_csv)
    labels["file"] = labels["file"].map(lambda name: Path(name).name)
    joined = predictions.merge(labels, on="file", validate="one_to_one")
    assert len(joined) == len(predictions)
    return float((joined["class"] == joined["label"]).mean())


@pytest.mark.parametrize("variant", ["standard", "small"])
def test_train_writes_a_model_folder_with_over_90_percent_test_accuracy(models, variant):
    folder = models[variant]
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.pt"]
    config = json.loads((folder / "model.json").read_text())
    assert config["variant"] == variant
    assert config["input"] == {"height": 28, "width": 28, "mode": "L", "scale": "pixel / 255"}
    assert config["test_accuracy"] >= 0.9
    assert config["training"]["seconds"] < 60


def test_training_is_deterministic(example_modules):
    train = import_by_path(EXAMPLE / "train.py", "digits_train")
    threads = torch.get_num_threads()
    torch.set_num_threads(train.DEFAULT_THREADS)  # as train.py's command line does
    try:
        first, _ = train.train("small", epochs=1, seed=3)
        second, _ = train.train("small", epochs=1, seed=3)
    finally:
        torch.set_num_threads(threads)
    for name, tensor in first.state_dict().items():
        assert tensor.equal(second.state_dict()[name]), name


def test_make_requests_writes_distinct_28x28_pngs_in_subfolders_and_labels_beside_them(requests):
    files = sorted(requests.rglob("*.png"))
    assert len(files) == FILES
    assert all(f.parent.parent == requests for f in files) and len({f.parent for f in files}) > 1
    assert len({f.name for f in files}) == FILES  # predictions name files by base name

    labels = pd.read_csv(requests.parent / "labels.csv")
    assert list(labels.columns) == ["file", "label"]
    assert sorted(labels["file"]) == sorted(f.relative_to(requests).as_posix() for f in files)
    assert set(labels["label"]) == set(range(10))
    assert not list(requests.glob("*.csv"))

    for f in files[::50]:
        with Image.open(f) as image:
            assert (image.size, image.mode) == ((28, 28), "L")
    assert len({hashlib.sha256(f.read_bytes()).digest() for f in files}) == FILES


def test_make_requests_never_replaces_a_folder_it_did_not_write(tmp_path, example_modules):
    make_requests = import_by_path(EXAMPLE / "make_requests.py", "digits_make_requests")
    output = tmp_path / "requests"
    (output / "batch-0").mkdir(parents=True)
    (output / "batch-0" / "digit-00000.png").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        make_requests.write_requests(output, 3)
    (output / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="other than sample requests"):
        make_requests.write_requests(output, 3, overwrite=True)
    assert (output / "notes.txt").exists()


@pytest.mark.parametrize("variant", ["standard", "small"])
def test_batch_driver_scores_every_file_with_azure_columns(models, requests, load_driver, variant):
    driver = load_driver(models[variant])
    predictions = score(driver, sorted(requests.rglob("*.png")))

    assert list(predictions.columns) == ["file", "class", "probability"]
    assert len(predictions) == FILES and predictions["file"].is_unique
    assert predictions["class"].between(0, 9).all()
    assert predictions["probability"].between(0.1, 1.0).all()  # the top class of 10 gets at least 1/10
    assert accuracy(predictions, requests.parent / "labels.csv") >= 0.9


def test_batch_driver_runs_one_forward_pass_per_mini_batch(models, requests, load_driver):
    driver = load_driver(models["small"])
    calls = []
    driver.model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    driver.run([str(f) for f in sorted(requests.rglob("*.png"))[:MINI_BATCH_SIZE]])
    assert calls == [MINI_BATCH_SIZE]


def test_batch_driver_leaves_out_files_it_cannot_decode(models, requests, load_driver, tmp_path):
    driver = load_driver(models["small"])
    good = sorted(requests.rglob("*.png"))[:3]
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    predictions = driver.run([str(good[0]), str(bad), str(good[1]), str(good[2])])
    assert list(predictions["file"]) == [f.name for f in good]
    assert list(driver.run([str(bad)]).columns) == ["file", "class", "probability"]


def test_batch_driver_finds_the_model_one_folder_down_as_azure_mounts_it(models, requests, load_driver, tmp_path):
    mount = tmp_path / "azureml-models" / "digits" / "1"
    shutil.copytree(models["small"], mount / "model-small")
    driver = load_driver(mount)
    assert len(driver.run([str(f) for f in sorted(requests.rglob("*.png"))[:4]])) == 4
