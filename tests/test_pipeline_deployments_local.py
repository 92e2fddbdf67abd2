"""Pipeline component deployments on the local backend, through the CLI as a user runs them: a deployment of a
pipeline whose steps run as processes in dependency order, invoked with data and literal inputs by name, and every
bad input refused naming it, with nothing created."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

PREPARE = """\
import pathlib, sys
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for csv in sorted(source.glob("*.csv")):
    (target / csv.name).write_text(csv.read_text().upper())
print("prepared", len(list(target.iterdir())))
"""

SUMMARIZE = """\
import pathlib, sys
source, target, label = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
lines = [f"{label},{csv.name},{len(csv.read_text().splitlines())}" for csv in sorted(source.glob("*.csv"))]
(target / "summary.csv").write_text("\\n".join(lines) + "\\n")
"""

PIPELINE = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
type: pipeline
name: two_steps
inputs:
  input_data: {type: uri_folder}
  label: {type: string, default: plain, enum: [plain, nightly]}
outputs:
  summary: {type: uri_folder}
jobs:
  prepare_job:
    type: command
    component:
      code: src
      inputs: {data: {type: uri_folder}}
      outputs: {prepared: {type: uri_folder}}
      command: python prepare.py ${{inputs.data}} ${{outputs.prepared}}
    inputs:
      data: ${{parent.inputs.input_data}}
  summarize_job:
    type: command
    component:
      code: src
      inputs: {data: {type: uri_folder}, label: {type: string}}
      outputs: {summary: {type: uri_folder}}
      command: python summarize.py ${{inputs.data}} ${{outputs.summary}} ${{inputs.label}}
    inputs:
      data: ${{parent.jobs.prepare_job.outputs.prepared}}
      label: ${{parent.inputs.label}}
    outputs:
      summary: ${{parent.outputs.summary}}
"""

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json
name: summarize
endpoint_name: shop
type: pipeline
component: pipeline.yml
settings:
  default_compute: azureml:cpu-cluster
  continue_on_step_failure: false
"""


def write_project(root: Path, *, pipeline: str = PIPELINE, deployment: str = DEPLOYMENT) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "prepare.py").write_text(PREPARE)
    (root / "src" / "summarize.py").write_text(SUMMARIZE)
    (root / "pipeline.yml").write_text(pipeline)
    (root / "deployment.yml").write_text(deployment)
    data = root / "data"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "b.csv").write_text("x\n1\n2\n3\n")
    return root


@pytest.fixture
def project(bep, home: Path, tmp_path: Path) -> Path:
    root = write_project(tmp_path / "project")
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", root / "deployment.yml", "--set-default")
    return root


def invoke(bep, *sets: str, ok: bool = True):
    return bep("endpoint", "invoke", "--name", "shop", "--set", *sets, "--stream", ok=ok)


def test_a_two_step_command_pipeline_runs_its_steps_in_order_and_writes_its_output(bep, project):
    job_id = invoke(bep, f"inputs.input_data.path={project / 'data'}", "inputs.label=nightly").out.split()[0]

    job = bep("job", "show", "--name", job_id).json()
    assert job["status"] == "Completed", job
    steps = job["pipeline"]["steps"]
    assert [s["step"] for s in steps] == ["prepare_job", "summarize_job"]
    assert all(s["status"] == "Completed" for s in steps)
    prepare, summarize = steps
    assert prepare["ended_at"] <= summarize["started_at"]
    summary = Path(job["pipeline"]["outputs"]["summary"])
    assert summary == Path(job["output_folder"]) / "summary"  # azureml/<job>/<output>
    assert (summary / "summary.csv").read_text() == "nightly,a.csv,2\nnightly,b.csv,4\n"
    prepared = Path(prepare["outputs"]["prepared"])
    assert (prepared / "a.csv").read_text() == "X,Y\n1,2\n"
    assert "prepared 2" in Path(prepare["log_uri"]).read_text()
    assert "[step-prepare_job] prepared 2" in bep("job", "logs", "--name", job_id).out


def test_a_literal_input_left_out_takes_its_default(bep, project):
    job_id = invoke(bep, f"inputs.input_data.path={project / 'data'}").out.split()[0]

    job = bep("job", "show", "--name", job_id).json()
    summary = Path(job["pipeline"]["outputs"]["summary"]) / "summary.csv"
    assert summary.read_text().startswith("plain,a.csv")


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (["inputs.input_data.path={data}", "inputs.colour=red"], "inputs.colour"),
        (["inputs.label=x"], "inputs.input_data"),
        (["inputs.input_data=7"], "inputs.input_data"),
        (["inputs.input_data.path={data}", "inputs.label.type=uri_folder", "inputs.label.path={data}"], "inputs.label"),
        (["inputs.input_data.path={data}", "outputs.scores.path={data}"], "outputs.scores"),
        (["inputs.input_data.path={data}", "inputs.label=weekly"], "inputs.label"),
        (["inputs.input_data.path={data}", "mini_batch_size=3"], "--set mini_batch_size"),
    ],
)
def test_bad_inputs_are_refused_naming_them_and_create_no_job(bep, project, sets, field):
    data = project / "data"

    refused = invoke(bep, *[s.format(data=data) for s in sets], ok=False)

    assert refused.code == 2
    assert field in refused.err
    assert bep("job", "list", "--endpoint-name", "shop", "--output", "json").json() == []


def test_a_pipeline_deployment_naming_a_compute_that_does_not_exist_is_refused(bep, home, tmp_path):
    root = write_project(tmp_path / "p", deployment=DEPLOYMENT.replace("azureml:cpu-cluster", "nowhere"))
    bep("endpoint", "create", "--name", "shop")

    refused = bep("deployment", "create", "--file", root / "deployment.yml", ok=False)

    assert refused.code == 2
    assert "settings.default_compute" in refused.err
    assert bep("deployment", "list", "--endpoint-name", "shop", "--output", "json").json() == []


def test_a_pipeline_deployment_with_a_bad_step_binding_is_refused_naming_the_field(bep, home, tmp_path):
    broken = PIPELINE.replace("${{parent.jobs.prepare_job.outputs.prepared}}", "${{parent.jobs.nope.outputs.x}}")
    root = write_project(tmp_path / "p", pipeline=broken)
    bep("endpoint", "create", "--name", "shop")

    refused = bep("deployment", "create", "--file", root / "deployment.yml", ok=False)

    assert refused.code == 2
    assert "jobs.summarize_job.inputs.data" in refused.err


def test_the_steps_are_listed_as_the_jobs_child_jobs_and_an_output_downloads_by_name(bep, project, tmp_path):
    job_id = invoke(bep, f"inputs.input_data.path={project / 'data'}").out.split()[0]

    children = bep("job", "list", "--parent-job-name", job_id, "--output", "json").json()
    table = bep("job", "list", "--parent-job-name", job_id).out
    downloaded = bep("job", "download", "--name", job_id, "--output-name", "summary", "--download-path", tmp_path / "d")

    assert [(c["name"], c["status"]) for c in children] == [
        (f"{job_id}-prepare_job", "Completed"),
        (f"{job_id}-summarize_job", "Completed"),
    ]
    assert "prepare_job" in table and "summarize_job" in table
    assert downloaded.out.split() == [str(tmp_path / "d" / "named-outputs" / "summary" / "summary.csv")]
    assert (tmp_path / "d" / "named-outputs" / "summary" / "summary.csv").read_text().startswith("plain,a.csv,2")


def test_stream_shows_the_steps_done(bep, project):
    streamed = invoke(bep, f"inputs.input_data.path={project / 'data'}")

    assert "steps 2/2" in streamed.err


def test_downloading_an_output_the_pipeline_does_not_have_is_refused_naming_the_flag(bep, project, tmp_path):
    job_id = invoke(bep, f"inputs.input_data.path={project / 'data'}").out.split()[0]

    refused = bep(
        "job", "download", "--name", job_id, "--output-name", "nope", "--download-path", tmp_path / "d", ok=False
    )

    assert refused.code == 2
    assert "--output-name" in refused.err and "summary" in refused.err
    assert not (tmp_path / "d").exists()


def test_a_job_without_steps_has_no_child_jobs(bep, project, tmp_path):
    job_id = invoke(bep, f"inputs.input_data.path={project / 'data'}").out.split()[0]
    service = bep.service
    job = service.get_job(job_id)
    service.repo.update_job(job_id, lambda j: j.model_copy(update={"pipeline": None}))

    refused = bep("job", "list", "--parent-job-name", job.id, ok=False)

    assert refused.code == 2
    assert "--parent-job-name" in refused.err


def test_a_registered_pipeline_component_deploys_by_reference_and_runs(bep, home, tmp_path):
    root = write_project(
        tmp_path / "p", deployment=DEPLOYMENT.replace("component: pipeline.yml", "component: azureml:two_steps@latest")
    )
    bep("component", "create", "--file", root / "pipeline.yml")
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", root / "deployment.yml", "--set-default")

    job_id = invoke(bep, f"inputs.input_data.path={root / 'data'}").out.split()[0]

    deployment = bep("deployment", "show", "--endpoint-name", "shop", "--name", "summarize").json()
    assert deployment["component_ref"] == "two_steps:1"
    assert all(isinstance(step["component"], dict) for step in deployment["component"]["jobs"].values())
    assert bep("job", "show", "--name", job_id).json()["status"] == "Completed"


INLINE = DEPLOYMENT.replace(
    "component: pipeline.yml",
    "component:\n  jobs:\n    hello:\n      type: command\n      component:\n        command: echo hello\n",
)


def test_an_inline_pipeline_deploys_and_runs(bep, home, tmp_path):
    root = write_project(tmp_path / "p", deployment=INLINE)
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", root / "deployment.yml", "--set-default")

    job_id = bep("endpoint", "invoke", "--name", "shop", "--stream").out.split()[0]

    job = bep("job", "show", "--name", job_id).json()
    assert job["status"] == "Completed"
    assert "hello" in Path(job["pipeline"]["steps"][0]["log_uri"]).read_text()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("component: pipeline.yml", "component: azureml:nothing@latest"), "component"),
        (("component: pipeline.yml", "component: missing.yml"), "component"),
        (("component: pipeline.yml", "component: [a]"), "component"),
        (("component: pipeline.yml", "component: src/prepare.yml"), "component"),
        (
            ("continue_on_step_failure: false", "continue_on_step_failure: sometimes"),
            "settings.continue_on_step_failure",
        ),
        (("continue_on_step_failure: false", "mini_batch_size: 3"), "settings.mini_batch_size"),
        (("type: pipeline", "type: pipeline\nmodel: azureml:m:1"), "model"),
    ],
)
def test_bad_pipeline_deployments_are_refused_naming_the_field_and_store_nothing(bep, home, tmp_path, change, field):
    root = write_project(tmp_path / "p", deployment=DEPLOYMENT.replace(*change))
    (root / "src" / "prepare.yml").write_text("type: command\ncommand: echo\n")
    bep("endpoint", "create", "--name", "shop")

    refused = bep("deployment", "create", "--file", root / "deployment.yml", ok=False)

    assert refused.code in (2, 3), refused.err
    assert re.search(rf"(?<![\w.]){re.escape(field)}(?![\w.])", refused.err), refused.err  # named as a field
    assert bep("deployment", "list", "--endpoint-name", "shop", "--output", "json").json() == []


def test_a_step_naming_a_compute_that_does_not_exist_is_refused(bep, home, tmp_path):
    pipeline = PIPELINE.replace(
        "  prepare_job:\n    type: command\n", "  prepare_job:\n    type: command\n    compute: azureml:nowhere\n"
    )
    root = write_project(tmp_path / "p", pipeline=pipeline)
    bep("endpoint", "create", "--name", "shop")

    refused = bep("deployment", "create", "--file", root / "deployment.yml", ok=False)

    assert refused.code == 2
    assert "jobs.prepare_job.compute" in refused.err


AZURE_EXAMPLE = Path(__file__).parent / "data" / "azure_pipelines" / "batch-scoring-with-preprocessing"


def test_azures_batch_scoring_pipeline_deploys_with_its_compute_renamed_and_needs_its_models(bep, home, tmp_path):
    root = tmp_path / "azure"
    shutil.copytree(AZURE_EXAMPLE, root)
    (root / "deployment.yml").write_text(
        "name: uci-heart\nendpoint_name: heart\ntype: pipeline\ncomponent: pipeline.yml\n"
        "settings:\n  default_compute: cpu-cluster\n"
    )
    bep("component", "create", "--file", root / "components" / "prepare" / "prepare.yml")
    bep("endpoint", "create", "--name", "heart")
    bep("deployment", "create", "--file", root / "deployment.yml", "--set-default")
    (root / "data").mkdir()
    (root / "data" / "heart.csv").write_text("age,sex\n63,1\n")

    refused = bep("endpoint", "invoke", "--name", "heart", "--set", f"inputs.input_data.path={root / 'data'}", ok=False)

    assert refused.code == 2
    assert "jobs.preprocess_job.inputs.transformations" in refused.err
    assert "names no registered model nor data asset" in refused.err  # its model, not registered here yet
    assert bep("job", "list", "--endpoint-name", "heart", "--output", "json").json() == []
