"""Fetch a shard's input files a few mini-batches ahead of the workers, so run() never waits on storage.

On S3 `localize` downloads, which is where the pipeline's time goes if nothing overlaps it: a thread pool
fetches the files of up to `depth` mini-batches at once, and a bounded queue holds at most `depth` fetched ones.
Fetched files are streamed to local disk; the bytes fetched and not yet scored stay within a byte budget (a new
mini-batch waits while it would pass it), so memory and disk stay bounded whatever the shard's size. How deep,
how many threads and how many bytes follow the instance (fetch_sizing.py). Mini-batches come out in the shard's
order whatever order their GETs finish in; a file that cannot be fetched (after the S3 client's own retries of
throttling and 5xx) fails alone, named, and the rest of its mini-batch is scored. A tabular mini-batch fetches
only its rows of each file, with ranged reads (slice_copies), never the whole file. Locally `localize` hands back
the file itself, and the pool is skipped: handing each path to a thread cost more runner time than scoring a small
mini-batch saved.
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from batch_container.slice_copies import copy_slice
from batch_endpoints.fetch_sizing import FetchSizing
from batch_endpoints.jobfiles import JobFiles, MiniBatch, Shard
from batch_endpoints.ports import BlobStore
from batch_endpoints.tabular import file_format_or_fail

# How often a producer waiting for the workers (a full queue, a spent byte budget) looks whether it was closed.
CLOSE_POLL_S = 0.2


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
    copied_bytes: int = 0
    """What `copies` hold, counted against the prefetcher's byte budget until discarded."""
    on_discard: Callable[[int], None] | None = None

    def discard_copies(self) -> None:
        for path in self.copies:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.copies.clear()
        if self.on_discard is not None and self.copied_bytes:
            self.on_discard(self.copied_bytes)
        self.copied_bytes = 0


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
        sizing: FetchSizing,
        input_format: str = "auto",
    ) -> None:
        self._blobs = blobs
        self._input_format = input_format
        self._files = files
        self._shard = shard
        self._download_dir = download_dir
        self._ahead = max(1, sizing.depth)
        self._budget = sizing.byte_budget
        self._ready: queue.Queue[object] = queue.Queue(maxsize=self._ahead)
        self._closing = threading.Event()
        self._pool = (
            None if blobs.reads_in_place else ThreadPoolExecutor(max(1, sizing.threads), thread_name_prefix="fetch")
        )
        self._changed = threading.Condition()
        """Notified when a fetch ends or copies are discarded; guards the three counts below."""
        self._held = 0
        """Bytes of fetched copies not yet discarded (fetched ahead, waiting for a worker, or being scored)."""
        self._unfinished = 0
        """Fetches started and not yet ended."""
        self._largest_file: int | None = None
        """The largest copy fetched so far: what each unfinished fetch is expected to add."""
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
        if self._pool is not None:
            # Fetches already running are waited for (one GET each): one ending after the folder is removed
            # would write its file again, and leave it on the instance's disk.
            self._pool.shutdown(wait=True)
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

    @property
    def held_bytes(self) -> int:
        return self._held

    def _produce(self) -> None:
        window: deque[tuple[MiniBatch, list[Future[str]]]] = deque()
        pending = iter(self._shard.mini_batches)
        upcoming = next(pending, None)
        try:
            done = None if self._pool is None else self._results_listed()
            while not self._closing.is_set():
                while upcoming is not None and len(window) < self._ahead and self._room_for(len(upcoming.files)):
                    if self._has_result(upcoming.index, done):
                        self.skipped += 1
                    else:
                        window.append((upcoming, self._start_fetches(upcoming)))
                    upcoming = next(pending, None)
                with self._changed:
                    if not window and upcoming is None:
                        break
                    if not window or not all(fetch.done() for fetch in window[0][1]):
                        # Until a fetch ends or copies are discarded: the head may then be whole, or room open up.
                        self._changed.wait(CLOSE_POLL_S)
                        continue
                mini_batch, fetches = window.popleft()
                self._put(self._collect(mini_batch, fetches))
        except BaseException as exc:  # surfaced to the runner by take()
            self.error = exc
        finally:
            self._put(_END, always=True)

    def _results_listed(self) -> set[int]:
        """The shard's mini-batches that have a result, from one listing of the results folder (a page per 1,000)
        instead of two requests per mini-batch (HEAD, then LIST for a folder of that name): on S3 those cost 20 ms
        or more each, one after the other, ahead of every mini-batch's fetches."""
        wanted = {self._files.result(mini_batch.index): mini_batch.index for mini_batch in self._shard.mini_batches}
        if not wanted:
            return set()
        first, last = min(wanted), max(wanted)
        done = set()
        # The listing resumes after the first result's name less its last character: a key that sorts just
        # before it and after every earlier mini-batch's (they differ from it in a digit).
        for found in self._blobs.list_files(self._files.results_folder, after=first[:-1]):
            if found.uri > last:
                break
            if found.uri in wanted:
                done.add(wanted[found.uri])
        return done

    def _has_result(self, index: int, listed: set[int] | None) -> bool:
        """Whether the mini-batch was finished before: locally a stat of its result, costing nothing."""
        return index in listed if listed is not None else self._blobs.exists(self._files.result(index))

    def _room_for(self, files: int) -> bool:
        """Whether a mini-batch of `files` files may start fetching: when the bytes held and those expected of
        every unfinished fetch and of its own fit the budget. Until a first file arrives its size is unknown, so
        a first mini-batch fetches alone; with nothing held or being fetched one always goes, so a mini-batch
        larger than the budget is fetched alone rather than never."""
        with self._changed:
            if self._unfinished == 0 and self._held == 0:
                return True
            if self._largest_file is None:
                return self._unfinished == 0
            return self._held + (self._unfinished + files) * self._largest_file <= self._budget

    def _release(self, size: int) -> None:
        with self._changed:
            self._held -= size
            self._changed.notify_all()

    def _start_fetches(self, mini_batch: MiniBatch) -> list[Future[str]]:
        """Start fetching each file of the mini-batch (or not, when there is nothing to fetch); each result is
        the file's local path: the file itself, a download, or a copy of just the mini-batch's rows of it."""
        slices = {piece.file: piece for piece in mini_batch.slices}
        fetches: list[Future[str]] = []
        for number, rel in enumerate(mini_batch.files):
            uri = self._blobs.join(self._shard.input_root, rel)
            with self._changed:
                self._unfinished += 1
            if self._pool is None:
                fetch = _done_now(functools.partial(self._counted, uri, self._blobs.localize, uri, self._download_dir))
            elif rel in slices:
                copy = os.path.join(self._download_dir, f"mb-{mini_batch.index:08d}-{number}{os.path.splitext(rel)[1]}")
                file_format = file_format_or_fail(rel, self._input_format)
                fetch = self._pool.submit(
                    self._counted, uri, copy_slice, self._blobs, uri, slices[rel], file_format, copy
                )
            else:
                fetch = self._pool.submit(self._counted, uri, self._blobs.localize, uri, self._download_dir)
            fetches.append(fetch)
        return fetches

    def _counted(self, uri: str, fetch: Callable[..., str], *arguments: object) -> str:
        """Fetch, and count the copy's bytes as held before anyone can see the file (and discard it)."""
        size = 0
        try:
            path = fetch(*arguments)
            size = os.path.getsize(path) if self._is_copy(path, uri) else 0
        finally:
            with self._changed:
                self._unfinished -= 1
                self._held += size
                if size:
                    self._largest_file = max(self._largest_file or 0, size)
                self._changed.notify_all()
        return path

    def _collect(self, mini_batch: MiniBatch, fetches: list[Future[str]]) -> FetchedMiniBatch:
        names = [self.name_in(self._shard, rel) for rel in mini_batch.files]
        fetched = FetchedMiniBatch(mini_batch.index, names, on_discard=self._release)
        for rel, name, fetch in zip(mini_batch.files, names, fetches, strict=True):
            try:
                path = fetch.result()
            except Exception as exc:
                fetched.fetch_errors[name] = f"could not read the input file: {type(exc).__name__}: {exc}"
                continue
            fetched.paths.append(path)
            fetched.fetched_names.append(name)
            uri = self._blobs.join(self._shard.input_root, rel)
            if self._is_copy(path, uri):
                fetched.copies.append(path)
                fetched.copied_bytes += os.path.getsize(path)
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
                self._ready.put(item, timeout=CLOSE_POLL_S)
                return
            except queue.Full:
                if self._closing.is_set() and always:
                    return


def _done_now(fetch: Callable[[], str]) -> Future[str]:
    """A local read, done in the producer's thread: handing each path to a pool cost more than it saved."""
    done: Future[str] = Future()
    try:
        done.set_result(fetch())
    except Exception as exc:
        done.set_exception(exc)
    return done
