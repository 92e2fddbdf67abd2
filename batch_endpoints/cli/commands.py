"""What every command module uses: the parser, the handler's signature, how a command is added, who the caller
is and `--tag key=value` lists read."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeAlias

from batch_endpoints import yaml_specs
from batch_endpoints.api.protocol import EndpointsApi
from batch_endpoints.cli import render, targets


class CommandLineParser(argparse.ArgumentParser):
    """argparse, whose refusals (exit 2) quote an overlong value shortened, like every other error. `bep` and every
    command's parser are one (argparse makes a group's parsers of its parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        render.error(message)
        raise SystemExit(2)


Handler = Callable[[EndpointsApi, argparse.Namespace], int]
"""A command on the API: it gets the target the options name (targets.open_operations), local or remote."""
Run = Callable[[argparse.Namespace], int]
"""A command that acts on no target (serve, configure, doctor), or a handler bound to its target's opening."""
# A string: argparse's class takes no type argument at run time, only in its stubs.
Group: TypeAlias = "argparse._SubParsersAction[CommandLineParser]"


class Invocation(argparse.Namespace):
    """The parsed command line: `run` is what the chosen command's parser set (argparse's `set_defaults`)."""

    run: Run


def command(
    group: Group, name: str, handler: Handler, help_text: str, aliases: Sequence[str] = ()
) -> CommandLineParser:
    sub = _add(group, name, lambda args: handler(targets.open_operations(args), args), help_text, aliases)
    render.add_arguments(sub)
    return sub


def standalone_command(group: Group, name: str, run: Run, help_text: str, *, scope: str) -> CommandLineParser:
    """A command not on the API; its scope (targets.SCOPE_*) says whether it takes the target options."""
    sub = _add(group, name, run, help_text, aliases=())
    sub.set_defaults(scope=scope)
    return sub


def _add(group: Group, name: str, run: Run, help_text: str, aliases: Sequence[str]) -> CommandLineParser:
    sub = group.add_parser(name, help=help_text, aliases=list(aliases))
    sub.set_defaults(run=run)
    return sub


def add_yes_argument(sub: argparse.ArgumentParser) -> None:
    """az's `--yes` on deletes, accepted so its scripts run: `bep` never prompts, a delete runs when asked."""
    sub.add_argument("--yes", "-y", action="store_true", help="accepted for az's scripts; deletes never prompt")


def add_set_argument(sub: argparse.ArgumentParser, help_text: str) -> None:
    """az's `--set KEY=VALUE ...`: several pairs after one flag, as az takes them, and the flag repeated."""
    sub.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help=help_text)


def current_user() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "local-user"


def key_values(items: Sequence[str] | None, field: str) -> dict[str, str]:
    return {k: str(v) for k, v in yaml_specs.parse_overrides(items or [], field=field).items()}
