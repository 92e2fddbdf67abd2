"""Azure's Python SDK code, run unchanged but for its import lines (batch_endpoints.azure), on the local backend.

The snippets in tests/azure_sdk_snippets are written in the shapes of Azure's batch endpoint documents and
notebooks; each runs in a folder holding what they name (model, code, environment, data) and must leave Azure's
download layout behind: named-outputs/score/predictions.csv.
"""

from __future__ import annotations

import pickle
import runpy
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints.azure import (
    BatchDeployment,
    BatchDeploymentOutputAction,
    BatchEndpoint,
    BatchRetrySettings,
    BuildContext,
    CodeConfiguration,
    DefaultAzureCredential,
    Environment,
    Input,
    JobException,
    MLClient,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    Output,
    ResourceConfiguration,
)
from batch_endpoints.azure.entities import AmlCompute, Data
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from tests.core_fixtures import write_tree
from tests.server_fixtures import REGION, local_api_fixture  # noqa: F401 (pytest fixture)

SNIPPETS = Path(__file__).parent / "azure_sdk_snippets"
PREDICTIONS = Path("named-outputs") / "score" / "predictions.csv"

# Azure's custom model examples: the model folder sits under AZUREML_MODEL_DIR by its own name.
IRIS_SCRIPT = """\
import glob
import os
import pickle

import pandas as pd


def init():
    global model
    (path,) = glob.glob(f"{os.environ['AZUREML_MODEL_DIR']}/*/model.pkl")
    with open(path, "rb") as f:
        model = pickle.load(f)


def run(mini_batch):
    results = []
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        results.append(
            pd.DataFrame({"file": os.path.basename(file_path), "row": range(len(data)), "label": model.predict(data)})
        )
    return pd.concat(results)
"""

CONDA = """\
name: batch-iris
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip:
      - azureml-core
      - scikit-learn
      - pandas
"""


def iris_folder(root: Path) -> dict[str, list[int]]:
    """A model folder, its scoring code, an environment and three CSV files; returns each file's true classes."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    features = iris.data
    model = LogisticRegression(max_iter=500).fit(features, iris.target)
    (root / "model").mkdir()
    with open(root / "model" / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    write_tree(root / "code", {"batch_driver.py": IRIS_SCRIPT})
    write_tree(root / "environment", {"conda.yaml": CONDA})
    (root / "data").mkdir()
    expected = {}
    for part, rows in enumerate(([0, 1, 60], [70, 120], [140, 149, 2])):
        features.iloc[rows].to_csv(root / "data" / f"iris-{part}.csv", index=False)
        expected[f"iris-{part}.csv"] = model.predict(features.iloc[rows]).tolist()
    return expected


@pytest.mark.slow
def test_a_custom_model_deployment_written_for_azures_sdk_scores_and_downloads_as_on_azure(home, tmp_path, monkeypatch):
    expected = iris_folder(tmp_path)
    monkeypatch.chdir(tmp_path)

    names = runpy.run_path(str(SNIPPETS / "custom_model.py"))

    assert names["scoring_job"].status == "Completed"
    assert names["scoring_job"].name == names["job"].name
    assert [job.name for job in names["jobs"]] == [names["job"].name]
    predictions = pd.read_csv(tmp_path / PREDICTIONS).sort_values(["file", "row"])
    assert predictions.groupby("file")["label"].apply(list).to_dict() == expected
    ml_client = names["ml_client"]
    assert ml_client.batch_deployments.get("iris-sklearn", "iris-batch").compute == "batch-cluster"
    assert ml_client.compute.get("batch-cluster").max_instances == 5


@pytest.mark.slow
def test_an_mlflow_model_written_for_azures_sdk_scores_with_no_script_and_params_override(home, tmp_path, monkeypatch):
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    points = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 3.0, 5.0, 7.0]})
    mlflow.sklearn.save_model(LinearRegression().fit(points[["x"]], points["y"]), str(tmp_path / "model"))
    (tmp_path / "data").mkdir()
    points[["x"]].iloc[:2].to_csv(tmp_path / "data" / "a.csv", index=False)
    points[["x"]].iloc[2:].to_csv(tmp_path / "data" / "b.csv", index=False)
    monkeypatch.chdir(tmp_path)

    names = runpy.run_path(str(SNIPPETS / "mlflow_model.py"))

    job = names["ml_client"].jobs.get(names["job"].name)
    assert job.status == "Completed", job.error
    assert job.deployment_name == "line-mlflow"
    predictions = pd.read_csv(tmp_path / PREDICTIONS)
    assert predictions["prediction"].round(6).tolist() == [1.0, 3.0, 5.0, 7.0]
    with pytest.raises(NotFoundError):
        names["ml_client"].batch_endpoints.get("line-fit")


# ---------------------------------------------------------------------------------------------------- refusals
ECHO_SCRIPT = "def init():\n    pass\n\n\ndef run(mini_batch):\n    return mini_batch\n"


@pytest.fixture
def ml_client(home, tmp_path, monkeypatch) -> MLClient:
    monkeypatch.chdir(tmp_path)
    return MLClient(None, "subscription", "group", "workspace")


@pytest.fixture
def deployed(ml_client, tmp_path) -> MLClient:
    write_tree(tmp_path / "model", {"weights.txt": "1\n"})
    write_tree(tmp_path / "code", {"score.py": ECHO_SCRIPT})
    write_tree(tmp_path / "data", {"a.txt": "a\n"})
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="echo")).result()
    ml_client.batch_deployments.begin_create_or_update(echo_deployment("echo-files")).result()
    return ml_client


def echo_deployment(name: str, code: str = "code", compute: str | None = None, **settings: int) -> ModelBatchDeployment:
    """A deployment of the `echo` endpoint with the inline model in ./model and the script `score.py` in `code`."""
    return ModelBatchDeployment(
        name=name,
        endpoint_name="echo",
        compute=compute,
        model=Model(path="model"),
        code_configuration=CodeConfiguration(code, "score.py"),
        settings=ModelBatchDeploymentSettings(**settings),
    )


def test_a_keyword_azure_does_not_have_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="'descripton'"):
        BatchEndpoint(name="x", descripton="typo")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'subscription'"):
        MLClient(subscription="typo")  # type: ignore[call-arg]


def test_azures_keywords_with_no_meaning_here_are_accepted(ml_client):
    endpoint = BatchEndpoint(name="quiet", location="westeurope", properties={"a": "b"}, auth_mode="aad_token")

    created = ml_client.batch_endpoints.begin_create_or_update(endpoint).result()

    assert created.name == "quiet" and created.provisioning_state == "Succeeded"


def test_a_run_setting_out_of_range_is_refused_naming_it_as_the_yaml_does(deployed, tmp_path):
    deployment = echo_deployment("bad-size", max_concurrency_per_instance=0)

    with pytest.raises(ValidationError) as refused:
        deployed.batch_deployments.begin_create_or_update(deployment)

    assert refused.value.field == "settings.max_concurrency_per_instance"
    assert [d.name for d in deployed.batch_deployments.list("echo")] == ["echo-files"]


def test_an_environment_built_from_a_docker_context_is_refused_naming_build(ml_client, tmp_path):
    environment = Environment(name="built", build=BuildContext(path="docker"))

    with pytest.raises(ValidationError, match="build"):
        ml_client.environments.create_or_update(environment)

    assert ml_client.environments.list() == []


def test_a_model_type_triton_is_refused_naming_type(ml_client, tmp_path):
    write_tree(tmp_path / "model", {"weights.txt": "1\n"})

    with pytest.raises(ValidationError, match="type"):
        ml_client.models.create_or_update(Model(name="t", path="model", type="triton_model"))

    assert ml_client.models.list() == []


def test_an_invoke_needs_exactly_one_data_input(deployed):
    with pytest.raises(ValidationError) as none_given:
        deployed.batch_endpoints.invoke(endpoint_name="echo", inputs={"threshold": 5})
    with pytest.raises(ValidationError) as two_given:
        deployed.batch_endpoints.invoke(
            endpoint_name="echo", inputs={"a": Input(path="data")}, input=Input(path="data")
        )

    assert none_given.value.field == two_given.value.field == "inputs"
    assert list(deployed.jobs.list()) == []


@pytest.mark.parametrize(
    ("params_override", "field"),
    [
        ([{"mini_batch_size": 0}], "params_override.mini_batch_size"),
        ([{"compute.instance_type": "big"}], "params_override.compute.instance_type"),
        # The keys and spellings `bep endpoint invoke --set` takes: one setting once, and no data.
        ([{"mini_batch_size": 2}, {"settings.mini_batch_size": 3}], "params_override.settings.mini_batch_size"),
        ([{"inputs.data.path": "elsewhere"}], "params_override.inputs.data.path"),
    ],
)
def test_a_params_override_azure_cannot_apply_is_refused_naming_it(deployed, params_override, field):
    with pytest.raises(ValidationError) as refused:
        deployed.batch_endpoints.invoke(endpoint_name="echo", input=Input(path="data"), params_override=params_override)

    assert refused.value.field == field
    assert list(deployed.jobs.list()) == []


def test_a_second_output_is_refused_naming_it(deployed):
    outputs = {"score": Output(path="out"), "other": Output(path="out2")}

    with pytest.raises(ValidationError, match="one output") as refused:
        deployed.batch_endpoints.invoke(endpoint_name="echo", input=Input(path="data"), outputs=outputs)

    assert refused.value.field == "outputs.other"
    assert list(deployed.jobs.list()) == []


def test_an_input_is_checked_as_invoke_yaml_checks_it(deployed):
    with pytest.raises(ValidationError) as literal_with_path:
        deployed.batch_endpoints.invoke(
            endpoint_name="echo", inputs={"data": Input(path="data"), "n": Input(type="integer", path="x")}
        )
    with pytest.raises(ValidationError) as not_an_input:
        deployed.batch_endpoints.invoke(endpoint_name="echo", input="data")

    assert literal_with_path.value.field == "inputs.n.path"
    assert not_an_input.value.field == "input"
    assert list(deployed.jobs.list()) == []


def test_an_output_other_than_score_cannot_be_downloaded(ml_client):
    with pytest.raises(ValidationError) as refused:
        ml_client.jobs.download(name="any", output_name="metrics")

    assert refused.value.field == "output_name"


def test_a_cluster_is_created_changed_used_and_deleted_as_on_azure(deployed):
    cluster = AmlCompute(name="batch-cluster", min_instances=0, max_instances=5, tier="low_priority")

    created = deployed.compute.begin_create_or_update(cluster).result()
    changed = deployed.begin_create_or_update(AmlCompute(name="batch-cluster", max_instances=3)).result()
    deployed.batch_deployments.begin_create_or_update(echo_deployment("on-cluster", compute="batch-cluster")).result()
    with pytest.raises(ConflictError):
        deployed.compute.begin_delete("batch-cluster")  # a deployment runs on it
    deployed.batch_deployments.begin_delete("on-cluster", endpoint_name="echo").result()
    deployed.compute.begin_delete("batch-cluster").result()

    assert (created.size, created.tier, created.provisioning_state) == ("Standard_DS3_v2", "low_priority", "Succeeded")
    assert changed.max_instances == 3
    assert [c.name for c in deployed.compute.list(compute_type="amlcompute")] == ["cpu-cluster", "gpu-cluster"]
    assert deployed.compute.list(compute_type="kubernetes") == []


def test_a_cluster_the_backend_owns_is_returned_as_it_is_and_cannot_change(ml_client):
    assert ml_client.begin_create_or_update(AmlCompute(name="cpu-cluster")).result().name == "cpu-cluster"

    with pytest.raises(ValidationError) as own:
        ml_client.compute.begin_update(AmlCompute(name="cpu-cluster", max_instances=9))
    with pytest.raises(ValidationError) as deleted:
        ml_client.compute.begin_delete("gpu-cluster")

    assert own.value.field == deleted.value.field == "name"
    assert ml_client.compute.get("cpu-cluster").max_instances != 9


def test_a_cluster_azure_would_refuse_is_refused_naming_the_field_and_not_created(ml_client):
    with pytest.raises(ValidationError) as bad_size:
        ml_client.compute.begin_create_or_update(AmlCompute(name="odd-cluster", size="Standard_Z1"))
    with pytest.raises(ValidationError) as bad_limits:
        ml_client.compute.begin_create_or_update(AmlCompute(name="odd-cluster", min_instances=3, max_instances=2))
    ml_client.compute.begin_create_or_update(AmlCompute(name="small", size="Standard_DS3_v2")).result()
    with pytest.raises(ValidationError) as resized:
        ml_client.compute.begin_create_or_update(AmlCompute(name="small", size="Standard_NC6s_v3"))
    with pytest.raises(NotFoundError):
        ml_client.compute.begin_update(AmlCompute(name="missing", max_instances=2))

    assert bad_size.value.field == "size"
    assert "min_instances" in str(bad_limits.value)
    assert resized.value.field == "AmlCompute.size"
    assert {c.name for c in ml_client.compute.list()} == {"cpu-cluster", "gpu-cluster", "small"}
    assert ml_client.compute.get("small").size == "Standard_DS3_v2"


def test_a_data_asset_is_referred_to_by_its_id(ml_client, tmp_path):
    write_tree(tmp_path / "data", {"a.txt": "a\n"})

    data = ml_client.data.create_or_update(Data(name="letters", path="data"))

    assert data.id == "azureml:letters:1"
    assert ml_client.data.get("letters", label="latest").path == data.path


@pytest.mark.slow
def test_stream_raises_job_exception_when_the_job_fails(deployed, tmp_path):
    write_tree(
        tmp_path / "bad", {"score.py": "def init():\n    raise RuntimeError('no model')\n\ndef run(b):\n    return b\n"}
    )
    deployed.batch_deployments.begin_create_or_update(echo_deployment("broken", "bad", error_threshold=0)).result()
    job = deployed.batch_endpoints.invoke(endpoint_name="echo", deployment_name="broken", input=Input(path="data"))

    with pytest.raises(JobException, match=job.name):
        deployed.jobs.stream(job.name)
    assert deployed.jobs.get(job.name).status == "Failed"


@pytest.mark.slow
def test_the_same_code_runs_against_a_server_of_the_api(local_api, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_api.credentials.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_api.credentials.secret_access_key)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "model", {"weights.txt": "1\n"})
    write_tree(tmp_path / "code", {"score.py": ECHO_SCRIPT})
    write_tree(tmp_path / "data", {"a.txt": "a\n", "b.txt": "b\n"})
    ml_client = MLClient(DefaultAzureCredential(), "subscription", "group", "workspace", api_url=local_api.url)

    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="echo")).result()
    ml_client.batch_deployments.begin_create_or_update(echo_deployment("echo-files")).result()
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="echo", deployment_name="echo-files", inputs={"letters": Input(path="data")}
    )
    ml_client.jobs.stream(job.name)
    ml_client.jobs.download(name=job.name, output_name="score")

    assert ml_client.jobs.get(job.name).status == "Completed"
    assert sorted(pd.read_csv(tmp_path / PREDICTIONS)["file"]) == ["a.txt", "b.txt"]
    ml_client.compute.begin_create_or_update(AmlCompute(name="remote-cluster", max_instances=2)).result()
    assert "remote-cluster" in [c.name for c in ml_client.compute.list()]
    ml_client.compute.begin_delete("remote-cluster").result()
    with pytest.raises(NotFoundError):
        ml_client.compute.get("remote-cluster")


def test_a_new_endpoint_whose_default_deployment_does_not_exist_is_refused_and_not_created(ml_client):
    endpoint = BatchEndpoint(name="early", defaults={"deployment_name": "later"})

    with pytest.raises(ValidationError) as refused:
        ml_client.batch_endpoints.begin_create_or_update(endpoint)

    assert refused.value.field == "defaults.deployment_name"
    assert ml_client.batch_endpoints.list() == []


def test_an_existing_endpoint_gets_its_description_and_default_deployment(deployed):
    endpoint = deployed.batch_endpoints.get("echo")
    endpoint.description = "files, echoed"
    endpoint.defaults.deployment_name = "echo-files"

    updated = deployed.batch_endpoints.begin_create_or_update(endpoint).result()

    assert (updated.description, updated.defaults.deployment_name) == ("files, echoed", "echo-files")
    assert deployed.batch_endpoints.get("echo").default_deployment == "echo-files"


def test_azures_older_batch_deployment_takes_its_run_settings_as_keywords(deployed):
    deployment = BatchDeployment(
        name="flat",
        endpoint_name="echo",
        model=Model(path="model"),
        code_path="code",
        scoring_script="score.py",
        resources=ResourceConfiguration(instance_count=3, instance_type="Standard_DS3_v2"),
        mini_batch_size=4,
        max_concurrency_per_instance=2,
        output_action=BatchDeploymentOutputAction.SUMMARY_ONLY,
        retry_settings=BatchRetrySettings(max_retries=1, timeout=60),
        error_threshold=5,
    )

    created = deployed.batch_deployments.begin_create_or_update(deployment).result()

    settings = created.settings
    assert (settings.mini_batch_size, settings.instance_count, settings.max_concurrency_per_instance) == (4, 3, 2)
    assert (settings.output_action, settings.error_threshold) == ("summary_only", 5)
    assert (settings.retry_settings.max_retries, settings.retry_settings.timeout) == (1, 60)
    assert created.code_configuration.scoring_script == "score.py"
    assert deployed.batch_deployments.get("flat", endpoint_name="echo").settings == settings


def test_a_literal_input_the_deployment_does_not_declare_is_refused_and_starts_nothing(deployed, home):
    inputs = {"letters": Input(path="data"), "threshold": Input(type="integer", default=5)}

    with pytest.raises(ValidationError) as refused:
        deployed.batch_endpoints.invoke(endpoint_name="echo", deployment_name="echo-files", inputs=inputs)

    assert refused.value.field == "inputs.threshold"
    assert list(deployed.jobs.list()) == []
    assert [p for p in (home / "storage" / "uploads").rglob("*") if p.is_file()] == []  # the upload is removed
