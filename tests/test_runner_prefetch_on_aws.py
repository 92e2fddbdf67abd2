"""The runner scores the same rows whether it fetches far ahead of its workers or one file at a time.

The real runner (a subprocess) reads its inputs from moto's S3 over HTTP, as in test_runner_on_aws.py; the job's
own environment variables set how it fetches. One input is deleted after planning: it fails alone, named, and the
other file of its mini-batch is scored, whatever the prefetching."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from batch_endpoints import workflow
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.repository import Repository
from batch_endpoints.specs import JobStatus
from tests.test_runner_on_aws import Cloud, cloud, digit_pngs, moto_server, record_job, run_runner  # noqa: F401

pytestmark = pytest.mark.slow

SCRIPT = """\
import numpy as np
from PIL import Image


def run(mini_batch):
    return [{"mean": float(np.asarray(Image.open(path)).mean())} for path in mini_batch]
"""
ONE_AT_A_TIME = {"BEP_PREFETCH_DEPTH": "1", "BEP_FETCH_THREADS": "1"}
FAR_AHEAD = {"BEP_PREFETCH_DEPTH": "16", "BEP_FETCH_THREADS": "32"}
# A budget of a few of these files: the runner often waits for its workers to finish before fetching more.
TIGHT_BUDGET = {"BEP_PREFETCH_BYTES": "1500"}


def scored(
    cloud: Cloud,  # noqa: F811
    tmp_path: Path,
    job_id: str,
    variables: dict[str, str],
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    code, model = tmp_path / job_id / "code", tmp_path / job_id / "model"
    code.mkdir(parents=True)
    model.mkdir()
    (code / "score.py").write_text(SCRIPT)
    (model / "weights.txt").write_text("1")
    inputs = digit_pngs(30)
    job = record_job(cloud, job_id, code_dir=code, model_dir=model, scoring_script="score.py", inputs=inputs)
    settings = job.settings.model_copy(update={"environment_variables": variables})
    job = Repository(cloud.records).update_job(job.id, lambda j: j.model_copy(update={"settings": settings}))
    plan = workflow.plan_job(cloud.backend, job.id)
    missing = sorted(inputs)[7]
    cloud.blobs.client.delete_object(Bucket=cloud.images_root.removeprefix("s3://"), Key=f"digits/{missing}")
    scratch = tmp_path / job_id[0]  # short: the workers' fork server listens on a socket under it (108 bytes)
    scratch.mkdir()
    run_runner(cloud, job, plan.shard_uris, scratch)
    finished = workflow.finalize_job(cloud.backend, job.id)
    assert finished.status == JobStatus.COMPLETED
    assert job.output_uri is not None
    output = pd.read_csv(io.BytesIO(cloud.blobs.get_bytes(job.output_uri)))
    errors = JobFiles(cloud.blobs, job.scratch_uri).errors
    return output, [json.loads(line) for line in cloud.blobs.get_bytes(errors).decode().splitlines()]


def test_the_results_do_not_depend_on_how_far_ahead_the_runner_fetches(cloud: Cloud, tmp_path: Path) -> None:  # noqa: F811
    baseline, baseline_errors = scored(cloud, tmp_path, "one-at-a-time", ONE_AT_A_TIME)
    names = sorted(digit_pngs(30))
    assert baseline["file"].tolist() == names[:7] + names[8:]
    assert [error["file"] for error in baseline_errors] == [names[7]]
    assert "could not read the input file: NotFoundError" in baseline_errors[0]["error"]
    for job_id, variables in (("far-ahead", FAR_AHEAD), ("tight-budget", TIGHT_BUDGET)):
        output, errors = scored(cloud, tmp_path, job_id, variables)
        pd.testing.assert_frame_equal(output, baseline)
        assert errors == baseline_errors
