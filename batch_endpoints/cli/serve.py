"""`bep serve`: the REST API on this machine, checking SigV4 like API Gateway, over the backend `bep` uses."""

from __future__ import annotations

import argparse
import math
import sys

from batch_endpoints.backend import local_home
from batch_endpoints.errors import ValidationError
from batch_endpoints.server import credentials
from batch_endpoints.server.local_api import (
    DEFAULT_HOST,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_PORT,
    DEFAULT_REGION,
    open_local_api,
)
from batch_endpoints.service import BatchEndpointService


def serve(service: BatchEndpointService, args: argparse.Namespace) -> int:
    if not 0 < args.idle_timeout < math.inf:
        raise ValidationError(f"must be a number of seconds above 0, not {args.idle_timeout}", field="--idle-timeout")
    keys = credentials.load_or_create(local_home())
    if args.show_credentials:
        print(keys.as_shell(), end="")
        return 0
    try:
        server = open_local_api(
            service.backend,
            keys,
            host=args.host,
            port=args.port,
            region=args.region,
            idle_timeout_s=args.idle_timeout,
        )
    except OSError as error:
        raise ValidationError(f"cannot listen on {args.host}:{args.port}: {error.strerror}", field="--port") from None
    print(
        f"serving the batch endpoints API at {server.url} (SigV4, region {args.region}, service execute-api); "
        "`bep serve --show-credentials` prints the access key to sign with. Ctrl-C stops.",
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 = any free port")
    parser.add_argument("--region", default=DEFAULT_REGION, help="the region clients sign for, as with API Gateway's")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="SECONDS",
        help=f"drop a connection that sends nothing for this long, e.g. a request stalled half-sent "
        f"(default {DEFAULT_IDLE_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--show-credentials",
        action="store_true",
        help="print the access key pair clients sign with (export lines), generating it on first use, and exit",
    )
