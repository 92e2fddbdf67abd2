"""The runner's prefetcher against S3 (moto in this process): order, failures, retries, the byte budget, closing.

A wrapper around the real S3 store watches what the prefetcher does: which GETs start, and how many fetched
bytes lie on local disk at each moment (counted on disk, not by the prefetcher's own books)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto.core.botocore_stubber import MockRawResponse

from batch_container.prefetch import FetchedMiniBatch, Prefetcher
from batch_endpoints.adapters.aws.blobs import S3BlobStore
from batch_endpoints.fetch_sizing import FetchSizing
from batch_endpoints.jobfiles import JobFiles, MiniBatch, Shard
from tests.aws_fixtures import INPUT_BUCKET, aws_fixture, put_objects  # noqa: F401

SIZE = 1000
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class WatchedStore(S3BlobStore):
    """The S3 store, noting each GET of an input and the most fetched bytes on disk under `downloads` at once."""

    def __init__(self, downloads: Path) -> None:
        super().__init__(INPUT_BUCKET, "scratch")
        self.downloads = downloads
        self.started: list[str] = []
        self.most_on_disk = 0
        self.hold: dict[str, threading.Event] = {}
        """A GET of one of these URIs waits until its event is set."""
        self._lock = threading.Lock()

    def localize(self, uri: str, scratch_dir: str) -> str:
        with self._lock:
            self.started.append(uri)
        if uri in self.hold:
            assert self.hold[uri].wait(30), f"{uri} was held and never let go"
        path = super().localize(uri, scratch_dir)
        with self._lock:
            on_disk = sum(_size(p) for p in self.downloads.rglob("*"))
            self.most_on_disk = max(self.most_on_disk, on_disk)
        return path


def _size(path: Path) -> int:
    """A file's size; 0 for a folder, or for a copy discarded (by a worker) since the folder was listed."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0


@pytest.fixture
def inputs(aws: None) -> dict[str, bytes]:
    import boto3

    boto3.client("s3").create_bucket(Bucket=INPUT_BUCKET)
    objects = {f"in/f-{n:03d}.bin": bytes([n % 256]) * SIZE for n in range(40)}
    put_objects(INPUT_BUCKET, objects)
    return objects


def shard_of(names: list[str], per_mini_batch: int) -> Shard:
    batches = [names[n : n + per_mini_batch] for n in range(0, len(names), per_mini_batch)]
    return Shard("job-1", 0, f"s3://{INPUT_BUCKET}/in", [MiniBatch(i, b) for i, b in enumerate(batches)])


def prefetcher(store: WatchedStore, shard: Shard, *, depth: int = 4, threads: int = 8, budget: int = 10**9) -> Any:
    files = JobFiles(store, f"s3://{INPUT_BUCKET}/scratch/jobs/job-1")
    return Prefetcher(store, files, shard, str(store.downloads), sizing=FetchSizing(depth, threads, budget))


def take_all(prefetch: Prefetcher, *, keep: int = 0) -> Iterator[FetchedMiniBatch]:
    """Every mini-batch, as the runner's workers take them: up to `keep` being scored at once; the oldest is done
    (its copies discarded) when `keep` are held or when nothing new is ready."""
    held: list[FetchedMiniBatch] = []
    while not prefetch.exhausted or held:
        fetched = prefetch.take(timeout=0.05)
        if fetched is not None:
            yield fetched
            held.append(fetched)
        if held and (len(held) > keep or fetched is None):
            held.pop(0).discard_copies()


def test_mini_batches_come_in_order_whatever_order_their_gets_finish_in(
    inputs: dict[str, bytes], tmp_path: Path
) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)]
    store = WatchedStore(tmp_path / "downloads")
    first = f"s3://{INPUT_BUCKET}/in/{names[0]}"
    store.hold[first] = threading.Event()
    shard = shard_of(names, 4)
    with prefetcher(store, shard, depth=3) as prefetch:
        # The first mini-batch's first GET waits until a later mini-batch's files have been fetched.
        while not any(uri.endswith(names[8]) for uri in store.started):
            threading.Event().wait(0.01)
        store.hold[first].set()
        delivered = [
            (fetched.index, fetched.fetched_names, Path(fetched.paths[0]).read_bytes())
            for fetched in take_all(prefetch)
        ]
    assert [index for index, _, _ in delivered] == list(range(10))
    assert [name for _, batch, _ in delivered for name in batch] == names
    assert all(content == inputs[f"in/{batch[0]}"] for _, batch, content in delivered)
    assert not any(store.downloads.rglob("*.bin"))


def test_a_file_that_cannot_be_fetched_fails_alone_naming_it(inputs: dict[str, bytes], tmp_path: Path) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)][:6]
    store = WatchedStore(tmp_path / "downloads")
    store.client.delete_object(Bucket=INPUT_BUCKET, Key=f"in/{names[3]}")  # gone after planning
    with prefetcher(store, shard_of(names, 3)) as prefetch:
        delivered = list(take_all(prefetch))
    assert delivered[0].fetch_errors == {}
    assert list(delivered[1].fetch_errors) == [names[3]]
    assert "NotFoundError" in delivered[1].fetch_errors[names[3]]
    assert f"in/{names[3]} does not exist" in delivered[1].fetch_errors[names[3]]
    assert delivered[1].fetched_names == names[4:6]


def test_throttled_gets_are_retried_by_the_client(inputs: dict[str, bytes], tmp_path: Path) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)][:2]
    store = WatchedStore(tmp_path / "downloads")
    throttled: list[str] = []

    def slow_down_once(request: Any, **_: Any) -> AWSResponse | None:
        # S3 answers 503 SlowDown past its per-prefix request rate (5,500 GETs/s); each object's first GET gets it.
        if request.method != "GET" or "/in/" not in request.url or request.url in throttled:
            return None
        throttled.append(request.url)
        return AWSResponse(request.url, 503, HTTPHeaders(), MockRawResponse(SLOW_DOWN))

    store.client.meta.events.register_first("before-send.s3.GetObject", slow_down_once)
    with prefetcher(store, shard_of(names, 2)) as prefetch:
        delivered = list(take_all(prefetch))
    assert len(throttled) == 2
    assert [(fetched.fetched_names, fetched.fetch_errors) for fetched in delivered] == [(names, {})]


@pytest.mark.parametrize("budget", [2 * 2 * SIZE, 10**9])
def test_fetched_bytes_on_disk_stay_within_the_budget(inputs: dict[str, bytes], tmp_path: Path, budget: int) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)]
    store = WatchedStore(tmp_path / "downloads")
    with prefetcher(store, shard_of(names, 2), depth=8, budget=budget) as prefetch:
        indexes = [fetched.index for fetched in take_all(prefetch, keep=3)]
        assert prefetch.held_bytes == 0
    assert indexes == list(range(20))
    if budget < 10**9:
        assert store.most_on_disk <= budget
    else:
        # Without a budget the same workers let the prefetcher run further ahead: the check above can fail.
        assert store.most_on_disk > 2 * 2 * SIZE


def test_a_mini_batch_larger_than_the_budget_is_fetched_alone(inputs: dict[str, bytes], tmp_path: Path) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)][:12]
    store = WatchedStore(tmp_path / "downloads")
    with prefetcher(store, shard_of(names, 3), budget=SIZE) as prefetch:
        delivered = [fetched.fetched_names for fetched in take_all(prefetch)]
    assert delivered == [names[n : n + 3] for n in range(0, 12, 3)]
    assert store.most_on_disk == 3 * SIZE


def test_closing_stops_fetching(inputs: dict[str, bytes], tmp_path: Path) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)]
    store = WatchedStore(tmp_path / "downloads")
    prefetch = prefetcher(store, shard_of(names, 1), depth=2, threads=2)
    first = prefetch.take(timeout=30)
    assert first is not None and first.index == 0
    prefetch.close()  # what the runner does when the job is canceled
    started = len(store.started)
    # At most: the one taken, 2 fetched and queued, 2 being fetched and one each thread was starting.
    assert started <= 1 + 2 + 2 + 2 < len(names)
    assert prefetch.take() is None or prefetch.exhausted
    assert not os.path.exists(store.downloads)


def test_a_resumed_shard_skips_what_has_a_result_from_one_listing(inputs: dict[str, bytes], tmp_path: Path) -> None:
    names = [name.removeprefix("in/") for name in sorted(inputs)][:10]
    store = WatchedStore(tmp_path / "downloads")
    files = JobFiles(store, f"s3://{INPUT_BUCKET}/scratch/jobs/job-1")
    # This shard holds mini-batches 5 to 9; 4 and 10 are other shards' (their results must not count here).
    shard = Shard("job-1", 1, f"s3://{INPUT_BUCKET}/in", [MiniBatch(5 + n, names[2 * n : 2 * n + 2]) for n in range(5)])
    for index in (4, 6, 8, 10):
        store.put_bytes(files.result(index), b"{}")
    listings: list[dict[str, Any]] = []
    store.client.meta.events.register("before-call.s3.ListObjectsV2", lambda params, **_: listings.append(params))
    with prefetcher(store, shard) as prefetch:
        delivered = [fetched.index for fetched in take_all(prefetch)]
        assert prefetch.skipped == 2
    assert delivered == [5, 7, 9]
    assert len(listings) == 1
    assert sorted(uri.rpartition("/")[2] for uri in store.started) == names[:2] + names[4:6] + names[8:10]


@pytest.mark.parametrize(("variable", "connections"), [(None, 64 + 4), ("100", 100 + 4)])
def test_the_s3_client_keeps_a_connection_for_each_fetch_thread_and_writer(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    variable: str | None,
    connections: int,
) -> None:
    if variable is None:
        monkeypatch.delenv("BEP_FETCH_THREADS", raising=False)
    else:
        monkeypatch.setenv("BEP_FETCH_THREADS", variable)
    assert S3BlobStore(INPUT_BUCKET).client.meta.config.max_pool_connections == connections
