"""Parquet planning from the footer alone (batch_endpoints/parquet_footer.py): the standard-library Thrift reader
agrees with pyarrow, reads two ranges at most, refuses garbage with a clear error, and needs no pyarrow."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_endpoints import parquet_footer, planning, specs
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.errors import ValidationError

REPO = Path(__file__).resolve().parents[1]


class CountingStore(FolderBlobStore):
    """A folder store that counts how its objects are read; a planner may only read ranges."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.ranges: list[tuple[str, int, int | None]] = []

    def read_range(self, uri: str, start: int, end: int | None = None) -> bytes:
        self.ranges.append((uri, start, end))
        return super().read_range(uri, start, end)

    def get_bytes(self, uri: str) -> bytes:
        raise AssertionError(f"{uri} was read whole")

    def localize(self, uri: str, scratch_dir: str) -> str:
        raise AssertionError(f"{uri} was downloaded")


def table(rows: int, columns: int = 3) -> pa.Table:
    data = {f"c{n}": [f"v{(i * n) % 13}" if n % 2 else i * n for i in range(rows)] for n in range(columns)}
    return pa.table(data)


def plan(store: FolderBlobStore, root: Path, names: list[str], size: int | str = 100) -> planning.JobPlan:
    settings = specs.RunSettings(mini_batch_size=size)
    return planning.plan_input(store, "job-1", planning.InputListing(str(root), names), settings)


@pytest.mark.parametrize(("rows", "group_rows", "columns"), [(1000, 64, 3), (5, 1, 1), (300, 300, 7)])
def test_the_footer_says_what_pyarrow_says(tmp_path, rows, group_rows, columns):
    path = tmp_path / "t.parquet"
    pq.write_table(table(rows, columns), path, row_group_size=group_rows)
    metadata = pq.ParquetFile(path).metadata

    footer = parquet_footer.read_footer(FolderBlobStore(str(tmp_path)), str(path))

    assert footer.rows == metadata.num_rows == rows
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    assert [g.rows for g in footer.row_groups] == [g.num_rows for g in groups]
    assert [g.byte_size for g in footer.row_groups] == [g.total_byte_size for g in groups]
    for ours, theirs in zip(footer.row_groups, groups, strict=True):
        columns_there = [theirs.column(c) for c in range(theirs.num_columns)]
        assert ours.chunks is not None and len(ours.chunks) == len(columns_there)
        for (start, end), column in zip(ours.chunks, columns_there, strict=True):
            first = min(o for o in (column.dictionary_page_offset, column.data_page_offset) if o)
            assert start == first and end >= first + column.total_compressed_size


def test_a_file_is_planned_from_its_tail_in_one_read_or_two_for_a_large_footer(tmp_path):
    pq.write_table(table(500), tmp_path / "small.parquet", row_group_size=50)
    pq.write_table(table(40, columns=1500), tmp_path / "wide.parquet", row_group_size=10)
    store = CountingStore(str(tmp_path))

    planned = plan(store, tmp_path, ["small.parquet", "wide.parquet"])

    assert planned.inputs == 540
    reads = [(Path(uri).name, start, end) for uri, start, end in store.ranges]
    assert reads[0] == ("small.parquet", -parquet_footer.TAIL_GUESS, None)
    assert [name for name, _, _ in reads] == ["small.parquet", "wide.parquet", "wide.parquet"]
    assert all(start < 0 and end is None for _, start, end in reads)  # tails only: no column data is read


def test_empty_parquet_files_hold_no_rows(tmp_path):
    pq.write_table(table(0), tmp_path / "empty.parquet")
    pq.write_table(table(30), tmp_path / "full.parquet")

    assert parquet_footer.read_footer(FolderBlobStore(str(tmp_path)), str(tmp_path / "empty.parquet")).rows == 0
    assert plan(FolderBlobStore(str(tmp_path)), tmp_path, ["empty.parquet", "full.parquet"], 7).inputs == 30
    with pytest.raises(ValidationError, match="hold no rows"):
        plan(FolderBlobStore(str(tmp_path)), tmp_path, ["empty.parquet"])


def footer_length(data: bytes) -> int:
    return int.from_bytes(data[-8:-4], "little")


def good_file(tmp_path: Path) -> bytes:
    pq.write_table(table(200), tmp_path / "good.parquet", row_group_size=30)
    return (tmp_path / "good.parquet").read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"", "not a Parquet file"),
        (lambda data: b"name,score\n1,2\n", "not a Parquet file"),
        (lambda data: data[:-1], "not a Parquet file"),
        (lambda data: data[-300:], "truncated"),
        (lambda data: data[:4] + data[-8:], "truncated"),
        (lambda data: data[:-8] + (2**31).to_bytes(4, "little") + b"PAR1", "truncated"),
        (lambda data: data[: -8 - footer_length(data)] + bytes(footer_length(data)) + data[-8:], "no row count"),
        # num_rows 1, then row_groups as a list of one i32 where structs belong.
        (lambda data: b"PAR1\x36\x02\x19\x15\x02\x00" + (6).to_bytes(4, "little") + b"PAR1", "list of type 5"),
    ],
)
def test_garbage_or_truncated_files_are_refused_naming_the_file(tmp_path, damage, message):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.parquet").write_bytes(damage(good_file(tmp_path)))

    with pytest.raises(ValidationError) as caught:
        plan(FolderBlobStore(str(tmp_path)), tmp_path / "in", ["bad.parquet"])

    assert caught.value.field == "input"
    assert caught.value.message.startswith("bad.parquet cannot be read as parquet: ")
    assert message in caught.value.message


def test_any_damage_to_a_footer_is_a_value_error_or_a_footer(tmp_path):
    """Flipped bytes anywhere in the footer: the reader decodes something or raises ValueError, nothing else."""
    data = good_file(tmp_path)
    footer_start = len(data) - 8 - footer_length(data)
    store = FolderBlobStore(str(tmp_path))
    damaged = tmp_path / "damaged.parquet"
    chance = random.Random(6)
    outcomes = set()
    for _ in range(400):
        mutated = bytearray(data)
        for _ in range(chance.randint(1, 4)):
            mutated[chance.randrange(footer_start, len(data) - 8)] = chance.randrange(256)
        damaged.write_bytes(bytes(mutated))
        try:
            parquet_footer.read_footer(store, str(damaged))
            outcomes.add("decoded")
        except ValueError:
            outcomes.add("refused")
    assert outcomes == {"decoded", "refused"}


def test_planning_needs_no_pyarrow(tmp_path):
    """The workflow's Lambdas have no pyarrow: plan a Parquet and a CSV input where importing it fails."""
    pq.write_table(table(250), tmp_path / "a.parquet", row_group_size=40)
    pd.DataFrame({"x": range(30)}).to_csv(tmp_path / "b.csv", index=False)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["pyarrow"] = None  # any import of pyarrow now fails
        from batch_endpoints import planning, specs
        from batch_endpoints.adapters.local.blobs import FolderBlobStore

        listing = planning.InputListing({str(tmp_path)!r}, ["a.parquet", "b.csv"])
        planned = planning.plan_input(
            FolderBlobStore({str(tmp_path)!r}), "job-1", listing, specs.RunSettings(mini_batch_size=100)
        )
        rows = [[(s.file, s.row, s.rows) for s in b.slices] for shard in planned.shards for b in shard.mini_batches]
        print(json.dumps({{"inputs": planned.inputs, "rows": rows, "pyarrow": "pyarrow.parquet" in sys.modules}}))
        """
    )

    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False)

    assert finished.returncode == 0, finished.stderr
    planned = json.loads(finished.stdout)
    assert planned["inputs"] == 280 and not planned["pyarrow"]
    assert planned["rows"] == [
        [["a.parquet", 0, 100]],
        [["a.parquet", 100, 100]],
        [["a.parquet", 200, 50], ["b.csv", 0, 30]],
    ]
