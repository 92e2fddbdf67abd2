"""Standalone pipeline jobs (`bep job create --file pipeline-job.yml`), and deployments made from them
(`job_definition: azureml:JOB_NAME`), run through Azure's own examples as their scripts run them: hello-batch and
batch-scoring-with-preprocessing, with only the data and models made here. Each bad file or reference is refused
naming its field, and nothing is made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_pipeline_jobs_local import ended, steps_of

AZURE = Path(__file__).parent / "data" / "azure_pipelines"


# As Azure's cli-deploy.sh scripts write them.
CREATE_COMPUTE = "compute create -n batch-cluster --type amlcompute --min-instances 0 --max-instances 5"
REGISTER_TRANSFORMS = "model create --name heart-classifier-transforms --type custom_model --path transformations"


def azure_example(bep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """The example copied, run from its folder as its script runs, with its compute created."""
    root = tmp_path / name
    shutil.copytree(AZURE / name, root)
    monkeypatch.chdir(root)
    bep(*CREATE_COMPUTE.split())
    return root


@pytest.fixture(name="hello")
def hello_fixture(bep, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return azure_example(bep, tmp_path, monkeypatch, "hello-batch")


@pytest.fixture(name="scoring")
def scoring_fixture(bep, home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Azure's batch-scoring example as its script prepares it: its models and prepare component registered, its
    compute created, its unlabeled data in data/unlabeled."""
    root = azure_example(bep, tmp_path, monkeypatch, "batch-scoring-with-preprocessing")
    (root / "model").mkdir()
    (root / "model" / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n")
    (root / "transformations").mkdir()
    (root / "transformations" / "transformations.json").write_text('{"encoding": "ordinal"}')
    (root / "data" / "unlabeled").mkdir(parents=True)
    (root / "data" / "unlabeled" / "heart.csv").write_text("age,sex\n63,1\n67,1\n")
    bep("model", "create", "--name", "heart-classifier", "--type", "mlflow_model", "--path", "model")
    bep(*REGISTER_TRANSFORMS.split())
    bep("component", "create", "-f", "components/prepare/prepare.yml")
    return root


def test_hello_batch_runs_as_a_job_then_deploys_from_it(bep, hello):
    job_id = bep("job", "create", "-f", "pipeline-job.yml").out.split()[0]

    job = ended(bep, job_id)
    assert job["status"] == "Completed", job
    assert (job["experiment_name"], job["display_name"], job["endpoint_name"]) == (
        "hello-pipeline-batch",
        "hello-pipeline-batch-job",
        "",
    )
    assert "hello world!" in Path(steps_of(job)["main_job"]["log_uri"]).read_text()
    assert job_id in [j["id"] for j in bep("job", "list", "--output", "json").json()]
    assert bep("job", "list", "--parent-job-name", job_id, "--output", "json").json()[0]["step"] == "main_job"

    bep("endpoint", "create", "--name", "hello-pipeline-batch")
    bep(
        "deployment",
        "create",
        "--endpoint",
        "hello-pipeline-batch",
        "--set",
        f"job_definition=azureml:{job_id}",
        "-f",
        "deployment-from-job.yml",
        "--set-default",
    )
    deployment = bep("deployment", "show", "-e", "hello-pipeline-batch", "-n", "hello-batch-from-job").json()
    assert deployment["pipeline_settings"]["default_compute"] == "batch-cluster"
    assert list(deployment["component"]["jobs"]) == ["main_job"]

    invoked = ended(bep, bep("endpoint", "invoke", "--name", "hello-pipeline-batch").out.split()[0])
    assert invoked["status"] == "Completed", invoked
    assert invoked["deployment_name"] == "hello-batch-from-job"


def test_batch_scoring_runs_as_a_job_and_its_deployment_keeps_the_jobs_inputs_as_defaults(bep, scoring):
    job_id = bep(
        "job", "create", "-f", "pipeline-job.yml", "--set", "inputs.input_data.path=data/unlabeled"
    ).out.split()[0]

    job = ended(bep, job_id)
    assert job["status"] == "Completed", job
    assert job["pipeline"]["literal_inputs"] == {"score_mode": "append"}
    downloaded = bep("job", "download", "--name", job_id, "--output-name", "scores", "--download-path", "out").out
    scores = Path(downloaded.split()[0]).read_text()
    assert scores == "file,score\nheart.csv,3\n"

    bep("endpoint", "create", "--name", "uci-classifier-batch")
    bep(
        "deployment",
        "create",
        "--endpoint",
        "uci-classifier-batch",
        "--set",
        f"job_definition=azureml:{job_id}",
        "-f",
        "deployment-from-job.yml",
        "--set-default",
    )
    deployment = bep("deployment", "show", "-e", "uci-classifier-batch", "-n", "uci-classifier-prepros-jobs").json()
    inputs = deployment["component"]["inputs"]
    assert inputs["score_mode"]["default"] == "append"
    assert inputs["input_data"]["default"] == job["pipeline"]["data_inputs"]["input_data"]

    # Invoked with nothing, it scores what the job scored, as the job did.
    invoked = ended(bep, bep("endpoint", "invoke", "--name", "uci-classifier-batch").out.split()[0])
    assert invoked["status"] == "Completed", invoked
    assert invoked["pipeline"]["data_inputs"] == job["pipeline"]["data_inputs"]


def test_a_pipeline_job_written_as_its_steps_runs_with_its_inputs_declared_by_what_it_gives(bep, home, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    (tmp_path / "job.yml").write_text(
        "type: pipeline\nexperiment_name: steps\ncompute: azureml:cpu-cluster\n"
        "inputs:\n  data: {type: uri_folder, path: data}\n  greeting: hello\n"
        "outputs:\n  copied: {mode: upload}\n"
        "jobs:\n  copy:\n    type: command\n    component:\n"
        "      inputs: {data: {type: uri_folder}, greeting: {type: string}}\n"
        "      outputs: {copied: {type: uri_folder}}\n"
        "      command: >-\n"
        "        cp ${{inputs.data}}/a.csv ${{outputs.copied}}\n"
        "        && echo ${{inputs.greeting}} > ${{outputs.copied}}/greeting\n"
        "    inputs: {data: '${{parent.inputs.data}}', greeting: '${{parent.inputs.greeting}}'}\n"
        "    outputs: {copied: '${{parent.outputs.copied}}'}\n"
    )

    job = ended(bep, bep("job", "create", "--file", tmp_path / "job.yml", "--name", "copy-once").out.split()[0])

    assert (job["id"], job["status"]) == ("copy-once", "Completed")
    copied = Path(job["pipeline"]["outputs"]["copied"])
    assert (copied / "a.csv").read_text() == "x\n1\n" and (copied / "greeting").read_text() == "hello\n"


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        ([], "inputs.input_data.path"),
        (["inputs.input_data.path=data/unlabeled", "inputs.unknown=1"], "inputs.unknown"),
        (["inputs.input_data.path=data/unlabeled", "compute=nowhere"], "settings.default_compute"),
        (["inputs.input_data.path=data/unlabeled", "component=azureml:nothing:1"], "component"),
        (["inputs.input_data.path=data/unlabeled", "jobs.one.type=command"], "jobs"),
        (["inputs.input_data.path=data/unlabeled", "type=command"], "type"),
    ],
)
def test_a_bad_pipeline_job_is_refused_naming_the_field_and_makes_no_job(bep, scoring, sets, field):
    refused = (
        bep("job", "create", "-f", "pipeline-job.yml", "--set", *sets, ok=False)
        if sets
        else bep("job", "create", "-f", "pipeline-job.yml", ok=False)
    )

    assert refused.code in (2, 3), refused
    assert field in refused.err, refused.err
    assert bep("job", "list", "--output", "json").json() == []


def test_a_deployment_from_a_job_that_is_unknown_or_no_pipeline_job_is_refused(bep, hello, tmp_path):
    bep("endpoint", "create", "--name", "hello-pipeline-batch")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "score.py").write_text("def init():\n    pass\n\ndef run(batch):\n    return batch\n")
    model_job = model_deployment_job(bep, tmp_path)

    for reference, code, says in (
        ("azureml:no-such-job", 3, "does not exist"),
        (f"azureml:{model_job}", 2, "is not a pipeline job"),
        ("azureml:", 2, "must name a pipeline job"),
    ):
        refused = bep(
            "deployment",
            "create",
            "--endpoint",
            "hello-pipeline-batch",
            "--set",
            f"job_definition={reference}",
            "-f",
            "deployment-from-job.yml",
            ok=False,
        )
        assert (refused.code, "job_definition" in refused.err, says in refused.err) == (code, True, True), refused
    both = bep(
        "deployment",
        "create",
        "--endpoint",
        "hello-pipeline-batch",
        "--set",
        "job_definition=azureml:x",
        "component=hello-component/hello.yml",
        "-f",
        "deployment-from-job.yml",
        ok=False,
    )
    assert (
        both.code == 2 and "job_definition" in both.err and "give a component or a job_definition, not both" in both.err
    )
    assert bep("deployment", "list", "-e", "hello-pipeline-batch", "--output", "json").json() == []


def model_deployment_job(bep, root: Path) -> str:
    """A model deployment's job, to name where a pipeline job is expected."""
    (root / "in").mkdir()
    (root / "in" / "a.txt").write_text("a")
    bep("model", "create", "--name", "echo", "--path", root / "model")
    bep("endpoint", "create", "--name", "echo")
    (root / "echo.yml").write_text(
        "name: echo\nendpoint_name: echo\nmodel: azureml:echo:1\n"
        f"code_configuration:\n  code: {root / 'model'}\n  scoring_script: score.py\ncompute: azureml:batch-cluster\n"
    )
    bep("deployment", "create", "--file", root / "echo.yml", "--set-default")
    return bep("endpoint", "invoke", "--name", "echo", "--input", root / "in").out.split()[0]


def test_a_standalone_job_reruns_as_a_new_standalone_job(bep, hello):
    job = ended(bep, bep("job", "create", "-f", "pipeline-job.yml").out.split()[0])

    rerun = ended(bep, bep("job", "rerun", "--name", job["id"]).out.split()[0])

    assert (rerun["status"], rerun["rerun_of"], rerun["endpoint_name"]) == ("Completed", job["id"], "")
    assert rerun["id"].startswith("pipeline-job-") and rerun["experiment_name"] == "hello-pipeline-batch"
