"""The Python SDK: the REST API as typed calls, signed with SigV4, shaped like Azure's MLClient.

from batch_endpoints.client import BatchEndpointsClient

client = BatchEndpointsClient("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
job = client.batch_endpoints.invoke("digits", input="s3://my-bucket/images/")
client.jobs.stream(job.id)
"""

from __future__ import annotations

from typing import Any

from batch_endpoints.client.connection import Connection
from batch_endpoints.client.errors import ApiError, AuthenticationError, ServerError, ThrottlingError
from batch_endpoints.client.operations import (
    BatchDeploymentOperations,
    BatchEndpointOperations,
    ComponentOperations,
    ComputeOperations,
    EnvironmentOperations,
    JobOperations,
    ModelOperations,
)
from batch_endpoints.client.retries import RetryPolicy
from batch_endpoints.client.storage import Storage
from batch_endpoints.client.transport import HttpRequest, HttpResponse, PooledTransport, Transport

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchEndpointsClient",
    "HttpRequest",
    "HttpResponse",
    "PooledTransport",
    "RetryPolicy",
    "ServerError",
    "ThrottlingError",
    "Transport",
]


class BatchEndpointsClient:
    """A client of one deployed API (the stack output ApiUrl) or of `bep serve` (http://127.0.0.1:8080).

    Credentials come from `session` (a boto3 or botocore session), by default the standard chain: environment,
    shared config and profiles, SSO, container and instance roles. The region is `region`, else the one in an
    API Gateway URL, else the session's, else us-east-1 (the local server's default).
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str | None = None,
        session: Any = None,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if session is None:
            import botocore.session

            session = botocore.session.get_session()
        connection = Connection(
            endpoint_url,
            session=session,
            region=region,
            transport=transport or PooledTransport(),
            retry=retry or RetryPolicy(),
        )
        storage = Storage(connection)
        self.region = connection.region
        # For calls the sub-clients do not make (the CLI's remote target uses the API's PATCH and log pages).
        self.connection = connection
        self.storage = storage
        self.models = ModelOperations(connection, storage)
        self.environments = EnvironmentOperations(connection, storage)
        self.components = ComponentOperations(connection, storage)
        self.batch_endpoints = BatchEndpointOperations(connection, storage)
        self.batch_deployments = BatchDeploymentOperations(connection, storage)
        self.jobs = JobOperations(connection, storage)
        self.compute = ComputeOperations(connection, storage)
