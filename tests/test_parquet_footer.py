"""Parquet planning from the footer alone (batch_endpoints/parquet_footer.py): pyarrow parses it from the object's
tail, read in two ranges at most; the row-group lookups agree with the file; garbage is refused with a clear error
naming the file; and planning CSV needs no pyarrow."""

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
    settings = specs.RunSettings(mini_batch_size=size, input_format="tables")
    return planning.plan_input(store, "job-1", planning.InputListing(str(root), names), settings)


def read_footer(folder: Path, name: str) -> parquet_footer.ParquetFooter:
    return parquet_footer.read_footer(FolderBlobStore(str(folder)), str(folder / name))


@pytest.mark.parametrize(("rows", "group_rows", "columns"), [(1000, 64, 3), (5, 1, 1), (300, 300, 7), (40, 10, 1500)])
def test_the_footer_read_from_the_tail_is_the_files_own(tmp_path, rows, group_rows, columns):
    path = tmp_path / "t.parquet"
    pq.write_table(table(rows, columns), path, row_group_size=group_rows)
    data = path.read_bytes()

    footer = read_footer(tmp_path, "t.parquet")

    assert footer.metadata.equals(pq.ParquetFile(path).metadata)
    assert footer.metadata.num_rows == rows
    assert data.endswith(footer.tail) and len(footer.tail) == footer_length(data) + 8


@pytest.mark.parametrize(("first", "count"), [(0, 1), (0, 1000), (63, 2), (64, 64), (100, 300), (999, 1)])
def test_the_row_groups_holding_rows_and_their_column_chunks_are_where_the_rows_are(tmp_path, first, count):
    path = tmp_path / "t.parquet"
    pq.write_table(table(1000), path, row_group_size=64)
    metadata = read_footer(tmp_path, "t.parquet").metadata

    span = parquet_footer.row_groups_holding(metadata, first, count)

    assert span.first_row == 64 * span.groups.start
    assert list(span.groups) == list(range(first // 64, (first + count - 1) // 64 + 1))
    rows = pq.ParquetFile(path).read_row_groups(list(span.groups))["c2"].to_pylist()  # row i holds 2 * i
    assert rows[first - span.first_row :][:count] == [2 * i for i in range(first, first + count)]
    data = path.read_bytes()
    for group in span.groups:
        chunks = parquet_footer.column_chunks(metadata, group)
        assert chunks is not None and len(chunks) == 3
        for (start, end), column in zip(chunks, range(3), strict=True):
            chunk = metadata.row_group(group).column(column)
            assert data[start : start + 4] != b"PAR1" and start < end <= len(data)
            assert start == min(o for o in (chunk.dictionary_page_offset, chunk.data_page_offset) if o)
            assert end >= start + chunk.total_compressed_size


def test_empty_row_groups_are_skipped(tmp_path):
    path = tmp_path / "t.parquet"
    five = table(5)
    with pq.ParquetWriter(path, five.schema) as writer:
        for rows in (0, 5, 0, 5):
            writer.write_table(five.slice(0, rows), row_group_size=5)
    metadata = read_footer(tmp_path, "t.parquet").metadata

    assert [metadata.row_group(k).num_rows for k in range(metadata.num_row_groups)] == [0, 5, 0, 5]
    assert parquet_footer.row_groups_holding(metadata, 0, 5) == (range(1, 2), 0)
    assert parquet_footer.row_groups_holding(metadata, 4, 2) == (range(1, 4), 0)


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

    assert read_footer(tmp_path, "empty.parquet").metadata.num_rows == 0
    assert plan(FolderBlobStore(str(tmp_path)), tmp_path, ["empty.parquet", "full.parquet"], 7).inputs == 30
    with pytest.raises(ValidationError, match="hold no rows"):
        plan(FolderBlobStore(str(tmp_path)), tmp_path, ["empty.parquet"])


def footer_length(data: bytes) -> int:
    return int.from_bytes(data[-8:-4], "little")


def good_file(tmp_path: Path) -> bytes:
    pq.write_table(table(200), tmp_path / "good.parquet", row_group_size=30)
    return (tmp_path / "good.parquet").read_bytes()


def wide_file(tmp_path: Path) -> bytes:
    """A file whose footer is longer than the first read of its tail."""
    pq.write_table(table(40, columns=1500), tmp_path / "wide.parquet", row_group_size=10)
    return (tmp_path / "wide.parquet").read_bytes()


@pytest.mark.parametrize(
    ("source", "damage", "message"),
    [
        (good_file, lambda data: b"", "file size is 0 bytes"),
        (good_file, lambda data: b"PAR1", "smaller than the minimum file footer"),
        (good_file, lambda data: b"name,score\n1,2\n", "not a parquet file"),
        (good_file, lambda data: data[:-1], "not a parquet file"),
        (wide_file, lambda data: data[:-1], "not a parquet file"),
        (good_file, lambda data: data[-300:], "smaller than the size reported by footer's"),
        (good_file, lambda data: data[:4] + data[-8:], "smaller than the size reported by footer's"),
        (good_file, lambda data: data[:-8] + (2**31).to_bytes(4, "little") + b"PAR1", "reported by footer's"),
        (wide_file, lambda data: data[-100_000:], "truncated: its footer says"),
        (wide_file, lambda data: data[:-8] + (2**31).to_bytes(4, "little") + b"PAR1", "truncated: its footer says"),
        (good_file, lambda data: data[: -8 - footer_length(data)] + bytes(footer_length(data)) + data[-8:], "thrift"),
        # num_rows 1, then row_groups as a list of one i32 where structs belong.
        (good_file, lambda data: b"PAR1\x36\x02\x19\x15\x02\x00" + (6).to_bytes(4, "little") + b"PAR1", "thrift"),
    ],
)
def test_garbage_or_truncated_files_are_refused_naming_the_file(tmp_path, source, damage, message):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.parquet").write_bytes(damage(source(tmp_path)))

    with pytest.raises(ValidationError) as caught:
        plan(FolderBlobStore(str(tmp_path)), tmp_path / "in", ["bad.parquet"])

    assert caught.value.field == "input"
    assert caught.value.message.startswith("bad.parquet cannot be read as parquet: ")
    assert message in caught.value.message.lower()


def test_any_damage_to_a_footer_is_a_value_error_or_a_footer(tmp_path):
    """Flipped bytes anywhere in the footer: pyarrow decodes something or raises ValueError or OSError (which
    planning turns into an error naming the file), nothing else."""
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
        except (OSError, ValueError):
            outcomes.add("refused")
    assert outcomes == {"decoded", "refused"}


def test_planning_csv_needs_no_pyarrow_and_parquet_without_it_is_refused_naming_the_extra(tmp_path):
    """The API Lambda carries no pyarrow, and the package installs without it."""
    pq.write_table(table(250), tmp_path / "a.parquet", row_group_size=40)
    pd.DataFrame({"x": range(30)}).to_csv(tmp_path / "b.csv", index=False)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["pyarrow"] = None  # any import of pyarrow now fails
        from batch_endpoints import planning, specs
        from batch_endpoints.adapters.local.blobs import FolderBlobStore
        from batch_endpoints.errors import ValidationError

        def plan(name):
            listing = planning.InputListing({str(tmp_path)!r}, [name])
            settings = specs.RunSettings(mini_batch_size=20, input_format="tables")
            return planning.plan_input(FolderBlobStore({str(tmp_path)!r}), "job-1", listing, settings)

        planned = plan("b.csv")
        rows = [[(s.file, s.row, s.rows) for s in b.slices] for shard in planned.shards for b in shard.mini_batches]
        try:
            plan("a.parquet")
        except ValidationError as exc:
            refused = exc.message
        print(json.dumps({{"rows": rows, "refused": refused}}))
        """
    )

    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False)

    assert finished.returncode == 0, finished.stderr
    planned = json.loads(finished.stdout)
    assert planned["rows"] == [[["b.csv", 0, 20]], [["b.csv", 20, 10]]]
    assert planned["refused"] == (
        "a.parquet cannot be read as parquet: reading Parquet needs pyarrow (the package's `tabular` extra)"
    )
