"""Generated jobs run end to end on the local backend (plan, the runner with its worker processes, finalize), and
the merged output, read back with pandas and pyarrow, holds exactly one row per input file with its values
intact.

Inputs: any file names a Linux file system allows (any Unicode but "/" and NUL, at any depth), empty files among
them. run() returns, for each file, a row of arbitrary values under arbitrary column names (any Unicode,
commas, quotes, line breaks), naming its file by position, by basename (the README's pattern, whatever basenames
the folders share) or by relative path in reverse order. "Intact" is what each format can carry:
- CSV carries text: each cell reads back as the value's text (str()), a null (None, NaN) as an empty cell;
  control characters (CR, LF, NUL), quotes and commas included, in values, file names and column names alike.
- Parquet carries types: text, bytes, booleans, integers and floats (inf included) come back as they were, NaN
  and None as null; a column whose integers do not fit int64 is text (the unification rule of
  batch_endpoints/parquet_types.py), each value its str().
- JSON lines carries text, booleans, int64 integers and floats (exactly); None, NaN and infinities become null
  (JSON has none of them). Bytes and integers beyond int64 are not generated for it (JSON has no bytes; pandas'
  JSON reader refuses integers beyond 64 bits).
"""

from __future__ import annotations

import json
import math
import pickle
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batch_container.rows import FILE_COLUMNS
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.specs import JobStatus, RetrySettings, RunSettings
from tests.core_fixtures import record_runner_job, run_in_process, write_tree

pytestmark = pytest.mark.slow

FORMATS = {"csv": "predictions.csv", "parquet": "predictions.parquet", "jsonl": "predictions.jsonl"}
NAME_BYTES = 255  # a file or folder name's limit on Linux file systems (ext4, xfs, tmpfs)

SCRIPT = """\
import os
import pickle

import pandas as pd


def run(mini_batch):
    with open(os.environ["ROWS"], "rb") as f:
        wanted = pickle.load(f)
    names = [os.path.relpath(path, wanted["root"]) for path in mini_batch]
    # dtype=object: each value as run() made it, not as pandas would infer a column (None among ints: floats).
    frame = pd.DataFrame([wanted["rows"][name] for name in names], columns=wanted["columns"], dtype=object)
    if wanted["style"] == "basename":  # the README's pattern, whatever basenames the folders share
        frame.insert(0, "file", [os.path.basename(path) for path in mini_batch])
    elif wanted["style"] == "relative, reversed":
        frame.insert(0, "file", names)
        frame = frame.iloc[::-1]
    return frame
"""


SEGMENTS = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=10).filter(
    lambda s: s not in {".", ".."} and len(s.encode()) <= NAME_BYTES
)
PATHS = st.lists(SEGMENTS, min_size=1, max_size=3).map("/".join)


def no_file_is_a_folder(paths: list[str]) -> bool:
    folders = {"/".join(p.split("/")[:depth]) for p in paths for depth in range(1, p.count("/") + 1)}
    return not folders & set(paths)


FILES = st.lists(PATHS, min_size=1, max_size=6, unique=True).filter(no_file_is_a_folder)
COLUMN_NAMES = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6).filter(
        lambda name: name not in FILE_COLUMNS
    ),
    min_size=1,
    max_size=3,
    unique=True,
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
INT64 = st.integers(-(2**63), 2**63 - 1)
# One kind of value a column, as a model's outputs are; None anywhere.
KINDS = {
    "csv": [TEXT, st.floats(), st.integers(-(2**80), 2**80), st.binary(max_size=4), st.booleans(), INT64],
    "parquet": [TEXT, st.floats(), st.integers(-(2**80), 2**80), st.binary(max_size=4), st.booleans(), INT64],
    "jsonl": [TEXT, INT64, st.booleans(), st.floats()],
}


# Names a storage or a code filter once claimed: every file is input.
ONCE_CLAIMED = [".tmp-x", "a.pyc", "__pycache__/m.pyc", ".git/HEAD", ".ipynb_checkpoints/n", ".staging/s"]
# How run() names each row's file: by position (no file column), by basename, or by relative path in any order.
STYLES = ["position", "basename", "relative, reversed"]


@st.composite
def jobs(draw: st.DrawFn) -> tuple[str, dict[str, bytes], list[str], dict[str, dict[str, Any]]]:
    output_format = draw(st.sampled_from(sorted(FORMATS)))
    files = draw(FILES)
    columns = draw(COLUMN_NAMES)
    kinds = [st.one_of(st.none(), draw(st.sampled_from(KINDS[output_format]))) for _ in columns]
    contents = {name: draw(st.binary(max_size=3)) for name in files}  # empty files among them
    rows = {name: {c: draw(kind) for c, kind in zip(columns, kinds, strict=True)} for name in files}
    style = draw(st.sampled_from(STYLES))
    return output_format, contents, columns, rows, style


def is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def read_back(output_format: str, path: Path, columns: list[str]) -> list[dict[str, Any]]:
    """The output's rows, read with pandas, checked against pyarrow's reading of the same file."""
    if output_format == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        arrow = pa_csv.read_csv(
            path,
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(["file", *columns], pa.string()), strings_can_be_null=False
            ),
        )
        assert arrow.column_names == list(frame.columns)
        assert arrow.to_pydict() == frame.to_dict("list")
        return frame.to_dict("records")
    if output_format == "parquet":
        table = pq.read_table(path)
        assert len(pd.read_parquet(path)) == table.num_rows
        return table.to_pylist()
    lines = path.read_bytes().splitlines()
    assert len(pd.read_json(path, lines=True, dtype=False, convert_axes=False)) == len(lines)
    return [json.loads(line) for line in lines]


def expected_cell(output_format: str, value: Any, column_values: list[Any]) -> Any:
    if output_format == "csv":
        return "" if is_null(value) else str(value)
    if output_format == "jsonl":
        return None if is_null(value) or value in (math.inf, -math.inf) else value
    if is_null(value):
        return None
    beyond_int64 = any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in column_values)
    return str(value) if beyond_int64 else value


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@given(job=jobs())
# The cases that once broke outputs, always tried: a bare CR in a name and a value, a header holding a comma and a
# newline; integers beyond int64 among int64 ones in a Parquet column.
@example(
    job=(
        "csv",
        {"a\rb.txt": b"", "c/d.txt": b"x"},
        ["x,\ny"],
        {"a\rb.txt": {"x,\ny": "1\r2"}, "c/d.txt": {"x,\ny": None}},
        "position",
    )
)
@example(
    job=(
        "parquet",
        {"a": b"", "b": b"", "c": b""},
        ["n"],
        {"a": {"n": 1}, "b": {"n": 2**70}, "c": {"n": None}},
        "position",
    )
)
# JSON lines: floats kept exactly, a NUL in a column name kept, infinities as null.
@example(
    job=(
        "jsonl",
        {"a": b"", "b": b""},
        ["\x00n"],
        {"a": {"\x00n": 1e-12}, "b": {"\x00n": -math.inf}},
        "relative, reversed",
    )
)
# The README's pattern (a file column of basenames) on nested files sharing a basename, in one mini-batch and across.
@example(
    job=(
        "csv",
        {"a/x": b"", "b/x": b"", "x": b""},
        ["v"],
        {"a/x": {"v": "a"}, "b/x": {"v": "b"}, "x": {"v": "c"}},
        "basename",
    )
)
@example(
    job=(
        "csv",
        dict.fromkeys(ONCE_CLAIMED, b""),
        ["v"],
        {name: {"v": name} for name in ONCE_CLAIMED},
        "basename",
    )
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_every_file_is_one_row_with_its_values_intact(workspace: Path, job) -> None:
    output_format, contents, columns, rows, style = job
    here = Path(tempfile.mkdtemp(dir=workspace))
    inputs = write_tree(here / "in", contents)
    wanted = here / "rows.pickle"
    wanted.write_bytes(pickle.dumps({"root": str(inputs), "columns": columns, "rows": rows, "style": style}))
    backend = open_local_backend(str(here / "home"))
    run_settings = RunSettings(
        mini_batch_size=2,
        input_format="files",
        output_file_name=FORMATS[output_format],
        environment_variables={"ROWS": str(wanted)},
        retry_settings=RetrySettings(max_retries=0, timeout=60),
    )
    recorded = record_runner_job(backend, SCRIPT, inputs, run_settings)

    finished = run_in_process(backend, recorded)

    assert finished.status == JobStatus.COMPLETED, finished.error
    assert (finished.counts.files, finished.counts.files_succeeded) == (len(contents), len(contents))
    output = read_back(output_format, here / "out" / FORMATS[output_format], columns)
    assert sorted(row["file"] for row in output) == sorted(contents)
    for row in output:
        assert list(row) == ["file", *columns]
        for column in columns:
            column_values = [r[column] for r in rows.values()]
            assert row[column] == expected_cell(output_format, rows[row["file"]][column], column_values), column
