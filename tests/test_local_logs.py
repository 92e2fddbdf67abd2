"""Reading a local job's logs a page at a time."""

from __future__ import annotations

from pathlib import Path

from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.adapters.local.logs import LocalJobLogReader
from batch_endpoints.specs import Job


def job_with_logs(tmp_path: Path, files: dict[str, list[str]]) -> Job:
    scratch = tmp_path / "jobs" / "j1"
    (scratch / "logs").mkdir(parents=True)
    for name, lines in files.items():
        (scratch / "logs" / name).write_text("".join(f"{line}\n" for line in lines))
    return Job.model_construct(id="j1", scratch_uri=str(scratch))


def test_pages_cover_every_line_once_in_file_then_line_order(tmp_path):
    job = job_with_logs(tmp_path, {"0-worker-1.log": ["a1", "a2", "a3"], "0-worker-0.log": ["b1", "b2"]})
    reader = LocalJobLogReader(FolderBlobStore(str(tmp_path)))
    seen, token = [], None
    while True:
        page = reader.read(job, next_token=token, limit=2)
        assert len(page.lines) <= 2
        seen += [(line.source, line.message) for line in page.lines]
        token = page.next_token
        if token is None:
            break
    assert seen == [
        ("0-worker-0", "b1"),
        ("0-worker-0", "b2"),
        ("0-worker-1", "a1"),
        ("0-worker-1", "a2"),
        ("0-worker-1", "a3"),
    ]


def test_a_job_without_logs_reads_as_empty(tmp_path):
    job = Job.model_construct(id="j2", scratch_uri=str(tmp_path / "jobs" / "j2"))
    page = LocalJobLogReader(FolderBlobStore(str(tmp_path))).read(job)
    assert page.lines == [] and page.next_token is None
