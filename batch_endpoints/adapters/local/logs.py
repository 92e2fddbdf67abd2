"""Job logs from the per-worker log files that local runner instances write into the job's scratch folder."""

from __future__ import annotations

import os

from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.ports import BlobStore, LogLine, LogPage
from batch_endpoints.specs import Job


class LocalJobLogReader:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def read(self, job: Job, *, step: str | None = None, next_token: str | None = None, limit: int = 1000) -> LogPage:
        """Lines of every log file, file by file in name order (of a pipeline job's `step`, its log file alone);
        the token is the index of the next line."""
        folder = to_path(JobFiles(self.blobs, job.scratch_uri).logs)
        start = int(next_token or 0)
        lines: list[LogLine] = []
        position = 0
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        if step is not None:
            log_uri = job.pipeline.step(step).log_uri if job.pipeline is not None else ""
            names = [name for name in names if log_uri and name == os.path.basename(to_path(log_uri))]
        for name in names:
            path = os.path.join(folder, name)
            stamp = int(os.path.getmtime(path) * 1000)
            with open(path, encoding="utf-8", errors="replace") as log:
                for text in log:
                    if position >= start:
                        if len(lines) == limit:
                            return LogPage(lines, str(position))
                        lines.append(LogLine(stamp, name.removesuffix(".log"), text.rstrip("\n")))
                    position += 1
        return LogPage(lines, None)
