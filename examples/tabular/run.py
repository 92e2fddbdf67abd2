"""The tabular example, end to end on this machine: an MLflow model deployed with no scoring script, invoked on
CSV files split into row mini-batches, its predictions checked against the model's own `predict`.

    python examples/tabular/run.py          # seconds; uses a fresh local home under .bep/tabular
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(HERE)]

from train import train, write_requests  # noqa: E402

from batch_endpoints.backend import HOME_VARIABLE  # noqa: E402
from batch_endpoints.cli.main import main as bep_main  # noqa: E402

DEFAULT_HOME = REPO / ".bep" / "tabular"
ROWS_PER_MINI_BATCH = "40"


def bep(*args: str) -> str:
    """Run one `bep` command as a user would type it, echoing it, and return what it printed."""
    print(f"\n$ bep {' '.join(args)}", flush=True)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = bep_main(list(args))
    if code != 0:
        raise SystemExit(f"bep {' '.join(args)} failed with exit code {code}")
    return captured.getvalue().strip()


def run(workdir: Path) -> pd.DataFrame:
    """Train, deploy, invoke, and return the merged predictions after checking them; BEP_HOME must be set."""
    model = train(workdir / "model")
    rows = write_requests(workdir / "requests")
    bep("endpoint", "create", "--file", str(HERE / "endpoint.yml"))
    # The deployment file names the model folder next to it; point it at the one just trained.
    bep(
        "deployment", "create", "--file", str(HERE / "deployment.yml"),
        "--set", f"model.path={workdir / 'model'}", "--set-default",
    )  # fmt: skip
    job = bep(
        "endpoint", "invoke", "--name", "cancer-classifier", "--input", str(workdir / "requests"),
        "--mini-batch-size", ROWS_PER_MINI_BATCH,
    )  # fmt: skip
    bep("job", "stream", "--name", job)
    output = bep("job", "download", "--name", job, "--download-path", str(workdir / "downloads")).splitlines()[0]
    predictions = pd.read_csv(output)
    expected = model.predict(rows)  # type: ignore[attr-defined]
    if predictions["prediction"].tolist() != expected.tolist():
        raise SystemExit("the endpoint's predictions differ from the model's own predict()")
    print(f"\noutput: {output}\n{len(predictions)} rows, every prediction equal to the model's own predict()")
    return predictions


def main() -> None:
    if not os.environ.get(HOME_VARIABLE):
        shutil.rmtree(DEFAULT_HOME, ignore_errors=True)
        os.environ[HOME_VARIABLE] = str(DEFAULT_HOME)
    run(Path(os.environ[HOME_VARIABLE]) / "example")


if __name__ == "__main__":
    main()
