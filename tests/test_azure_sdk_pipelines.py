"""Azure's Python SDK for pipelines, run with only its import lines changed, as Azure's hello-batch document runs it:
a pipeline job from pipeline-job.yml (`load_job`, `ml_client.jobs.create_or_update`), a deployment made from it or
from its component (`PipelineComponentBatchDeployment`), invoked and followed; each mistake refused naming its
field, nothing made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batch_endpoints.azure import (
    AmlCompute,
    BatchEndpoint,
    MLClient,
    PipelineComponentBatchDeployment,
    load_component,
    load_job,
)
from batch_endpoints.errors import NotFoundError, ValidationError

HELLO = Path(__file__).parent / "data" / "azure_pipelines" / "hello-batch"
SETTINGS = {"default_compute": "batch-cluster", "continue_on_step_failure": False}


@pytest.fixture
def ml_client(home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MLClient:
    """Azure's hello-batch example copied, run from its folder, with its compute created."""
    shutil.copytree(HELLO, tmp_path / "hello-batch")
    monkeypatch.chdir(tmp_path / "hello-batch")
    client = MLClient(None, "subscription", "group", "workspace")
    client.compute.begin_create_or_update(AmlCompute(name="batch-cluster", max_instances=2)).result()
    client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="hello-batch")).result()
    return client


def test_a_pipeline_job_runs_then_a_deployment_is_made_from_it_and_invoked(ml_client: MLClient) -> None:
    pipeline_job = load_job(source="pipeline-job.yml")
    pipeline_job.settings.default_compute = "batch-cluster"

    run = ml_client.jobs.create_or_update(pipeline_job, experiment_name="hello-batch-pipeline")
    ml_client.jobs.stream(run.name)
    deployment = PipelineComponentBatchDeployment(
        name="hello-batch-from-job", endpoint_name="hello-batch", job_definition=run, settings=SETTINGS
    )
    created = ml_client.batch_deployments.begin_create_or_update(deployment).result()
    job = ml_client.batch_endpoints.invoke(endpoint_name="hello-batch", deployment_name="hello-batch-from-job")
    ml_client.jobs.stream(job.name)

    assert (run.type, run.endpoint_name, run.experiment_name) == ("pipeline", "", "hello-batch-pipeline")
    assert isinstance(created, PipelineComponentBatchDeployment)
    assert created.settings["default_compute"] == "batch-cluster"
    assert ml_client.jobs.get(job.name).status == "Completed"


def test_a_pipeline_component_is_deployed_as_loaded(ml_client: MLClient) -> None:
    deployment = PipelineComponentBatchDeployment(
        name="hello-batch-dpl",
        endpoint_name="hello-batch",
        component=load_component(source="hello-component/hello.yml"),
        settings=SETTINGS,
    )

    created = ml_client.batch_deployments.begin_create_or_update(deployment).result()

    assert list(created.component.jobs) == ["main_job"]
    assert ml_client.batch_deployments.get("hello-batch-dpl", "hello-batch").type == "pipeline"


@pytest.mark.parametrize(
    ("deployment", "field"),
    [
        (
            dict(component="hello-component/hello.yml", settings={"default_compute": "nowhere"}),
            "settings.default_compute",
        ),
        (dict(job_definition="no-such-job", settings=SETTINGS), "job_definition"),
        (dict(settings=SETTINGS), "component"),
    ],
)
def test_a_bad_pipeline_deployment_is_refused_naming_the_field(ml_client: MLClient, deployment, field) -> None:
    with pytest.raises((ValidationError, NotFoundError)) as refused:
        ml_client.batch_deployments.begin_create_or_update(
            PipelineComponentBatchDeployment(name="bad", endpoint_name="hello-batch", **deployment)
        )

    assert refused.value.field == field
    assert ml_client.batch_deployments.list("hello-batch") == []


def test_a_pipeline_job_with_a_compute_that_does_not_exist_is_refused_and_not_run(ml_client: MLClient) -> None:
    with pytest.raises(ValidationError) as refused:
        ml_client.jobs.create_or_update(load_job(source="pipeline-job.yml"), compute="azureml:nowhere")

    assert refused.value.field == "settings.default_compute"
    assert list(ml_client.jobs.list()) == []


def test_jobs_create_or_update_takes_a_pipeline_job_only(ml_client: MLClient) -> None:
    with pytest.raises(ValidationError) as refused:
        ml_client.jobs.create_or_update("pipeline-job.yml")  # type: ignore[arg-type]

    assert refused.value.field == "job"
