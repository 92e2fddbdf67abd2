"""`bep serve`: the API Lambda's resolver (batch_endpoints/api/app.py), behind the local gateway, over a backend.

The resolver gets its service through the dependency it declares for that (`get_service`), pointed at the
backend given here, with the backend's API URL set to this server so links in responses lead back to it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from batch_endpoints.backend import Backend
from batch_endpoints.server.credentials import LocalCredentials
from batch_endpoints.server.gateway import DEFAULT_IDLE_TIMEOUT_S, GatewayServer
from batch_endpoints.service import BatchEndpointService

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_REGION = "us-east-1"


def open_local_api(
    backend: Backend,
    credentials: LocalCredentials,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    region: str = DEFAULT_REGION,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> GatewayServer:
    """A bound server (port 0: any free port); serve_forever() serves it, close() ends it."""
    # The resolver needs the Powertools package (the `aws` extra); imported here so the rest of the core doesn't.
    from batch_endpoints.api.app import app, get_service
    from batch_endpoints.api.openapi import render

    def integration(event: dict[str, Any]) -> dict[str, Any]:
        return app.resolve(event, None)

    server = GatewayServer(
        (host, port),
        integration=integration,
        credentials=credentials,
        region=region,
        openapi=render().encode(),
        idle_timeout_s=idle_timeout_s,
    )
    service = BatchEndpointService(replace(backend, api_base_url=server.url))
    app.dependency_overrides[get_service] = lambda: service
    return server


@contextlib.contextmanager
def running(backend: Backend, credentials: LocalCredentials, **options: Any) -> Iterator[GatewayServer]:
    """The server, serving from a thread until the block ends (for tests and embedding)."""
    from batch_endpoints.api.app import app, get_service

    server = open_local_api(backend, credentials, **options)
    thread = threading.Thread(target=server.serve_forever, name="bep-local-api", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        app.dependency_overrides.pop(get_service, None)
