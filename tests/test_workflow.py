"""Plan and finalize, with the runner played by hand: shard files come from plan_job on a real input folder,
then each test writes the mini-batch results and part files a runner would, and calls finalize_job.

The input is seven files cut into mini-batches of three: 0 = a, b, c; 1 = d, sub/e, sub/f; 2 = z.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from batch_endpoints import shard_journals
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ConflictError
from batch_endpoints.jobfiles import FileError, JobFiles, MiniBatch, MiniBatchResult, RowSlice, Shard, ShardJournal
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.shard_journals import NOT_SCORED
from batch_endpoints.specs import InvokeOverrides, Job, JobStatus
from batch_endpoints.workflow import finalize_job, mark_failed, plan_job
from tests.core_fixtures import (  # noqa: F401 (pytest fixtures)
    code_dir_fixture,
    deployment_declaration,
    input_dir_fixture,
    invoke,
    local_backend_fixture,
    model_dir_fixture,
    ready_service_fixture,
    recorder_fixture,
    service_fixture,
)

HEADER = "file,score\n"
EXPECTED_MINI_BATCHES = [["a.txt", "b.txt", "c.txt"], ["d.txt", "sub/e.txt", "sub/f.txt"], ["z.txt"]]


class HandRunner:
    """Writes what the batch_container runner writes for a job: part files, then results (results mark done)."""

    def __init__(self, backend: Backend, job: Job) -> None:
        self.backend = backend
        self.job_id = job.id
        self.files = JobFiles(backend.blobs, job.scratch_uri, part_format=job.settings.part_format)
        plan = plan_job(backend, job.id)
        self.shards = [Shard.from_json(backend.blobs.get_bytes(uri)) for uri in plan.shard_uris]
        self.mini_batches: list[MiniBatch] = [mb for shard in self.shards for mb in shard.mini_batches]

    def score(
        self, index: int, *, failed: Sequence[str] = (), part: str | bytes | None = None, columns: Sequence[str] = ()
    ):
        """Finish mini-batch `index`: every file scores `len(name)` unless listed in `failed`. A `part` given as
        bytes (Parquet) holds a row per file that did not fail."""
        mini_batch = self.mini_batches[index]
        ok = [name for name in mini_batch.files if name not in failed]
        if part is None:
            part = HEADER + "".join(f"{name},{len(name)}\n" for name in ok) if ok else None
        if isinstance(part, str):
            rows = part.count("\n") - (0 if self.files.part_format == "jsonl" else 1)
            part = part.encode()
        else:
            rows = 0 if part is None else len(ok)
        if part is not None:
            self.backend.blobs.put_bytes(self.files.part(index), part)
        result = MiniBatchResult(
            index=index,
            files=len(mini_batch.files),
            succeeded=len(ok),
            rows=rows,
            attempts=1,
            failed=[FileError(name, f"cannot read {name}") for name in failed],
            columns=list(columns) or (["file", "score"] if part is not None else []),
        )
        self.backend.blobs.put_bytes(self.files.result(index), result.to_json())

    def seal(self, shard: int) -> ShardJournal:
        """What the runner does once every mini-batch of the shard has a result."""
        results = {
            mb.index: MiniBatchResult.from_json(self.backend.blobs.get_bytes(self.files.result(mb.index)))
            for mb in self.shards[shard].mini_batches
        }
        return shard_journals.seal(self.backend.blobs, self.files, self.shards[shard], results, append_rows=True)

    def score_all(self, failed: Sequence[str] = ()) -> None:
        for index, mini_batch in enumerate(self.mini_batches):
            self.score(index, failed=[name for name in mini_batch.files if name in failed])

    def errors(self) -> list[dict]:
        raw = self.backend.blobs.get_bytes(self.files.errors).decode()
        return [json.loads(line) for line in raw.splitlines()]

    def summary(self) -> dict:
        return json.loads(self.backend.blobs.get_bytes(self.files.summary))


def start_job(service: BatchEndpointService, input_dir: Path, **overrides: object) -> HandRunner:
    job = invoke(service, input_dir, overrides=InvokeOverrides.model_validate(overrides))
    return HandRunner(service.backend, job)


def output_of(service: BatchEndpointService, job: Job) -> bytes:
    assert job.output_uri is not None
    return service.blobs.get_bytes(job.output_uri)


def finalized_once(service: BatchEndpointService, input_dir: Path) -> tuple[HandRunner, Job, bytes]:
    """A job whose c.txt failed, finalized: its runner, the finalized job and its output's bytes."""
    runner = start_job(service, input_dir)
    runner.score_all(failed=["c.txt"])
    first = finalize_job(service.backend, runner.job_id)
    return runner, first, output_of(service, first)


def part_row(name: str) -> str:
    return f"{name},{len(name)}\n"


# ------------------------------------------------------------------------------------------------ plan
def test_plan_writes_the_shard_files_and_counts_and_starts_the_job(
    ready_service: BatchEndpointService, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)

    job = ready_service.get_job(runner.job_id)
    assert job.status == JobStatus.RUNNING and job.started_at is not None
    assert (job.counts.files, job.counts.mini_batches, job.counts.shards) == (7, 3, len(runner.shards))
    assert [mb.files for mb in runner.mini_batches] == EXPECTED_MINI_BATCHES
    assert all(shard.input_root == str(input_dir) for shard in runner.shards)
    index = json.loads(ready_service.blobs.get_bytes(runner.files.shard_index))
    assert index == [{"shard": runner.files.shard(n)} for n in range(len(runner.shards))]


def test_plan_run_again_rewrites_the_same_shards(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    first = [local_backend.blobs.get_bytes(runner.files.shard(n)) for n in range(len(runner.shards))]

    again = plan_job(local_backend, runner.job_id)

    assert [local_backend.blobs.get_bytes(uri) for uri in again.shard_uris] == first


def test_plan_of_a_single_file_job_makes_one_mini_batch(ready_service: BatchEndpointService, input_dir: Path) -> None:
    runner = start_job(ready_service, input_dir / "sub" / "e.txt")

    assert [mb.files for mb in runner.mini_batches] == [["e.txt"]]
    assert runner.shards[0].input_root == str(input_dir / "sub")


# ------------------------------------------------------------------------------------------------ merge
def test_merged_output_is_the_parts_in_mini_batch_order_with_one_header(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    parts = [
        'file,score\na.txt,"1,5"\nb.txt,  spaced \nc.txt,"say ""hi"""\n',
        "file,score\nd.txt,4\nsub/e.txt,é\nsub/f.txt,\n",
        "file,score\nz.txt,26\n",
    ]
    for index in (2, 0, 1):  # finished out of order, as parallel instances do
        runner.score(index, part=parts[index])

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.COMPLETED and job.error is None
    assert output_of(ready_service, job) == ("file,score\n" + "".join(p.partition("\n")[2] for p in parts)).encode()
    counts = job.counts
    assert (counts.files, counts.files_succeeded, counts.files_failed, counts.rows) == (7, 7, 0, 7)
    assert counts.mini_batches_failed == 0
    assert not local_backend.blobs.exists(runner.files.errors)
    assert ready_service.get_job(job.id) == job
    assert job.ended_at is not None


def test_summary_names_the_outcome_and_the_output(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score_all()

    job = finalize_job(local_backend, runner.job_id)

    summary = runner.summary()
    assert (summary["job"], summary["status"], summary["error"]) == (job.id, "Completed", None)
    assert (summary["output"], summary["errors_file"]) == (job.output_uri, None)
    assert summary["counts"] == job.counts.model_dump()
    assert ready_service.job_artifacts(job.id) == [job.output_uri, runner.files.summary]


def test_mini_batches_without_rows_add_nothing_to_the_output(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score(0, failed=EXPECTED_MINI_BATCHES[0])
    runner.score(1)
    runner.score(2)

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.COMPLETED
    names = ["d.txt", "sub/e.txt", "sub/f.txt", "z.txt"]
    assert output_of(ready_service, job) == (HEADER + "".join(part_row(n) for n in names)).encode()
    assert (job.counts.files_failed, job.counts.mini_batches_failed, job.counts.rows) == (3, 1, 4)


def test_parts_with_different_columns_merge_under_the_union_of_columns(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score(0, part="file,score\na.txt,1\nb.txt,007\nc.txt,3\n", columns=["file", "score"])
    runner.score(1, part="file,label\nd.txt,cat\nsub/e.txt,NA\nsub/f.txt,dog\n", columns=["file", "label"])
    runner.score(2, part="file,label,score\nz.txt,emu,2.50\n", columns=["file", "label", "score"])

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.COMPLETED
    # Values pass through as written: no 1 -> 1.0, 007 -> 7 or NA -> empty because some columns are missing.
    assert output_of(ready_service, job).decode().splitlines() == [
        "file,score,label",
        "a.txt,1,",
        "b.txt,007,",
        "c.txt,3,",
        "d.txt,,cat",
        "sub/e.txt,,NA",
        "sub/f.txt,,dog",
        "z.txt,2.50,emu",
    ]
    assert output_of(ready_service, job).endswith(b"emu\n")


def test_shards_whose_own_parts_differ_but_whose_columns_agree_are_joined_with_one_header(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir, mini_batch_size=1)  # 7 mini-batches, 2 a shard
    assert [[mb.index for mb in shard.mini_batches] for shard in runner.shards] == [[0, 1], [2, 3], [4, 5], [6]]
    parts = {
        0: ("file,score\na.txt,1\n", ["file", "score"]),
        1: ("file,label\nb.txt,cat\n", ["file", "label"]),
        2: ("file,score,label\nc.txt,3,emu\n", ["file", "score", "label"]),
        3: ("file,score\nd.txt,4\n", ["file", "score"]),
        4: ("file,score,label\nsub/e.txt,5,\n", ["file", "score", "label"]),
        5: ("file,score,label\nsub/f.txt,6,dog\n", ["file", "score", "label"]),
        6: ("file,score,label\nz.txt,7,cow\n", ["file", "score", "label"]),
    }
    for index, (part, columns) in parts.items():
        runner.score(index, part=part, columns=columns)
    journals = [runner.seal(n) for n in range(4)]
    assert {tuple(j.columns) for j in journals} == {("file", "score", "label")}

    job = finalize_job(local_backend, runner.job_id)

    assert output_of(ready_service, job).decode().splitlines() == [
        "file,score,label",
        "a.txt,1,",
        "b.txt,,cat",
        "c.txt,3,emu",
        "d.txt,4,",
        "sub/e.txt,5,",
        "sub/f.txt,6,dog",
        "z.txt,7,cow",
    ]


def test_json_lines_shards_are_joined_in_mini_batch_order(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir, output_file_name="predictions.jsonl")
    lines = {
        i: "".join(json.dumps({"file": n, "n": i}) + "\n" for n in mb) for i, mb in enumerate(EXPECTED_MINI_BATCHES)
    }
    for index in (2, 0, 1):
        runner.score(index, part=lines[index], columns=["file", "n"])
    runner.seal(1)  # the others are sealed by finalize, as when their runners died just before

    job = finalize_job(local_backend, runner.job_id)

    assert job.output_uri is not None and job.output_uri.endswith(".jsonl")
    assert output_of(ready_service, job).decode() == lines[0] + lines[1] + lines[2]


def test_parquet_shards_are_rewritten_as_row_groups_in_order_under_one_schema(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    runner = start_job(ready_service, input_dir, output_file_name="scores.parquet")
    frames = [
        pd.DataFrame({"file": names, "score": [len(n) for n in names]}) for names in EXPECTED_MINI_BATCHES[:2]
    ] + [pd.DataFrame({"file": ["z.txt"], "score": [2.5], "label": ["emu"]})]
    for index, frame in enumerate(frames):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        runner.score(index, part=buffer.getvalue(), columns=list(frame.columns))

    job = finalize_job(local_backend, runner.job_id)

    assert job.output_uri is not None
    table = pq.read_table(job.output_uri)
    assert table.column_names == ["file", "score", "label"]
    assert table.column("file").to_pylist() == [n for names in EXPECTED_MINI_BATCHES for n in names]
    assert table.column("score").to_pylist() == [len(n) for names in EXPECTED_MINI_BATCHES[:2] for n in names] + [2.5]
    assert table.column("label").to_pylist() == [None] * 6 + ["emu"]
    assert pq.ParquetFile(job.output_uri).num_row_groups == 3  # one a shard


# ------------------------------------------------------------------------------------------------ errors
def test_errors_file_lists_failed_files_and_every_file_of_an_unfinished_mini_batch(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score(0, failed=["b.txt"])
    runner.score(2)  # mini-batch 1 never finished

    job = finalize_job(local_backend, runner.job_id)

    assert runner.errors() == [
        {"file": "b.txt", "mini_batch": 0, "error": "cannot read b.txt"},
        {"file": "d.txt", "mini_batch": 1, "error": NOT_SCORED},
        {"file": "sub/e.txt", "mini_batch": 1, "error": NOT_SCORED},
        {"file": "sub/f.txt", "mini_batch": 1, "error": NOT_SCORED},
    ]
    counts = job.counts
    assert (counts.files_succeeded, counts.files_failed, counts.files_not_scored, counts.rows) == (3, 1, 3, 3)
    assert runner.summary()["counts"]["files_not_scored"] == 3
    assert job.status == JobStatus.FAILED
    assert "1 mini-batches never completed" in (job.error or "")
    assert runner.summary()["errors_file"] == runner.files.errors
    assert not local_backend.blobs.exists(job.output_uri or "")


def test_no_results_at_all_fail_the_job_and_list_every_file(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.FAILED
    assert [e["file"] for e in runner.errors()] == [name for names in EXPECTED_MINI_BATCHES for name in names]
    assert {e["error"] for e in runner.errors()} == {NOT_SCORED}
    assert (job.counts.files_succeeded, job.counts.files_failed, job.counts.files_not_scored) == (0, 0, 7)
    assert not local_backend.blobs.exists(job.output_uri or "")
    assert ready_service.job_artifacts(job.id) == [runner.files.errors, runner.files.summary]


def test_error_threshold_zero_fails_on_first_bad_file(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir, error_threshold=0)
    runner.score_all(failed=["sub/f.txt"])

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.FAILED
    assert (job.error or "").startswith("error_threshold exceeded: 1 file failed, 0 allowed (see ")
    assert not local_backend.blobs.exists(job.output_uri or "")
    assert [e["file"] for e in runner.errors()] == ["sub/f.txt"]
    assert runner.summary()["output"] is None


def test_error_threshold_message_tells_the_failed_file_from_those_the_stopped_job_never_ran(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir, error_threshold=0)
    runner.score(0, failed=["b.txt"])  # the runners stop: mini-batches 1 and 2 never run

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.FAILED
    assert (job.error or "").startswith("error_threshold exceeded: 1 file failed, 0 allowed; 4 not scored (the job")
    assert (job.counts.files_succeeded, job.counts.files_failed, job.counts.files_not_scored) == (2, 1, 4)
    assert runner.summary()["counts"] == job.counts.model_dump()
    assert [e["error"] for e in runner.errors()] == ["cannot read b.txt", *[NOT_SCORED] * 4]


def test_an_unfinished_tabular_shard_counts_the_rows_it_never_ran_as_not_scored() -> None:
    first, second = [RowSlice("a.csv", 0, 40)], [RowSlice("a.csv", 40, 10), RowSlice("b.csv", 0, 3)]
    shard = Shard("job", 0, "root", [MiniBatch(0, ["a.csv"], first), MiniBatch(1, ["a.csv", "b.csv"], second)])
    results = {0: MiniBatchResult.for_slices(0, first, {"a.csv": "bad row"}, attempts=1, rows=0, columns=[])}

    journal = shard_journals.summed(shard, results)

    assert (journal.succeeded, journal.not_scored, journal.done) == (0, 13, False)


def test_a_journal_written_before_not_scored_was_counted_reads_as_none_not_scored() -> None:
    # A done shard's journal: every mini-batch has a result, so none of its inputs is unscored.
    raw = b'{"shard":0,"mini_batches":1,"succeeded":3,"rows":3,"mini_batches_failed":0}'
    assert ShardJournal.from_json(raw).not_scored == 0


def test_error_threshold_weighs_failed_files_not_those_never_scored(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir, error_threshold=1)
    runner.score(0, failed=["b.txt"])
    runner.score(2)  # mini-batch 1 never finished: its shard failed

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.FAILED
    assert (job.error or "").startswith("1 mini-batches never completed")
    assert (job.counts.files_failed, job.counts.files_not_scored) == (1, 3)


def test_error_threshold_minus_one_completes_with_failures(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir, error_threshold=-1)
    runner.score_all(failed=["a.txt", "d.txt", "z.txt"])

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.COMPLETED and job.error is None
    assert (job.counts.files_succeeded, job.counts.files_failed, job.counts.rows) == (4, 3, 4)
    assert job.counts.mini_batches_failed == 1  # mini-batch 2 = z.txt, all of it failed
    names = ["b.txt", "c.txt", "sub/e.txt", "sub/f.txt"]
    assert output_of(ready_service, job) == (HEADER + "".join(part_row(n) for n in names)).encode()
    assert [e["file"] for e in runner.errors()] == ["a.txt", "d.txt", "z.txt"]
    assert ready_service.job_artifacts(job.id) == [job.output_uri, runner.files.errors, runner.files.summary]


@pytest.mark.parametrize(
    ("threshold", "status"), [(1, JobStatus.FAILED), (2, JobStatus.COMPLETED), (3, JobStatus.COMPLETED)]
)
def test_error_threshold_allows_exactly_that_many_failed_files(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path, threshold: int, status: JobStatus
) -> None:
    runner = start_job(ready_service, input_dir, error_threshold=threshold)
    runner.score_all(failed=["b.txt", "sub/e.txt"])

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == status
    assert job.counts.files_failed == 2
    assert local_backend.blobs.exists(job.output_uri or "") == (status == JobStatus.COMPLETED)


# ------------------------------------------------------------------------------------------------ other endings
def test_cancel_requested_job_ends_canceled_without_output(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score(0, failed=["c.txt"])
    ready_service.cancel_job(runner.job_id)

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.CANCELED and job.error is None
    assert not local_backend.blobs.exists(job.output_uri or "")
    assert runner.summary()["status"] == "Canceled"
    # The files it never ran are not scored, not failed.
    assert (job.counts.files_succeeded, job.counts.files_failed, job.counts.files_not_scored) == (2, 1, 4)


def test_summary_only_job_completes_without_an_output_file(
    ready_service: BatchEndpointService, local_backend: Backend, code_dir: Path, input_dir: Path
) -> None:
    ready_service.create_deployment(
        deployment_declaration(code_dir, name="green", settings={"mini_batch_size": 3, "output_action": "summary_only"})
    )
    job = invoke(ready_service, input_dir, deployment_name="green")
    runner = HandRunner(local_backend, job)
    for index in range(3):
        runner.score(index, part=None, columns=["file"])

    job = finalize_job(local_backend, runner.job_id)

    assert job.status == JobStatus.COMPLETED
    assert job.output_uri is None
    outputs = local_backend.blobs.join(local_backend.blobs.root, "outputs")
    assert not local_backend.blobs.exists(outputs)
    assert runner.summary()["output"] is None
    assert ready_service.job_artifacts(job.id) == [runner.files.summary]


# ------------------------------------------------------------------------------------------------ running again
def test_finalize_run_twice_gives_the_same_output(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner, first, output = finalized_once(ready_service, input_dir)

    second = finalize_job(local_backend, runner.job_id)

    assert second == first
    assert output_of(ready_service, second) == output


def test_finalize_after_a_crash_accepts_the_output_it_wrote(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner, first, output = finalized_once(ready_service, input_dir)
    # The step died after writing the output but before recording the end: the workflow runs it again.
    ready_service.repo.update_job(runner.job_id, lambda j: j.model_copy(update={"status": JobStatus.FINALIZING}))

    again = finalize_job(local_backend, runner.job_id)

    assert again.status == JobStatus.COMPLETED
    assert again.counts == first.counts
    assert output_of(ready_service, again) == output
    assert output.decode().count("a.txt") == 1 and output.decode().count("file,score") == 1
    assert [e["file"] for e in runner.errors()] == ["c.txt"]


def test_finalize_after_a_crash_before_its_marker_compares_the_output_it_finds(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner, _, output = finalized_once(ready_service, input_dir)
    # Died after writing the output but before writing the marker that says it is ours.
    local_backend.blobs.delete_prefix(runner.files.output_marker)
    ready_service.repo.update_job(runner.job_id, lambda j: j.model_copy(update={"status": JobStatus.FINALIZING}))

    again = finalize_job(local_backend, runner.job_id)

    assert again.status == JobStatus.COMPLETED and output_of(ready_service, again) == output


def test_finalize_refuses_an_output_replaced_by_someone_else_after_it_was_written(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score_all()
    first = finalize_job(local_backend, runner.job_id)
    assert first.output_uri is not None
    theirs = b"file,score\n" + b"x" * (len(output_of(ready_service, first)) - len(b"file,score\n"))
    local_backend.blobs.put_bytes(first.output_uri, theirs)  # the same size: only the bytes tell
    ready_service.repo.update_job(runner.job_id, lambda j: j.model_copy(update={"status": JobStatus.FINALIZING}))
    local_backend.blobs.delete_prefix(runner.files.output_marker)

    with pytest.raises(ConflictError, match="written by someone else"):
        finalize_job(local_backend, runner.job_id)

    assert local_backend.blobs.get_bytes(first.output_uri) == theirs


def test_finalize_refuses_an_output_file_written_by_someone_else(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score_all()
    job = ready_service.get_job(runner.job_id)
    assert job.output_uri is not None
    local_backend.blobs.put_bytes(job.output_uri, b"file,score\nsomeone,else\n")

    with pytest.raises(ConflictError) as caught:
        finalize_job(local_backend, runner.job_id)

    assert caught.value.field == "output"
    assert local_backend.blobs.get_bytes(job.output_uri) == b"file,score\nsomeone,else\n"
    assert ready_service.get_job(job.id).status != JobStatus.COMPLETED


# ------------------------------------------------------------------------------------------------ mark failed
def test_mark_failed_fails_a_running_job(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)

    job = mark_failed(local_backend, runner.job_id, "instance exited (code 137)")

    assert (job.status, job.error) == (JobStatus.FAILED, "instance exited (code 137)")
    assert job.ended_at is not None
    assert ready_service.get_job(job.id) == job


def test_mark_failed_of_a_cancel_requested_job_ends_it_canceled(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    ready_service.cancel_job(runner.job_id)

    assert mark_failed(local_backend, runner.job_id, "stopped").status == JobStatus.CANCELED


def test_mark_failed_keeps_a_final_status(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score_all()
    completed = finalize_job(local_backend, runner.job_id)

    job = mark_failed(local_backend, runner.job_id, "late failure report")

    assert job == completed
    assert ready_service.get_job(job.id).status == JobStatus.COMPLETED
    assert ready_service.get_job(job.id).error is None


def test_finalize_of_a_failed_job_changes_nothing(
    ready_service: BatchEndpointService, local_backend: Backend, input_dir: Path
) -> None:
    runner = start_job(ready_service, input_dir)
    runner.score_all()
    failed = mark_failed(local_backend, runner.job_id, "host died")

    job = finalize_job(local_backend, runner.job_id)

    assert job == failed
    assert not local_backend.blobs.exists(job.output_uri or "")
