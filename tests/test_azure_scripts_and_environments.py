"""Scoring scripts and environments written for Azure, end to end through `bep` on the local backend: scripts read
the command line Azure's batch deployments pass them (sys.argv, with argparse in init()); environments list
Azure's own runtime packages, which are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.core_fixtures import write_tree

pytestmark = pytest.mark.slow

# Shaped like Azure's examples: argparse in init(), parse_known_args, the level upper-cased for the logger.
AZURE_STYLE_SCRIPT = """\
import argparse
import json
import logging
import os

logger = logging.getLogger(__name__)


def init():
    global args
    parser = argparse.ArgumentParser(allow_abbrev=False, description="Azure-style batch driver")
    parser.add_argument("--logging_level", type=str, help="logging level")
    parser.add_argument("--mini_batch_size", type=str)
    parser.add_argument("--error_threshold", type=int)
    parser.add_argument("--output_action", type=str)
    parser.add_argument("--run_invocation_timeout", type=int)
    parser.add_argument("--run_max_try", type=int)
    parser.add_argument("--process_count_per_node", type=int)
    parser.add_argument("--append_row_file_name", type=str)
    args, _ = parser.parse_known_args()
    logger.setLevel(args.logging_level.upper())
    logger.info("init: logging at %s", args.logging_level)


def run(mini_batch):
    seen = json.dumps(vars(args), sort_keys=True)
    return [f"{os.path.basename(path)} {seen}" for path in mini_batch]
"""


def deploy(bep, tmp_path: Path, settings: dict, **fields: str) -> None:
    code = write_tree(tmp_path / "code", {"batch_driver.py": AZURE_STYLE_SCRIPT})
    model = write_tree(tmp_path / "model", {"weights.txt": "1\n"})
    deployment = {
        "name": "azure-style",
        "endpoint_name": "argv",
        "type": "model",
        "model": {"path": str(model)},
        "code_configuration": {"code": str(code), "scoring_script": "batch_driver.py"},
        "compute": "azureml:cpu-cluster",
        "settings": settings,
        **fields,
    }
    spec = tmp_path / "deployment.yml"
    spec.write_text(json.dumps(deployment))
    bep("endpoint", "create", "--name", "argv")
    bep("deployment", "create", "--file", spec, "--set-default")


def invoke_and_read(bep, tmp_path: Path, *flags: str) -> dict[str, dict]:
    """Invoke on three files; each file's row as the arguments its run() saw."""
    inputs = write_tree(tmp_path / "inputs", {f"{n}.txt": str(n) for n in range(3)})
    job = bep("endpoint", "invoke", "--name", "argv", "--input", inputs, *flags).out.strip()
    bep("job", "stream", "--name", job)
    finished = bep.service.get_job(job)
    assert finished.status == "Completed", finished.error
    rows = pd.read_csv(finished.output_uri)["prediction"]
    return {name: json.loads(seen) for name, seen in (row.split(" ", 1) for row in rows)}


def test_an_azure_script_reads_its_settings_from_the_command_line_with_azures_defaults(bep, home, tmp_path):
    deploy(bep, tmp_path, {})

    seen = invoke_and_read(bep, tmp_path)

    assert sorted(seen) == ["0.txt", "1.txt", "2.txt"]
    assert seen["0.txt"] == {
        "logging_level": "INFO",
        "mini_batch_size": "10",
        "error_threshold": -1,
        "output_action": "append_row",
        "run_invocation_timeout": 30,
        "run_max_try": 4,
        "process_count_per_node": 1,
        "append_row_file_name": "predictions.csv",
    }


def test_the_command_line_carries_the_deployments_settings_and_the_invocations_overrides(bep, home, tmp_path):
    deploy(
        bep,
        tmp_path,
        {
            "logging_level": "debug",
            "error_threshold": 5,
            "max_concurrency_per_instance": 2,
            "retry_settings": {"max_retries": 1, "timeout": 90},
            "output_file_name": "scores.csv",
        },
    )

    seen = invoke_and_read(bep, tmp_path, "--mini-batch-size", "2")

    assert {json.dumps(s, sort_keys=True) for s in seen.values()} == {json.dumps(seen["2.txt"], sort_keys=True)}
    assert seen["2.txt"] == {
        "logging_level": "DEBUG",
        "mini_batch_size": "2",
        "error_threshold": 5,
        "output_action": "append_row",
        "run_invocation_timeout": 90,
        "run_max_try": 2,
        "process_count_per_node": 2,
        "append_row_file_name": "scores.csv",
    }


# Shaped like the conda files of Azure's examples: Azure's runtime packages next to what the script imports.
AZURE_CONDA_FILE = """\
name: batch-scoring
channels:
  - conda-forge
dependencies:
  - python=3.10
  - pip
  - pip:
      - azureml-core
      - azureml-dataset-runtime[fuse]
      - azureml-defaults
      - azureml-mlflow
      - inference-schema[numpy-support]
      - pandas
"""


def test_an_environment_written_for_azure_runs_without_azures_own_packages(bep, home, tmp_path):
    conda = tmp_path / "conda.yaml"
    conda.write_text(AZURE_CONDA_FILE)
    bep("environment", "create", "--name", "azure-style-env", "--conda-file", conda)
    deploy(bep, tmp_path, {}, environment="azureml:azure-style-env:1")

    seen = invoke_and_read(bep, tmp_path)

    assert sorted(seen) == ["0.txt", "1.txt", "2.txt"]
    job = bep.service.list_jobs()[0]
    logs = "\n".join(line.message for line in bep.service.job_logs(job.id).lines)
    assert "skipping azureml-core, azureml-dataset-runtime[fuse], azureml-defaults, azureml-mlflow, " in logs
    assert "only Azure ML's own runtime uses them" in logs
