"""Rows traced to their input files end to end, through the CLI and real processes: the README's scoring-script
pattern (a `file` column of basenames) on nested inputs whose basenames repeat across folders."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.faults import check, deploy, errors_of, run_job, workspace_fixture  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

# Each file holds its own relative path, so a row shows whether it was traced to the file it came from.
README_PATTERN = """
import os

import pandas as pd


def run(mini_batch):
    texts = [open(path).read() for path in mini_batch]
    keep = [n for n, text in enumerate(texts) if "skip" not in text]
    return pd.DataFrame(
        {"file": [os.path.basename(mini_batch[n]) for n in keep], "text": [texts[n] for n in keep]}
    )
"""
NESTED = ["x.txt", "a/x.txt", "b/x.txt", "b/deeper/x.txt", "a/y.txt", "c/y.txt", "c/z.txt", "d/w.txt"]


def nested_inputs(workspace, names):
    folder = workspace["root"] / "nested"
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    (workspace["code"] / "score.py").write_text(README_PATTERN)
    return {**workspace, "inputs": folder}


@pytest.mark.parametrize("mini_batch_size", [len(NESTED), 3, 1], ids=["one mini-batch", "several", "one file each"])
def test_readme_pattern_traces_each_row_to_its_nested_file(bep, workspace, mini_batch_size):
    nested = nested_inputs(workspace, NESTED)
    deploy(bep, nested, "ok", mini_batch_size=mini_batch_size)
    job = run_job(bep, nested)
    assert job["status"] == "Completed", job["error"]
    output = pd.read_csv(job["output_uri"])
    assert sorted(output["file"]) == sorted(NESTED)
    assert (output["file"] == output["text"]).all()
    assert errors_of(job) == []
    check([job], NESTED)


def test_rows_that_cannot_say_which_file_is_whose_fail_only_those_files(bep, workspace):
    # One mini-batch; run() leaves out c/y.txt, so a/x.txt and b/x.txt's rows (both "x.txt") are one too few to
    # be matched by position.
    names = ["a/x.txt", "b/x.txt", "c/y-skip.txt", "c/z.txt"]
    nested = nested_inputs(workspace, names)
    deploy(bep, nested, "ok", mini_batch_size=len(names))
    job = run_job(bep, nested)
    assert job["status"] == "Completed", job["error"]
    assert pd.read_csv(job["output_uri"])["file"].tolist() == ["c/z.txt"]
    errors = {error["file"]: error["error"] for error in errors_of(job)}
    assert set(errors) == {"a/x.txt", "b/x.txt", "c/y-skip.txt"}
    assert "the basename of 2 files of this mini-batch (a/x.txt, b/x.txt)" in errors["a/x.txt"]
    assert errors["c/y-skip.txt"] == "run() returned no row for this file"
    assert (job["counts"]["files_succeeded"], job["counts"]["files_failed"]) == (1, 3)
    check([job], names)
