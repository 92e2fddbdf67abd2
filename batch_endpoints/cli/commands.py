"""What every command module uses: the handler's signature, how a command is added, who the caller is and
`--tag key=value` lists read."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence

from batch_endpoints import yaml_specs
from batch_endpoints.service import BatchEndpointService

Handler = Callable[[BatchEndpointService, argparse.Namespace], int]


def command(
    group: argparse._SubParsersAction, name: str, handler: Handler, help_text: str, aliases: Sequence[str] = ()
) -> argparse.ArgumentParser:
    sub = group.add_parser(name, help=help_text, aliases=list(aliases))
    sub.set_defaults(handler=handler)
    return sub


def current_user() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "local-user"


def key_values(items: Sequence[str] | None, field: str) -> dict[str, str]:
    return {k: str(v) for k, v in yaml_specs.parse_overrides(items or [], field=field).items()}
