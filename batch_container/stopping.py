"""When a runner stops early: the job's error threshold is exceeded, or the job is being canceled or failed."""

from __future__ import annotations

import threading
import time

from batch_endpoints.jobfiles import MiniBatchResult
from batch_endpoints.ports import RecordStore
from batch_endpoints.specs import JobStatus

STOPPING_STATUSES = {JobStatus.CANCEL_REQUESTED, JobStatus.CANCELED, JobStatus.FAILED}
# The job record is read at most this often: one read per second per instance is cheap on DynamoDB, and a
# cancel a second late costs nothing.
RECORD_POLL_S = 1.0


class StopConditions:
    """Answers "should this runner stop starting mini-batches?" (and why), cheaply enough to ask often.

    Failed files are counted in the job's counters by the part writer, up to a few tenths of a second after a
    mini-batch ends.
    The files handed to the writer and not yet counted are added, so that error_threshold 0 stops right
    after the first bad mini-batch, not one or two later.
    """

    def __init__(self, records: RecordStore, job_id: str, error_threshold: int) -> None:
        self._records = records
        self._job_id = job_id
        self._threshold = error_threshold
        self._lock = threading.Lock()
        self._counted_failed = 0  # the job's files_failed counter, as the part writer last saw it
        self._uncounted_failed = 0  # failed files of this runner not yet in _counted_failed
        self._recorded_failed = 0  # the counter as last read from the record (includes other instances)
        self._status_stop: str | None = None
        self._next_read = 0.0

    def finishing(self, result: MiniBatchResult) -> None:
        """A mini-batch is about to be handed to the part writer."""
        with self._lock:
            self._uncounted_failed += result.failed_count

    def counted(self, failed_files: int, counters: dict[str, int]) -> None:
        """The part writer added `failed_files` to the job's counters, which now read `counters`."""
        with self._lock:
            self._uncounted_failed -= failed_files
            self._counted_failed = max(self._counted_failed, counters.get("files_failed", 0))

    def reason(self) -> str | None:
        """Why to stop, or None to go on."""
        if self._status_stop is None and time.monotonic() >= self._next_read:
            self._read_record()
        if self._status_stop is not None:
            return self._status_stop
        if self._threshold >= 0:
            with self._lock:
                # Not summed: the record may already hold some of the uncounted files.
                failed = max(self._recorded_failed, self._counted_failed + self._uncounted_failed)
            if failed > self._threshold:
                return (
                    f"error_threshold exceeded: {failed} failed, {self._threshold} allowed; the mini-batches not "
                    "started are left not scored"
                )
        return None

    @property
    def job_stopping(self) -> bool:
        """The job itself is ending (canceled or failed): work in flight is moot."""
        return self._status_stop is not None

    def _read_record(self) -> None:
        record = self._records.get("job", self._job_id)
        self._next_read = time.monotonic() + RECORD_POLL_S
        if record is None:
            self._status_stop = "the job record is gone"
            return
        status = record.data.get("status")
        if status in STOPPING_STATUSES:
            self._status_stop = f"the job is {status}"
            return
        # Other instances' failures count towards the same threshold.
        self._recorded_failed = record.counters.get("files_failed", 0)
