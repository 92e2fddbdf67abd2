"""Fetch a shard's input files a few mini-batches ahead of the workers, so run() never waits on storage.

On S3 `localize` downloads, which is where the pipeline's time goes if nothing overlaps it: a small thread pool
fetches the files of up to `ahead` mini-batches at once, and a bounded queue holds at most `ahead` fetched ones,
so memory and disk stay bounded whatever the shard's size. A tabular mini-batch fetches only its rows of each
file, with ranged reads (slice_copies), never the whole file. Locally `localize` hands back the file itself, and
the pool is skipped: handing each path to a thread cost more runner time than scoring a small mini-batch saved.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import shutil
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from batch_container.slice_copies import copy_slice
from batch_endpoints.jobfiles import JobFiles, MiniBatch, Shard
from batch_endpoints.ports import BlobStore
from batch_endpoints.tabular import file_format_or_fail

# Storage reads are I/O bound: threads beyond the cores keep more requests in flight (S3 GETs take ~20 ms).
FETCH_THREADS = 8


@dataclass
class FetchedMiniBatch:
    index: int
    names: list[str]
    """Every input of the mini-batch as users know it: relative to the input folder."""
    paths: list[str] = field(default_factory=list)
    """Local paths of the inputs that could be fetched, for run()."""
    fetched_names: list[str] = field(default_factory=list)
    """The names of `paths`, in the same order."""
    fetch_errors: dict[str, str] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)
    """Downloaded copies, deleted once the mini-batch is done (never an original input)."""

    def discard_copies(self) -> None:
        for path in self.copies:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.copies.clear()


_END = object()


class Prefetcher:
    """Yields the shard's unfinished mini-batches, in order, with their files local. Skips those that
    already have a result (a retried shard resumes where it stopped)."""

    def __init__(
        self,
        blobs: BlobStore,
        files: JobFiles,
        shard: Shard,
        download_dir: str,
        *,
        ahead: int,
        input_format: str = "auto",
    ) -> None:
        self._blobs = blobs
        self._input_format = input_format
        self._files = files
        self._shard = shard
        self._download_dir = download_dir
        self._ahead = max(1, ahead)
        self._ready: queue.Queue[object] = queue.Queue(maxsize=self._ahead)
        self._closing = threading.Event()
        self._pool = None if blobs.reads_in_place else ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="fetch")
        self._finished = False
        self.skipped = 0
        self.error: BaseException | None = None
        os.makedirs(download_dir, exist_ok=True)
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
        self._thread.start()

    def take(self, timeout: float = 0.0) -> FetchedMiniBatch | None:
        """The next fetched mini-batch, or None if none is ready within `timeout` s (see `exhausted`)."""
        if self._finished:
            return None
        try:
            item = self._ready.get(timeout=timeout) if timeout > 0 else self._ready.get_nowait()
        except queue.Empty:
            return None
        if item is _END:
            self._finished = True
            if self.error is not None:
                raise self.error
            return None
        assert isinstance(item, FetchedMiniBatch)
        return item

    @property
    def exhausted(self) -> bool:
        return self._finished

    def close(self) -> None:
        self._closing.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._thread.join()
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, FetchedMiniBatch):
                item.discard_copies()
        shutil.rmtree(self._download_dir, ignore_errors=True)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _produce(self) -> None:
        window: deque[tuple[MiniBatch, list[Callable[[], str]]]] = deque()
        pending = iter(self._shard.mini_batches)
        try:
            while not self._closing.is_set():
                while len(window) < self._ahead:
                    mini_batch = next(pending, None)
                    if mini_batch is None:
                        break
                    if self._blobs.exists(self._files.result(mini_batch.index)):
                        self.skipped += 1
                        continue
                    window.append((mini_batch, self._start_fetches(mini_batch)))
                if not window:
                    break
                mini_batch, futures = window.popleft()
                self._put(self._collect(mini_batch, futures))
        except BaseException as exc:  # surfaced to the runner by take()
            self.error = exc
        finally:
            self._put(_END, always=True)

    def _start_fetches(self, mini_batch: MiniBatch) -> list[Callable[[], str]]:
        """Start fetching each file of the mini-batch (or not, when there is nothing to fetch); each result gives
        the file's local path: the file itself, a download, or a copy of just the mini-batch's rows of it."""
        slices = {piece.file: piece for piece in mini_batch.slices}
        fetches: list[Callable[[], str]] = []
        for number, rel in enumerate(mini_batch.files):
            uri = self._blobs.join(self._shard.input_root, rel)
            if self._pool is None:
                fetches.append(functools.partial(self._blobs.localize, uri, self._download_dir))
            elif rel in slices:
                copy = os.path.join(self._download_dir, f"mb-{mini_batch.index:08d}-{number}{os.path.splitext(rel)[1]}")
                file_format = file_format_or_fail(rel, self._input_format)
                fetches.append(self._pool.submit(copy_slice, self._blobs, uri, slices[rel], file_format, copy).result)
            else:
                fetches.append(self._pool.submit(self._blobs.localize, uri, self._download_dir).result)
        return fetches

    def _collect(self, mini_batch: MiniBatch, fetches: list[Callable[[], str]]) -> FetchedMiniBatch:
        names = [self.name_in(self._shard, rel) for rel in mini_batch.files]
        fetched = FetchedMiniBatch(mini_batch.index, names)
        for rel, name, fetch in zip(mini_batch.files, names, fetches, strict=True):
            try:
                path = fetch()
            except Exception as exc:
                fetched.fetch_errors[name] = f"could not read the input file: {type(exc).__name__}: {exc}"
                continue
            fetched.paths.append(path)
            fetched.fetched_names.append(name)
            if self._is_copy(path, self._blobs.join(self._shard.input_root, rel)):
                fetched.copies.append(path)
        return fetched

    @staticmethod
    def name_in(shard: Shard, rel: str) -> str:
        """How results name an input: its path relative to the input folder. A single-file input has the
        relative path "", and is called by its file name instead."""
        return rel or os.path.basename(shard.input_root.rstrip("/"))

    def _is_copy(self, path: str, uri: str) -> bool:
        # Only ever delete what we downloaded: inside our download folder and not the stored object itself.
        inside = os.path.commonpath([os.path.abspath(path), os.path.abspath(self._download_dir)])
        return path != uri and inside == os.path.abspath(self._download_dir)

    def _put(self, item: object, *, always: bool = False) -> None:
        # Blocking put = back-pressure; wake up now and then to notice close().
        while always or not self._closing.is_set():
            try:
                self._ready.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._closing.is_set() and always:
                    return
