"""`bep configure`: defaults for the CLI's global options, kept in `<BEP_HOME>/config.json` (like `az configure
--defaults`), and the one rule that picks each option's value: flag > environment > config file > built-in.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from batch_endpoints.backend import local_home
from batch_endpoints.cli import render
from batch_endpoints.errors import ValidationError

FILE_NAME = "config.json"
TARGETS = ("local", "aws", "http")
# AWS's region names (eu-west-1, us-gov-east-1, ap-southeast-3...) and CloudFormation's rule for stack names.
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$")


def _target(value: str) -> str | None:
    return None if value in TARGETS else f"one of {', '.join(TARGETS)}"


def _region(value: str) -> str | None:
    return None if REGION.match(value) else "an AWS region name, e.g. eu-west-1"


def _stack(value: str) -> str | None:
    return None if STACK_NAME.match(value) else "a CloudFormation stack name (a letter, then letters, digits, -)"


def _api_url(value: str) -> str | None:
    parts = urlsplit(value)
    return None if parts.scheme in {"http", "https"} and parts.netloc else "an http(s) URL, e.g. the stack's ApiUrl"


def _profile(value: str) -> str | None:
    return None if value.strip() == value and " " not in value else "an AWS profile name (no spaces)"


@dataclass(frozen=True)
class Option:
    """A global option that a default can be configured for."""

    name: str
    flag: str
    environment: tuple[str, ...]
    problem: Callable[[str], str | None]
    """What a value should have been, or None when it is fine."""


OPTIONS = {
    option.name: option
    for option in (
        Option("target", "--target", ("BEP_TARGET",), _target),
        Option("api_url", "--api-url", ("BEP_API_URL",), _api_url),
        Option("stack", "--stack", ("BEP_STACK",), _stack),
        # boto3's own variables, so a shell set up for the AWS CLI points `bep` at the same place.
        Option("region", "--region", ("AWS_REGION", "AWS_DEFAULT_REGION"), _region),
        Option("profile", "--profile", ("AWS_PROFILE",), _profile),
    )
}


def check(name: str, value: str, *, field: str) -> str:
    """`value` when it is a valid value of option `name`, else a ValidationError naming `field`."""
    option = OPTIONS.get(name)
    if option is None:
        raise ValidationError(f"unknown setting {name!r}; expected one of {', '.join(OPTIONS)}", field=field)
    wanted = option.problem(value)
    if wanted is not None:
        raise ValidationError(f"{value!r} is not a valid {name}; expected {wanted}", field=field)
    return value


def path() -> str:
    return os.path.join(local_home(), FILE_NAME)


def load() -> dict[str, str]:
    """The configured defaults, each checked; none when the file does not exist yet."""
    return {name: check(name, value, field=f"{path()}: {name}") for name, value in _read().items()}


def _read() -> dict[str, str]:
    try:
        with open(path(), encoding="utf-8") as f:
            stored = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValidationError(
            f"cannot read {path()}: {error}; fix or delete it (`bep configure` writes a new one)", field="config"
        ) from None
    if not isinstance(stored, dict):
        raise ValidationError(f"{path()} is not a JSON object of settings; fix or delete it", field="config")
    return {str(name): str(value) for name, value in stored.items()}


def save(defaults: Mapping[str, str]) -> None:
    os.makedirs(local_home(), exist_ok=True)
    # Written whole to a new file and renamed, so a reader never sees half a file.
    temporary = path() + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(dict(sorted(defaults.items())), f, indent=2)
        f.write("\n")
    os.replace(temporary, path())


def resolve(args: argparse.Namespace, defaults: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Each option's value and where it came from: the flag, else the environment, else the config file. Options
    set nowhere are left out: the caller knows their built-in defaults."""
    values: dict[str, str] = {}
    for option in OPTIONS.values():
        flag_value = getattr(args, option.name, None)
        if flag_value is not None:
            values[option.name] = check(option.name, flag_value, field=option.flag)
            continue
        variable = next((name for name in option.environment if environ.get(name)), None)
        if variable is not None:
            values[option.name] = check(option.name, environ[variable], field=variable)
        elif option.name in defaults:
            values[option.name] = defaults[option.name]
    return values


def add_global_arguments(parser: argparse.ArgumentParser, *, default: object) -> None:
    group = parser.add_argument_group("target (defaults: `bep configure`)")
    helps = {
        "target": "local (default): this machine's backend; aws: a deployed stack; http: any server of the API, "
        "e.g. `bep serve`",
        "api_url": "the API's base URL; for --target aws, default: the stack's ApiUrl output",
        "stack": "the CloudFormation stack to find the API in (--target aws); default BatchEndpoints",
        "region": "AWS region of the stack, and the region requests are signed for",
        "profile": "AWS profile whose credentials sign the requests",
    }
    for option in OPTIONS.values():
        group.add_argument(option.flag, default=default, help=helps[option.name])


# ---------------------------------------------------------------- the command
def configure(args: argparse.Namespace) -> int:
    # Unchecked, so that configure can replace a bad value that stops every other command.
    defaults = _read()
    if args.defaults:
        changes = _pairs(args.defaults)
        for name, value in changes.items():
            if value:
                defaults[name] = value
            else:
                defaults.pop(name, None)  # `name=` clears a default, as with `az configure --defaults`
        save(defaults)
        print(f"saved defaults in {path()}", file=sys.stderr)
    if args.list or not args.defaults:
        render.table(args, [{"name": k, "value": v} for k, v in sorted(defaults.items())], ["name", "value"])
    return 0


def _pairs(items: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs, every one checked before any is saved, so a bad one changes nothing."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"{item!r}: write NAME=VALUE, e.g. target=aws", field="--defaults")
        if value or name not in OPTIONS:
            check(name, value, field="--defaults")
        pairs[name] = value
    return pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--defaults",
        nargs="+",
        metavar="NAME=VALUE",
        help=f"set defaults ({', '.join(OPTIONS)}); NAME= clears one",
    )
    parser.add_argument("--list", "-l", action="store_true", help="print the configured defaults")
