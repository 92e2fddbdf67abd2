"""The API's routes, one router a noun; batch_endpoints.api.app includes them all."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter


def new_router() -> APIGatewayRouter:
    """A router for one noun's routes."""
    # Powertools' Router.__init__ has no annotations; this is the one call to it.
    return APIGatewayRouter()  # type: ignore[no-untyped-call]
