"""A Parquet output gets one type per column whatever run() returned in each mini-batch, promoted only without
loss (batch_endpoints/parquet_types.py), and the job's summary names each column so unified."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_container.rows import Rows
from batch_endpoints import merging
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.specs import JobStatus, RetrySettings, RunSettings
from tests.core_fixtures import record_runner_job, run_in_process, write_tree

BIG = 2**53 + 1  # the first integer a float64 cannot hold


def part(values: Any) -> bytes:
    return Rows(["x"], [values]).to_bytes("parquet")


def merge(*parts: bytes) -> tuple[pa.Table, list[dict[str, Any]]]:
    stored = {f"part-{n}": data for n, data in enumerate(parts)}
    merged = merging.merged("parquet", stored.__getitem__, [(uri, ["x"]) for uri in stored])
    return pq.read_table(io.BytesIO(b"".join(merged))), merged.unified


@pytest.mark.parametrize(
    ("parts", "chosen", "values"),
    [
        ([[1], [2]], pa.int64(), [1, 2]),
        ([[1], [0.5]], pa.float64(), [1.0, 0.5]),
        ([[BIG], [0.5]], pa.string(), [str(BIG), "0.5"]),
        ([[-BIG], [0.5]], pa.string(), [str(-BIG), "0.5"]),
        ([[1], ["one"]], pa.string(), ["1", "one"]),
        ([[True], [1]], pa.string(), ["true", "1"]),
        ([[None], [1]], pa.int64(), [None, 1]),
        ([[2**70], [1]], pa.string(), [str(2**70), "1"]),
        ([[b"\xff\x00"], ["text"]], pa.string(), ["b'\\xff\\x00'", "text"]),
    ],
    ids=["same", "int+float", "big-int+float", "big-negative+float", "int+text", "bool+int", "null+int",
         "beyond-int64", "binary+text"],
)  # fmt: skip
def test_types_met_across_parts_are_unified_without_loss(parts, chosen, values) -> None:
    table, _ = merge(*(part(p) for p in parts))

    assert table.schema.field("x").type == chosen
    assert table.column("x").to_pylist() == values


def test_integer_widths_and_signedness_widen_only_where_every_value_fits() -> None:
    def typed(values: list[int], type_: pa.DataType) -> bytes:
        sink = io.BytesIO()
        pq.write_table(pa.table({"x": pa.array(values, type_)}), sink)
        return sink.getvalue()

    assert merge(typed([1], pa.int8()), typed([2], pa.int32()))[0].schema.field("x").type == pa.int32()
    assert merge(typed([1], pa.uint8()), typed([-2], pa.int16()))[0].column("x").to_pylist() == [1, -2]
    too_big = merge(typed([2**64 - 1], pa.uint64()), typed([-2], pa.int16()))[0]
    assert too_big.column("x").to_pylist() == [str(2**64 - 1), "-2"]


def test_mixed_values_in_one_part_become_text_noting_their_types() -> None:
    table, unified = merge(part([1, "one", None, 2.5]))

    assert table.column("x").to_pylist() == ["1", "one", None, "2.5"]
    assert unified == [{"column": "x", "types_met": ["int64", "string", "double"], "type_chosen": "string"}]


def test_what_earlier_merges_met_is_kept_by_the_next() -> None:
    shard, first = merge(part([1]), part(["one"]))
    sink = io.BytesIO()
    pq.write_table(shard, sink)

    _, again = merge(sink.getvalue(), part(["two"]))

    assert first == again == [{"column": "x", "types_met": ["int64", "string"], "type_chosen": "string"}]


def test_a_column_of_one_type_or_null_is_not_noted() -> None:
    assert merge(part([1]), part([None]), Rows(["y"], [["a"]]).to_bytes("parquet"))[1] == []


SCRIPT = """\
import os


def run(mini_batch):
    # Drift: the first mini-batch's scores are integers, the others' text; "n" is an int everywhere.
    first = any(os.path.basename(path) == "0.txt" for path in mini_batch)
    return [{"score": 7 if first else "seven", "n": 1} for path in mini_batch]
"""


@pytest.mark.slow
def test_a_job_whose_column_type_drifts_between_mini_batches_completes_and_says_so(tmp_path: Path) -> None:
    inputs = write_tree(tmp_path / "in", {f"{n}.txt": "x" for n in range(8)})
    backend = open_local_backend(str(tmp_path / "home"))
    settings = RunSettings(
        mini_batch_size=1,
        output_file_name="predictions.parquet",
        retry_settings=RetrySettings(max_retries=0, timeout=60),
    )
    job = record_runner_job(backend, SCRIPT, inputs, settings)

    finished = run_in_process(backend, job)

    assert finished.status == JobStatus.COMPLETED, finished.error
    assert finished.counts.files_succeeded == 8
    output = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert sorted(output.column("score").to_pylist()) == ["7", *["seven"] * 7]
    assert output.schema.field("n").type == pa.int64()
    summary = json.loads(backend.blobs.get_bytes(backend.blobs.join(job.scratch_uri, "summary.json")))
    assert summary["unified_columns"] == [
        {"column": "score", "types_met": ["int64", "string"], "type_chosen": "string"}
    ]
