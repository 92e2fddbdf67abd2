"""What every use case works with: the backend's ports, the caller's data access, the record repository and the
resolver of storage locations."""

from __future__ import annotations

from batch_endpoints import data_access
from batch_endpoints.backend import Backend
from batch_endpoints.inputs import LocationResolver
from batch_endpoints.repository import Repository


class ServiceBase:
    def __init__(self, backend: Backend, access: data_access.DataAccess | None = None) -> None:
        self.backend = backend
        self.access = access or data_access.from_environment(backend.blobs.root, backend.caller_permissions)
        self.blobs = backend.blobs
        self.repo = Repository(backend.records)
        self.locations = LocationResolver(backend.blobs, self.repo)
