"""Azure's append_row layout as an output option: no header, one line a row, each row's values joined by a
space, as Azure's notebooks read it (`pd.read_csv(..., header=None, sep=" ")`); parts and shards join as they
are."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batch_container.rows import to_rows, to_table_rows
from batch_endpoints import merging
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs import JobStatus, RetrySettings, RunSettings, parse
from tests.core_fixtures import record_runner_job, run_in_process, write_tree

NAMES = ["a.png", "b.png"]


def test_a_list_of_rows_is_written_as_its_values_joined_by_a_space_without_file_or_header() -> None:
    rows = to_rows([["cat", 0.5], ["dog", 0.25]], [f"/tmp/{n}" for n in NAMES], NAMES)

    assert rows.to_bytes("azure_append_row") == b"cat 0.5\ndog 0.25\n"
    assert rows.to_bytes("csv").startswith(b"file,")


def test_a_list_of_values_is_one_value_a_line() -> None:
    rows = to_rows(np.array([3, 7]), NAMES, NAMES)

    assert rows.to_bytes("azure_append_row") == b"3\n7\n"


def test_a_data_frames_rows_are_written_whole_its_own_file_column_included() -> None:
    frame = pd.DataFrame({"file": NAMES, "class": [4, 9], "probability": [0.75, 0.5]})

    data = to_rows(frame, NAMES, NAMES).to_bytes("azure_append_row")

    assert data == b"a.png 4 0.75\nb.png 9 0.5\n"
    read = pd.read_csv(io.BytesIO(data), header=None, names=["file", "class", "probability"], sep=" ")
    assert read.to_dict("list") == frame.to_dict("list")


def test_table_rows_leave_out_the_runners_file_and_row_but_keep_kept_columns() -> None:
    inputs = pd.DataFrame({"id": [10, 11], "x": [1, 2]})
    sources = pd.DataFrame({"file": ["t.csv", "t.csv"], "row": [0, 1]})

    rows = to_table_rows(pd.Series([0.1, 0.9], name="score"), inputs, sources, ["id"])

    assert rows.columns == ["file", "row", "id", "score"]
    assert rows.to_bytes("azure_append_row") == b"10 0.1\n11 0.9\n"


def test_parts_merge_by_joining_them_with_no_header_to_strip() -> None:
    parts = {"p0": b"a 1\nb 2\n", "p1": b"c 3\n"}

    merged = b"".join(merging.merged("azure_append_row", parts.__getitem__, [(uri, ["file", "x"]) for uri in parts]))

    assert merged == b"a 1\nb 2\nc 3\n"


def test_an_unknown_output_format_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValidationError) as caught:
        parse(RunSettings, {"output_format": "azure"})

    assert caught.value.field == "output_format" and "'azure_append_row'" in str(caught.value)


SCRIPT = """\
import os


def run(mini_batch):
    return [[os.path.basename(path), len(open(path).read())] for path in mini_batch]
"""


@pytest.mark.slow
def test_a_job_writes_exactly_azures_layout_across_mini_batches_and_shards(tmp_path: Path) -> None:
    names = [f"f{n:02d}.txt" for n in range(10)]
    inputs = write_tree(tmp_path / "in", {name: "x" * n for n, name in enumerate(names)})
    backend = open_local_backend(str(tmp_path / "home"))
    settings = RunSettings(
        mini_batch_size=2,
        instance_count=2,
        output_format="azure_append_row",
        retry_settings=RetrySettings(max_retries=0, timeout=60),
    )
    job = record_runner_job(backend, SCRIPT, inputs, settings)

    finished = run_in_process(backend, job)

    assert finished.status == JobStatus.COMPLETED, finished.error
    assert finished.counts.shards > 1
    output = (tmp_path / "out" / "predictions.csv").read_bytes()
    assert output == "".join(f"{name} {n}\n" for n, name in enumerate(names)).encode()
