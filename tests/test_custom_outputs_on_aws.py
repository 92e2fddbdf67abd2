"""A scoring script's own files (AZUREML_BI_OUTPUT_PATH) on AWS: the runner, a real subprocess against moto's S3
and DynamoDB, commits them into the job's output folder in S3 once their mini-batch succeeded; a failed attempt's
files never arrive, a retried Batch job writes nothing twice, and finalize leaves them as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_endpoints import workflow
from batch_endpoints.repository import Repository
from batch_endpoints.specs import JobStatus, RetrySettings
from tests.core_fixtures import write_tree
from tests.test_runner_on_aws import Cloud, cloud, moto_server, record_job, run_runner  # noqa: F401

pytestmark = pytest.mark.slow

# Writes one file per input, under a folder; the first attempt at the input "flaky" writes one more and fails.
PER_INPUT_FILES = """\
import os
from pathlib import Path


def init():
    global output_path
    output_path = os.environ["AZUREML_BI_OUTPUT_PATH"]


def run(mini_batch):
    os.makedirs(os.path.join(output_path, "scores"), exist_ok=True)
    for path in mini_batch:
        stem = Path(path).stem
        tried = Path(os.environ["ATTEMPTS_DIR"], stem)
        if stem == "flaky" and not tried.exists():
            tried.write_text("1")
            Path(output_path, "scores", "from-a-failed-attempt.txt").write_text("never committed")
            raise RuntimeError("first attempt fails")
        Path(output_path, "scores", stem + ".txt").write_text(Path(path).read_text() + "!")
    return mini_batch
"""


def test_the_scripts_files_reach_the_s3_output_folder_once(cloud: Cloud, tmp_path: Path) -> None:  # noqa: F811
    code = write_tree(tmp_path / "code", {"score.py": PER_INPUT_FILES})
    model = write_tree(tmp_path / "model", {"weights.txt": "1"})
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    names = ["a", "b", "flaky", "c", "d"]
    inputs = {f"{name}.txt": name.encode() for name in names}
    job = record_job(cloud, "custom-0001", code_dir=code, model_dir=model, scoring_script="score.py", inputs=inputs)
    settings = job.settings.model_copy(
        update={
            "retry_settings": RetrySettings(max_retries=1, timeout=60),
            "environment_variables": {"ATTEMPTS_DIR": str(attempts)},
        }
    )
    assert job.output_uri is not None
    output_file = job.output_uri
    folder = output_file.rpartition("/")[0]
    job = Repository(cloud.records).update_job(
        job.id, lambda j: j.model_copy(update={"settings": settings, "output_folder": folder})
    )

    plan = workflow.plan_job(cloud.backend, job.id)
    scratch = tmp_path / "runner-tmp"
    scratch.mkdir()
    run_runner(cloud, job, plan.shard_uris, scratch)
    committed = {info.uri: cloud.blobs.get_bytes(info.uri) for info in cloud.blobs.list_files(folder)}
    # The Batch job retried (a Spot interruption after its work was done): every mini-batch has its result.
    run_runner(cloud, job, plan.shard_uris, scratch)
    finished = workflow.finalize_job(cloud.backend, job.id)

    assert finished.status == JobStatus.COMPLETED, finished.error
    assert finished.counts.files_succeeded == len(names)
    expected = {cloud.blobs.join(folder, "scores", f"{name}.txt"): f"{name}!".encode() for name in names}
    assert committed == expected
    after = sorted(info.uri for info in cloud.blobs.list_files(folder))
    assert after == sorted([*expected, output_file])
    assert all(cloud.blobs.get_bytes(uri) == content for uri, content in expected.items())
