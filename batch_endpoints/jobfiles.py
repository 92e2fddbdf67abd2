"""Where a job's working files live and what they hold: the contract between plan, runner and finalize.

    <scratch>/input.json                  the files to score when the job was given a list of them:
                                          {"root": URI, "files": [relative paths]}; or, for a rerun of another
                                          job's failed files, {"failed_files_of": job id}, listed by the plan
    <scratch>/plan-cursor.json            where a plan made in windows stands: the listing's position, the next
                                          mini-batch and shard numbers, the files of the shard not yet cut
    <scratch>/shards/index.json           the shard list (what the Map state iterates over)
    <scratch>/shards/shard-00000.json     one shard: its mini-batches and their input files
    <scratch>/parts/mb-00000000.csv       rows of one finished mini-batch (append_row only), in the output's
                                          format (.csv, .parquet or .jsonl)
    <scratch>/results/mb-00000000.json    outcome of one finished mini-batch; written last, so it marks done
    <scratch>/shard-outputs/shard-00000.csv   a done shard's parts merged in mini-batch order (a CSV with
                                          its header, Parquet or JSON lines); none when it has no rows
    <scratch>/shard-errors/shard-00000.jsonl  a done shard's failed files, one line each, in mini-batch order
    <scratch>/journals/shard-00000.json   a done shard's outcome, summed (ShardJournal); written after its
                                          output and errors, so it marks the shard done
    <scratch>/shard-errors/unfinished-00000.jsonl  written by finalize for a shard that never got done: its
                                          failed and never-scored files
    <scratch>/logs/                       what the scoring code printed or logged, per instance and worker
    <scratch>/errors.jsonl, summary.json  written by finalize
    <scratch>/output.json                 written by finalize once the output file is written: which and how big

A part's and a result's key are pure functions of (job, mini-batch index): a retried shard skips mini-batches
whose result exists, and re-running one overwrites the same keys, so no row is ever written twice. A shard's
files are pure functions of its results: sealing it again (a retried shard finding every mini-batch done, or
finalize sealing a shard whose runner died just before) rewrites the same bytes. Finalize reads one journal per
shard, and a done shard's mini-batch files never again: its cost grows with shards, not mini-batches.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from batch_endpoints.ports import BlobStore

_MINI_BATCH_NAME = re.compile(r"/mb-(\d{8,})\.[a-z]+$")
_SHARD_NAME = re.compile(r"/shard-(\d{5,})\.json$")


@dataclass(frozen=True)
class RowSlice:
    """Rows `row` to `row + rows - 1` of one tabular file (0 = its first data row). For CSV and JSON lines,
    `start` and `end` are the byte range of those lines (after a CSV's header), so a runner reads just them;
    for Parquet both are 0 and the runner reads the row groups holding the rows."""

    file: str
    row: int
    rows: int
    start: int = 0
    end: int = 0

    @property
    def name(self) -> str:
        """How results and errors name the slice: `data.csv[0:50000]`, Python's slice notation."""
        return f"{self.file}[{self.row}:{self.row + self.rows}]"


@dataclass(frozen=True)
class MiniBatch:
    index: int
    files: list[str]
    """Paths relative to the shard's input_root ("" when the input is a single file)."""
    slices: list[RowSlice] = field(default_factory=list)
    """Tabular inputs only: the rows of `files` that make the mini-batch, in order. Empty = file mode."""

    @property
    def inputs(self) -> int:
        """What it holds in the job's unit: files, or rows of tabular inputs."""
        return sum(s.rows for s in self.slices) if self.slices else len(self.files)


@dataclass(frozen=True)
class Shard:
    job_id: str
    index: int
    input_root: str
    mini_batches: list[MiniBatch]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Shard:
        data = json.loads(raw)
        return cls(
            job_id=data["job_id"],
            index=data["index"],
            input_root=data["input_root"],
            mini_batches=[
                MiniBatch(mb["index"], mb["files"], [RowSlice(**s) for s in mb.get("slices", [])])
                for mb in data["mini_batches"]
            ],
        )


@dataclass(frozen=True)
class FileError:
    file: str
    error: str


@dataclass
class MiniBatchResult:
    index: int
    files: int
    succeeded: int
    rows: int
    attempts: int
    failed: list[FileError] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    @classmethod
    def for_slices(
        cls, index: int, slices: list[RowSlice], failed: dict[str, str], attempts: int, rows: int, columns: list[str]
    ) -> MiniBatchResult:
        """A tabular mini-batch's outcome, counted in rows; a slice fails with its file (`failed`: file -> why)."""
        total = sum(s.rows for s in slices)
        return cls(
            index=index,
            files=total,
            succeeded=total - sum(s.rows for s in slices if s.file in failed),
            rows=rows,
            attempts=attempts,
            failed=[FileError(s.name, failed[s.file]) for s in slices if s.file in failed],
            columns=columns,
        )

    @property
    def failed_count(self) -> int:
        """Failed inputs: files, or for tabular inputs rows (Azure counts record failures for tables)."""
        return self.files - self.succeeded

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> MiniBatchResult:
        data: dict[str, Any] = json.loads(raw)
        data["failed"] = [FileError(**f) for f in data.get("failed", [])]
        return cls(**data)


@dataclass
class ShardJournal:
    """What one shard's mini-batches came to, summed: everything finalize needs from a done shard."""

    shard: int
    mini_batches: int
    """Mini-batches with a result: all of the shard's in a journal."""
    succeeded: int
    rows: int
    mini_batches_failed: int
    first_error: str = ""
    not_scored: int = 0
    """Inputs (files, or rows) of its mini-batches without a result: 0 in a done shard's journal."""
    columns: list[str] = field(default_factory=list)
    """The shard output's columns, in order (the union of its parts', first seen first)."""
    output_size: int = 0
    header_size: int = 0
    """CSV: the bytes of the shard output's header line, skipped when joining it after another shard's."""
    errors_size: int = 0
    done: bool = True
    """False for a shard finalize summed without a journal: some of its mini-batches have no result."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ShardJournal:
        return cls(**json.loads(raw))


class JobFiles:
    """Names every object of one job's scratch area."""

    def __init__(self, blobs: BlobStore, scratch_uri: str, *, part_format: str = "csv") -> None:
        self.blobs = blobs
        self.scratch = scratch_uri
        self.part_format = part_format

    @property
    def input_listing(self) -> str:
        return self.blobs.join(self.scratch, "input.json")

    @property
    def plan_cursor(self) -> str:
        return self.blobs.join(self.scratch, "plan-cursor.json")

    @property
    def shard_index(self) -> str:
        return self.blobs.join(self.scratch, "shards", "index.json")

    def shard(self, index: int) -> str:
        return self.blobs.join(self.scratch, "shards", f"shard-{index:05d}.json")

    def part(self, mini_batch: int) -> str:
        return self.blobs.join(self.scratch, "parts", f"mb-{mini_batch:08d}.{self.part_format}")

    def result(self, mini_batch: int) -> str:
        return self.blobs.join(self.scratch, "results", f"mb-{mini_batch:08d}.json")

    @property
    def results_folder(self) -> str:
        return self.blobs.join(self.scratch, "results")

    @staticmethod
    def mini_batch_of(uri: str) -> int | None:
        """The mini-batch index a result or part URI names; None for anything else."""
        match = _MINI_BATCH_NAME.search(uri)
        return int(match.group(1)) if match else None

    def shard_output(self, shard: int) -> str:
        return self.blobs.join(self.scratch, "shard-outputs", f"shard-{shard:05d}.{self.part_format}")

    def shard_errors(self, shard: int) -> str:
        return self.blobs.join(self.scratch, "shard-errors", f"shard-{shard:05d}.jsonl")

    def unfinished_errors(self, shard: int) -> str:
        return self.blobs.join(self.scratch, "shard-errors", f"unfinished-{shard:05d}.jsonl")

    def journal(self, shard: int) -> str:
        return self.blobs.join(self.scratch, "journals", f"shard-{shard:05d}.json")

    @property
    def journals_folder(self) -> str:
        return self.blobs.join(self.scratch, "journals")

    @staticmethod
    def shard_of(uri: str) -> int | None:
        """The shard index a journal URI names; None for anything else."""
        match = _SHARD_NAME.search(uri)
        return int(match.group(1)) if match else None

    @property
    def output_marker(self) -> str:
        return self.blobs.join(self.scratch, "output.json")

    @property
    def logs(self) -> str:
        return self.blobs.join(self.scratch, "logs")

    @property
    def errors(self) -> str:
        return self.blobs.join(self.scratch, "errors.jsonl")

    @property
    def summary(self) -> str:
        return self.blobs.join(self.scratch, "summary.json")
