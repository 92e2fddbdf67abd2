"""The four ports the core is written against, and one capability a store may add (LocalSnapshots). `adapters/local`
and `adapters/aws` implement them.

Storage is addressed by URI (a local path, or s3://bucket/key), so a user's input folder, the system's own
storage area and an output location anywhere are all reached the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from batch_endpoints.local_files import LocalFile
from batch_endpoints.specs import Compute, Deployment, Environment, Job


@dataclass(frozen=True)
class Record:
    key: str
    data: dict[str, Any]
    version: int
    counters: dict[str, int] = field(default_factory=dict)


class RecordStore(Protocol):
    """Documents by (kind, key), each with a version for optimistic concurrency and atomic counters."""

    def get(self, kind: str, key: str) -> Record | None: ...

    def put(
        self, kind: str, key: str, data: Mapping[str, Any], *, parent: str = "", expected_version: int | None
    ) -> int:
        """Write and return the new version. expected_version 0 = must not exist; None = unconditional.

        Raises ConflictError when the stored version differs from expected_version.
        """
        ...

    def delete(self, kind: str, key: str) -> bool: ...

    def list(
        self, kind: str, *, parent: str | None = None, newest_first: bool = False, limit: int | None = None
    ) -> list[Record]: ...

    def add_counters(self, kind: str, key: str, deltas: Mapping[str, int]) -> dict[str, int]:
        """Atomically add deltas to the record's counters and return all its counters after the change."""
        ...


@dataclass(frozen=True)
class BlobInfo:
    uri: str
    size: int


@dataclass(frozen=True)
class BlobRange:
    """Bytes `[start, end)` of a stored object: one piece of an object `BlobStore.compose` builds."""

    uri: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


class BlobStore(Protocol):
    root: str
    """URI of the system's own storage area (models, code, job scratch, default outputs)."""
    reads_in_place: bool
    """Whether `localize` hands back the stored file itself, at no cost (nothing to fetch ahead)."""

    def __hash__(self) -> int:
        """A store is a cache key: the runner keeps each file's Parquet footer per store and URI."""
        ...

    def join(self, base: str, *parts: str) -> str: ...

    def relative(self, base: str, uri: str) -> str: ...

    def put_bytes(self, uri: str, data: bytes, *, if_absent: bool = False) -> None:
        """Raises AlreadyExistsError if if_absent and the object exists."""
        ...

    def write_stream(self, uri: str, chunks: Iterable[bytes], *, if_absent: bool = False) -> int:
        """Write an object from chunks, all or nothing; returns its size."""
        ...

    def compose(self, uri: str, pieces: Sequence[BlobRange], *, if_absent: bool = False) -> int:
        """Write an object made of the pieces' bytes, in order, all or nothing; returns its size. The pieces
        stay where they are, and any number and mix of sizes (empty ones too) works. In S3 the bytes need not
        pass through this process: a job's output is made from its shards' outputs without downloading them.
        Raises AlreadyExistsError if if_absent and the object exists; NotFoundError if a piece is missing."""
        ...

    def get_bytes(self, uri: str) -> bytes: ...

    def read_range(self, uri: str, start: int, end: int | None = None) -> bytes:
        """The object's bytes `data[start:end]`, without reading the rest: [start, end), clipped at the object's
        end (None = to the end). A negative `start` counts from the end, as a slice does: `read_range(uri, -8)`
        is the last 8 bytes; `end` must then be None. Raises NotFoundError if the object does not exist."""
        ...

    def exists(self, uri: str) -> bool: ...

    def is_folder(self, uri: str) -> bool: ...

    def list_files(self, uri: str, *, after: str = "") -> Iterator[BlobInfo]:
        """Every file under a folder URI, recursively, in lexicographic order of URI. With `after` (a URI under
        the folder, where an earlier listing stopped), only the files whose URI sorts after it: a listing too long
        for one process resumes in the next."""
        ...

    def localize(self, uri: str, scratch_dir: str) -> str:
        """A local path holding the object's bytes; may copy into scratch_dir, may return the file itself."""
        ...

    def upload_folder(self, local_dir: str, uri: str, files: Sequence[str] | None = None) -> None:
        """Make the folder `uri` a copy of the local folder: `files` ("/"-separated relative paths; default every
        file, links followed), and nothing else. The store leaves nothing out by name: callers choose (scoring
        code leaves its caches out, see local_files.code_files)."""
        ...

    def download_folder(self, uri: str, local_dir: str) -> str:
        """A local folder with the tree's files; may be the stored folder itself when it is already local."""
        ...

    def delete_prefix(self, uri: str) -> None: ...


@runtime_checkable
class LocalSnapshots(Protocol):
    """A store on this machine's disks, which can take local files in as they are now without copying them."""

    def snapshot(self, local_path: str, files: Sequence[LocalFile], target: str) -> None:
        """Make the new object or folder `target` hold `files`, those of the local file or folder `local_path`, as
        they are now. Reading one of them later (localize) that has changed since fails, naming it, rather than
        read other bytes than the ones there at this call; listing `target` lists `files`, and only them."""
        ...


def check_piece(piece: BlobRange) -> None:
    """Refuses a piece that is no range of bytes: a negative start, or an end before its start."""
    if piece.start < 0 or piece.end < piece.start:
        raise ValueError(f"{piece.uri}: [{piece.start}, {piece.end}) is not a range of bytes")


def is_empty_range(start: int, end: int | None) -> bool:
    """Whether `read_range(uri, start, end)` asks for no bytes at all; refuses a range it does not define."""
    if start < 0 and end is not None:
        raise ValueError(f"a range from the end ({start}) runs to the end; got end={end}")
    return end is not None and end <= start


class Orchestrator(Protocol):
    """Runs a job's workflow (plan → shards on compute → finalize) somewhere that outlives the request."""

    def start(self, job: Job) -> str:
        """Start the job's execution and return a handle naming it."""
        ...

    def cancel(self, job: Job) -> None:
        """Ask the job's execution to stop (its record says CancelRequested) and return at once, whatever the job's
        size: the workflow itself, once stopped, closes the job as Canceled."""
        ...

    def is_running(self, job: Job) -> bool:
        """Whether the job's workflow execution is still going."""
        ...

    def resume(self, job: Job) -> str:
        """Run the job's workflow again over its job files (its plan kept, finished mini-batches skipped) after
        its execution stopped; return the new handle."""
        ...


@dataclass(frozen=True)
class LogLine:
    timestamp_ms: int
    source: str
    """Which instance and worker (or Batch job and log stream) the line came from."""
    message: str


@dataclass(frozen=True)
class LogPage:
    lines: list[LogLine]
    next_token: str | None


class JobLogReader(Protocol):
    """What a job's scoring code printed or logged, oldest first, a page at a time."""

    def read(self, job: Job, *, step: str | None = None, next_token: str | None = None, limit: int = 1000) -> LogPage:
        """`step`: of a pipeline job, that step's lines alone (a command step's; a parallel step logs in its job)."""
        ...


class ComputeRegistry(Protocol):
    """The backend's own computes (`built_in`) and those users created (stored as records), and what makes a
    created one real: on AWS a Batch compute environment and job queue, which AWS builds and removes in steps."""

    def list(self) -> list[Compute]:
        """Every compute, the backend's own first."""
        ...

    def get(self, name: str) -> Compute | None: ...

    def provision(self, compute: Compute) -> Compute:
        """Start making a created compute's resources; returns it with its details and provisioning state."""
        ...

    def resize(self, compute: Compute) -> Compute:
        """Apply a created compute's new instance limits and idle time."""
        ...

    def advance(self, compute: Compute) -> Compute | None:
        """Take a compute that is Creating or Deleting one step further (AWS changes state asynchronously);
        returns its new state, or None once a Deleting compute's resources are gone."""
        ...

    def release(self, compute: Compute) -> Compute | None:
        """Start removing a created compute's resources: None when nothing is left, else the compute Deleting."""
        ...

    def register_deployment(self, deployment: Deployment) -> str:
        """Make the compute ready to run the deployment (a Batch job definition revision in the cloud)."""
        ...

    def register_steps(self, deployment: Deployment, environments: Mapping[str, Environment]) -> dict[str, str]:
        """Make the compute ready to run each of a pipeline's command steps in its environment (step -> environment,
        for the steps that name one); returns the registration of each step that needs one of its own."""
        ...

    def deregister_deployment(self, deployment: Deployment) -> None:
        """Remove the deployment's registrations, its steps' included."""
        ...
