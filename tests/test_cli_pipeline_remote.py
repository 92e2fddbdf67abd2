"""Pipeline deployments with the CLI against an API server (`bep serve`, in a thread), as against the local
backend: the same files and flags create, update, show and invoke them, and a pipeline job's steps are listed,
streamed and its outputs downloaded by name over the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server_fixtures import local_api_fixture, remote_fixture  # noqa: F401 (pytest fixtures)
from tests.test_pipeline_deployments_local import DEPLOYMENT, write_project


@pytest.fixture
def project(remote: Any, local_api: Any, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """The two-step project deployed over the API; the server outlives a test, so each has an endpoint of its own."""
    endpoint = f"shop{abs(hash(request.node.name)) % 10**8}"
    root = write_project(
        tmp_path / "project", deployment=DEPLOYMENT.replace("endpoint_name: shop", f"endpoint_name: {endpoint}")
    )
    remote("endpoint", "create", "--name", endpoint)
    remote("deployment", "create", "--file", root / "deployment.yml", "--set-default")
    return root, endpoint


def test_a_pipeline_is_deployed_invoked_streamed_and_downloaded_over_the_api(
    remote: Any, project: tuple[Path, str], tmp_path: Path
) -> None:
    root, endpoint = project
    (root / "inputs.yml").write_text(f"inputs:\n  input_data:\n    type: uri_folder\n    path: {root / 'data'}\n")

    started = remote(
        "endpoint",
        "invoke",
        "--name",
        endpoint,
        "--file",
        root / "inputs.yml",
        "--set",
        "inputs.label=nightly",
        "--stream",
    )
    job_id = started.out.split()[0]
    shown = remote("job", "show", "--name", job_id).json()
    children = remote("job", "list", "--parent-job-name", job_id, "--output", "json").json()
    downloaded = remote(
        "job", "download", "--name", job_id, "--output-name", "summary", "--download-path", tmp_path / "d"
    ).out.split()
    step_logs = remote("job", "logs", "--name", f"{job_id}-prepare_job").out
    job_logs = remote("job", "logs", "--name", job_id).out

    assert "steps 2/2" in started.err and f"job {job_id} Completed: 2 of 2 steps completed" in started.err
    assert shown["status"] == "Completed"
    assert [step["status"] for step in shown["pipeline"]["steps"]] == ["Completed", "Completed"]
    assert [(c["name"], c["status"]) for c in children] == [
        (f"{job_id}-prepare_job", "Completed"),
        (f"{job_id}-summarize_job", "Completed"),
    ]
    assert downloaded == [str(tmp_path / "d" / "named-outputs" / "summary" / "summary.csv")]
    assert Path(downloaded[0]).read_text() == "nightly,a.csv,2\nnightly,b.csv,4\n"
    assert "prepared 2" in step_logs and "summarize.py" not in step_logs
    assert "[step-prepare_job] prepared 2" in job_logs and "summarize.py" in job_logs


def test_a_pipeline_deployment_is_shown_and_updated_over_the_api(remote: Any, project: tuple[Path, str]) -> None:
    root, endpoint = project

    updated = remote(
        "deployment", "update", "--file", root / "deployment.yml", "--set", "settings.continue_on_step_failure=true"
    ).json()
    shown = remote("deployment", "show", "--endpoint-name", endpoint, "--name", "summarize").json()

    assert updated["pipeline_settings"]["continue_on_step_failure"] is True
    assert shown == updated
    assert list(shown["component"]["jobs"]) == ["prepare_job", "summarize_job"]


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (["inputs.input_data.path={data}", "inputs.colour=red"], "inputs.colour"),
        (["inputs.label=nightly"], "inputs.input_data"),
        (["inputs.input_data.path={data}", "inputs.label=weekly"], "inputs.label"),
        (["inputs.input_data.path={data}", "outputs.scores.path={data}"], "outputs.scores"),
    ],
)
def test_bad_inputs_are_refused_over_the_api_as_locally(
    remote: Any, project: tuple[Path, str], sets: list[str], field: str
) -> None:
    root, endpoint = project

    refused = remote(
        "endpoint", "invoke", "--name", endpoint, "--set", *[s.format(data=root / "data") for s in sets], ok=False
    )

    assert refused.code == 2
    assert field in refused.err
    assert remote("job", "list", "--endpoint-name", endpoint, "--output", "json").json() == []


def test_a_bad_pipeline_deployment_is_refused_over_the_api_naming_the_field(
    remote: Any, local_api: Any, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "p", deployment=DEPLOYMENT.replace("endpoint_name: shop", "endpoint_name: badshop"))
    (root / "deployment.yml").write_text(
        (root / "deployment.yml").read_text().replace("azureml:cpu-cluster", "nowhere")
    )
    remote("endpoint", "create", "--name", "badshop")

    refused = remote("deployment", "create", "--file", root / "deployment.yml", ok=False)

    assert refused.code == 2
    assert "settings.default_compute" in refused.err
    assert remote("deployment", "list", "--endpoint-name", "badshop", "--output", "json").json() == []


PIPELINE_JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
experiment_name: tryouts
compute: azureml:cpu-cluster
component: pipeline.yml
inputs:
  input_data: {type: uri_folder, path: data}
  label: nightly
"""


def test_a_pipeline_job_runs_over_the_api_and_a_deployment_is_made_from_it(
    remote: Any, local_api: Any, tmp_path: Path
) -> None:
    endpoint = "fromjob"
    root = write_project(tmp_path / "p")
    (root / "pipeline-job.yml").write_text(PIPELINE_JOB)
    (root / "deployment-from-job.yml").write_text(
        f"name: from-job\nendpoint_name: {endpoint}\ntype: pipeline\njob_definition: azureml:placeholder\n"
    )

    job_id = remote("job", "create", "--file", root / "pipeline-job.yml", "--stream").out.split()[0]
    shown = remote("job", "show", "--name", job_id).json()
    remote("endpoint", "create", "--name", endpoint)
    deployed = remote(
        "deployment", "create", "--file", root / "deployment-from-job.yml", "--set", f"job_definition=azureml:{job_id}"
    ).json()

    assert (shown["status"], shown["endpoint_name"], shown["experiment_name"]) == ("Completed", "", "tryouts")
    summary = Path(shown["pipeline"]["outputs"]["summary"]) / "summary.csv"
    assert summary.read_text() == "nightly,a.csv,2\nnightly,b.csv,4\n"
    assert list(deployed["component"]["jobs"]) == ["prepare_job", "summarize_job"]
    assert deployed["component"]["inputs"]["label"]["default"] == "nightly"
    # Filed under no endpoint, it is listed with every job, as locally.
    assert job_id in remote("job", "list", "--query", "[].name", "-o", "tsv").out.split()


def test_a_bad_pipeline_job_is_refused_over_the_api_naming_the_field(remote: Any, tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    (root / "pipeline-job.yml").write_text(PIPELINE_JOB)

    refused = remote("job", "create", "--file", root / "pipeline-job.yml", "--set", "inputs.colour=red", ok=False)

    assert refused.code == 2
    assert "inputs.colour" in refused.err
