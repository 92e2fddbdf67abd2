"""The verbs every versioned asset has (`az ml model|environment|data create|list|show`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from pydantic import BaseModel

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render
from batch_endpoints.cli.commands import Group, Handler, command, current_user, key_values

P = ParamSpec("P")
R = TypeVar("R")


def add_asset_commands(
    groups: Group,
    noun: str,
    *,
    help_text: str,
    create: Handler,
    create_help: str,
    list_versions: Callable[[EndpointsApi, str | None], Sequence[BaseModel]],
    get_version: Callable[[EndpointsApi, str, str | None, str | None], BaseModel],
    columns: Sequence[str],
    from_file: bool = False,
) -> argparse.ArgumentParser:
    """`bep <noun> create|register|list|show`, the verbs every versioned asset has (`az ml model|environment`).
    Returns the create command, for the flags that say what the version holds. With from_file, create also
    reads Azure's YAML for the asset (`--file`), which may hold the name."""
    verbs = groups.add_parser(noun, help=help_text).add_subparsers(dest="verb", required=True)
    create_command = command(verbs, "create", create, create_help, aliases=["register"])
    if from_file:
        create_command.add_argument("--file", "-f", help=f"Azure's {noun} YAML; flags override its fields")
    create_command.add_argument("--name", "-n", required=not from_file)
    create_command.add_argument("--version", "-v", help="default: one more than the latest numeric version")
    create_command.add_argument("--description", "-d", default="")
    create_command.add_argument("--tag", action="append", metavar="KEY=VALUE")
    sub = command(verbs, "list", asset_list, f"list {noun} versions")
    sub.add_argument("--name", "-n")
    sub.set_defaults(list_versions=list_versions, columns=list(columns))
    sub = command(verbs, "show", asset_show, f"show one {noun} version (default: the latest)")
    sub.add_argument("--name", "-n", required=True)
    sub.add_argument("--version", "-v")
    sub.add_argument("--label", "-l", choices=[yaml_specs.LATEST])
    sub.set_defaults(get_version=get_version)
    return create_command


def asset_list(service: EndpointsApi, args: argparse.Namespace) -> int:
    versions: list[BaseModel] = _on_target(service, args.list_versions)(args.name)
    render.table(args, [v.model_dump(mode="json") for v in versions], args.columns)
    return 0


def asset_show(service: EndpointsApi, args: argparse.Namespace) -> int:
    render.show(args, _on_target(service, args.get_version)(args.name, args.version, args.label))
    return 0


def _on_target(service: EndpointsApi, method: Callable[Concatenate[EndpointsApi, P], R]) -> Callable[P, R]:
    """`method` (one of EndpointsApi's, unbound: the Protocol's own body is a stub) as the target implements it."""
    implemented: Callable[P, R] = getattr(service, method.__name__)
    return implemented


def given_flags(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags among `names` the user gave: what overrides the fields of an asset's YAML (`--file`)."""
    return {name: getattr(args, name) for name in names if getattr(args, name)}


def registration(args: argparse.Namespace) -> dict[str, Any]:
    """What registering any asset version takes besides its content: version, description, tags, who."""
    return {
        "version": args.version,
        "description": args.description,
        "tags": key_values(args.tag, "tag"),
        "caller": current_user(),
    }
