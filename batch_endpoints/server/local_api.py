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

# Re-exported: `bep serve` reaches the server through this module only (the import contracts).
from batch_endpoints.server.connections import DEFAULT_LIMITS as DEFAULT_LIMITS
from batch_endpoints.server.connections import ConnectionLimits as ConnectionLimits
from batch_endpoints.server.credentials import LocalCredentials
from batch_endpoints.server.gateway import GatewayServer
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
    limits: ConnectionLimits = DEFAULT_LIMITS,
) -> GatewayServer:
    """A bound server (port 0: any free port); serve_forever() serves it, close() ends it."""
    # The resolver needs the Powertools package (the `aws` extra); imported here so the rest of the core doesn't.
    from batch_endpoints.api.app import app, get_service
    from batch_endpoints.api.openapi import render

    def integration(event: dict[str, Any]) -> dict[str, Any]:
        # No Lambda runs here, so there is no LambdaContext to give; the routes never read it.
        return app.resolve(event, None)  # type: ignore[arg-type]

    server = GatewayServer(
        (host, port),
        integration=integration,
        credentials=credentials,
        region=region,
        openapi=render().encode(),
        limits=limits,
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
