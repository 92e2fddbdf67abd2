"""The README's SDK walk-through against `bep serve`: register the digits model, create the endpoint and its
deployment, invoke on the example's PNG files, follow the job to its end and download the predictions."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints.client import AuthenticationError, BatchEndpointsClient
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.specs import CodeConfiguration, Deployment, Endpoint, Environment, Model, RunSettings
from tests.server_fixtures import LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"
FILES = 24


@pytest.fixture(name="client")
def client_fixture(local_api: LocalApi) -> BatchEndpointsClient:
    return BatchEndpointsClient(local_api.url, session=local_api.session())


@pytest.mark.slow
def test_deploy_invoke_stream_and_download_the_digits_example(
    client: BatchEndpointsClient, digits_models: dict[str, Path], tmp_path: Path
) -> None:
    requests = tmp_path / "requests"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_requests.py"), "--output", str(requests), "--count", str(FILES)],
        check=True,
        capture_output=True,
    )

    model = client.models.create_or_update(Model(name="digits", version="1", path=str(digits_models["standard"])))
    endpoint = client.batch_endpoints.create_or_update(Endpoint(name="digits-classifier", description="digits"))
    deployment = client.batch_deployments.create_or_update(
        Deployment(
            name="digits-cnn",
            endpoint_name=endpoint.name,
            model=model.ref,
            code_configuration=CodeConfiguration(code=str(EXAMPLE / "code"), scoring_script="batch_driver.py"),
            settings=RunSettings(mini_batch_size=10, max_concurrency_per_instance=2),
        ),
        set_default=True,
    )
    started = client.batch_endpoints.invoke(endpoint.name, input=str(requests))
    progress = io.StringIO()
    job = client.jobs.stream(started.id, out=progress, interval_s=0.2, timeout_s=300)
    predictions = client.jobs.download(job.id, download_path=str(tmp_path / "download"))

    assert client.models.get("digits").ref == "digits:1"
    assert client.batch_endpoints.get(endpoint.name).default_deployment == deployment.name
    assert [d.name for d in client.batch_deployments.list(endpoint_name=endpoint.name)] == ["digits-cnn"]
    assert job.status == "Completed", job.error
    assert job.counts.files == job.counts.files_succeeded == FILES
    assert "Completed" in progress.getvalue()
    assert [j.id for j in client.jobs.list(endpoint.name)] == [job.id]
    rows = pd.read_csv(predictions)
    assert len(rows) == FILES and set(rows.columns) >= {"file"}
    assert Path(predictions) == tmp_path / "download" / "named-outputs" / "score" / "predictions.csv"
    with pytest.raises(ConflictError):
        client.jobs.cancel(job.id)  # it has ended


def test_refusals_arrive_as_the_projects_typed_errors(client: BatchEndpointsClient, local_api: LocalApi) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.batch_endpoints.get("no-such-endpoint")
    with pytest.raises(ValidationError) as invalid:
        client.batch_endpoints.create_or_update(Endpoint.model_construct(name="1-bad", description="", tags={}))
    with pytest.raises(AuthenticationError) as refused:
        BatchEndpointsClient(local_api.url, session=local_api.session(secret="wrong")).batch_endpoints.list()

    assert missing.value.code == "NotFound" and "no-such-endpoint" in missing.value.message
    assert invalid.value.field == "name"
    assert (refused.value.status, refused.value.code) == (403, "InvalidSignatureException")
    assert refused.value.message.startswith("The request signature we calculated does not match")


def test_a_deployment_without_code_serves_an_mlflow_model(client: BatchEndpointsClient, tmp_path: Path) -> None:
    model_folder = tmp_path / "model"
    model_folder.mkdir()
    (model_folder / "MLmodel").write_text("flavors: {}\n")
    (model_folder / "requirements.txt").write_text("scikit-learn==1.9.1\n")
    model = client.models.create_or_update(Model(name="cancer", version="1", path=str(model_folder)))
    client.batch_endpoints.create_or_update(Endpoint(name="cancer-classifier", description="no code"))

    created = client.batch_deployments.create_or_update(
        Deployment(name="cancer-mlflow", endpoint_name="cancer-classifier", model=model.ref)
    )

    assert created.code_configuration is None
    assert client.batch_deployments.get("cancer-mlflow", endpoint_name="cancer-classifier") == created
    assert "scikit-learn==1.9.1" in created.environment.pip_requirements


def test_environments_register_and_read_back(client: BatchEndpointsClient) -> None:
    registered = client.environments.create_or_update(
        Environment(
            name="torch-env", version="1", image="bep-torch:2", pip_requirements=["torch==2.13.0"], tags={"team": "ml"}
        )
    )

    assert client.environments.get("torch-env") == registered
    assert [e.ref for e in client.environments.list("torch-env")] == ["torch-env:1"]
    assert registered.created_by.endswith("user/ann")
