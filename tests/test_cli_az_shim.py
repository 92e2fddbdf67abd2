"""The `az ml` → `bep` shim (`bep az ...`, behind examples/azure/bin/az): the workspace's flags dropped in every
form az takes them, `az configure --defaults` and `az account set` as no-ops, and nothing else changed or
accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_endpoints.cli.az import bep_arguments
from batch_endpoints.errors import ValidationError
from tests.infra_fixtures import REPOSITORY_ROOT

WORKSPACE_FLAGS = [
    ["--resource-group", "rg", "--workspace-name", "ws", "--subscription", "0000"],
    ["-g", "rg", "-w", "ws"],
    ["--resource-group=rg", "--workspace-name=ws", "--subscription=0000"],
    ["-grg", "-wws"],
]


@pytest.mark.parametrize("flags", WORKSPACE_FLAGS, ids=["long", "short", "joined", "glued"])
def test_workspace_flags_are_dropped_wherever_they_stand(bep, flags: list[str]) -> None:
    bep("az", "ml", "batch-endpoint", "create", *flags[:2], "--name", "shop", *flags[2:])

    shown = bep("az", "ml", "batch-endpoint", "show", "-n", "shop", *flags, "--query", "name", "-o", "tsv")
    assert shown.out == "shop\n"


def test_everything_else_reaches_bep_unchanged(bep, tmp_path: Path) -> None:
    bep("az", "ml", "batch-endpoint", "create", "--name", "shop", "-g", "rg")
    listed = bep("az", "ml", "batch-endpoint", "list", "-g", "rg", "--query", "[].name", "-o", "tsv")
    assert listed.out == bep("endpoint", "list", "--query", "[].name", "-o", "tsv").out == "shop\n"
    # A flag bep does not take is refused by bep, by name, as `az` would refuse it.
    with pytest.raises(SystemExit) as refused:
        bep("az", "ml", "batch-endpoint", "list", "--only-show-errors")
    assert refused.value.code == 2


def test_configure_defaults_and_account_set_are_no_ops(bep, home: Path) -> None:
    assert bep("az", "configure", "--defaults", "group=rg", "workspace=ws", "location=westeurope").out == ""
    assert bep("az", "account", "set", "--subscription", "0000").out == ""
    assert bep("az", "account", "set", "-s=0000").out == ""
    assert not home.exists()  # nothing was written: no config file, no stores


@pytest.mark.parametrize(
    ("words", "named"),
    [
        (["login"], "az login"),
        (["storage", "blob", "upload"], "az storage blob"),
        ([], "az (nothing)"),
        (["ml"], "az ml"),
        (["ml", "batch-endpoint", "list", "-g"], "-g needs a value"),
        (["ml", "job", "list", "--workspace-name"], "--workspace-name needs a value"),
        (["ml", "batch-endpoint", "create", "--description", "-g", "--name", "x"], "-g needs a value, not the flag"),
        (["ml", "batch-endpoint", "list", "-g", "--query", "[]"], "-g needs a value, not the flag --query"),
        (["configure", "--list-defaults"], "az configure --defaults"),
        (["configure", "--defaults", "cloud=AzureChinaCloud"], "--defaults: 'cloud=AzureChinaCloud'"),
        (["configure", "--defaults", "group"], "--defaults: 'group'"),
        (["account", "set"], "az account set --subscription ID"),
        (["account", "set", "--subscription", "a", "b"], "az account set --subscription ID"),
        (["account", "show"], "az account show"),
    ],
)
def test_what_the_shim_cannot_run_is_refused_naming_it(bep, home: Path, words: list[str], named: str) -> None:
    refused = bep("az", *words, ok=False)

    assert refused.code == 2 and named in refused.err and refused.out == ""
    assert not home.exists()


def test_the_az_script_runs_bep_from_path(tmp_path: Path) -> None:
    environment = {
        "PATH": os.pathsep.join(
            [str(REPOSITORY_ROOT / "examples" / "azure" / "bin"), str(Path(sys.executable).parent)]
        ),
        "PYTHONPATH": str(REPOSITORY_ROOT),
        "BEP_HOME": str(tmp_path / "home"),
    }

    def az(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["az", *words], env=environment, capture_output=True, text=True)

    created = az("ml", "batch-endpoint", "create", "-n", "shop", "-g", "rg", "-w", "ws", "--query", "name", "-o", "tsv")
    assert (created.returncode, created.stdout) == (0, "shop\n"), created.stderr
    refused = az("login")
    assert refused.returncode == 2 and "az login" in refused.stderr


# bep's own words: nouns, verbs, flags and values, none of them a workspace flag.
WORDS = st.lists(
    st.sampled_from(["batch-endpoint", "list", "-n", "--name", "shop", "--set", "a=b", "-o", "json", "-5", "x=-g"]),
    max_size=6,
)
WORKSPACE = st.sampled_from(
    [["-g", "rg"], ["-w", "ws"], ["--resource-group", "r"], ["--subscription=1"], ["-grg"], ["-wws"], ["-g", "-1"]]
)


@given(chunks=st.lists(st.tuples(WORDS, st.lists(WORKSPACE, max_size=2)), min_size=1, max_size=4), tail=WORDS)
def test_workspace_flags_in_any_form_anywhere_leave_the_other_words_as_they_were(
    chunks: list[tuple[list[str], list[list[str]]]], tail: list[str]
) -> None:
    words = ["ml", "job"]
    expected = ["job"]
    for kept, dropped in chunks:
        words += kept + [word for flag in dropped for word in flag]
        expected += kept
    # After `--` every word is a value, a workspace flag's spelling included.
    words += ["--", "-g", *tail]
    expected += ["--", "-g", *tail]

    assert bep_arguments(words) == expected


def test_a_workspace_flag_before_a_flag_is_refused_naming_both_and_nothing_is_dropped_unseen() -> None:
    with pytest.raises(ValidationError, match="--resource-group needs a value, not the flag --name") as refused:
        bep_arguments(["ml", "batch-endpoint", "show", "--resource-group", "--name", "shop"])
    assert refused.value.field == "--resource-group"
