"""The `az ml` → `bep` shim (`bep az ...`, behind examples/azure/bin/az): the workspace's flags dropped in every
form az takes them, `az configure --defaults` and `az account set` as no-ops, and nothing else changed or
accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra_fixtures import REPOSITORY_ROOT

WORKSPACE_FLAGS = [
    ["--resource-group", "rg", "--workspace-name", "ws", "--subscription", "0000"],
    ["-g", "rg", "-w", "ws"],
    ["--resource-group=rg", "--workspace-name=ws", "--subscription=0000"],
]


@pytest.mark.parametrize("flags", WORKSPACE_FLAGS, ids=["long", "short", "joined"])
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
