"""Write finished mini-batches out: part file and the script's own files, then result marker, then the job's
progress counters.

Threads of the runner process do this, so workers go on scoring while storage is written (an S3 PUT takes
tens of milliseconds). Workers render the CSV bytes themselves, in parallel; these threads only move bytes.

Counters are added in batches, at most every COUNTER_FLUSH_S and whenever the writer is drained: one record
update per mini-batch was the runner's largest cost per mini-batch locally (a SQLite transaction) and a
DynamoDB write each in the cloud. Nothing depends on them being exact at every instant: the error threshold
counts the uncounted files too (see StopConditions), and finalize sums the shards' journals.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from batch_container import custom_outputs
from batch_endpoints.jobfiles import JobFiles, MiniBatchResult
from batch_endpoints.ports import RecordStore

log = logging.getLogger(__name__)

# Each mini-batch costs three sequential storage calls (part, result, counters): ~60 ms against S3 and
# DynamoDB. A few threads keep that off the critical path even when mini-batches take only tens of ms to score.
WRITER_THREADS = 4
# Progress shows about five times a second; a cancel or another instance's failures are read once a second.
COUNTER_FLUSH_S = 0.2


@dataclass(frozen=True)
class FinishedMiniBatch:
    result: MiniBatchResult
    csv: bytes | None
    """The part file's bytes; None when there is no part (summary_only, or no rows)."""
    custom_outputs: str | None = None
    """The staged folder of files run() wrote to AZUREML_BI_OUTPUT_PATH (see custom_outputs.py); None = none."""


class PartWriter:
    """Writes finished mini-batches in background threads, at most `depth` waiting (bounded memory).

    Order matters: the part and the script's own files first, the result last. The result marks the mini-batch
    done, so a runner killed in between leaves no result and the mini-batch runs again, overwriting the same part
    (and the same files, for a script that names them after its inputs).
    """

    def __init__(
        self,
        records: RecordStore,
        files: JobFiles,
        job_id: str,
        *,
        append_rows: bool,
        output_folder: str | None = None,
        depth: int,
        on_counted: Callable[[int, dict[str, int]], None],
    ) -> None:
        """`on_counted(failed_files, counters)` is called after each counter update: `failed_files` were just
        added to the job's files_failed, whose counters now read `counters`."""
        self._records = records
        self._files = files
        self._job_id = job_id
        self._append_rows = append_rows
        self._output_folder = output_folder
        self._on_counted = on_counted
        self._queue: queue.Queue[FinishedMiniBatch | None] = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self._uncounted: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._next_flush = time.monotonic() + COUNTER_FLUSH_S
        self._threads = [
            threading.Thread(target=self._write_all, name=f"part-writer-{n}", daemon=True)
            for n in range(WRITER_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, finished: FinishedMiniBatch, *, waiting: Callable[[], None] | None = None) -> None:
        """Queue a finished mini-batch; blocks while the queue is full, calling `waiting` now and then."""
        while True:
            self.raise_if_failed()
            try:
                self._queue.put(finished, timeout=0.2)
                return
            except queue.Full:
                if waiting is not None:
                    waiting()

    def drain(self) -> None:
        """Wait until everything submitted is written and counted; raise what went wrong if writing failed."""
        self._queue.join()
        self.raise_if_failed()
        self._flush_counters()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"could not write the job's outputs: {self.error}") from self.error

    def close(self) -> None:
        """Finish writing what was submitted, then end the threads. Safe to call twice."""
        live = [thread for thread in self._threads if thread.is_alive()]
        for _ in live:
            self._queue.put(None)
        for thread in live:
            thread.join()
        if self.error is None:
            self._flush_counters()

    def _write_all(self) -> None:
        while True:
            finished = self._queue.get()
            try:
                if finished is None:
                    return
                if self.error is None:
                    self._write(finished)
            except BaseException as exc:
                log.exception("writing mini-batch %d failed", finished.result.index if finished else -1)
                self.error = exc
            finally:
                self._queue.task_done()

    def _write(self, finished: FinishedMiniBatch) -> None:
        result = finished.result
        blobs = self._files.blobs
        part = self._files.part(result.index)
        if finished.csv is not None:
            blobs.put_bytes(part, finished.csv)
        elif self._append_rows and blobs.exists(part):
            # Left by an earlier run that stopped before its result: parts exist exactly for results with rows.
            blobs.delete_prefix(part)
        if finished.custom_outputs is not None and self._output_folder is not None:
            custom_outputs.commit(blobs, finished.custom_outputs, self._output_folder)
        blobs.put_bytes(self._files.result(result.index), result.to_json())
        failed = result.failed_count
        with self._counter_lock:
            self._uncounted.update(
                mini_batches_done=1,
                mini_batches_failed=1 if result.files and failed == result.files else 0,
                files_succeeded=result.succeeded,
                files_failed=failed,
            )
        if time.monotonic() >= self._next_flush:
            self._flush_counters()

    def _flush_counters(self) -> None:
        with self._counter_lock:
            deltas, self._uncounted = self._uncounted, Counter()
            self._next_flush = time.monotonic() + COUNTER_FLUSH_S
        if not deltas:
            return
        # Every name is always sent, zeros included, so the record shows all four from the first update.
        counters = self._records.add_counters("job", self._job_id, dict(deltas))
        self._on_counted(deltas["files_failed"], counters)
