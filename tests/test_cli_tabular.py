"""Tabular inputs end to end through the CLI and real processes: a scoring script gets a folder of tables as
paths, as on Azure, and row mini-batches over CSV, Parquet and JSON lines when it asks for them; outputs in each
format, kept input columns, and literal inputs given at invoke."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = textwrap.dedent(
    """
    import os

    seen = {}


    def init(inputs):
        seen.update(inputs)


    def run(mini_batch):
        slices = mini_batch.attrs["slices"]
        assert sum(s["rows"] for s in slices) == len(mini_batch)
        return pd.DataFrame(
            {
                "double": mini_batch["x"] * 2,
                "first_row": slices[0]["row"],
                "scale": seen.get("scale"),
                "scale_env": os.environ.get("BEP_INPUT_SCALE"),
            }
        )


    import pandas as pd
    """
)
# Azure's model deployments hand a script paths, whatever the files are: it reads them itself.
PATHS_SCRIPT = textwrap.dedent(
    """
    import os


    def init():
        pass


    def run(mini_batch):
        names = " ".join(sorted(os.path.basename(path) for path in mini_batch))
        return [f"{names} {os.path.isfile(path)}" for path in mini_batch]
    """
)
ROWS = 200_000


@pytest.fixture
def workspace(bep, tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    (code / "paths.py").write_text(PATHS_SCRIPT)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("1")
    bep("model", "create", "--name", "trivial", "--path", model)
    bep("endpoint", "create", "--name", "tables")
    return tmp_path


def deploy(bep, root: Path, *, script: str = "score.py", **settings: object) -> None:
    spec = {
        "name": "trivial",
        "endpoint_name": "tables",
        "model": "azureml:trivial:1",
        "code_configuration": {"code": str(root / "code"), "scoring_script": script},
        "inputs": {"scale": {"type": "number", "default": 1.5}, "label": {"type": "string"}},
        "settings": {"max_concurrency_per_instance": 2, **settings},
    }
    path = root / "deployment.yml"
    path.write_text(json.dumps(spec))
    bep("deployment", "create", "--file", path, "--set-default")


def run_job(bep, data: Path, *extra: str) -> dict:
    job_id = bep("endpoint", "invoke", "--name", "tables", "--input", data, *extra).out.strip()
    bep("job", "stream", "--name", job_id, ok=False)
    return bep("job", "show", "--name", job_id).json()


def two_tables(root: Path) -> tuple[Path, pd.DataFrame]:
    """200,000 rows in two files of 120,000 and 80,000: a mini-batch of 50,000 rows spans both."""
    data = root / "data"
    data.mkdir()
    frame = pd.DataFrame({"id": np.arange(ROWS), "x": np.arange(ROWS) % 977, "name": "r"})
    return data, frame


def assert_every_row_once(output: pd.DataFrame, first: str, second: str) -> None:
    assert len(output) == ROWS
    expected_files = [first] * 120_000 + [second] * 80_000
    assert output["file"].tolist() == expected_files
    expected_rows = np.concatenate([np.arange(120_000), np.arange(80_000)])
    assert (output["row"].to_numpy() == expected_rows).all()
    assert (output["double"].to_numpy() == (np.arange(ROWS) % 977) * 2).all()


def test_a_scoring_script_gets_a_folder_of_csvs_as_paths_two_files_a_mini_batch(bep, workspace):
    data = workspace / "data"
    data.mkdir()
    for n in range(4):
        pd.DataFrame({"x": range(5)}).to_csv(data / f"part-{n}.csv", index=False)
    deploy(bep, workspace, script="paths.py", mini_batch_size=2)

    job = run_job(bep, data)

    assert job["status"] == "Completed", job["error"]
    assert job["counts"]["unit"] == "files" and job["counts"]["files"] == 4
    assert job["counts"]["mini_batches"] == 2
    output = pd.read_csv(job["output_uri"])
    assert output.iloc[:, -1].tolist() == ["part-0.csv part-1.csv True"] * 2 + ["part-2.csv part-3.csv True"] * 2


def test_a_200k_row_csv_is_scored_in_row_mini_batches_each_row_once_in_order(bep, workspace):
    data, frame = two_tables(workspace)
    frame[:120_000].to_csv(data / "a.csv", index=False)
    frame[120_000:].to_csv(data / "b.csv", index=False)
    deploy(bep, workspace, mini_batch_size=50_000, input_format="csv")

    job = run_job(bep, data)

    assert job["status"] == "Completed", job["error"]
    assert job["counts"]["mini_batches"] == 4
    assert job["counts"]["files"] == ROWS and job["counts"]["files_succeeded"] == ROWS
    output = pd.read_csv(job["output_uri"])
    assert list(output.columns) == ["file", "row", "double", "first_row", "scale", "scale_env"]
    assert_every_row_once(output, "a.csv", "b.csv")
    assert sorted(set(output["first_row"])) == [0, 30_000, 50_000, 100_000]
    assert set(output["scale"]) == {1.5} and set(output["scale_env"]) == {1.5}


def test_a_200k_row_parquet_input_gives_parquet_output_with_kept_columns(bep, workspace):
    data, frame = two_tables(workspace)
    frame[:120_000].to_parquet(data / "a.parquet", index=False, row_group_size=30_000)
    frame[120_000:].to_parquet(data / "b.parquet", index=False, row_group_size=30_000)
    deploy(
        bep,
        workspace,
        mini_batch_size=70_000,
        input_format="tables",
        keep_input_columns=["id"],
        output_file_name="scores.parquet",
    )

    job = run_job(bep, data)

    assert job["status"] == "Completed", job["error"]
    assert job["counts"]["mini_batches"] == 3
    output = pd.read_parquet(job["output_uri"])
    assert list(output.columns)[:4] == ["file", "row", "id", "double"]
    assert_every_row_once(output, "a.parquet", "b.parquet")
    assert (output["id"].to_numpy() == np.arange(ROWS)).all()


def test_a_csv_split_by_size_and_json_lines_output(bep, workspace):
    data = workspace / "data"
    data.mkdir()
    frame = pd.DataFrame({"x": np.arange(5_000), "text": "some text to make rows longer"})
    frame.to_csv(data / "one.csv", index=False)
    size = (data / "one.csv").stat().st_size
    deploy(bep, workspace, mini_batch_size="40KB", output_file_name="scores.jsonl")

    job = run_job(bep, data / "one.csv")

    assert job["status"] == "Completed", job["error"]
    assert job["counts"]["mini_batches"] == -(-size // 40_960)
    output = pd.read_json(job["output_uri"], lines=True)
    assert output["row"].tolist() == list(range(5_000))
    assert (output["double"] == frame["x"] * 2).all()


def test_json_lines_input_in_row_mini_batches(bep, workspace):
    data = workspace / "data"
    data.mkdir()
    pd.DataFrame({"x": np.arange(1_000)}).to_json(data / "rows.jsonl", orient="records", lines=True)
    deploy(bep, workspace, mini_batch_size=300, input_format="jsonl")

    job = run_job(bep, data, "--set", "inputs.scale=3", "--set", "inputs.label=nightly")

    assert job["status"] == "Completed", job["error"]
    assert job["inputs"] == {"scale": 3.0, "label": "nightly"}
    output = pd.read_csv(job["output_uri"])
    assert output["row"].tolist() == list(range(1_000))
    assert set(output["first_row"]) == {0, 300, 600, 900}
    assert set(output["scale"]) == {3.0} and set(output["scale_env"]) == {3}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("inputs.colour=red", "is not an input of this deployment (declared: label, scale)"),
        ("inputs.scale=large", "expected a number (got 'large')"),
    ],
)
def test_undeclared_or_mistyped_inputs_are_refused_at_invoke_and_start_nothing(bep, workspace, given, message):
    data = workspace / "data"
    data.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_csv(data / "t.csv", index=False)
    deploy(bep, workspace)

    result = bep("endpoint", "invoke", "--name", "tables", "--input", data, "--set", given, ok=False)

    assert result.code == 2
    assert f"inputs.{given.split('=')[0].split('.')[1]}" in result.err and message in result.err
    assert bep.service.list_jobs("tables") == []
