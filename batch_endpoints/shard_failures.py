"""A job's shard failures as the orchestrator records them: the first one's reason and how many failed, in one record
of the job's, read by finalize and cleared when the job (or a pipeline's parallel step) resumes. Kept apart from
the workflow so a resumed pipeline step reaches it without importing planning and merging (the job host imports
those only after it started its first instance)."""

from __future__ import annotations

from batch_endpoints.backend import Backend
from batch_endpoints.ports import RecordStore
from batch_endpoints.specs import Job

SHARD_FAILURE = "shard_failure"
"""Record kind: why the first of a job's shards that failed did, {"shard": n, "reason": text}, keyed by job id.
Written by the orchestrator (the cloud's state machine, straight to the record table); counter shards_failed."""
MAX_SHARD_REASON = 500


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


def forget_shard_failures(records: RecordStore, job_id: str) -> None:
    """A resumed job (or a resumed pipeline's reopened parallel step) starts with no shard failure recorded: its new
    execution's are the ones to report."""
    records.delete(SHARD_FAILURE, job_id)
