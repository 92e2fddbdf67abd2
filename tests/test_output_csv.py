"""CSV outputs hold any text: a line break (CR or LF), a quote or a comma in a value, a file name or a column name
is quoted where it is written (RFC 4180), and merging finds each part's header by parsing it, never by looking
for the first newline."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from batch_container.rows import Rows
from batch_endpoints import merging
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.csv_records import FirstRecord, UnixRecords, split_header
from batch_endpoints.specs import JobStatus, RetrySettings, RunSettings
from tests.core_fixtures import record_runner_job, run_in_process, write_tree

HOSTILE = ["carriage\rreturn", "line\nfeed", "both\r\n", 'a "quote"', "a, comma", "\r", '"', ",", "plain"]
HEADER = 'score,\n"really"\r'


@pytest.mark.parametrize("pandas_renders", [False, True], ids=["plain", "pandas"])
def test_hostile_names_and_values_read_back_as_written(pandas_renders: bool) -> None:
    values: list = list(HOSTILE)
    # A nullable integer column is one pandas formats itself: the part is rendered by pandas, not csv.writer.
    other = pd.array(range(len(HOSTILE)), dtype="Int64") if pandas_renders else list(range(len(HOSTILE)))
    rows = Rows(["file", HEADER, "n"], [[f"in/{v}.txt" for v in HOSTILE], values, other])

    data = rows.to_csv()

    read = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert list(read.columns) == ["file", HEADER, "n"]
    assert read[HEADER].tolist() == HOSTILE
    assert read["file"].tolist() == [f"in/{v}.txt" for v in HOSTILE]
    # Records end with "\n" alone, the header's included.
    assert data.startswith(b'file,"score,\n""really""\r",n\n') and data.endswith(b"in/plain.txt,plain,8\n")


def test_a_writer_handing_over_part_of_a_record_is_refused() -> None:
    with pytest.raises(ValueError, match="not a whole record"):
        UnixRecords().write("a,b\n")


@pytest.mark.parametrize("chunk", [1, 2, 7, 10_000])
def test_the_first_record_ends_at_the_first_newline_outside_quotes(chunk: int) -> None:
    data = Rows(["file", HEADER, 'x""y'], [["a"], ["b\nc"], ["d"]]).to_csv()
    first = FirstRecord()
    for at in range(0, len(data), chunk):
        first.feed(data[at : at + chunk])

    header = data[: first.size]
    assert first.ended and header == b'file,"score,\n""really""\r","x""""y"\n'
    assert split_header(data) == (header, b'a,"b\nc",d\n')


def test_a_header_without_its_newline_has_not_ended() -> None:
    first = FirstRecord()
    first.feed(b'a,"b\n')
    assert (first.ended, first.size) == (False, 5)


def test_parts_with_a_hostile_header_merge_into_one_header_and_every_row() -> None:
    parts = {f"part-{n}": Rows(["file", HEADER], [[f"f{n}.txt"], [f"value\r{n}"]]).to_csv() for n in range(10)}

    merged = b"".join(merging.merged("csv", parts.__getitem__, [(uri, ["file", HEADER]) for uri in parts]))

    read = pd.read_csv(io.BytesIO(merged), dtype=str)
    assert list(read.columns) == ["file", HEADER]
    assert read["file"].tolist() == [f"f{n}.txt" for n in range(10)]
    assert read[HEADER].tolist() == [f"value\r{n}" for n in range(10)]


def test_parts_with_different_columns_keep_hostile_cells_quoted() -> None:
    parts = {"a": Rows(["file", "x"], [["a\r.txt"], ["1\r2"]]).to_csv(), "b": Rows(["file"], [["b.txt"]]).to_csv()}

    merged = b"".join(merging.merged("csv", parts.__getitem__, [("a", ["file", "x"]), ("b", ["file"])]))

    read = pd.read_csv(io.BytesIO(merged), dtype=str, keep_default_na=False)
    assert read.to_dict("list") == {"file": ["a\r.txt", "b.txt"], "x": ["1\r2", ""]}


SCRIPT = f"""\
import os


def run(mini_batch):
    return [{{"file": path, {HEADER!r}: "got\\r" + open(path, newline="").read()}} for path in mini_batch]
"""


@pytest.mark.slow
def test_a_job_with_hostile_names_and_values_has_one_row_per_file(tmp_path: Path) -> None:
    names = [f"{n}\r{v}.txt" for n, v in enumerate(HOSTILE)] + ["sub\n/x.txt"]
    inputs = write_tree(tmp_path / "in", {name: f"text\r{n}," for n, name in enumerate(names)})
    backend = open_local_backend(str(tmp_path / "home"))
    # Two files a mini-batch, four shards: parts merged into shard outputs, those joined into the output.
    settings = RunSettings(mini_batch_size=2, retry_settings=RetrySettings(max_retries=0, timeout=60))
    job = record_runner_job(backend, SCRIPT, inputs, settings)

    finished = run_in_process(backend, job)

    assert finished.status == JobStatus.COMPLETED, finished.error
    output = pd.read_csv(tmp_path / "out" / "predictions.csv", dtype=str)
    assert list(output.columns) == ["file", HEADER]
    assert sorted(output["file"]) == sorted(names)
    assert dict(zip(output["file"], output[HEADER], strict=True)) == {
        name: f"got\rtext\r{n}," for n, name in enumerate(names)
    }
