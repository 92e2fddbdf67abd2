"""The job workflow's own steps: plan, finalize, mark failed.

The local job host calls these in a process; the cloud's Step Functions calls them through thin Lambdas. Each
step is safe to run again: plan keeps the plan it made (so a resumed job's mini-batches keep their numbers, even if
the input folder changed meanwhile), finalize recounts from the mini-batch results and accepts an output file it
wrote itself on an earlier attempt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from batch_endpoints import merging, planning
from batch_endpoints.backend import Backend
from batch_endpoints.errors import AlreadyExistsError, ConflictError
from batch_endpoints.jobfiles import JobFiles, MiniBatchResult, Shard
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Job, JobCounts, JobStatus, OutputAction, now

NOT_SCORED = "not scored: the job stopped before this mini-batch ran"
SHARD_FAILURE = "shard_failure"
"""Record kind: why the first of a job's shards that failed did, {"shard": n, "reason": text}, keyed by job id.
Written by the orchestrator (the cloud's state machine, straight to the record table); counter shards_failed."""
MAX_SHARD_REASON = 500


@dataclass(frozen=True)
class Plan:
    shard_index_uri: str
    shard_uris: list[str]


def plan_job(backend: Backend, job_id: str) -> Plan:
    repo = Repository(backend.records)
    job = repo.get_job(job_id)
    files = JobFiles(backend.blobs, job.scratch_uri)
    if job.counts.shards:
        # Planned already (the counts are written last): a resumed or retried workflow keeps that plan, because
        # part and result files are numbered by it.
        return Plan(files.shard_index, [files.shard(n) for n in range(job.counts.shards)])
    listing = _listing(backend, job, files)
    planned = planning.plan_input(backend.blobs, job.id, listing, job.settings)
    shards = planned.shards
    shard_uris = []
    for shard in shards:
        uri = files.shard(shard.index)
        backend.blobs.put_bytes(uri, shard.to_json())
        shard_uris.append(uri)
    backend.blobs.put_bytes(files.shard_index, json.dumps([{"shard": u} for u in shard_uris]).encode())
    counts = JobCounts(
        unit=planned.unit,
        files=planned.inputs,
        mini_batches=sum(len(s.mini_batches) for s in shards),
        shards=len(shards),
    )

    def start(current: Job) -> Job:
        status = JobStatus.RUNNING if current.status == JobStatus.QUEUED else current.status
        return current.model_copy(update={"counts": counts, "status": status, "started_at": now()})

    repo.update_job(job_id, start)
    return Plan(files.shard_index, shard_uris)


def _listing(backend: Backend, job: Job, files: JobFiles) -> planning.InputListing:
    """The files to score: the ones the job was given (a rerun of failed files), or else its whole input."""
    if backend.blobs.exists(files.input_listing):
        chosen = json.loads(backend.blobs.get_bytes(files.input_listing))
        return planning.InputListing(chosen["root"], chosen["files"])
    return planning.list_input(backend.blobs, job.input)


def unscored_files(backend: Backend, job: Job) -> planning.InputListing:
    """The files of an ended job that have no row: failed, or never scored (relative to the input's root)."""
    files = JobFiles(backend.blobs, job.scratch_uri)
    if not job.counts.shards:
        return _listing(backend, job, files)  # never planned: nothing was scored
    results = _read_results(backend, job, files)
    root = _load_shard(backend, files, 0).input_root
    return planning.InputListing(root, [name for name, _, _ in _failures(backend, job, files, results)])


def finalize_job(backend: Backend, job_id: str) -> Job:
    """Count the outcome from the mini-batch results, merge the output, and set the job's final status."""
    repo = Repository(backend.records)
    job = repo.get_job(job_id)
    if job.status.is_final:
        return job
    files = JobFiles(backend.blobs, job.scratch_uri, part_format=job.settings.part_format)
    results = _read_results(backend, job, files)
    counts = job.counts.model_copy(
        update={
            "files_succeeded": sum(r.succeeded for r in results.values()),
            "files_failed": job.counts.files - sum(r.succeeded for r in results.values()),
            "mini_batches_failed": sum(1 for r in results.values() if r.succeeded == 0 and r.failed),
            "rows": sum(r.rows for r in results.values()),
        }
    )
    missing = job.counts.mini_batches - len(results)
    error_count = _write_errors(backend, job, files, results)
    threshold = job.settings.error_threshold
    if job.status == JobStatus.CANCEL_REQUESTED:
        status, error = JobStatus.CANCELED, None
    elif threshold >= 0 and counts.files_failed > threshold:
        status = JobStatus.FAILED
        error = (
            f"error_threshold exceeded: {counts.files_failed} {counts.unit} failed, {threshold} allowed "
            f"(see {files.errors})"
        )
    elif missing:
        status = JobStatus.FAILED
        error = f"{missing} mini-batches never completed{first_shard_failure(backend, job)} (see {files.errors})"
    elif counts.files and not counts.files_succeeded:
        # Even with any number of failures allowed, a job that scored nothing (init() failing everywhere, say)
        # has produced no result: it failed, as Azure reports it.
        first = next((f.error for r in results.values() for f in r.failed), "")
        status, error = JobStatus.FAILED, f"no file was scored; the first error: {first} (see {files.errors})"
    else:
        status, error = JobStatus.COMPLETED, None
    if status == JobStatus.COMPLETED and job.settings.output_action == OutputAction.APPEND_ROW:
        repo.update_job(job_id, lambda j: j.model_copy(update={"status": JobStatus.FINALIZING}))
        _merge_output(backend, job, files, results)
    summary = {
        "job": job.id,
        "status": status.value,
        "error": error,
        "counts": counts.model_dump(),
        "output": job.output_uri if status == JobStatus.COMPLETED else None,
        "errors_file": files.errors if error_count else None,
    }
    backend.blobs.put_bytes(files.summary, json.dumps(summary, indent=2).encode())

    def end(current: Job) -> Job:
        return current.model_copy(update={"status": status, "error": error, "counts": counts, "ended_at": now()})

    return repo.update_job(job_id, end)


def first_shard_failure(backend: Backend, job: Job) -> str:
    """ "; shard 3 failed: <why>" for the first of the job's shards that failed, "" when none is recorded: one
    read, whatever the number of shards."""
    record = backend.records.get(SHARD_FAILURE, job.id)
    if record is None:
        return ""
    reason = str(record.data.get("reason", "no reason given"))
    if len(reason) > MAX_SHARD_REASON:
        reason = reason[: MAX_SHARD_REASON - 3] + "..."
    failed = record.counters.get("shards_failed", 1)
    shard = record.data.get("shard")
    return (
        f"; {failed} shards failed, the first (shard {shard}): {reason}"
        if failed > 1
        else f"; shard {shard} failed: {reason}"
    )


def forget_shard_failures(backend: Backend, job_id: str) -> None:
    """A resumed job starts with no shard failure recorded: its new execution's are the ones to report."""
    backend.records.delete(SHARD_FAILURE, job_id)


def mark_failed(backend: Backend, job_id: str, error: str) -> Job:
    def fail(current: Job) -> Job:
        if current.status.is_final:
            return current
        status = JobStatus.CANCELED if current.status == JobStatus.CANCEL_REQUESTED else JobStatus.FAILED
        return current.model_copy(update={"status": status, "error": error, "ended_at": now()})

    return Repository(backend.records).update_job(job_id, fail)


def _read_results(backend: Backend, job: Job, files: JobFiles) -> dict[int, MiniBatchResult]:
    results = {}
    for index in range(job.counts.mini_batches):
        uri = files.result(index)
        if backend.blobs.exists(uri):
            results[index] = MiniBatchResult.from_json(backend.blobs.get_bytes(uri))
    return results


def _failures(
    backend: Backend, job: Job, files: JobFiles, results: dict[int, MiniBatchResult]
) -> Iterator[tuple[str, int, str]]:
    """(file, mini-batch, error) of every failed or unscored file, in mini-batch order."""
    for shard_number in range(job.counts.shards):
        shard = _load_shard(backend, files, shard_number)
        for mini_batch in shard.mini_batches:
            result = results.get(mini_batch.index)
            if result:
                yield from ((f.file, mini_batch.index, f.error) for f in result.failed)
            else:
                yield from ((name, mini_batch.index, NOT_SCORED) for name in mini_batch.files)


def _write_errors(backend: Backend, job: Job, files: JobFiles, results: dict[int, MiniBatchResult]) -> int:
    """One line per failed or unscored file, in mini-batch order, so every input is accounted for."""
    lines = [
        json.dumps({"file": name, "mini_batch": index, "error": error})
        for name, index, error in _failures(backend, job, files, results)
    ]
    if lines:
        backend.blobs.put_bytes(files.errors, ("\n".join(lines) + "\n").encode())
    return len(lines)


def _load_shard(backend: Backend, files: JobFiles, number: int) -> Shard:
    return Shard.from_json(backend.blobs.get_bytes(files.shard(number)))


def _merge_output(backend: Backend, job: Job, files: JobFiles, results: dict[int, MiniBatchResult]) -> None:
    """Concatenate the parts in mini-batch order into the output file, never overwriting another's file."""
    assert job.output_uri is not None
    scored = [(files.part(i), r.columns) for i, r in sorted(results.items()) if r.rows]
    try:
        backend.blobs.write_stream(job.output_uri, _merged(backend, job, scored), if_absent=True)
    except AlreadyExistsError:
        # A finalize that crashed after writing the output is being run again: the same file is ours.
        mine, theirs = hashlib.sha256(), hashlib.sha256(backend.blobs.get_bytes(job.output_uri))
        for chunk in _merged(backend, job, scored):
            mine.update(chunk)
        if mine.digest() != theirs.digest():
            raise ConflictError(
                f"{job.output_uri} was written by someone else while the job ran", field="output"
            ) from None


def _merged(backend: Backend, job: Job, parts: list[merging.Part]) -> Iterator[bytes]:
    return merging.merged(job.settings.part_format, backend.blobs.get_bytes, parts)
