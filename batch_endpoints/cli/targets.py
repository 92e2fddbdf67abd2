"""Where `bep` commands run: `local` (this machine's backend, in-process), `aws` (a deployed stack's API, found
from its CloudFormation outputs) or `http` (any server of the API, e.g. `bep serve`, at --api-url).

Commands get the local BatchEndpointService or a RemoteService with the same methods; both raise the project's
errors, so exit codes and messages are the same whichever target answered.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.cli import config
from batch_endpoints.cli.remote import RemoteService
from batch_endpoints.errors import BatchEndpointError, NotFoundError, ValidationError
from batch_endpoints.service import BatchEndpointService

# The stack app.py deploys, and the output infra/stack.py gives the API's URL in.
DEFAULT_STACK = "BatchEndpoints"
API_URL_OUTPUT = "ApiUrl"
# What a command that is not on the API acts on: `serve` serves this machine's backend and `configure` needs no
# target, so neither takes the target options; `doctor` reads them and checks the account itself, without the API.
SCOPE_NONE = "none"
SCOPE_OPTIONS = "options"


def open_operations(
    args: argparse.Namespace, environ: Mapping[str, str] = os.environ
) -> BatchEndpointService | RemoteService:
    settings = config.resolve(args, config.load(), environ)
    api_url = settings.get("api_url")
    target = settings.get("target") or ("http" if api_url else "local")
    if target == "local":
        if args.api_url is not None:
            raise ValidationError(
                "the local target has no API URL; add --target aws or --target http", field="--target"
            )
        return BatchEndpointService(from_environment())
    session = aws_session(settings.get("profile"), settings.get("region"))
    if api_url is None:
        if target == "http":
            raise ValidationError(
                "--target http needs the server's URL, e.g. --api-url http://127.0.0.1:8080 for `bep serve`",
                field="--api-url",
            )
        api_url = stack_api_url(session, settings.get("stack") or DEFAULT_STACK)
    from batch_endpoints.client import BatchEndpointsClient

    return RemoteService(BatchEndpointsClient(api_url, region=settings.get("region"), session=session))


def aws_session(profile: str | None, region: str | None) -> Any:
    """A botocore session: the standard credential chain, for `profile` when one is given."""
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    session = botocore.session.Session(profile=profile)
    try:
        session.get_scoped_config()  # reads the profile now, so a missing one is named here
    except ProfileNotFound:
        raise ValidationError(
            f"AWS profile {profile!r} is not in the AWS config or credentials file", field="--profile"
        ) from None
    if region:
        session.set_config_variable("region", region)
    return session


def stack_api_url(session: Any, stack: str) -> str:
    """The stack's ApiUrl output, read with CloudFormation's DescribeStacks."""
    import boto3  # the `aws` extra: only a deployed stack needs it
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    where = f"stack {stack!r}"
    try:
        cloudformation = boto3.Session(botocore_session=session).client("cloudformation")
        where += f" in {cloudformation.meta.region_name}"
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except NoRegionError:
        raise ValidationError(
            "no AWS region to find the stack in; pass --region, set AWS_REGION, or "
            "`bep configure --defaults region=...`",
            field="--region",
        ) from None
    except NoCredentialsError:
        raise ValidationError(
            "no AWS credentials found (environment, profile, SSO, instance role); configure some or pass --profile",
            field="--profile",
        ) from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "does not exist" in message:  # CloudFormation answers a missing stack with a ValidationError
            raise NotFoundError(
                f"{where} does not exist; deploy it (npx cdk deploy), or name another with --stack, or give --api-url",
                field="--stack",
            ) from None
        raise BatchEndpointError(f"cannot read {where}: {message}", field="--stack") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    if API_URL_OUTPUT not in outputs:
        raise NotFoundError(
            f"{where} ({stacks[0].get('StackStatus', 'status unknown')}) has no {API_URL_OUTPUT} output; is it a "
            "batch endpoints stack whose deployment finished?",
            field="--stack",
        )
    return str(outputs[API_URL_OUTPUT])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The target options, on `bep` itself and on every command, so they can go before or after the verbs."""
    config.add_global_arguments(parser, default=None)
    for command in _commands(parser):
        if command.get_default("scope") in (None, SCOPE_OPTIONS):  # serve and configure run against no target
            config.add_global_arguments(command, default=argparse.SUPPRESS)


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: dict[int, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():  # aliases map to the same parser
                found.setdefault(id(sub), sub)
                for command in _commands(sub):
                    found.setdefault(id(command), command)
    return list(found.values())
