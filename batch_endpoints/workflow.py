"""The job workflow's own steps: plan, finalize, mark failed.

The local job host calls these in a process; the cloud's Step Functions calls them through thin Lambdas. Each
step is safe to run again: plan keeps the plan it made (so a resumed job's mini-batches keep their numbers, even if
the input folder changed meanwhile), finalize recounts from the shards' journals and accepts an output file it
wrote itself on an earlier attempt. Finalize's requests grow with the shards, not the mini-batches: one journal a
shard, the output joined from the shards' outputs where they are stored (see jobfiles.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from batch_endpoints import merging, planning, shard_journals, tabular
from batch_endpoints.backend import Backend
from batch_endpoints.errors import AlreadyExistsError, ConflictError, ValidationError
from batch_endpoints.jobfiles import JobFiles, MiniBatchResult, Shard, ShardJournal
from batch_endpoints.ports import BlobRange, BlobStore
from batch_endpoints.repository import Repository
from batch_endpoints.shard_failures import first_shard_failure
from batch_endpoints.specs import Job, JobCounts, JobStatus, OutputAction, now

# Journals, error lines and undone shards' results are read this many at a time: an S3 GET waits tens of ms,
# and 32 is the S3 client's connection pool (adapters/aws/blobs.py), so more threads would only queue for one.
# At 20 ms a GET, 40,000 shards' journals are read in 25 s.
READ_THREADS = 32


@dataclass(frozen=True)
class Plan:
    shard_index_uri: str
    shard_uris: list[str]
    """The shards written; while not `planned`, those written so far."""
    planned: bool = True
    """False while the input's listing goes on: `plan_step` is called again."""


def plan_job(backend: Backend, job_id: str) -> Plan:
    """Plan the job whole, step after step (the local job host; the cloud's state machine loops instead)."""
    while not (plan := plan_step(backend, job_id)).planned:
        pass
    return plan


def plan_step(backend: Backend, job_id: str) -> Plan:
    """Plan one window of the job's input (`planning.PLAN_WINDOW_FILES` files), writing the shards it completes
    and a cursor to go on from; the step that exhausts the listing writes the shard index, then the counts.
    A step run again after a crash lists the same window from the same cursor and writes the same shards."""
    repo = Repository(backend.records)
    job = repo.get_job(job_id)
    files = JobFiles(backend.blobs, job.scratch_uri)
    if job.counts.shards:
        # Planned already (the counts are written last): a resumed or retried workflow keeps that plan, because
        # part and result files are numbered by it.
        return Plan(files.shard_index, [files.shard(n) for n in range(job.counts.shards)])
    if backend.blobs.exists(files.input_listing):
        # A given list (bounded by the request that gave it) or a rerun's (by the source job's failures, read
        # from its shards' journals): planned in one step.
        return _plan_in_one_step(backend, job, files, _listing(backend, job, files))
    cursor = _plan_cursor(backend, files)
    window = planning.list_window(backend.blobs, job.input, after=cursor.after, limit=planning.PLAN_WINDOW_FILES)
    if not cursor.after and window.exhausted:
        return _plan_in_one_step(backend, job, files, window.listing)
    if (
        not cursor.after
        and window.listing.files
        and tabular.is_tabular(window.listing.files, tabular.job_input_format(job.settings))
    ):
        raise ValidationError(
            f"a tabular input is planned in one step, so it holds {planning.PLAN_WINDOW_FILES:,} tables at most "
            "(each table's rows are read to cut it); merge the tables or split the job",
            field="input",
        )
    cut = planning.cut_window(
        job.id, window, cursor, planning.files_per_mini_batch(job.settings), job.settings.instance_count
    )
    for shard in cut.shards:
        backend.blobs.put_bytes(files.shard(shard.index), shard.to_json())
    shard_uris = [files.shard(n) for n in range(cut.cursor.shards)]
    if not window.exhausted:
        backend.blobs.put_bytes(files.plan_cursor, cut.cursor.to_json())
        return Plan(files.shard_index, shard_uris, planned=False)
    counts = JobCounts(
        unit="files", files=cut.cursor.files, mini_batches=cut.cursor.mini_batches, shards=len(shard_uris)
    )
    return _record_plan(backend, job, files, counts)


def _plan_cursor(backend: Backend, files: JobFiles) -> planning.PlanCursor:
    if not backend.blobs.exists(files.plan_cursor):
        return planning.PlanCursor()
    return planning.PlanCursor.from_json(backend.blobs.get_bytes(files.plan_cursor))


def _plan_in_one_step(backend: Backend, job: Job, files: JobFiles, listing: planning.InputListing) -> Plan:
    planned = planning.plan_input(backend.blobs, job.id, listing, job.settings)
    for shard in planned.shards:
        backend.blobs.put_bytes(files.shard(shard.index), shard.to_json())
    counts = JobCounts(
        unit=planned.unit,
        files=planned.inputs,
        mini_batches=sum(len(s.mini_batches) for s in planned.shards),
        shards=len(planned.shards),
    )
    return _record_plan(backend, job, files, counts)


def _record_plan(backend: Backend, job: Job, files: JobFiles, counts: JobCounts) -> Plan:
    """The shards are written: write their index, then the counts (which mark the job planned)."""
    shard_uris = [files.shard(n) for n in range(counts.shards)]
    backend.blobs.put_bytes(files.shard_index, json.dumps([{"shard": u} for u in shard_uris]).encode())

    def start(current: Job) -> Job:
        status = JobStatus.RUNNING if current.status == JobStatus.QUEUED else current.status
        return current.model_copy(update={"counts": counts, "status": status, "started_at": now()})

    Repository(backend.records).update_job(job.id, start)
    return Plan(files.shard_index, shard_uris)


def _listing(backend: Backend, job: Job, files: JobFiles) -> planning.InputListing:
    """The files to score: the ones the job was given (a rerun of failed files), or else its whole input."""
    if backend.blobs.exists(files.input_listing):
        chosen = json.loads(backend.blobs.get_bytes(files.input_listing))
        if "failed_files_of" in chosen:
            # Listed here, not by the API: the scan grows with the source job (API Gateway waits 29 s at most).
            listing = unscored_files(backend, Repository(backend.records).get_job(chosen["failed_files_of"]))
            if not listing.files:
                raise ValidationError(
                    f"job {chosen['failed_files_of']} has no failed or unscored files; nothing to rerun", field="failed"
                )
            return listing
        return planning.InputListing(chosen["root"], chosen["files"])
    return planning.list_input(backend.blobs, job.input)


def unscored_files(backend: Backend, job: Job) -> planning.InputListing:
    """The files of an ended job that have no row: failed, or never scored (relative to the input's root).
    Read from its shards' journals and error lines: O(shards) requests, plus the results of undone shards."""
    files = JobFiles(backend.blobs, job.scratch_uri, part_format=job.settings.part_format)
    if not job.counts.shards:
        return _listing(backend, job, files)  # never planned: nothing was scored
    unfinished: dict[int, list[str]] = {}

    def keep(shard: int, lines: list[bytes]) -> int:
        unfinished[shard] = shard_journals.failed_files(lines)
        return sum(map(len, lines))

    journals = _journals(backend, job, files, on_unfinished=keep)

    def names(journal: ShardJournal) -> list[str]:
        if not journal.done:
            return unfinished[journal.shard]
        if not journal.errors_size:
            return []
        return shard_journals.failed_files(backend.blobs.get_bytes(files.shard_errors(journal.shard)).splitlines())

    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="unscored") as pool:
        listed = [name for shard_names in pool.map(names, journals) for name in shard_names]
    root = _load_shard(backend, files, 0).input_root
    return planning.InputListing(root, listed)


def finalize_job(backend: Backend, job_id: str) -> Job:
    """Count the outcome from the shards' journals, merge the output, and set the job's final status."""
    repo = Repository(backend.records)
    job = repo.get_job(job_id)
    if job.status.is_final:
        return job
    files = JobFiles(backend.blobs, job.scratch_uri, part_format=job.settings.part_format)

    def write_unfinished(shard: int, lines: list[bytes]) -> int:
        return backend.blobs.write_stream(files.unfinished_errors(shard), lines) if lines else 0

    journals = _journals(backend, job, files, on_unfinished=write_unfinished)
    succeeded = sum(j.succeeded for j in journals)
    not_scored = sum(j.not_scored for j in journals)
    counts = job.counts.model_copy(
        update={
            "files_succeeded": succeeded,
            "files_failed": job.counts.files - succeeded - not_scored,
            "files_not_scored": not_scored,
            "mini_batches_failed": sum(j.mini_batches_failed for j in journals),
            "rows": sum(j.rows for j in journals),
        }
    )
    missing = job.counts.mini_batches - sum(j.mini_batches for j in journals)
    error_count = _write_errors(backend, files, journals)
    threshold = job.settings.error_threshold
    if job.status == JobStatus.CANCEL_REQUESTED:
        status, error = JobStatus.CANCELED, None
    elif threshold >= 0 and counts.files_failed > threshold:
        # Files the job never ran are not failures: the threshold weighs the failed ones alone.
        status = JobStatus.FAILED
        stopped = f"; {counts.files_not_scored} not scored (the job stopped)" if counts.files_not_scored else ""
        error = (
            f"error_threshold exceeded: {counts.amount(counts.files_failed)} failed, {threshold} allowed{stopped} "
            f"(see {files.errors})"
        )
    elif 0 <= job.settings.mini_batch_error_threshold < counts.mini_batches_failed:
        status = JobStatus.FAILED
        error = (
            f"mini_batch_error_threshold exceeded: {counts.mini_batches_failed} mini-batches failed, "
            f"{job.settings.mini_batch_error_threshold} allowed (see {files.errors})"
        )
    elif missing:
        status = JobStatus.FAILED
        error = f"{missing} mini-batches never completed{first_shard_failure(backend, job)} (see {files.errors})"
    elif counts.files and not counts.files_succeeded:
        # Even with any number of failures allowed, a job that scored nothing (init() failing everywhere, say)
        # has produced no result: it failed, as Azure reports it.
        first = next((j.first_error for j in journals if j.first_error), "")
        status, error = JobStatus.FAILED, f"no file was scored; the first error: {first} (see {files.errors})"
    else:
        status, error = JobStatus.COMPLETED, None
    unified: list[dict[str, Any]] = []
    if status == JobStatus.COMPLETED and job.settings.output_action == OutputAction.APPEND_ROW:
        repo.update_job(job_id, lambda j: j.model_copy(update={"status": JobStatus.FINALIZING}))
        unified = _merge_output(backend, job, files, journals)
    summary = {
        "job": job.id,
        "status": status.value,
        "error": error,
        "counts": counts.model_dump(),
        "output": job.output_uri if status == JobStatus.COMPLETED else None,
        "errors_file": files.errors if error_count else None,
        "unified_columns": unified,
    }
    backend.blobs.put_bytes(files.summary, json.dumps(summary, indent=2).encode())

    def end(current: Job) -> Job:
        return current.model_copy(update={"status": status, "error": error, "counts": counts, "ended_at": now()})

    return repo.update_job(job_id, end)


def mark_failed(backend: Backend, job_id: str, error: str) -> Job:
    def fail(current: Job) -> Job:
        if current.status.is_final:
            return current
        status = JobStatus.CANCELED if current.status == JobStatus.CANCEL_REQUESTED else JobStatus.FAILED
        return current.model_copy(update={"status": status, "error": error, "ended_at": now()})

    return Repository(backend.records).update_job(job_id, fail)


def _journals(
    backend: Backend, job: Job, files: JobFiles, *, on_unfinished: Callable[[int, list[bytes]], int]
) -> list[ShardJournal]:
    """Every shard's journal, in shard order. One listing finds the journals, read concurrently; a shard without
    one is made from its mini-batches' results (one more listing finds which exist): sealed if they all do (its
    runner stopped just before), else summed as far as they go, its error lines handed to `on_unfinished`, which
    returns the size it stored them at."""
    blobs = backend.blobs
    listed = [info.uri for info in blobs.list_files(files.journals_folder) if files.shard_of(info.uri) is not None]
    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="journals") as pool:
        read = pool.map(lambda uri: ShardJournal.from_json(blobs.get_bytes(uri)), listed)
        journals = {journal.shard: journal for journal in read if journal.shard < job.counts.shards}
        undone = [n for n in range(job.counts.shards) if n not in journals]
        if undone:
            have = {
                index
                for info in blobs.list_files(files.results_folder)
                if (index := files.mini_batch_of(info.uri)) is not None
            }
            append_rows = job.settings.output_action == OutputAction.APPEND_ROW

            def recover(number: int) -> ShardJournal:
                shard = _load_shard(backend, files, number)
                results = {
                    mb.index: MiniBatchResult.from_json(blobs.get_bytes(files.result(mb.index)))
                    for mb in shard.mini_batches
                    if mb.index in have
                }
                if len(results) == len(shard.mini_batches):
                    return shard_journals.seal(blobs, files, shard, results, append_rows=append_rows)
                journal = shard_journals.summed(shard, results)
                journal.errors_size = on_unfinished(number, shard_journals.error_lines(shard, results))
                return journal

            journals.update((journal.shard, journal) for journal in pool.map(recover, undone))
    return [journals[n] for n in range(job.counts.shards)]


def _errors_uri(files: JobFiles, journal: ShardJournal) -> str:
    return files.shard_errors(journal.shard) if journal.done else files.unfinished_errors(journal.shard)


def _write_errors(backend: Backend, files: JobFiles, journals: list[ShardJournal]) -> int:
    """One line per failed or unscored file, in mini-batch order, so every input is accounted for: the shards'
    error lines joined where they are stored. Returns its size (0: no errors file)."""
    pieces = [BlobRange(_errors_uri(files, j), 0, j.errors_size) for j in journals if j.errors_size]
    return backend.blobs.compose(files.errors, pieces) if pieces else 0


def _load_shard(backend: Backend, files: JobFiles, number: int) -> Shard:
    return Shard.from_json(backend.blobs.get_bytes(files.shard(number)))


def _merge_output(backend: Backend, job: Job, files: JobFiles, journals: list[ShardJournal]) -> list[dict[str, Any]]:
    """The shards' outputs, in order, as the output file, never overwriting another's file. CSV shards that share
    their columns and JSON lines are joined where they are stored (a CSV's header kept from the first shard);
    Parquet, and CSV whose columns differ between shards, are rewritten a shard at a time. Returns the columns
    whose types were unified (Parquet: see parquet_types)."""
    assert job.output_uri is not None
    output_uri, blobs = job.output_uri, backend.blobs
    part_format = job.settings.part_format
    outputs = [j for j in journals if j.output_size]
    unified: list[dict[str, Any]] = []
    if part_format == "parquet" or (part_format == "csv" and len({tuple(j.columns) for j in outputs}) > 1):
        parts = [(files.shard_output(j.shard), j.columns) for j in outputs]
        merge = merging.merged(part_format, blobs.get_bytes, parts)
        unified = merge.unified

        def write() -> int:
            return blobs.write_stream(output_uri, merge, if_absent=True)

        def expected() -> Iterable[bytes]:
            return merging.merged(part_format, blobs.get_bytes, parts)
    else:
        pieces = [
            BlobRange(files.shard_output(j.shard), j.header_size if number else 0, j.output_size)
            for number, j in enumerate(outputs)
        ]

        def write() -> int:
            return blobs.compose(output_uri, pieces, if_absent=True)

        def expected() -> Iterable[bytes]:
            return (blobs.read_range(p.uri, p.start, p.end) for p in pieces)

    try:
        size = write()
    except AlreadyExistsError:
        # A finalize that crashed after writing the output is being run again: the same file is ours.
        if not _is_ours(blobs, job.output_uri, files.output_marker, expected):
            raise ConflictError(
                f"{job.output_uri} was written by someone else while the job ran", field="output"
            ) from None
        return unified
    blobs.put_bytes(files.output_marker, json.dumps({"output": job.output_uri, "size": size}).encode())
    return unified


def _is_ours(blobs: BlobStore, uri: str, marker: str, expected: Callable[[], Iterable[bytes]]) -> bool:
    """Whether the output file there is the one this job wrote: the marker written right after it says so (and
    its size still matches); without a marker (a crash between the two), its bytes are compared."""
    size = next((info.size for info in blobs.list_files(uri)), None)
    if blobs.exists(marker):
        written = json.loads(blobs.get_bytes(marker))
        if written == {"output": uri, "size": size}:
            return True
    mine, theirs = hashlib.sha256(), hashlib.sha256(blobs.get_bytes(uri))
    for chunk in expected():
        mine.update(chunk)
    return mine.digest() == theirs.digest()
