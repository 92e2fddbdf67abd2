"""A tabular job on storage that downloads (as S3 does): each mini-batch fetches only its rows of each file, with
ranged reads (batch_container/slice_copies.py), and the job's output is what reading the whole files gives."""

from __future__ import annotations

import io
import random
import string
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch_container.runner import ShardRunner
from batch_container.slice_copies import copy_slice
from batch_container.tables import read_slice
from batch_endpoints import workflow
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.adapters.local.records import SqliteRecordStore
from batch_endpoints.backend import Backend
from batch_endpoints.jobfiles import RowSlice
from batch_endpoints.specs import (
    JobStatus,
    RetrySettings,
    RunSettings,
)
from tests.core_fixtures import record_runner_job

pytestmark = pytest.mark.slow

ROWS = 4000
GROUP_ROWS = 250
SCRIPT = """\
def run(mini_batch):
    return (mini_batch["x"] * 2).rename("double")
"""


class RangedOnlyStore(FolderBlobStore):
    """Storage that, like S3, is read through copies; it counts the bytes read of each input file and refuses to
    hand one over whole."""

    reads_in_place = False

    def __init__(self, root: str, inputs: str) -> None:
        super().__init__(root)
        self.inputs = inputs
        self.bytes_read: dict[str, int] = {}

    def read_range(self, uri: str, start: int, end: int | None = None) -> bytes:
        data = super().read_range(uri, start, end)
        name = Path(uri).name
        self.bytes_read[name] = self.bytes_read.get(name, 0) + len(data)
        return data

    def localize(self, uri: str, scratch_dir: str) -> str:
        assert not uri.startswith(self.inputs), f"{uri} was downloaded whole"
        return super().localize(uri, scratch_dir)


def frame(first: int) -> pd.DataFrame:
    # Text that does not compress: the Parquet file is as large as the CSV, far larger than its footer.
    noise = random.Random(first)
    text = ["".join(noise.choices(string.ascii_letters, k=400)) for _ in range(ROWS)]
    return pd.DataFrame({"x": range(first, first + ROWS), "text": text})


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    frame(0).to_csv(folder / "a.csv", index=False)
    frame(ROWS).to_json(folder / "b.jsonl", orient="records", lines=True)
    frame(2 * ROWS).to_parquet(folder / "c.parquet", index=False, row_group_size=GROUP_ROWS)
    return folder


def test_each_mini_batch_reads_only_its_rows_of_each_file(tmp_path: Path, inputs: Path) -> None:
    records = SqliteRecordStore(str(tmp_path / "records.db"))
    blobs = RangedOnlyStore(str(tmp_path / "storage"), str(inputs))
    backend = Backend("local", records, blobs, None, None, None, "", {})  # type: ignore[arg-type]
    settings = RunSettings(
        mini_batch_size=500, input_format="tables", retry_settings=RetrySettings(max_retries=0, timeout=60)
    )
    job = record_runner_job(backend, SCRIPT, inputs, settings)

    plan = workflow.plan_job(backend, job.id)
    planned = dict(blobs.bytes_read)
    blobs.bytes_read.clear()
    with ShardRunner(records, blobs, job.id) as runner:
        for uri in plan.shard_uris:
            runner.run_shard(runner.load_shard(uri))
    finished = workflow.finalize_job(backend, job.id)

    assert finished.status == JobStatus.COMPLETED and finished.counts.files == 3 * ROWS
    output = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert output["double"].tolist() == [2 * x for x in range(3 * ROWS)]
    assert output["row"].tolist() == [*range(ROWS)] * 3
    assert output["file"].tolist() == ["a.csv"] * ROWS + ["b.jsonl"] * ROWS + ["c.parquet"] * ROWS
    # 8 mini-batches a file: read whole each time, that is 8 times its size. Planning reads a CSV or JSON lines
    # file once (its line ends) and a Parquet file's tail; the runner reads each row once, plus per mini-batch
    # a CSV's header or a Parquet file's tail.
    sizes = {path.name: path.stat().st_size for path in inputs.iterdir()}
    assert planned["a.csv"] == sizes["a.csv"] and planned["b.jsonl"] == sizes["b.jsonl"]
    assert planned["c.parquet"] < sizes["c.parquet"] / 4
    for name, size in sizes.items():
        assert blobs.bytes_read[name] < 1.6 * size, name


def test_a_parquet_copy_holds_only_the_row_groups_of_its_slice(tmp_path: Path, inputs: Path) -> None:
    blobs = RangedOnlyStore(str(tmp_path / "storage"), str(tmp_path / "elsewhere"))
    path = str(inputs / "c.parquet")
    piece = RowSlice("c.parquet", row=GROUP_ROWS + 100, rows=GROUP_ROWS)  # in row groups 1 and 2

    copy = copy_slice(blobs, path, piece, "parquet", str(tmp_path / "copy.parquet"))

    assert read_slice(copy, piece, "parquet").equals(read_slice(path, piece, "parquet"))
    metadata = pq.ParquetFile(path).metadata
    groups = [metadata.row_group(g) for g in (1, 2)]
    needed = sum(group.column(c).total_compressed_size for group in groups for c in range(group.num_columns))
    assert needed < blobs.bytes_read["c.parquet"] < needed + 2 * 64 * 1024
    # Sparse: the holes where the other row groups are take no disk.
    assert Path(copy).stat().st_size == Path(path).stat().st_size
    assert Path(copy).stat().st_blocks * 512 < Path(path).stat().st_size


def test_a_csv_copy_holds_the_header_and_the_slice_lines(tmp_path: Path, inputs: Path) -> None:
    blobs = RangedOnlyStore(str(tmp_path / "storage"), str(tmp_path / "elsewhere"))
    text = (inputs / "a.csv").read_bytes()
    header = text.index(b"\n") + 1
    lines = text.splitlines(keepends=True)
    start = header + sum(len(line) for line in lines[1:11])
    end = start + sum(len(line) for line in lines[11:16])
    piece = RowSlice("a.csv", row=10, rows=5, start=start, end=end)

    copy = copy_slice(blobs, str(inputs / "a.csv"), piece, "csv", str(tmp_path / "copy.csv"))

    assert read_slice(copy, piece, "csv")["x"].tolist() == list(range(10, 15))
    assert blobs.bytes_read["a.csv"] < header + (end - start) + 64 * 1024
    assert io.BytesIO(Path(copy).read_bytes()).read(header) == text[:header]


def test_a_parquet_files_footer_is_read_once_for_all_its_slices(tmp_path: Path, inputs: Path) -> None:
    class CountingStore(RangedOnlyStore):
        listings = tails = 0

        def list_files(self, uri):
            self.listings += 1
            return super().list_files(uri)

        def read_range(self, uri, start, end=None):
            self.tails += start < 0
            return super().read_range(uri, start, end)

    blobs = CountingStore(str(tmp_path / "storage"), str(tmp_path / "elsewhere"))
    path = str(inputs / "c.parquet")
    pieces = [RowSlice("c.parquet", row=k * GROUP_ROWS, rows=GROUP_ROWS) for k in range(4)]

    copies = [copy_slice(blobs, path, p, "parquet", str(tmp_path / f"copy-{k}.parquet")) for k, p in enumerate(pieces)]

    assert (blobs.listings, blobs.tails) == (1, 1)
    for copy, piece in zip(copies, pieces, strict=True):
        assert read_slice(copy, piece, "parquet")["x"].tolist() == list(
            range(2 * ROWS + piece.row, 2 * ROWS + piece.row + GROUP_ROWS)
        )
