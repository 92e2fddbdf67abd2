"""MLflow no-code deployments: the tabular example end to end on the local backend, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from batch_container.mlflow_scorer import check_requirements
from batch_container.requirements import RequirementsError
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.errors import ValidationError
from batch_endpoints.mlflow_models import pip_requirements
from tests.example_scripts import import_by_path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tabular"


def example_module() -> ModuleType:
    return import_by_path(EXAMPLE / "run.py", "tabular_example_run")


def test_example_scores_csv_rows_with_no_scoring_script_exactly_as_the_models_predict(bep, tmp_path):
    # run() itself fails unless every prediction equals the model's own predict() on the same rows.
    predictions = example_module().run(tmp_path)

    assert list(predictions.columns) == ["file", "row", "mean radius", "prediction"]
    assert predictions.groupby("file")["row"].apply(list).to_dict() == {
        "patients-0.csv": list(range(57)),
        "patients-1.csv": list(range(57)),
        "patients-2.csv": list(range(57)),
    }
    deployment = bep.service.get_deployment("cancer-classifier", "cancer-mlflow")
    assert deployment.code_configuration is None
    assert any(r.startswith("scikit-learn==") for r in deployment.environment.pip_requirements)


def test_a_deployment_without_code_needs_an_mlflow_model(bep, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("1")
    bep("endpoint", "create", "--name", "plain")
    spec = tmp_path / "deployment.yml"
    spec.write_text(json.dumps({"name": "plain", "endpoint_name": "plain", "model": {"path": str(model)}}))

    result = bep("deployment", "create", "--file", spec, ok=False)

    assert result.code == 2
    assert "code_configuration" in result.err and "not an MLflow model (it has no MLmodel file)" in result.err
    assert bep.service.list_deployments("plain") == [] and bep.service.list_models() == []


def test_a_missing_model_requirement_fails_init_with_what_to_install(tmp_path):
    (tmp_path / "requirements.txt").write_text("mlflow==0.0.1\npandas\nsurely-not-a-package-here==1.2\n")

    with pytest.raises(RequirementsError, match=r"lacks: surely-not-a-package-here==1\.2; install them"):
        check_requirements(str(tmp_path))


class Doubler:
    """A stand-in for a loaded pyfunc model: one prediction per row."""

    def predict(self, table):
        return table["x"] * 2


def test_the_scorer_reads_each_file_of_a_mini_batch_whole_and_names_each_prediction(tmp_path, monkeypatch):
    import pandas as pd

    from batch_container import mlflow_scorer

    monkeypatch.setattr(mlflow_scorer, "model", Doubler())
    pd.DataFrame({"x": [1, 2, 3]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"x": [10]}).to_parquet(tmp_path / "b.parquet")

    scored = mlflow_scorer.run([str(tmp_path / "a.csv"), str(tmp_path / "b.parquet")])

    assert scored.values.tolist() == [
        [str(tmp_path / "a.csv"), 0, 2],
        [str(tmp_path / "a.csv"), 1, 4],
        [str(tmp_path / "a.csv"), 2, 6],
        [str(tmp_path / "b.parquet"), 0, 20],
    ]
    assert list(scored.columns) == ["file", "row", "x"]
    (tmp_path / "notes.txt").write_text("x\n1\n")
    with pytest.raises(ValidationError, match=r"notes\.txt is not a CSV, Parquet or JSON lines file"):
        mlflow_scorer.run([str(tmp_path / "notes.txt")])


MLFLOW_CONDA = """\
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip<=24.0
  - pip:
      - mlflow
      - scikit-learn
      - azureml-mlflow
      - --extra-index-url https://example.invalid/simple
name: mlflow-env
"""


def test_an_mlflow_models_environment_is_its_conda_files_pip_section_as_on_azure(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "requirements.txt").write_text("mlflow==2.0\nscikit-learn==1.0\nsurely-not-a-package-here==1.2\n")
    blobs = FolderBlobStore(str(tmp_path / "storage"))
    (model / "conda.yaml").write_text(MLFLOW_CONDA)

    assert pip_requirements(blobs, str(model)) == ["mlflow", "scikit-learn", "azureml-mlflow"]
    check_requirements(str(model))  # requirements.txt's missing pin is not asked for; azureml-mlflow is skipped

    (model / "conda.yaml").unlink()
    assert pip_requirements(blobs, str(model))[-1] == "surely-not-a-package-here==1.2"
    with pytest.raises(RequirementsError, match="surely-not-a-package-here"):
        check_requirements(str(model))


@pytest.mark.slow
def test_a_model_saved_with_mlflows_defaults_scores_with_no_scoring_script(bep, tmp_path):
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 3.0, 5.0, 7.0]})
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    # Nothing but the model and the folder: mlflow picks the serialization format (skops) and the requirements.
    mlflow.sklearn.save_model(model, str(tmp_path / "model"))
    assert (tmp_path / "model" / "model.skops").is_file()
    data = tmp_path / "data"
    data.mkdir()
    frame[["x"]].iloc[:2].to_csv(data / "a.csv", index=False)
    frame[["x"]].iloc[2:].to_csv(data / "b.csv", index=False)
    bep("endpoint", "create", "--name", "line")
    spec = tmp_path / "deployment.yml"
    spec.write_text(json.dumps({"name": "skops", "endpoint_name": "line", "model": {"path": str(tmp_path / "model")}}))
    bep("deployment", "create", "--file", spec, "--set-default")

    job_id = bep("endpoint", "invoke", "--name", "line", "--input", data).out.strip()
    bep("job", "stream", "--name", job_id, ok=False)
    job = bep("job", "show", "--name", job_id).json()

    assert job["status"] == "Completed", job["error"]
    # As on Azure, mini_batch_size counts files, each read whole; every prediction names its file and row.
    assert (job["counts"]["unit"], job["counts"]["files"], job["counts"]["mini_batches"]) == ("files", 2, 1)
    output = pd.read_csv(job["output_uri"]).sort_values(["file", "row"])
    assert output[["file", "row"]].values.tolist() == [["a.csv", 0], ["a.csv", 1], ["b.csv", 0], ["b.csv", 1]]
    assert output["prediction"].round(6).tolist() == [1.0, 3.0, 5.0, 7.0]
