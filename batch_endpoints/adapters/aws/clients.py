"""How the AWS adapters make their boto3 clients: one retry policy for every call."""

from __future__ import annotations

import logging
from typing import Any, Literal

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

# Adaptive mode retries throttling and 5xx with backoff and slows the client down while AWS throttles it:
# a job's runners share one table and bucket, and bursts of counter updates or part writes hit the
# per-partition limits (1,000 writes/s per DynamoDB partition, 3,500 PUTs/s per S3 prefix) first.
MAX_ATTEMPTS = 10
# botocore says at INFO where it found credentials and endpoints, once per client: in a runner, which logs at
# INFO into the job's logs, that is noise between the scoring code's own lines.
for _name in ("botocore.credentials", "botocore.configprovider"):
    logging.getLogger(_name).setLevel(logging.WARNING)


# The services the adapters call; boto3's type stubs know a client's calls by its service's name.
Service = Literal["batch", "dynamodb", "logs", "s3", "stepfunctions"]


def aws_client(service: Service, *, max_pool_connections: int = 10) -> Any:
    """A boto3 client honouring the usual AWS_* environment (region, credentials, AWS_ENDPOINT_URL)."""
    config = Config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=max_pool_connections,
    )
    # A session of its own: boto3's default session is not safe to make clients from in several threads at once.
    # The loader is shared: reading and parsing a service's JSON model costs far more than the client itself.
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core).client(service, config=config)


_LOADER = botocore.loaders.create_loader()
