"""`bep serve`: the REST API on this machine, checking SigV4 like API Gateway, over the backend `bep` uses."""

from __future__ import annotations

import argparse
import math
import sys

from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.backend import local_home
from batch_endpoints.errors import ValidationError
from batch_endpoints.server import credentials
from batch_endpoints.server.local_api import (
    DEFAULT_HOST,
    DEFAULT_LIMITS,
    DEFAULT_PORT,
    DEFAULT_REGION,
    ConnectionLimits,
    open_local_api,
)

# --flag: (ConnectionLimits field, what it bounds), for the flags that are seconds.
TIMEOUTS = {
    "--idle-timeout": (
        "idle_timeout_s",
        "drop a connection that sends nothing for this long, e.g. a request stalled half-sent",
    ),
    "--head-timeout": (
        "head_timeout_s",
        "drop a connection whose request head has not arrived whole this long after "
        "its first byte, however steadily it trickles",
    ),
    "--body-timeout": (
        "body_timeout_s",
        "drop a connection whose request body has not arrived whole this long after its head was checked",
    ),
}


def serve(args: argparse.Namespace) -> int:
    limits = _limits(args)
    keys = credentials.load_or_create(local_home())
    if args.show_credentials:
        print(keys.as_shell(), end="")
        return 0
    try:
        server = open_local_api(
            from_environment(),
            keys,
            host=args.host,
            port=args.port,
            region=args.region,
            limits=limits,
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
    defaults = DEFAULT_LIMITS
    for flag, (field, bounds) in TIMEOUTS.items():
        default = getattr(defaults, field)
        parser.add_argument(
            flag, type=float, default=default, metavar="SECONDS", help=f"{bounds} (default {default:g})"
        )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        metavar="N",
        help=f"connections served at once, a thread each; more are answered 503 with Retry-After "
        f"(default {defaults.max_connections})",
    )
    parser.add_argument(
        "--show-credentials",
        action="store_true",
        help="print the access key pair clients sign with (export lines), generating it on first use, and exit",
    )


def _limits(args: argparse.Namespace) -> ConnectionLimits:
    seconds = {}
    for flag, (field, _) in TIMEOUTS.items():
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if not 0 < value < math.inf:
            raise ValidationError(f"must be a number of seconds above 0, not {value}", field=flag)
        seconds[field] = value
    if args.max_connections < 1:
        raise ValidationError(f"must be at least 1, not {args.max_connections}", field="--max-connections")
    return ConnectionLimits(**seconds, max_connections=args.max_connections)
