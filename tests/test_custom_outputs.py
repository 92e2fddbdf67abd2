"""A scoring script's own files (AZUREML_BI_OUTPUT_PATH), end to end through `bep` on the local backend: Azure's
custom-outputs shape runs unchanged with summary_only, what an attempt writes reaches the output folder once and
only if its mini-batch succeeds, and `bep job download` returns it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import boto3
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from batch_endpoints.client import BatchEndpointsClient
from batch_endpoints.client.storage import Storage
from batch_endpoints.errors import ValidationError
from batch_endpoints.job_downloads import JobFilesToDownload
from batch_endpoints.specs import CodeConfiguration, Deployment, Endpoint, Model, OutputAction, RunSettings
from tests.core_fixtures import write_tree
from tests.server_fixtures import LocalApi, local_api_fixture  # noqa: F401 (pytest fixture)

pytestmark = pytest.mark.slow

# Shaped like Azure's custom-outputs example: the folder from the environment in init(), a pickled model found
# one level under AZUREML_MODEL_DIR, one Parquet file per input CSV named after it, run() returning its inputs.
PARQUET_PER_INPUT = """\
import glob
import os
import pickle
from pathlib import Path

import pandas as pd


def init():
    global model
    global output_path

    output_path = os.environ["AZUREML_BI_OUTPUT_PATH"]
    model_file = glob.glob(f"{os.environ['AZUREML_MODEL_DIR']}/*/*.pkl")[-1]
    with open(model_file, "rb") as file:
        model = pickle.load(file)


def run(mini_batch):
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        data["prediction"] = model.predict(data)
        data.to_parquet(os.path.join(output_path, Path(file_path).stem + ".parquet"))
    return mini_batch
"""

# Fails the first attempt of each mini-batch after writing a file; the retry writes another.
FIRST_ATTEMPT_FAILS = """\
import os
from pathlib import Path


def init():
    global output_path
    output_path = os.environ["AZUREML_BI_OUTPUT_PATH"]


def run(mini_batch):
    stem = Path(mini_batch[0]).stem
    tried = Path(os.environ["ATTEMPTS_DIR"]) / stem
    os.makedirs(os.path.join(output_path, "by-input"), exist_ok=True)
    if not tried.exists():
        tried.write_text("1")
        Path(output_path, "by-input", stem + ".failed.txt").write_text("from a failed attempt")
        raise RuntimeError("first attempt fails")
    Path(output_path, "by-input", stem + ".txt").write_text(stem)
    return [stem for _ in mini_batch]
"""

# The first attempt at each input writes a file, then outlives its timeout and is killed.
FIRST_ATTEMPT_HANGS = """\
import os
import time
from pathlib import Path


def run(mini_batch):
    stem = Path(mini_batch[0]).stem
    tried = Path(os.environ["ATTEMPTS_DIR"]) / stem
    out = Path(os.environ["AZUREML_BI_OUTPUT_PATH"])
    if not tried.exists():
        tried.write_text("1")
        (out / (stem + ".from-a-killed-attempt.txt")).write_text("never committed")
        time.sleep(300)
    (out / (stem + ".txt")).write_text(stem)
    return mini_batch
"""

# Every mini-batch writes the same name.
SAME_NAME = """\
import os
from pathlib import Path


def run(mini_batch):
    Path(os.environ["AZUREML_BI_OUTPUT_PATH"], "shared.txt").write_text(Path(mini_batch[0]).name)
    return mini_batch
"""

# Writes the job's own output file's name, for one input.
WRITES_PREDICTIONS = """\
import os
from pathlib import Path


def run(mini_batch):
    if Path(mini_batch[0]).name == "a.txt":
        Path(os.environ["AZUREML_BI_OUTPUT_PATH"], "predictions.csv").write_text("mine")
    return mini_batch
"""


def deploy(bep, tmp_path: Path, script: str, settings: dict, *, variables: dict | None = None) -> None:
    """A deployment YAML shaped like Azure's custom-outputs one: the run settings at the top level."""
    code = write_tree(tmp_path / "code", {"batch_driver.py": script})
    model = tmp_path / "model"
    if not model.exists():
        write_tree(model, {"weights.txt": "1\n"})
    spec = tmp_path / "deployment.yml"
    spec.write_text(
        f"""\
endpoint_name: custom-outputs
name: custom
type: model
model: {{path: {model}}}
code_configuration: {{code: {code}, scoring_script: batch_driver.py}}
compute: azureml:cpu-cluster
environment_variables: {json.dumps(variables or {})}
"""
        + "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())
    )
    bep("endpoint", "create", "--name", "custom-outputs")
    bep("deployment", "create", "--file", spec, "--set-default")


def run_job(bep, inputs: Path):
    job = bep("endpoint", "invoke", "--name", "custom-outputs", "--input", inputs).out.strip()
    bep("job", "stream", "--name", job, ok=False)
    return bep.service.get_job(job)


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_azures_parquet_per_input_script_runs_unchanged_with_summary_only_and_downloads(bep, home, tmp_path):
    features = pd.DataFrame({"age": [63, 67, 37, 41, 56, 62], "chol": [233, 286, 250, 204, 236, 268]})
    model = LogisticRegression().fit(features, [0, 1, 0, 0, 1, 1])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes(pickle.dumps(model))
    inputs = tmp_path / "heart"
    inputs.mkdir()
    for number in range(3):
        features.iloc[2 * number : 2 * number + 2].to_csv(inputs / f"patients-{number}.csv", index=False)
    settings = {"output_action": "summary_only", "mini_batch_size": 2, "max_concurrency_per_instance": 2}
    deploy(bep, tmp_path, PARQUET_PER_INPUT, settings)

    job = run_job(bep, inputs)
    assert job.status == "Completed", job.error
    assert job.output_uri is None
    listed = bep("job", "download", "--name", job.id, "--output-name", "score", "--download-path", tmp_path / "dl")

    # Azure's layout: the named output alone, in named-outputs/score/.
    outputs = [f"named-outputs/score/patients-{n}.parquet" for n in range(3)]
    assert files_under(tmp_path / "dl") == outputs
    assert listed.out.splitlines() == [str(tmp_path / "dl" / path) for path in outputs]
    scored = pd.concat(pd.read_parquet(tmp_path / "dl" / path) for path in outputs)
    assert list(scored["prediction"]) == list(model.predict(features))
    assert list(scored["age"]) == list(features["age"])
    # Without the output's name, the job's own files come too, in artifacts/.
    bep("job", "download", "--name", job.id, "--download-path", tmp_path / "all")
    assert files_under(tmp_path / "all") == ["artifacts/summary.json", *outputs]


def test_only_a_successful_attempts_files_reach_the_output_folder_next_to_the_output_file(bep, home, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    settings = {"mini_batch_size": 1, "retry_settings": {"max_retries": 2, "timeout": 30}}
    deploy(bep, tmp_path, FIRST_ATTEMPT_FAILS, settings, variables={"ATTEMPTS_DIR": str(attempts)})
    inputs = write_tree(tmp_path / "inputs", {f"{n}.txt": str(n) for n in range(4)})

    job = run_job(bep, inputs)

    assert job.status == "Completed", job.error
    assert job.counts.files_succeeded == 4
    folder = Path(job.output_folder)
    assert Path(job.output_uri).parent == folder
    assert files_under(folder) == [*(f"by-input/{n}.txt" for n in range(4)), "predictions.csv"]
    assert (folder / "by-input" / "2.txt").read_text() == "2"
    bep("job", "download", "--name", job.id, "--download-path", tmp_path / "dl")
    assert (tmp_path / "dl" / "named-outputs" / "score" / "by-input" / "3.txt").read_text() == "3"


def test_a_path_two_mini_batches_write_holds_one_of_them_as_the_later_write_wins_on_azure(bep, home, tmp_path):
    deploy(bep, tmp_path, SAME_NAME, {"mini_batch_size": 1, "output_action": "summary_only"})
    inputs = write_tree(tmp_path / "inputs", {"a.txt": "a", "b.txt": "b"})

    job = run_job(bep, inputs)

    assert job.status == "Completed", job.error
    folder = Path(job.output_folder)
    assert files_under(folder) == ["shared.txt"]
    assert (folder / "shared.txt").read_text() in {"a.txt", "b.txt"}


def test_a_file_named_as_the_jobs_output_file_fails_its_mini_batch_and_leaves_the_output_ours(bep, home, tmp_path):
    settings = {"mini_batch_size": 1, "retry_settings": {"max_retries": 0, "timeout": 30}}
    deploy(bep, tmp_path, WRITES_PREDICTIONS, settings)
    inputs = write_tree(tmp_path / "inputs", {"a.txt": "a", "b.txt": "b"})

    job = run_job(bep, inputs)

    assert job.counts.files_failed == 1
    errors = [json.loads(line) for line in Path(job.scratch_uri, "errors.jsonl").read_text().splitlines()]
    assert "predictions.csv" in errors[0]["error"] and "output_file_name" in errors[0]["error"]
    assert job.status == "Completed", job.error
    assert files_under(Path(job.output_folder)) == ["predictions.csv"]
    assert list(pd.read_csv(job.output_uri)["file"]) == ["b.txt"]


def test_a_downloaded_jobs_files_take_azures_layout_and_a_name_leading_out_of_it_is_refused(tmp_path):
    uris = ["s3://b/out/j/p.csv", "s3://b/out/j/sub/x.parquet", "s3://b/jobs/j/summary.json"]
    files = JobFilesToDownload("s3://b/out/j/p.csv", "s3://b/out/j", uris)
    folder = str(tmp_path / "dl")
    assert files.targets(folder) == [
        (uris[0], str(tmp_path / "dl/named-outputs/score/p.csv")),
        (uris[1], str(tmp_path / "dl/named-outputs/score/sub/x.parquet")),
        (uris[2], str(tmp_path / "dl/artifacts/summary.json")),
    ]
    assert files.targets(folder, output_name="score") == files.targets(folder)[:2]
    with pytest.raises(ValidationError, match="output is named 'score'") as refused:
        files.targets(folder, output_name="metrics")
    assert refused.value.field == "output_name"
    # A job recorded before output folders existed: its output file by name.
    assert JobFilesToDownload("s3://b/jobs/j/p.csv", None, []).output_target(folder) == str(
        tmp_path / "dl/named-outputs/score/p.csv"
    )
    with pytest.raises(ValidationError, match="leads out of the download folder"):
        JobFilesToDownload(None, "s3://b/out/j", ["s3://b/out/j/../../x"]).targets(folder)


def test_a_timed_out_attempts_files_are_dropped_with_its_worker(bep, home, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    settings = {"mini_batch_size": 1, "retry_settings": {"max_retries": 1, "timeout": 1}}
    deploy(bep, tmp_path, FIRST_ATTEMPT_HANGS, settings, variables={"ATTEMPTS_DIR": str(attempts)})
    inputs = write_tree(tmp_path / "inputs", {"a.txt": "a", "b.txt": "b"})

    job = run_job(bep, inputs)

    assert job.status == "Completed", job.error
    assert job.counts.files_succeeded == 2
    assert files_under(Path(job.output_folder)) == ["a.txt", "b.txt", "predictions.csv"]


def test_the_sdk_downloads_a_summary_only_jobs_own_files_under_their_paths(local_api: LocalApi, tmp_path):
    client = BatchEndpointsClient(local_api.url, session=local_api.session())
    code = write_tree(tmp_path / "code", {"score.py": FIRST_ATTEMPT_FAILS})
    model = client.models.create_or_update(
        Model(name="m", version="1", path=str(write_tree(tmp_path / "model", {"w.txt": "1"})))
    )
    client.batch_endpoints.create_or_update(Endpoint(name="sdk-custom"))
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    settings = RunSettings(
        mini_batch_size=1,
        output_action=OutputAction.SUMMARY_ONLY,
        environment_variables={"ATTEMPTS_DIR": str(attempts)},
    )
    client.batch_deployments.create_or_update(
        Deployment(
            name="blue",
            endpoint_name="sdk-custom",
            model=model.ref,
            code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
            settings=settings,
        ),
        set_default=True,
    )
    inputs = write_tree(tmp_path / "inputs", {"x.txt": "x", "y.txt": "y"})
    started = client.batch_endpoints.invoke("sdk-custom", input=str(inputs))
    job = client.jobs.stream(started.id, interval_s=0.2, timeout_s=300)

    downloaded = client.jobs.download(job.id, download_path=str(tmp_path / "dl"))

    assert job.status == "Completed", job.error
    assert downloaded == str(tmp_path / "dl" / "named-outputs" / "score")
    assert files_under(tmp_path / "dl") == ["named-outputs/score/by-input/x.txt", "named-outputs/score/by-input/y.txt"]


class _S3Api:
    """What Storage asks of its connection to reach S3: the caller's session and region."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.region = "us-east-1"


def test_a_stacks_output_folder_is_listed_from_s3_whole_and_only_it(s3_session):
    s3 = s3_session.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="out")
    for key in ("outputs/e/j1/predictions.csv", "outputs/e/j1/sub/a.parquet", "outputs/e/j10/x", "outputs/e/j1/"):
        s3.put_object(Bucket="out", Key=key, Body=b"1")

    listed = Storage(_S3Api(s3_session)).list_folder("s3://out/outputs/e/j1")  # type: ignore[arg-type]

    assert listed == ["s3://out/outputs/e/j1/predictions.csv", "s3://out/outputs/e/j1/sub/a.parquet"]


@pytest.fixture
def s3_session(monkeypatch: pytest.MonkeyPatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")
