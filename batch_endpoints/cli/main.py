"""`bep`: the command line, with the verbs of `az ml batch-endpoint|batch-deployment|model|environment|component`,
`az ml data|job` and `az ml datastore`.

Each noun's module (model, environment, component, data, datastore, endpoint, deployment, job) adds its
commands, each of which parses its flags, calls one service use case and prints the result. This one assembles
them and maps errors to exit codes, once: 2 bad input, 3 not found, 4 conflict, 5 forbidden, 1 a job that did not
complete.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from batch_endpoints.cli import (
    az,
    component,
    compute,
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
# What a shell reports for a command that SIGPIPE ended (128 + 13): `bep job logs | head` stopped by head.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="bep", description="Batch endpoints: score folders of files with a registered model, locally or on AWS."
    )
    groups = parser.add_subparsers(
        dest="group",
        required=True,
        metavar="{model,environment,component,data,datastore,compute,endpoint,deployment,job,serve,configure,doctor,az}",
    )
    for add_commands in (
        model.add_commands,
        environment.add_commands,
        component.add_commands,
        data.add_commands,
        datastore.add_commands,
        compute.add_commands,
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
    sub = standalone_command(
        groups,
        "az",
        lambda args: az.run(args, main),
        "run an `az ml ...` command line as bep, dropping workspace and resource group flags",
        scope=targets.SCOPE_NONE,
    )
    az.add_arguments(sub)
    targets.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv, namespace=Invocation())
    try:
        code = args.run(args)
        sys.stdout.flush()  # here, so a reader that went away is noticed below and not at the interpreter's exit
        return code
    except BatchEndpointError as error:
        render.error(str(error))
        return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), 1)
    except BrokenPipeError:
        # The reader of stdout (`| head`) has closed it: stop quietly, as `cat` does. What is still buffered is
        # sent to /dev/null, or Python reports the same broken pipe again when it flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
