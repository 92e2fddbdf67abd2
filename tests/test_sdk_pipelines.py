"""Pipelines with our SDK against `bep serve`: a pipeline job run outside any endpoint (`jobs.create`, what
`az ml job create --file pipeline-job.yml` does), and a pipeline deployment created with
`batch_deployments.create_or_update` and invoked with its inputs by name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from batch_endpoints import yaml_specs
from batch_endpoints.client import BatchEndpointsClient
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import Deployment, Endpoint, PipelineSettings
from batch_endpoints.specs.components import PipelineComponent
from tests.server_fixtures import LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)
from tests.test_cli_pipeline_remote import PIPELINE_JOB
from tests.test_pipeline_deployments_local import write_project

SUMMARY = "nightly,a.csv,2\nnightly,b.csv,4\n"


@pytest.fixture(name="client")
def client_fixture(local_api: LocalApi) -> BatchEndpointsClient:
    return BatchEndpointsClient(local_api.url, session=local_api.session())


@pytest.fixture(name="project")
def project_fixture(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "project")
    (root / "pipeline-job.yml").write_text(PIPELINE_JOB)
    return root


def pipeline_deployment(
    name: str, endpoint_name: str, pipeline: PipelineComponent, *, component_ref: str | None = None
) -> Deployment:
    return Deployment(
        name=name,
        endpoint_name=endpoint_name,
        type="pipeline",
        component=pipeline,
        component_ref=component_ref,
        pipeline_settings=PipelineSettings(default_compute="cpu-cluster"),
    )


def summary_of(client: BatchEndpointsClient, job_id: str) -> str:
    job = client.jobs.stream(job_id, out=io.StringIO(), interval_s=0.2, timeout_s=120)
    assert job.status == "Completed", job.error
    assert job.pipeline is not None
    return (Path(job.pipeline.outputs["summary"]) / "summary.csv").read_text()


def test_a_pipeline_job_runs_outside_any_endpoint(client: BatchEndpointsClient, project: Path) -> None:
    started = client.jobs.create(yaml_specs.load_pipeline_job(project / "pipeline-job.yml"))

    assert (started.endpoint_name, started.experiment_name) == ("", "tryouts")
    assert summary_of(client, started.id) == SUMMARY


def test_a_bad_pipeline_job_is_refused_naming_the_field(client: BatchEndpointsClient, project: Path) -> None:
    declaration = yaml_specs.load_pipeline_job(project / "pipeline-job.yml", {"inputs.label": "weekly"})

    with pytest.raises(ValidationError) as refused:
        client.jobs.create(declaration)

    assert refused.value.field == "inputs.label"


def test_a_pipeline_deployment_is_created_and_invoked(
    client: BatchEndpointsClient, project: Path, request: pytest.FixtureRequest
) -> None:
    endpoint = client.batch_endpoints.create_or_update(Endpoint(name=f"sdk{abs(hash(request.node.name)) % 10**8}"))
    pipeline = yaml_specs.load_component(project / "pipeline.yml")
    assert isinstance(pipeline, PipelineComponent)

    deployment = client.batch_deployments.create_or_update(
        pipeline_deployment("summarize", endpoint.name, pipeline), set_default=True
    )
    started = client.batch_endpoints.invoke(
        endpoint.name,
        inputs={"input_data": {"type": "uri_folder", "path": str(project / "data")}, "label": "nightly"},
    )

    assert (deployment.type, list(deployment.component.jobs if deployment.component else [])) == (
        "pipeline",
        ["prepare_job", "summarize_job"],
    )
    assert summary_of(client, started.id) == SUMMARY


def test_a_pipeline_deployment_runs_a_registered_pipeline_pinned(
    client: BatchEndpointsClient, project: Path, request: pytest.FixtureRequest
) -> None:
    endpoint = client.batch_endpoints.create_or_update(Endpoint(name=f"sdk{abs(hash(request.node.name)) % 10**8}"))
    pipeline = yaml_specs.load_component(project / "pipeline.yml")
    registered = client.components.create_or_update(pipeline.model_copy(update={"name": endpoint.name, "version": "3"}))
    assert isinstance(registered, PipelineComponent)

    deployment = client.batch_deployments.create_or_update(
        pipeline_deployment("pinned", endpoint.name, registered, component_ref=f"{endpoint.name}:3")
    )

    assert deployment.component_ref == f"{endpoint.name}:3"
