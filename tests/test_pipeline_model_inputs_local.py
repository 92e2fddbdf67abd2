"""A pipeline deployment's mlflow_model and custom_model inputs at invoke, as Azure's pipeline jobs take them: a
registered model (azureml:name:version, name@latest) or a folder, reaching the step as the model's folder; and
each bad one refused naming it, with no job made."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_pipeline_jobs_local import ended

PIPELINE = """\
type: pipeline
name: with-model
inputs:
  model: {type: custom_model}
outputs:
  seen: {type: uri_folder}
jobs:
  read:
    type: command
    component:
      inputs: {model: {type: custom_model}}
      outputs: {seen: {type: uri_folder}}
      command: cp ${{inputs.model}}/weights.txt ${{outputs.seen}}/weights.txt
    inputs:
      model: ${{parent.inputs.model}}
    outputs:
      seen: ${{parent.outputs.seen}}
"""


@pytest.fixture(name="project")
def project_fixture(bep, home, tmp_path: Path) -> Path:
    (tmp_path / "pipeline.yml").write_text(PIPELINE)
    (tmp_path / "deployment.yml").write_text(
        "name: steps\nendpoint_name: shop\ntype: pipeline\ncomponent: pipeline.yml\n"
    )
    for version in ("1", "2"):
        (tmp_path / f"model-{version}").mkdir()
        (tmp_path / f"model-{version}" / "weights.txt").write_text(f"weights {version}")
        bep("model", "create", "--name", "heart", "--type", "custom_model", "--path", tmp_path / f"model-{version}")
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", tmp_path / "deployment.yml", "--set-default")
    return tmp_path


def weights_seen(bep, *sets: str) -> str:
    job = ended(bep, bep("endpoint", "invoke", "--name", "shop", "--set", *sets).out.split()[0])
    assert job["status"] == "Completed", job
    return (Path(job["pipeline"]["outputs"]["seen"]) / "weights.txt").read_text()


@pytest.mark.parametrize(
    ("path", "weights"),
    [("azureml:heart:1", "weights 1"), ("azureml:heart@latest", "weights 2"), ("model-1", "weights 1")],
)
def test_a_model_input_reaches_the_step_as_the_models_folder(bep, project, monkeypatch, path, weights):
    monkeypatch.chdir(project)

    assert weights_seen(bep, "inputs.model.type=custom_model", f"inputs.model.path={path}") == weights


@pytest.mark.parametrize(
    ("sets", "field", "code"),
    [
        (["inputs.model.type=custom_model", "inputs.model.path=azureml:heart:9"], "inputs.model.path", 3),
        (["inputs.model.type=custom_model", "inputs.model.path=azureml:nothing:1"], "inputs.model.path", 3),
        (["inputs.model.type=custom_model", "inputs.model.path=model-1/weights.txt"], "inputs.model.path", 2),
        (["inputs.model.type=uri_file", "inputs.model.path=model-1/weights.txt"], "inputs.model", 2),
        (["inputs.model.type=mlflow_model"], "inputs.model.path", 2),
        (["inputs.model=heart"], "inputs.model", 2),
        ([], "inputs.model", 2),
    ],
)
def test_a_bad_model_input_is_refused_naming_it_and_makes_no_job(bep, project, monkeypatch, sets, field, code):
    monkeypatch.chdir(project)

    refused = bep("endpoint", "invoke", "--name", "shop", *(["--set", *sets] if sets else []), ok=False)

    assert refused.code == code, refused
    assert field in refused.err, refused.err
    assert bep("job", "list", "--endpoint-name", "shop", "--output", "json").json() == []
