"""The embedded backend: SQLite records, a storage folder, and jobs run by local processes."""

from __future__ import annotations

import os

from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.adapters.local.computes import LocalComputeRegistry
from batch_endpoints.adapters.local.logs import LocalJobLogReader
from batch_endpoints.adapters.local.orchestrator import LocalOrchestrator
from batch_endpoints.adapters.local.records import SqliteRecordStore
from batch_endpoints.backend import BACKEND_VARIABLE, HOME_VARIABLE, Backend

LOCAL_API = "http://127.0.0.1:8080"


def open_local_backend(home: str) -> Backend:
    os.makedirs(home, exist_ok=True)
    environment = {BACKEND_VARIABLE: "local", HOME_VARIABLE: home}
    blobs = FolderBlobStore(os.path.join(home, "storage"))
    records = SqliteRecordStore(os.path.join(home, "records.db"))
    return Backend(
        name="local",
        records=records,
        blobs=blobs,
        orchestrator=LocalOrchestrator(environment),
        computes=LocalComputeRegistry(records),
        logs=LocalJobLogReader(blobs),
        api_base_url=LOCAL_API,
        child_environment=environment,
    )
