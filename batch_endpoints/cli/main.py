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
from batch_endpoints.cli.commands import CommandLineParser, Invocation, standalone_command
from batch_endpoints.errors import BatchEndpointError, ConflictError, ForbiddenError, NotFoundError, ValidationError

EXIT_CODES = {ValidationError: 2, NotFoundError: 3, ConflictError: 4, ForbiddenError: 5}


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="bep", description="Batch endpoints: score folders of files with a registered model, locally or on AWS."
    )
    groups = parser.add_subparsers(
        dest="group",
        required=True,
        metavar="{model,environment,data,datastore,endpoint,deployment,job,serve,configure,doctor}",
    )
    for add_commands in (
        model.add_commands,
        environment.add_commands,
        data.add_commands,
        datastore.add_commands,
        endpoint.add_commands,
        deployment.add_commands,
        job.add_commands,
    ):
        add_commands(groups)
    sub = standalone_command(
        groups,
        "serve",
        serve.serve,
        "serve the REST API on this machine, checking SigV4 signatures",
        scope=targets.SCOPE_NONE,
    )
    serve.add_arguments(sub)
    sub = standalone_command(
        groups,
        "configure",
        config.configure,
        "set defaults: target, api_url, stack, region, profile",
        scope=targets.SCOPE_NONE,
    )
    config.add_arguments(sub)
    sub = standalone_command(
        groups,
        "doctor",
        doctor.doctor,
        "check an AWS account and this machine: credentials, stack, quotas",
        scope=targets.SCOPE_OPTIONS,
    )
    doctor.add_arguments(sub)
    targets.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv, namespace=Invocation())
    try:
        return args.run(args)
    except BatchEndpointError as error:
        render.error(str(error))
        return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), 1)


if __name__ == "__main__":
    sys.exit(main())
