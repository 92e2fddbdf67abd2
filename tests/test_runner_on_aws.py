"""The scoring runner in its cloud mode: S3 for files, DynamoDB for records, through the same ports.

moto runs as a real HTTP server and the runner as a real subprocess that finds it through AWS_ENDPOINT_URL, with
exactly the environment an AWS Batch job definition gives it (BEP_BACKEND, BEP_TABLE, BEP_BUCKET). The job is
planned and finalized by the workflow's own steps, so one test walks a job's whole data path on AWS:
plan (shards in S3) → runner (inputs from another bucket, parts, results, counters) → finalize (output file).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from PIL import Image
from werkzeug.serving import make_server

from batch_endpoints import workflow
from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.adapters.aws.records import DynamoDbRecordStore, table_definition
from batch_endpoints.backend import Backend
from batch_endpoints.jobfiles import JobFiles, MiniBatchResult
from batch_endpoints.repository import Repository
from batch_endpoints.specs import CodeConfiguration, Deployment, Job, JobInput, JobStatus, RetrySettings, RunSettings
from tests.example_scripts import digits_data

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
TABLE = "bep-records"
BUCKET = "bep-storage"
IMAGES_BUCKET = "user-images"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}

MEAN_PIXEL_SCRIPT = """\
import glob
import os

import numpy as np
from PIL import Image


def init():
    global offset
    # Azure's layout: the model folder under AZUREML_MODEL_DIR by its own name (MODEL_DIR is the folder itself).
    (path,) = glob.glob(os.path.join(os.environ["AZUREML_MODEL_DIR"], "*", "offset.txt"))
    assert path == os.path.join(os.environ["MODEL_DIR"], "offset.txt")
    with open(path) as f:
        offset = float(f.read())


def run(mini_batch):
    rows = []
    for path in mini_batch:
        with Image.open(path) as image:
            mean = float(np.asarray(image).mean())
        # How many downloaded inputs sit on disk now: the runner must delete each mini-batch's copies.
        downloads = path[: path.index("/inputs/")]
        on_disk = sum(len([n for n in names if n.endswith(".png")]) for _, _, names in os.walk(downloads))
        rows.append({"mean": mean + offset, "local_path": path, "on_disk": on_disk})
    return rows
"""


class SerializedMotoServer(ThreadedMotoServer):
    """moto's server, applying one request at a time as DynamoDB and S3 apply each request atomically
    (moto checks a condition and writes without isolation; the runner writes counters from 4 threads).
    It notes every GET's path and Range header in `gets`."""

    gets: list[tuple[str, str | None]] = []

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def one_at_a_time(environ: dict[str, Any], start_response: Any) -> Any:
            with lock:
                if environ["REQUEST_METHOD"] == "GET":
                    self.gets.append((environ.get("PATH_INFO", ""), environ.get("HTTP_RANGE")))
                return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, one_at_a_time, True)
        self._server_ready_event.set()
        self._server.serve_forever()


@dataclass
class Cloud:
    url: str
    backend: Backend
    records: DynamoDbRecordStore
    blobs: S3BlobStore
    images_root: str
    """The user's bucket the inputs are in."""

    def runner_environment(self, tmp: Path) -> dict[str, str]:
        """What the runner's container gets: the job definition's variables and the task role's credentials."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEP_"))}
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return {
            **inherited,
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.url,
            "BEP_BACKEND": "aws",
            "BEP_TABLE": self.records.table_name,
            "BEP_BUCKET": self.blobs.bucket,
            "PYTHONPATH": pythonpath,
            "TMPDIR": str(tmp),
        }


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    SerializedMotoServer.gets.clear()
    server = SerializedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def cloud(moto_server: str) -> Cloud:
    """A fresh table and buckets on the server, and the stores the workflow steps use."""
    # moto's state is per process, not per server, and other test modules import this fixture (as another copy of
    # this module): names unique in the process, not per module.
    suffix = f"-{uuid.uuid4().hex[:8]}"
    options = {"endpoint_url": moto_server, "region_name": REGION, "aws_access_key_id": "testing"}
    options["aws_secret_access_key"] = "testing"
    dynamodb, s3 = boto3.client("dynamodb", **options), boto3.client("s3", **options)
    table, bucket = TABLE + suffix, BUCKET + suffix
    dynamodb.create_table(**table_definition(table))
    for name in (bucket, IMAGES_BUCKET + suffix):
        s3.create_bucket(Bucket=name)
    records, blobs = DynamoDbRecordStore(table, dynamodb), S3BlobStore(bucket, client=s3)
    backend = Backend("aws", records, blobs, None, None, None, "", {})  # type: ignore[arg-type]
    return Cloud(moto_server, backend, records, blobs, f"s3://{IMAGES_BUCKET}{suffix}")


def digit_pngs(count: int) -> dict[str, bytes]:
    """Held-out digits as the example's model sees them (28x28, MNIST-like: tests/example_scripts.py), as PNGs
    under one folder per label."""
    _, _, images, labels = digits_data().train_test_images()
    files = {}
    for number in range(count):
        out = io.BytesIO()
        Image.fromarray(images[number]).save(out, format="PNG")
        files[f"{labels[number]}/img-{number:03d}.png"] = out.getvalue()
    return files


def record_job(
    cloud: Cloud, job_id: str, *, code_dir: Path, model_dir: Path, scoring_script: str, inputs: dict[str, bytes]
) -> Job:
    """What invoke leaves behind: code and model in storage, inputs in the user's bucket, a Queued job."""
    blobs = cloud.blobs
    code = blobs.join(blobs.root, "code", job_id)
    blobs.upload_folder(str(code_dir), code)
    model = blobs.join(blobs.root, "models", "digits", job_id)
    blobs.upload_folder(str(model_dir), model)
    input_uri = blobs.join(cloud.images_root, "digits")
    for name, content in inputs.items():
        blobs.put_bytes(blobs.join(input_uri, name), content)
    settings = RunSettings(
        mini_batch_size=2,
        max_concurrency_per_instance=2,
        retry_settings=RetrySettings(max_retries=0, timeout=60),
    )
    deployment = Deployment(
        name="blue",
        endpoint_name="digits",
        model="digits:1",
        code_configuration=CodeConfiguration(code=code, scoring_script=scoring_script),
        settings=settings,
    )
    job = Job(
        id=job_id,
        endpoint_name="digits",
        deployment_name="blue",
        deployment=deployment,
        model_path=model,
        input=JobInput(uri=input_uri),
        output_uri=blobs.join(blobs.root, "outputs", "digits", job_id, "predictions.csv"),
        scratch_uri=blobs.join(blobs.root, "jobs", job_id),
        settings=settings,
    )
    Repository(cloud.records).add_job(job)
    return job


def run_runner(cloud: Cloud, job: Job, shards: list[str], tmp: Path, timeout: float = 120) -> str:
    environment = cloud.runner_environment(tmp)
    arguments = [a for uri in shards for a in ("--shard", uri)]
    finished = subprocess.run(
        [sys.executable, "-m", "batch_container", "--job-id", job.id, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stderr


def test_a_job_runs_from_s3_inputs_to_an_s3_output_with_progress_in_dynamodb(cloud: Cloud, tmp_path: Path) -> None:
    inputs = digit_pngs(40)
    inputs["5/img-broken.png"] = b"not a png"  # its mini-batch fails (run raises); the job goes on
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(MEAN_PIXEL_SCRIPT)
    model = tmp_path / "model"
    model.mkdir()
    (model / "offset.txt").write_text("1000")
    job = record_job(cloud, "digits-0001", code_dir=code, model_dir=model, scoring_script="score.py", inputs=inputs)

    plan = workflow.plan_job(cloud.backend, job.id)
    scratch = tmp_path / "runner-tmp"
    scratch.mkdir()
    stderr = run_runner(cloud, job, plan.shard_uris, scratch)
    finished = workflow.finalize_job(cloud.backend, job.id)

    names = sorted(inputs)
    files = JobFiles(cloud.blobs, job.scratch_uri)
    assert [cloud.blobs.relative(job.scratch_uri, i.uri) for i in cloud.blobs.list_files(files.results_folder)] == [
        f"results/mb-{n:08d}.json" for n in range(21)
    ]
    results = [MiniBatchResult.from_json(cloud.blobs.get_bytes(files.result(n))) for n in range(21)]
    broken = names.index("5/img-broken.png") // 2
    assert [n for n, r in enumerate(results) if r.failed] == [broken]
    assert "cannot identify image file" in results[broken].failed[0].error
    assert "attempt 1 of 1 failed" in stderr
    assert [n for n in range(21) if cloud.blobs.exists(files.part(n))] == [n for n in range(21) if n != broken]

    record = cloud.records.get("job", job.id)
    assert record is not None
    assert record.counters == {
        "mini_batches_done": 21,
        "mini_batches_failed": 1,
        "files_succeeded": 39,
        "files_failed": 2,
    }
    assert finished.status == JobStatus.COMPLETED
    assert (finished.counts.files, finished.counts.files_succeeded, finished.counts.files_failed) == (41, 39, 2)

    assert job.output_uri is not None
    output = pd.read_csv(io.BytesIO(cloud.blobs.get_bytes(job.output_uri)))
    scored = [n for n in names if n not in names[2 * broken : 2 * broken + 2]]
    assert output["file"].tolist() == scored
    expected = [float(np.asarray(Image.open(io.BytesIO(inputs[n]))).mean()) + 1000 for n in scored]
    assert output["mean"].tolist() == pytest.approx(expected)
    errors = [json.loads(line) for line in cloud.blobs.get_bytes(files.errors).decode().splitlines()]
    assert [e["file"] for e in errors] == names[2 * broken : 2 * broken + 2]

    # Inputs were downloaded into the runner's scratch folder, a few mini-batches ahead, and deleted after use.
    assert all(path.startswith(str(scratch)) for path in output["local_path"])
    assert not any(Path(path).exists() for path in output["local_path"])
    assert output["on_disk"].max() <= 16 < len(inputs)
    assert list(scratch.iterdir()) == []


def test_the_digits_example_scores_s3_images_with_its_torch_model(
    cloud: Cloud, tmp_path: Path, digits_models: dict[str, Path]
) -> None:
    inputs = digit_pngs(24)
    job = record_job(
        cloud,
        "digits-torch",
        code_dir=REPO / "examples" / "digits" / "code",
        model_dir=digits_models["small"],
        scoring_script="batch_driver.py",
        inputs=inputs,
    )

    plan = workflow.plan_job(cloud.backend, job.id)
    scratch = tmp_path / "runner-tmp"
    scratch.mkdir()
    run_runner(cloud, job, plan.shard_uris, scratch, timeout=180)
    finished = workflow.finalize_job(cloud.backend, job.id)

    assert finished.status == JobStatus.COMPLETED
    assert job.output_uri is not None
    output = pd.read_csv(io.BytesIO(cloud.blobs.get_bytes(job.output_uri)))
    assert output["file"].tolist() == sorted(inputs)
    labels = [int(name.split("/")[0]) for name in sorted(inputs)]
    accuracy = float(np.mean(np.asarray(output["class"]) == np.asarray(labels)))
    assert accuracy >= 0.8, output
    record = cloud.records.get("job", job.id)
    assert record is not None and record.counters["files_succeeded"] == 24


TABLE_SCRIPT = """\
def run(mini_batch):
    return (mini_batch["x"] * 3).rename("triple")
"""


def test_a_tabular_job_reads_only_ranges_of_its_s3_inputs(cloud: Cloud, tmp_path: Path) -> None:
    rows = 3000
    frame = pd.DataFrame({"x": range(rows), "text": [f"row {i} " + "z" * (i % 50) for i in range(rows)]})
    csv, parquet = io.BytesIO(), io.BytesIO()
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False, row_group_size=250)
    inputs = {"a.csv": csv.getvalue(), "b.parquet": parquet.getvalue()}
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(TABLE_SCRIPT)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("1")
    job = record_job(cloud, "tables-0001", code_dir=code, model_dir=model, scoring_script="score.py", inputs=inputs)
    settings = job.settings.model_copy(update={"mini_batch_size": 500, "input_format": "tables"})
    job = Repository(cloud.records).update_job(job.id, lambda j: j.model_copy(update={"settings": settings}))
    SerializedMotoServer.gets.clear()

    plan = workflow.plan_job(cloud.backend, job.id)
    scratch = tmp_path / "runner-tmp"
    scratch.mkdir()
    run_runner(cloud, job, plan.shard_uris, scratch)
    finished = workflow.finalize_job(cloud.backend, job.id)

    assert finished.status == JobStatus.COMPLETED and finished.counts.files == 2 * rows
    assert job.output_uri is not None
    output = pd.read_csv(io.BytesIO(cloud.blobs.get_bytes(job.output_uri)))
    assert output["triple"].tolist() == [3 * x for x in range(rows)] * 2
    # 6 mini-batches a file, and never a GET of a whole input file: planning and the runner read ranges only.
    input_gets = [(path, wanted) for path, wanted in SerializedMotoServer.gets if path.endswith(tuple(inputs))]
    assert len(input_gets) > 12 and all(wanted for _, wanted in input_gets), input_gets
    assert list(scratch.iterdir()) == []
