"""The main job, end to end on this machine, with no AWS account: README command 1 (`make quickstart`).

Trains the digits model (seconds), writes sample requests with known labels, then walks the same `bep` steps a
user types: register two model versions, create an endpoint with two deployments, invoke the default one on the
folder, stream the job, invoke the other deployment with per-invocation overrides, switch the default — and
checks the predictions against the labels.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from batch_endpoints.backend import HOME_VARIABLE  # noqa: E402
from batch_endpoints.cli.main import main as bep_main  # noqa: E402
from batch_endpoints.yaml_specs import load_deployment, load_endpoint  # noqa: E402

DEFAULT_HOME = REPO / ".bep" / "quickstart"


def bep(*args: str) -> str:
    """Run one `bep` command as a user would type it, echoing it, and return what it printed."""
    print(f"\n$ bep {' '.join(args)}", flush=True)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = bep_main(list(args))
    printed = captured.getvalue()
    if printed.strip() and args[1] in {"list", "invoke"}:
        print(printed, end="")
    if code != 0:
        raise SystemExit(f"bep {' '.join(args)} failed with exit code {code}")
    return printed.strip()


def prepare(files: int) -> None:
    for variant, folder in (("standard", "model"), ("small", "model-small")):
        if not (HERE / folder / "model.pt").exists():
            print(f"training the {variant} digits model into examples/digits/{folder} ...", flush=True)
            subprocess.run(
                [sys.executable, str(HERE / "train.py"), "--output", str(HERE / folder), "--variant", variant],
                check=True,
            )
    requests = HERE / "sample-requests"
    if sum(1 for _ in requests.rglob("*.png")) != files:
        shutil.rmtree(requests, ignore_errors=True)
        subprocess.run(
            [sys.executable, str(HERE / "make_requests.py"), "--output", str(requests), "--count", str(files)],
            check=True,
        )


def accuracy(predictions: Path) -> tuple[float, int]:
    predicted = pd.read_csv(predictions)
    labels = pd.read_csv(HERE / "labels.csv")
    joined = predicted.merge(labels, on="file", validate="one_to_one")
    return float((joined["class"] == joined["label"]).mean()), len(joined)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="number of sample requests to score")
    args = parser.parse_args()

    if not os.environ.get(HOME_VARIABLE):
        # A fresh local home each run, so the quickstart can be run again and again.
        shutil.rmtree(DEFAULT_HOME, ignore_errors=True)
        os.environ[HOME_VARIABLE] = str(DEFAULT_HOME)
    prepare(args.files)
    endpoint = load_endpoint(HERE / "endpoint.yml").name
    default = load_deployment(HERE / "deployment.yml").name
    other = load_deployment(HERE / "deployment-small.yml").name
    requests = str(HERE / "sample-requests")

    bep("model", "create", "--name", "digits", "--path", str(HERE / "model"))
    bep("model", "create", "--name", "digits-small", "--path", str(HERE / "model-small"))
    bep("endpoint", "create", "--file", str(HERE / "endpoint.yml"))
    bep("deployment", "create", "--file", str(HERE / "deployment.yml"), "--set-default")
    bep("deployment", "create", "--file", str(HERE / "deployment-small.yml"))
    bep("deployment", "list", "--endpoint-name", endpoint)

    job = bep("endpoint", "invoke", "--name", endpoint, "--input", requests)
    bep("job", "stream", "--name", job)
    output = Path(
        bep(
            "job",
            "download",
            "--name",
            job,
            "--download-path",
            str(Path(os.environ[HOME_VARIABLE]) / "downloads" / job),
        ).splitlines()[0]
    )

    other_job = bep(
        "endpoint",
        "invoke",
        "--name",
        endpoint,
        "--input",
        requests,
        "--deployment-name",
        other,
        "--mini-batch-size",
        "25",
        "--set",
        "max_retries=1",
    )
    bep("job", "stream", "--name", other_job)
    other_output = Path(
        bep(
            "job",
            "download",
            "--name",
            other_job,
            "--download-path",
            str(Path(os.environ[HOME_VARIABLE]) / "downloads" / other_job),
        ).splitlines()[0]
    )
    bep("endpoint", "update", "--name", endpoint, "--default-deployment", other)
    bep("job", "list", "--endpoint-name", endpoint)

    other_accuracy, other_count = accuracy(other_output)
    print(f"\n{other} (non-default, mini_batch_size 25): accuracy {other_accuracy:.3f} over {other_count} files")
    print(f"default deployment of {endpoint} is now {other}; it was {default}")
    score, count = accuracy(output)
    print(f"output: {output}")
    print(f"accuracy: {score:.3f} over {count} files")


if __name__ == "__main__":
    main()
