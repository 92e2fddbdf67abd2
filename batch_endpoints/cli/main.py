"""`bep`: the command line, with the verbs of `az ml batch-endpoint|batch-deployment|model|environment|data|job`
and `az ml datastore`.

Each noun's module (model, environment, data, datastore, endpoint, deployment, job) adds its commands, each of
which parses its flags, calls one service use case and prints the result. This one assembles them and maps errors
to exit codes, once: 2 bad input, 3 not found, 4 conflict, 5 forbidden, 1 a job that did not complete.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from batch_endpoints.cli import (
    config,
    data,
    datastore,
    deployment,
    doctor,
    endpoint,
    environment,
    job,
    model,
    render,
    serve,
    targets,
)
from batch_endpoints.cli.commands import command
from batch_endpoints.errors import BatchEndpointError, ConflictError, ForbiddenError, NotFoundError, ValidationError

EXIT_CODES = {ValidationError: 2, NotFoundError: 3, ConflictError: 4, ForbiddenError: 5}


class CommandLineParser(argparse.ArgumentParser):
    """argparse, whose refusals (exit 2) quote an overlong value shortened, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        render.error(message)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="bep", description="Batch endpoints: score folders of files with a registered model, locally or on AWS."
    )
    groups = parser.add_subparsers(
        dest="group",
        required=True,
        metavar="{model,environment,data,datastore,endpoint,deployment,job,serve,configure,doctor}",
    )
    for noun in (model, environment, data, datastore, endpoint, deployment, job):
        noun.add_commands(groups)
    sub = command(groups, "serve", serve.serve, "serve the REST API on this machine, checking SigV4 signatures")
    serve.add_arguments(sub)
    sub.set_defaults(scope=targets.SCOPE_LOCAL)
    sub = command(groups, "configure", config.configure, "set defaults: target, api_url, stack, region, profile")
    config.add_arguments(sub)
    sub.set_defaults(scope=targets.SCOPE_NONE)
    sub = command(groups, "doctor", doctor.doctor, "check an AWS account and this machine: credentials, stack, quotas")
    doctor.add_arguments(sub)
    sub.set_defaults(scope=targets.SCOPE_OPTIONS)
    targets.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # argparse's namespace is untyped: the handler's target is what its command's scope opens.
        status: int = args.handler(targets.open_operations(args), args)
        return status
    except BatchEndpointError as error:
        render.error(str(error))
        return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), 1)


if __name__ == "__main__":
    sys.exit(main())
