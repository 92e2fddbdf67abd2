"""`bep az ...`: the `az ml` → `bep` shim, so that a shell script written for Azure runs unchanged with an `az`
first on PATH that runs `exec bep az "$@"` (examples/azure/bin/az).

It drops what names an Azure workspace, which a local home or a stack replaces (`--resource-group`/`-g`,
`--workspace-name`/`-w`, `--subscription`), answers `az configure --defaults` and `az account set` as no-ops,
and hands the rest of `az ml NOUN VERB ...` to `bep` word for word: `bep` takes az's nouns, verbs and flags
itself, and refuses by name whatever it does not take. docs/azure-mapping.md lists these flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from batch_endpoints.errors import ValidationError

# The flags that name where a command runs on Azure, each followed by its value (az's `--flag value` or
# `--flag=value`). A local home or a deployed stack is that place here, so they are dropped.
WORKSPACE_FLAGS = ("--resource-group", "-g", "--workspace-name", "-w", "--subscription")
# The short ones with their value glued on, as argparse takes them too: `-gmy-group`.
GLUED_FLAGS = ("-g", "-w")
# `az configure --defaults KEY=VALUE ...`: the defaults a script sets for the flags above (and Azure's region).
DEFAULT_KEYS = ("group", "workspace", "location")
ACCOUNT_SUBSCRIPTION_FLAGS = ("--subscription", "-s", "--name", "-n")


def add_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("words", nargs=argparse.REMAINDER, metavar="ml NOUN VERB ...", help="an az command line")


def run(args: argparse.Namespace, bep: Callable[[list[str]], int]) -> int:
    """Run the az command line in args.words: no-ops return 0, `az ml ...` runs as `bep` with its words."""
    words = bep_arguments(args.words)
    return 0 if words is None else bep(words)


def bep_arguments(words: Sequence[str]) -> list[str] | None:
    """The `bep` words for an `az` command line, or None for a command that has nothing to do here."""
    group = list(words[:1])
    if group == ["ml"]:
        return _without_workspace_flags(words[1:])
    if group == ["configure"]:
        _check_defaults(words[1:])
        return None
    if list(words[:2]) == ["account", "set"]:
        _check_account_set(words[2:])
        return None
    shown = " ".join(words[:2]) or "(nothing)"
    raise ValidationError(
        f"the az shim runs `az ml ...`, `az configure --defaults` and `az account set`; not `az {shown}`", field="az"
    )


def _without_workspace_flags(words: Sequence[str]) -> list[str]:
    kept: list[str] = []
    remaining = iter(words)
    for word in remaining:
        if word == "--":  # argparse's end of flags: what follows is values, kept word for word
            kept += [word, *remaining]
            break
        flag, joined, _ = word.partition("=")
        if flag in WORKSPACE_FLAGS:
            value = None if joined else next(remaining, None)
            if not joined and (value is None or _looks_like_a_flag(value)):
                # As argparse (and so az) refuses it: taking the flag after as the value would drop it unseen.
                got = f", not the flag {value}" if value is not None else ""
                raise ValidationError(
                    f"{flag} needs a value{got} (dropped here: a local home or a stack is the workspace)", field=flag
                )
        elif not (word[:2] in GLUED_FLAGS and len(word) > 2):
            kept.append(word)
    if not kept:
        raise ValidationError("`az ml` needs a noun and a verb, e.g. `az ml batch-endpoint list`", field="az ml")
    return kept


def _looks_like_a_flag(word: str) -> bool:
    """argparse's rule: a word starting with '-' is a flag, unless it reads as a negative number."""
    if not word.startswith("-") or word == "-":
        return False
    try:
        float(word)
    except ValueError:
        return True
    return False


def _check_defaults(words: Sequence[str]) -> None:
    if not words or words[0] not in ("--defaults", "-d"):
        raise ValidationError("only `az configure --defaults KEY=VALUE ...` is taken (a no-op)", field="az configure")
    for pair in words[1:]:
        key, equals, _ = pair.partition("=")
        if not equals or key not in DEFAULT_KEYS:
            raise ValidationError(
                f"{pair!r} is not one of {', '.join(k + '=VALUE' for k in DEFAULT_KEYS)}", field="--defaults"
            )


def _check_account_set(words: Sequence[str]) -> None:
    flag = words[0].partition("=")[0] if words else ""
    if flag not in ACCOUNT_SUBSCRIPTION_FLAGS or len(words) != (1 if "=" in words[0] else 2):
        raise ValidationError("only `az account set --subscription ID` is taken (a no-op)", field="az account set")
