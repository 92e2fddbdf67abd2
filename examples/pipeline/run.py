"""The pipeline example, end to end on this machine: a pipeline deployment in the shape of Azure's
batch-scoring-with-preprocessing, whose steps prepare the patients' CSV files (a command), score them with the
tabular example's MLflow model (a parallel step, mini-batches of files), and summarize the scores (a command).

    python examples/pipeline/run.py         # seconds; uses a fresh local home under .bep/pipeline
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO)]

from batch_endpoints.backend import HOME_VARIABLE  # noqa: E402

DEFAULT_HOME = REPO / ".bep" / "pipeline"


def tabular_example() -> Any:
    """The tabular example's run.py: its MLflow model, its request files and its way of running `bep` are this
    example's too."""
    spec = importlib.util.spec_from_file_location("tabular_example_run", REPO / "examples" / "tabular" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(workdir: Path, score_mode: str = "append") -> dict[str, pd.DataFrame]:
    """Train, deploy, invoke, and return the two outputs (scores, summary) after checking them; BEP_HOME must be
    set."""
    tabular = tabular_example()
    bep = tabular.bep
    model = tabular.train(workdir / "model")
    rows = tabular.write_requests(workdir / "requests")
    bep("model", "create", "--name", "cancer-classifier", "--type", "mlflow_model", "--path", str(workdir / "model"))
    bep("endpoint", "create", "--file", str(HERE / "endpoint.yml"))
    bep("deployment", "create", "--file", str(HERE / "deployment.yml"), "--set-default")
    job = bep(
        "endpoint", "invoke", "--name", "cancer-pipeline",
        "--set", f"inputs.input_data.path={workdir / 'requests'}", f"inputs.score_mode={score_mode}",
    )  # fmt: skip
    bep("job", "stream", "--name", job)
    print(bep("job", "list", "--parent-job-name", job))
    outputs = {}
    for name in ("scores", "summary"):
        files = bep("job", "download", "--name", job, "--output-name", name, "--download-path", str(workdir / "out"))
        outputs[name] = pd.read_csv(files.splitlines()[0])
    expected = model.predict(rows)
    if sorted(outputs["scores"]["prediction"].tolist()) != sorted(expected.tolist()):
        raise SystemExit("the pipeline's predictions differ from the model's own predict()")
    print(f"\nscores: {len(outputs['scores'])} patients, as the model's own predict()\n{outputs['summary']}")
    return outputs


def main() -> None:
    """Run the example in BEP_HOME, or in a fresh home of its own; `run.py replace` leaves the rows out."""
    home = os.environ.setdefault(HOME_VARIABLE, str(DEFAULT_HOME))
    if home == str(DEFAULT_HOME):
        shutil.rmtree(DEFAULT_HOME, ignore_errors=True)
    run(Path(home) / "example", *sys.argv[1:2])


if __name__ == "__main__":
    main()
