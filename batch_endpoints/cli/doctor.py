"""`bep doctor --target aws`: whether this machine and account can deploy and run the stack, one line per check."""

from __future__ import annotations

import argparse
import os
import sys

from batch_endpoints.cli import config, targets
from batch_endpoints.doctor import docker_check, failed
from batch_endpoints.errors import ValidationError


def doctor(args: argparse.Namespace) -> int:
    settings = config.resolve(args, config.load(), os.environ)
    if settings.get("target") != "aws":
        raise ValidationError("doctor checks a deployment on AWS: add --target aws", field="--target")
    import boto3  # the `aws` extra

    from batch_endpoints.adapters.aws.doctor import check_aws

    session = boto3.Session(botocore_session=targets.aws_session(settings.get("profile"), settings.get("region")))
    checks = check_aws(
        session.client,
        session.region_name,
        stack=settings.get("stack") or targets.DEFAULT_STACK,
        deploying=args.deploying,
    )
    checks.append(docker_check(deploying=args.deploying))
    for check in checks:
        print(check.line())
    if failed(checks):
        print("some checks failed: fix them as each line says, then run bep doctor again", file=sys.stderr)
        return 1
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deploying",
        action="store_true",
        help="about to run cdk deploy: a stack not deployed yet is expected, a Docker daemon is required",
    )
