"""A backend is one set of adapters for the four ports. Processes find theirs from the environment
(adapters/environment.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from batch_endpoints.data_access import CallerPermissions
from batch_endpoints.ports import BlobStore, ComputeRegistry, JobLogReader, Orchestrator, RecordStore

BACKEND_VARIABLE = "BEP_BACKEND"
HOME_VARIABLE = "BEP_HOME"
DEFAULT_HOME = "~/.bep"


@dataclass
class Backend:
    name: str
    records: RecordStore
    blobs: BlobStore
    orchestrator: Orchestrator
    computes: ComputeRegistry
    logs: JobLogReader
    api_base_url: str
    """Base of the HTTPS API that serves this backend; endpoints' scoring URIs hang under it."""
    child_environment: dict[str, str]
    """Variables that let a child process (job host, runner) open this same backend."""
    caller_permissions: CallerPermissions | None = None
    """Checks a caller's own rights to a job's data before the job starts (see data_access); None skips it."""


def local_home() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get(HOME_VARIABLE) or DEFAULT_HOME))
