"""How far ahead of the workers a runner fetches inputs, and with how many connections: from the instance's size.

On S3 each GET of a small object takes 10 to 50 ms, mostly waiting; a worker scoring a small file in a few ms
would wait on storage most of the time unless many GETs are in flight at once and whole mini-batches are ready
before it asks. The defaults follow the instance (AWS Batch gives a job the instance's vCPUs and memory):

- depth: mini-batches fetched ahead, 2 x workers, so each worker finds one ready and one on its way;
- threads: GETs in flight, 8 per vCPU up to 64 (threads wait on the network, not the CPU; past 64 the
  runner's own Python time per file, not latency, is what limits it);
- byte budget: fetched bytes not yet scored, a sixteenth of memory between 64 MiB and 2 GiB. Fetched files are
  streamed to local disk (1 MiB blocks), so memory holds only the page cache of what waits there.

Each can be set by an environment variable of the job (a deployment's `environment_variables`), for an input
of unusual size: BEP_PREFETCH_DEPTH, BEP_FETCH_THREADS, BEP_PREFETCH_BYTES.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from batch_endpoints.errors import ValidationError

DEPTH_VARIABLE = "BEP_PREFETCH_DEPTH"
THREADS_VARIABLE = "BEP_FETCH_THREADS"
BYTES_VARIABLE = "BEP_PREFETCH_BYTES"
CPUS_VARIABLE = "BEP_CPUS"

DEPTH_PER_WORKER = 2
THREADS_PER_CPU = 8
MAX_THREADS = 64
MEMORY_SHARE = 16
MIN_BUDGET = 64 * 1024 * 1024
MAX_BUDGET = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class FetchSizing:
    depth: int
    """Mini-batches fetched ahead of the workers (being fetched, or fetched and waiting)."""
    threads: int
    """GETs in flight at once; the S3 client's connection pool is sized to hold them."""
    byte_budget: int
    """Fetched bytes not yet scored; a new mini-batch waits while it would exceed it (one always goes)."""


def cpus(environ: Mapping[str, str] = os.environ) -> int:
    """The instance's vCPUs, or BEP_CPUS where set (a container may be given fewer than the machine has)."""
    return _positive(environ, CPUS_VARIABLE) or os.cpu_count() or 1


def memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):  # not every platform reports it: the budget's floor then
        return MIN_BUDGET * MEMORY_SHARE


def fetch_threads(environ: Mapping[str, str] = os.environ) -> int:
    return _positive(environ, THREADS_VARIABLE) or min(MAX_THREADS, THREADS_PER_CPU * cpus(environ))


def fetch_sizing(workers: int, environ: Mapping[str, str] = os.environ, *, memory: int | None = None) -> FetchSizing:
    """The sizing for `workers` workers on this instance, with the job's overrides."""
    budget = min(MAX_BUDGET, max(MIN_BUDGET, (memory_bytes() if memory is None else memory) // MEMORY_SHARE))
    return FetchSizing(
        depth=_positive(environ, DEPTH_VARIABLE) or DEPTH_PER_WORKER * max(1, workers),
        threads=fetch_threads(environ),
        byte_budget=_positive(environ, BYTES_VARIABLE) or budget,
    )


def _positive(environ: Mapping[str, str], name: str) -> int | None:
    """The variable's value as a whole number ≥ 1, None when unset; anything else is refused, naming it."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(f"{name} must be a whole number of at least 1, got {raw!r}", field=name)
    return value
