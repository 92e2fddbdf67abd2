"""The scoring container's region comes from its job definition alone: boto3 does not read it from instance
metadata, and not every ECS agent injects it. The runner runs as a real subprocess with nothing but what a Batch
container has: the variables of the job definition the API Lambda (in its region) registers, read back from Batch,
and the task role's credentials; no AWS_* of this process, no AWS config file. Without the job definition's region
it stops at its first AWS client, as it would on AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from batch_endpoints import workflow
from batch_endpoints.adapters.aws.backend import open_aws_backend
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.specs import Job, JobStatus
from tests.test_runner_on_aws import (  # noqa: F401
    MEAN_PIXEL_SCRIPT,
    REGION,
    REPO,
    Cloud,
    cloud,
    digit_pngs,
    moto_server,
    record_job,
)

pytestmark = pytest.mark.slow

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
TASK_ROLE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
COMPUTES = [
    {
        "name": "cpu-cluster",
        "kind": "cpu",
        "job_queue": f"arn:aws:batch:{REGION}:123456789012:job-queue/bep-cpu",
        "vcpus": 2,
        "max_vcpus": 16,
        "memory_mib": 4096,
    }
]


def registered_environment(server: Cloud, job: Job, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The job definition's environment as the API Lambda registers it: the backend opened from the Lambda's
    environment (Lambda sets AWS_REGION and AWS_DEFAULT_REGION in every function), the deployment registered, read
    back from Batch."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BEP_")):
            monkeypatch.delenv(name)
    lambda_environment = {
        "BEP_TABLE": server.records.table_name,
        "BEP_BUCKET": server.blobs.bucket,
        "BEP_COMPUTES": json.dumps(COMPUTES),
        "BEP_IMAGES": json.dumps({"cpu": "bep-cpu:latest", "gpu": "bep-gpu:latest"}),
        "BEP_JOB_ROLE_ARN": "arn:aws:iam::123456789012:role/bep-job",
        "BEP_LOG_GROUP": "/bep/jobs",
        **dict.fromkeys(REGION_VARIABLES, REGION),
        "AWS_ENDPOINT_URL": server.url,
        **TASK_ROLE_CREDENTIALS,
    }
    for name, value in lambda_environment.items():
        monkeypatch.setenv(name, value)
    arn = open_aws_backend().computes.register_deployment(job.deployment)
    (definition,) = boto3.client("batch").describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    return {v["name"]: v["value"] for v in definition["containerProperties"]["environment"]}


def run_in_container(
    server: Cloud, job: Job, shards: list[str], variables: dict[str, str], home: Path
) -> subprocess.CompletedProcess[str]:
    """`python -m batch_container` with the container's environment and nothing else: the job definition's
    variables, the task role's credentials, and (for the test only) where moto's server is."""
    environment = {
        **variables,
        **TASK_ROLE_CREDENTIALS,
        "AWS_ENDPOINT_URL": server.url,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "HOME": str(home),  # no ~/.aws/config to find a region in
        "TMPDIR": str(home),
    }
    arguments = [a for uri in shards for a in ("--shard", uri)]
    return subprocess.run(
        [sys.executable, "-m", "batch_container", "--job-id", job.id, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
    )


def test_the_runner_reaches_aws_with_only_the_job_definitions_environment(
    cloud: Cloud,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, model, home = tmp_path / "code", tmp_path / "model", tmp_path / "home"
    for folder in (code, model, home):
        folder.mkdir()
    (code / "score.py").write_text(MEAN_PIXEL_SCRIPT)
    (model / "offset.txt").write_text("1000")
    inputs = digit_pngs(4)
    job = record_job(cloud, "digits-region", code_dir=code, model_dir=model, scoring_script="score.py", inputs=inputs)
    shards = workflow.plan_job(cloud.backend, job.id).shard_uris
    variables = registered_environment(cloud, job, monkeypatch)
    assert {name: variables.get(name) for name in REGION_VARIABLES} == dict.fromkeys(REGION_VARIABLES, REGION)

    # What a container gets from a job definition without them: the runner cannot open its first client.
    regionless = {name: value for name, value in variables.items() if name not in REGION_VARIABLES}
    failed = run_in_container(cloud, job, shards, regionless, home)
    assert failed.returncode != 0 and "NoRegionError" in failed.stderr, failed.stderr

    finished = run_in_container(cloud, job, shards, variables, home)

    assert finished.returncode == 0, finished.stderr
    files = JobFiles(cloud.blobs, job.scratch_uri)
    assert all(cloud.blobs.exists(files.result(n)) for n in range(2))
    ended = workflow.finalize_job(cloud.backend, job.id)
    assert (ended.status, ended.counts.files_succeeded) == (JobStatus.COMPLETED, 4)
