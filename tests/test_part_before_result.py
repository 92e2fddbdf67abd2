"""A mini-batch's part is written before its result, which marks it done: storage that fails between the two
leaves no result, and a resume scores that mini-batch again, so every row is in the output once.

Written the other way round, the same failure would leave a result without its part: the resume would skip the
mini-batch and its rows would be lost. The store below fails on whichever of the two writes comes second, so
this test fails if the order is swapped.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from batch_container.runner import ShardRunner
from batch_endpoints import workflow
from batch_endpoints.adapters.local.backend import open_local_backend
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.jobfiles import JobFiles
from batch_endpoints.specs import JobStatus, RetrySettings, RunSettings
from tests.core_fixtures import record_runner_job, write_tree

pytestmark = pytest.mark.slow

CRASHED = 1
"""The mini-batch whose writes the storage fails between."""


class StorageFailure(Exception):
    """The storage went away (or the runner's instance died) between a mini-batch's two writes."""


class FailingBetweenTwoWrites(FolderBlobStore):
    """Writes as a folder does, but refuses the second of the two files of one mini-batch, its part and its
    result, whichever order they come in."""

    def __init__(self, root: str, first_of_two: set[str]) -> None:
        super().__init__(root)
        self.pair = first_of_two
        self.written: list[str] = []

    def put_bytes(self, uri: str, data: bytes, *, if_absent: bool = False) -> None:
        if uri in self.pair:
            if self.written:
                raise StorageFailure(f"storage failed before writing {uri}, after {self.written[0]}")
            self.written.append(uri)
        super().put_bytes(uri, data, if_absent=if_absent)


def scored(marks: Path) -> Counter[str]:
    return Counter(marks.read_text().splitlines()) if marks.exists() else Counter()


def test_storage_failing_between_part_and_result_leaves_no_result_and_a_resume_scores_each_row_once(
    tmp_path: Path,
) -> None:
    marks = tmp_path / "scored.log"
    script = f"""\
import os


def run(mini_batch):
    names = [os.path.basename(path) for path in mini_batch]
    with open({str(marks)!r}, "a") as log:
        log.write("".join(name + "\\n" for name in names))
    return [{{"file": path, "length": len(name)}} for path, name in zip(mini_batch, names)]
"""
    names = [f"{n}.txt" for n in range(6)]
    inputs = write_tree(tmp_path / "in", dict.fromkeys(names, "x"))
    backend = open_local_backend(str(tmp_path / "home"))
    settings = RunSettings(mini_batch_size=2, retry_settings=RetrySettings(max_retries=0, timeout=60))
    job = record_runner_job(backend, script, inputs, settings)
    plan = workflow.plan_job(backend, job.id)
    files = JobFiles(backend.blobs, job.scratch_uri)
    failing = FailingBetweenTwoWrites(backend.blobs.root, {files.part(CRASHED), files.result(CRASHED)})

    with (
        pytest.raises(RuntimeError, match="could not write the job's outputs"),
        ShardRunner(backend.records, failing, job.id) as runner,
    ):
        for uri in plan.shard_uris:
            runner.run_shard(runner.load_shard(uri))

    assert failing.written, "the storage never saw the mini-batch's first write"
    assert not backend.blobs.exists(files.result(CRASHED))
    done_before = {name for index, name in enumerate(names) if backend.blobs.exists(files.result(index // 2))}
    first_run = scored(marks)

    # Resumed on working storage: the same runner code, every shard again, then finalize.
    with ShardRunner(backend.records, backend.blobs, job.id) as runner:
        for uri in plan.shard_uris:
            runner.run_shard(runner.load_shard(uri))
    finished = workflow.finalize_job(backend, job.id)

    assert finished.status == JobStatus.COMPLETED, finished.error
    output = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert sorted(output["file"]) == names
    again = scored(marks) - first_run
    assert not done_before & set(again), "a mini-batch with a result was scored again"
    assert again[f"{2 * CRASHED}.txt"] == 1, "the mini-batch without a result was not scored again"
