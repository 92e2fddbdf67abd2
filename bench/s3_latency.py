"""S3 latency: does the runner keep its workers busy when every S3 request takes 20 ms?

    python bench/s3_latency.py [--files 10000] [--delay-ms 20] [--model-ms 10] [--workers 2] [--small]

In the cloud a job mostly reads many small objects from S3, where each GET costs 10 to 50 ms. Here moto's S3 and
DynamoDB run as a server in this process, behind a small HTTP proxy that holds every request for `--delay-ms`
before forwarding it (the runner's GETs, its part and result PUTs, its counter updates: everything it sends).
`--files` small objects are scored by a trivial model that takes `--model-ms` a file (a sleep: the time of a
small model's forward pass, spent off this loaded CPU so that what is measured is the waiting on storage).

- ours: the real runner (`python -m batch_container`, as an AWS Batch job runs it) on the planned shards, with
  `--workers` workers and the prefetch sizing the instance gives it (batch_endpoints/fetch_sizing.py); its
  workers note when each run() starts and ends. Worker busy fraction = time in run() / (workers x the time from
  the first run() start to the last run() end). Files/s from the runner's start to its end (process start,
  workers' start and init() included) and between the first and the last run().
- loop: one boto3 client, a GET of each object then the same scoring of it, one after the other, on the first
  `--loop-files` objects (its rate does not change with the count: it is one GET and one scoring per file).

Both read through the same proxy, in this process's run; the ratio of their rates is what to compare across
machines. Predictions are compared for the files both scored.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import logging
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from common import RESULTS, Target, report

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
TABLE, BUCKET, INPUTS = "bench-records", "bench-storage", "bench-inputs"
OBJECT_BYTES = 2048
MIN_BUSY = 0.80
SCORING_SCRIPT = """\
import os
import time

MODEL_S = float(os.environ["BENCH_MODEL_MS"]) / 1000


def init():
    global busy_log
    busy_log = open(os.path.join(os.environ["BENCH_BUSY_DIR"], f"{os.getpid()}.log"), "a", buffering=1)


def run(mini_batch):
    started = time.monotonic()  # system-wide on Linux: comparable across the workers
    rows = []
    for path in mini_batch:
        with open(path, "rb") as f:
            data = f.read()
        time.sleep(MODEL_S)
        rows.append({"score": sum(data[:64]) % 997})
    busy_log.write(f"{started} {time.monotonic()}\\n")
    return rows
"""


def score(data: bytes) -> int:
    """The trivial model's prediction, as the scoring script computes it."""
    return sum(data[:64]) % 997


# --------------------------------------------------------------------------------------------- the proxy
class _Delaying(BaseHTTPRequestHandler):
    """Forwards each request to moto after holding it `delay_s`; one kept-alive connection to moto per thread."""

    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 0)
    delay_s = 0.0
    _local = threading.local()

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm holds the body for the client's
        # delayed ACK (40 ms on Linux), twice the latency being modelled.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: Any) -> None:  # one line per request would drown the report
        return

    def _forward(self) -> None:
        body = self._body()
        time.sleep(self.delay_s)
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(*self.upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        connection.request(self.command, self.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(name, value)
        # A HEAD's length is the object's, not of a body that never comes.
        self.send_header(
            "Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


@contextlib.contextmanager
def delayed_aws(delay_s: float) -> Iterator[tuple[str, str]]:
    """(moto's URL, the delaying proxy's URL)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would drown the report
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # The proxy in a process of its own: sharing moto's interpreter (and its lock), it would take CPU from moto.
    ports: multiprocessing.SimpleQueue[int] = multiprocessing.get_context("spawn").SimpleQueue()
    proxy = multiprocessing.get_context("spawn").Process(
        target=_serve_proxy, args=((host, port), delay_s, ports), name="delaying-proxy", daemon=True
    )
    proxy.start()
    try:
        yield f"http://{host}:{port}", f"http://127.0.0.1:{ports.get()}"
    finally:
        proxy.terminate()
        proxy.join()
        server.stop()


def _serve_proxy(upstream: tuple[str, int], delay_s: float, ports: multiprocessing.SimpleQueue[int]) -> None:
    handler = type("Delaying", (_Delaying,), {"upstream": upstream, "delay_s": delay_s, "_local": threading.local()})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    proxy.daemon_threads = True
    ports.put(proxy.server_address[1])
    proxy.serve_forever()


# --------------------------------------------------------------------------------------------- the job
def client(service: Literal["s3", "dynamodb"], url: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=64, retries={"mode": "standard"})
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client(service, endpoint_url=url, region_name=REGION, config=config)


def create_stores(moto_url: str) -> None:
    from batch_endpoints.adapters.aws.records import table_definition

    client("dynamodb", moto_url).create_table(**table_definition(TABLE))
    for bucket in (BUCKET, INPUTS):
        client("s3", moto_url).create_bucket(Bucket=bucket)


def put_inputs(count: int) -> dict[str, bytes]:
    """The objects, straight into moto's S3 (it serves from this process): setup, not measured."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    objects = {f"in/{n // 1000:02d}/obj-{n:05d}.bin": os.urandom(OBJECT_BYTES) for n in range(count)}
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key, body in objects.items():
        backend.put_object(INPUTS, key, body)
    return objects


def record_job(moto_url: str, workers: int, mini_batch_size: int, model_ms: float, busy_dir: str) -> Any:
    from batch_endpoints.adapters.aws.blobs import S3BlobStore
    from batch_endpoints.adapters.aws.records import DynamoDbRecordStore
    from batch_endpoints.backend import Backend
    from batch_endpoints.repository import Repository
    from batch_endpoints.specs import CodeConfiguration, Deployment, Job, JobInput, RetrySettings, RunSettings

    records, blobs = (
        DynamoDbRecordStore(TABLE, client("dynamodb", moto_url)),
        S3BlobStore(BUCKET, client=client("s3", moto_url)),
    )
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "code").mkdir()
        (Path(folder) / "code" / "score.py").write_text(SCORING_SCRIPT)
        (Path(folder) / "model").mkdir()
        (Path(folder) / "model" / "weights.txt").write_text("1")
        blobs.upload_folder(str(Path(folder) / "code"), blobs.join(blobs.root, "code"))
        blobs.upload_folder(str(Path(folder) / "model"), blobs.join(blobs.root, "model"))
    settings = RunSettings(
        mini_batch_size=mini_batch_size,
        max_concurrency_per_instance=workers,
        retry_settings=RetrySettings(max_retries=0, timeout=300),
        environment_variables={"BENCH_MODEL_MS": str(model_ms), "BENCH_BUSY_DIR": busy_dir},
    )
    code = CodeConfiguration(code=blobs.join(blobs.root, "code"), scoring_script="score.py")
    deployment = Deployment(
        name="blue", endpoint_name="s3-latency", model="m:1", code_configuration=code, settings=settings
    )
    job = Job(
        id="s3-latency",
        endpoint_name="s3-latency",
        deployment_name="blue",
        deployment=deployment,
        model_path=blobs.join(blobs.root, "model"),
        input=JobInput(uri=f"s3://{INPUTS}/in"),
        output_uri=blobs.join(blobs.root, "outputs", "predictions.csv"),
        scratch_uri=blobs.join(blobs.root, "jobs", "s3-latency"),
        settings=settings,
    )
    Repository(records).add_job(job)
    return Backend("aws", records, blobs, None, None, None, "", {}), job  # type: ignore[arg-type]


def run_ours(moto_url: str, proxy_url: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    import io

    import pandas as pd

    from batch_endpoints import workflow
    from batch_endpoints.fetch_sizing import fetch_sizing

    busy_dir = scratch / "busy"
    busy_dir.mkdir()
    backend, job = record_job(moto_url, args.workers, args.mini_batch_size, args.model_ms, str(busy_dir))
    plan = workflow.plan_job(backend, job.id)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEP_"))},
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": proxy_url,
        "BEP_BACKEND": "aws",
        "BEP_TABLE": TABLE,
        "BEP_BUCKET": BUCKET,
        "TMPDIR": str(scratch),
    }
    environment.update({k: str(v) for k, v in _overrides(args).items()})
    sizing = fetch_sizing(args.workers, environment)
    # As an AWS Batch job runs it, with every shard of the job (one instance).
    command = [sys.executable, "-m", "batch_container", "--job-id", job.id]
    command += [a for uri in plan.shard_uris for a in ("--shard", uri)]
    started = time.monotonic()
    children_cpu, own_cpu = _cpu_s(resource.RUSAGE_CHILDREN), _cpu_s(resource.RUSAGE_SELF)
    done = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=scratch, check=False)
    wall = time.monotonic() - started
    children_cpu, own_cpu = _cpu_s(resource.RUSAGE_CHILDREN) - children_cpu, _cpu_s(resource.RUSAGE_SELF) - own_cpu
    if done.returncode != 0:
        raise SystemExit(f"the runner failed:\n{done.stderr[-4000:]}")
    finished = workflow.finalize_job(backend, job.id)
    output = pd.read_csv(io.BytesIO(backend.blobs.get_bytes(job.output_uri)))
    spans = [tuple(map(float, line.split())) for path in busy_dir.iterdir() for line in path.read_text().splitlines()]
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    in_run = sum(e - s for s, e in spans)
    return {
        "files": int(finished.counts.files_succeeded),
        "wall_s": wall,
        "files_per_s": len(output) / wall,
        "steady_files_per_s": len(output) / (last - first),
        "busy": in_run / (args.workers * (last - first)),
        "runner_cpu_share": children_cpu / wall,
        "moto_cpu_share": own_cpu / wall,
        "prefetch_depth": sizing.depth,
        "fetch_threads": sizing.threads,
        "byte_budget": sizing.byte_budget,
        "predictions": dict(zip(output["file"], output["score"], strict=True)),
    }


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _overrides(args: argparse.Namespace) -> dict[str, int]:
    from batch_endpoints.fetch_sizing import DEPTH_VARIABLE, THREADS_VARIABLE

    chosen = {DEPTH_VARIABLE: args.depth, THREADS_VARIABLE: args.threads}
    return {name: value for name, value in chosen.items() if value}


def run_loop(proxy_url: str, keys: list[str], model_ms: float) -> dict[str, Any]:
    s3 = client("s3", proxy_url)
    predictions = {}
    started = time.monotonic()
    for key in keys:
        data = s3.get_object(Bucket=INPUTS, Key=key)["Body"].read()
        time.sleep(model_ms / 1000)
        predictions[key.removeprefix("in/")] = score(data)
    wall = time.monotonic() - started
    return {"files": len(keys), "wall_s": wall, "files_per_s": len(keys) / wall, "predictions": predictions}


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--loop-files", type=int, default=1_000, help="objects the sequential loop reads")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--model-ms", type=float, default=10.0, help="the trivial model's time per file")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--depth", type=int, help="BEP_PREFETCH_DEPTH for the runner (default: its sizing)")
    parser.add_argument("--threads", type=int, help="BEP_FETCH_THREADS for the runner (default: its sizing)")
    parser.add_argument("--small", action="store_true", help="200 objects, 100 in the loop: for a test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.small:
        args.files, args.loop_files = 200, 100
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)

    with delayed_aws(args.delay_ms / 1000) as (moto_url, proxy_url), tempfile.TemporaryDirectory() as scratch:
        create_stores(moto_url)
        objects = put_inputs(args.files)
        loop_keys = sorted(objects)[: min(args.loop_files, args.files)]
        ours = run_ours(moto_url, proxy_url, args, Path(scratch))
        loop = run_loop(proxy_url, loop_keys, args.model_ms)
    same = all(ours["predictions"].get(name) == value for name, value in loop.pop("predictions").items())
    ours_predictions = ours.pop("predictions")
    if ours["files"] != args.files or len(ours_predictions) != args.files or not same:
        raise SystemExit(f"ours scored {ours['files']} of {args.files} files; same predictions as the loop: {same}")
    ratio = ours["files_per_s"] / loop["files_per_s"]
    rows = [
        {"method": "ours (runner, end to end)", "files": ours["files"], "files/s": ours["files_per_s"], "ratio": ratio},
        {
            "method": "ours, first to last run()",
            "files": ours["files"],
            "files/s": ours["steady_files_per_s"],
            "ratio": ours["steady_files_per_s"] / loop["files_per_s"],
        },
        {"method": "sequential boto3 loop", "files": loop["files"], "files/s": loop["files_per_s"], "ratio": 1.0},
    ]
    ceiling = args.workers * 1000 / args.model_ms
    report(
        "s3_latency",
        title="S3 latency: worker busy fraction with a delay on every request",
        config={
            "files": args.files,
            "object bytes": OBJECT_BYTES,
            "delay per request (ms)": args.delay_ms,
            "model time per file (ms)": args.model_ms,
            "workers": args.workers,
            "mini_batch_size": args.mini_batch_size,
            "prefetch depth (mini-batches)": ours["prefetch_depth"],
            "fetch threads = S3 connections for fetching": ours["fetch_threads"],
            "byte budget": ours["byte_budget"],
        },
        tables={
            "Rates": rows,
            "Workers": [
                {
                    "worker busy fraction": ours["busy"],
                    "workers' ceiling (files/s)": ceiling,
                    "runner wall (s)": ours["wall_s"],
                    "CPU of runner + workers (cores)": ours["runner_cpu_share"],
                    "CPU of moto (cores)": ours["moto_cpu_share"],
                }
            ],
        },
        targets=[
            Target("worker busy fraction", ours["busy"], MIN_BUSY, at_least=True, unit=""),
            Target("ours / sequential loop (end to end)", ratio, 1.0, at_least=True),
        ],
        data={"ours": ours, "loop": loop, "ratio": ratio, "ceiling_files_per_s": ceiling},
        notes=[
            f"every request, the runner's writes and counter updates too, waits {args.delay_ms:g} ms in the proxy",
            "the loop's rate is measured on its first objects: one GET and one scoring per file, whatever the count",
            "moto, the proxy, the runner and its workers share this machine's cores: busy fraction and ratios, "
            "not absolute rates, are what carry over",
        ],
        out_dir=args.out,
    )


if __name__ == "__main__":
    main()
