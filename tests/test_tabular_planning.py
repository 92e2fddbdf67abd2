"""Row-based mini-batches: which inputs are tables, how they are cut, and that a runner reads back exactly the
planned rows. Also the settings and literal inputs that tabular jobs add, and the output merge writers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch_container.tables import read_slice
from batch_endpoints import literal_inputs, merging, planning, progress, specs, tabular
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.errors import ValidationError
from batch_endpoints.jobfiles import Shard


def cut(tmp_path: Path, names: list[str], size: int | str, input_format: str = "auto"):
    return tabular.cut_tables(FolderBlobStore(str(tmp_path)), str(tmp_path), names, size, input_format)


def read_back(tmp_path: Path, batches, input_format: str = "auto") -> pd.DataFrame:
    frames = [
        read_slice(str(tmp_path / s.file), s, tabular.file_format_or_fail(s.file, input_format)).assign(
            file=s.file, row=range(s.row, s.row + s.rows)
        )
        for batch in batches
        for s in batch.slices
    ]
    return pd.concat(frames, ignore_index=True)


def test_inputs_are_tables_by_extension_or_by_setting():
    assert tabular.is_tabular(["a.csv", "b/c.PARQUET", "d.jsonl"], "auto")
    assert not tabular.is_tabular(["a.csv", "notes.txt"], "auto")
    assert not tabular.is_tabular(["a.csv"], "files")
    assert tabular.is_tabular(["a.txt"], "csv")


def test_rows_are_cut_across_files_each_row_once_with_its_offset(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n" + "".join(f"{i},v{i}\n" for i in range(7)))
    # No final line break, CRLF line ends and blank lines: pandas skips blank lines, so the plan does too.
    (tmp_path / "b.csv").write_bytes(b"x,y\r\n\r\n7,v7\r\n\n8,v8\r\n9,v9")

    batches, rows = cut(tmp_path, ["a.csv", "b.csv"], 4)

    assert rows == 10
    assert [[(s.file, s.row, s.rows) for s in b.slices] for b in batches] == [
        [("a.csv", 0, 4)],
        [("a.csv", 4, 3), ("b.csv", 0, 1)],
        [("b.csv", 1, 2)],
    ]
    assert batches[1].files == ["a.csv", "b.csv"]
    back = read_back(tmp_path, batches)
    assert back["x"].tolist() == list(range(10))
    assert back["row"].tolist() == [*range(7), 0, 1, 2]


def test_a_size_closes_a_mini_batch_at_the_first_line_end_past_it(tmp_path):
    (tmp_path / "t.csv").write_text("x\n" + "".join(f"{i:09d}\n" for i in range(100)))  # 10 bytes a row

    batches, rows = cut(tmp_path, ["t.csv"], "95B")

    assert rows == 100
    assert [b.slices[0].rows for b in batches] == [10] * 10
    assert all(s.end - s.start == 100 for b in batches for s in b.slices)
    assert read_back(tmp_path, batches)["x"].tolist() == list(range(100))


def test_json_lines_and_parquet_slices_read_back_exactly(tmp_path):
    frame = pd.DataFrame({"x": range(25), "text": [f"t{i}" for i in range(25)]})
    frame.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "r.parquet", index=False, row_group_size=4)

    for name in ("r.jsonl", "r.parquet"):
        batches, rows = cut(tmp_path, [name], 6)
        assert rows == 25 and len(batches) == 5
        assert read_back(tmp_path, batches)[["x", "text"]].equals(frame)


def test_a_tabular_plan_counts_rows_and_the_progress_line_says_so(tmp_path):
    (tmp_path / "t.csv").write_text("x\n" + "1\n" * 30)
    listing = planning.InputListing(str(tmp_path), ["t.csv"])

    settings = specs.RunSettings(mini_batch_size=10, input_format="tables")

    planned = planning.plan_input(FolderBlobStore(str(tmp_path)), "job-1", listing, settings)

    assert (planned.inputs, planned.unit) == (30, "rows")
    job = SimpleNamespace(
        status=specs.JobStatus.RUNNING, counts=specs.JobCounts(unit="rows", files=30, mini_batches=3), pipeline=None
    )
    line = progress.progress_line(job, {"mini_batches_done": 1, "files_succeeded": 10}, 1.0)
    assert "mini-batches 1/3  rows 10/30  failed 0" in line and "files" not in line


def plan_four_csvs(tmp_path: Path, **settings) -> planning.JobPlan:
    names = [f"part-{n}.csv" for n in range(4)]
    for name in names:
        (tmp_path / name).write_text("x,y\n" + "1,2\n" * 5)
    listing = planning.InputListing(str(tmp_path), names)
    run_settings = specs.RunSettings(**{"mini_batch_size": 2, **settings})
    return planning.plan_input(FolderBlobStore(str(tmp_path)), "job-1", listing, run_settings)


def mini_batch_files(planned: planning.JobPlan) -> list[list[str]]:
    return [batch.files for shard in planned.shards for batch in shard.mini_batches]


def test_a_folder_of_csvs_is_files_by_default_and_the_size_counts_files(tmp_path):
    # Azure's default for a scoring script (it gets paths) and for an MLflow model without one (each file is read
    # whole into one DataFrame): `mini_batch_size` counts files.
    planned = plan_four_csvs(tmp_path)

    assert (planned.inputs, planned.unit) == (4, "files")
    assert mini_batch_files(planned) == [["part-0.csv", "part-1.csv"], ["part-2.csv", "part-3.csv"]]
    assert not any(batch.slices for shard in planned.shards for batch in shard.mini_batches)


@pytest.mark.parametrize(
    ("settings", "mini_batches"),
    [
        ({"input_format": "csv"}, 10),
        ({"input_format": "tables"}, 10),
        ({"mini_batch_size": "16B"}, 5),
        ({"keep_input_columns": ["x"]}, 10),
    ],
)
def test_rows_are_read_when_the_format_or_a_setting_only_rows_have_asks_for_them(tmp_path, settings, mini_batches):
    planned = plan_four_csvs(tmp_path, **settings)

    assert (planned.inputs, planned.unit) == (20, "rows")
    assert len(mini_batch_files(planned)) == mini_batches


def test_input_format_files_keeps_paths_whatever_the_other_settings(tmp_path):
    planned = plan_four_csvs(tmp_path, input_format="files", keep_input_columns=["x"])

    assert (planned.inputs, planned.unit) == (4, "files")


def test_shard_files_hold_offsets_never_rows(tmp_path):
    (tmp_path / "t.csv").write_text("x\n" + "1234567890\n" * 10_000)
    batches, _ = cut(tmp_path, ["t.csv"], 5_000)
    shard = planning.group_shards("job-1", str(tmp_path), batches, 1)[0]

    raw = shard.to_json()

    assert b"1234567890" not in raw and len(raw) < 300
    assert Shard.from_json(raw) == shard


def test_a_size_for_files_that_are_not_tables_is_refused_at_plan(tmp_path):
    (tmp_path / "a.png").write_bytes(b"png")
    listing = planning.InputListing(str(tmp_path), ["a.png"])

    with pytest.raises(ValidationError) as caught:
        planning.plan_input(
            None,  # type: ignore[arg-type]
            "job-1",
            listing,
            specs.RunSettings(mini_batch_size="10MB"),
        )

    assert caught.value.field == "settings.mini_batch_size"


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"mini_batch_size": -5}, "mini_batch_size", "greater than 0 (got -5)"),
        ({"mini_batch_size": "10 parsecs"}, "mini_batch_size", "or a size such as '10MB'"),
        ({"output_file_name": "scores.xlsx"}, "output_file_name", "must end in one of .csv, .txt, .parquet"),
        ({"input_format": "excel"}, "input_format", "'auto', 'files', 'tables', 'csv', 'parquet' or 'jsonl'"),
    ],
)
def test_bad_tabular_settings_are_refused_naming_the_field(settings, field, message):
    with pytest.raises(ValidationError) as caught:
        specs.parse(specs.RunSettings, settings)

    assert caught.value.field == field and message in caught.value.message


def test_output_format_follows_the_file_name_unless_set():
    assert specs.RunSettings(output_file_name="p.parquet").part_format == "parquet"
    assert specs.RunSettings(output_file_name="p.jsonl").part_format == "jsonl"
    assert specs.RunSettings(output_file_name="p.out", output_format="jsonl").part_format == "jsonl"
    assert specs.RunSettings(mini_batch_size=" 5mb").mini_batch_size == "5MB"


def test_literal_inputs_are_read_as_their_declared_type():
    declared = {
        "threshold": specs.LiteralInput(type="number", default=0.5),
        "limit": specs.LiteralInput(type="integer", required=True),
        "verbose": specs.LiteralInput(type="boolean"),
    }

    values = literal_inputs.resolve(declared, {"limit": "7", "verbose": "TRUE"})

    assert values == {"threshold": 0.5, "limit": 7, "verbose": True}
    assert literal_inputs.environment(values) == {
        "BEP_INPUT_THRESHOLD": "0.5",
        "BEP_INPUT_LIMIT": "7",
        "BEP_INPUT_VERBOSE": "true",
    }
    for given, field in (({}, "inputs.limit"), ({"limit": True}, "inputs.limit"), ({"limit": 1, "x": 1}, "inputs.x")):
        with pytest.raises(ValidationError) as caught:
            literal_inputs.resolve(declared, given)
        assert caught.value.field == field


def test_a_default_of_the_wrong_type_is_refused_in_the_declaration():
    with pytest.raises(ValidationError) as caught:
        specs.parse(specs.LiteralInput, {"type": "integer", "default": "many"})

    assert "expected an integer (got 'many')" in caught.value.message


def test_parquet_parts_with_different_columns_merge_into_one_file():
    parts = {
        "p0": pd.DataFrame({"file": ["a"], "prediction": [1]}),
        "p1": pd.DataFrame({"file": ["b"], "prediction": [2.5], "extra": ["e"]}),
    }
    blobs = {uri: frame.to_parquet(index=False) for uri, frame in parts.items()}

    merged = b"".join(merging.merged("parquet", blobs.__getitem__, [("p0", []), ("p1", [])]))

    table = pq.read_table(io.BytesIO(merged)).to_pandas()
    assert table["prediction"].tolist() == [1.0, 2.5] and table["extra"].isna().tolist() == [True, False]


def test_json_lines_parts_merge_by_concatenation_in_order():
    blobs = {"p0": b'{"a":1}\n', "p1": b'{"a":2,"b":3}\n'}

    merged = b"".join(merging.merged("jsonl", blobs.__getitem__, [("p0", ["a"]), ("p1", ["a", "b"])]))

    assert [json.loads(line) for line in merged.splitlines()] == [{"a": 1}, {"a": 2, "b": 3}]
