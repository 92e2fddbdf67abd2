"""pyproject.toml's core dependencies are what `bep` and the SDK import: with the runner's and the cloud's
libraries made unimportable, the CLI and the SDK load and `bep` answers on a local home, and every library they
did load belongs to a core dependency (or to what one of those requires)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.infra_fixtures import REPOSITORY_ROOT

# Libraries of the extras (runner, tabular, torch, mlflow, aws): none may be imported by `bep` or the SDK.
EXTRAS_ONLY = ("pandas", "numpy", "pyarrow", "torch", "packaging", "mlflow", "boto3", "aws_lambda_powertools")
# Imported when installed, done without otherwise: botocore takes certifi's CA bundle over its own.
OPTIONAL = {"certifi"}
PROBE = """
import importlib.abc, importlib.metadata, json, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked: {name}")
        return None

BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Refuse())
before = set(sys.modules)
import batch_endpoints.client
from batch_endpoints.cli.main import main

codes = []
for command in (["--help"], ["endpoint", "list"]):
    try:
        codes.append(main(command))
    except SystemExit as exit:
        codes.append(exit.code)
owners = importlib.metadata.packages_distributions()
loaded = sorted({d for m in set(sys.modules) - before for d in owners.get(m.split(".")[0], [])})
print(json.dumps({"codes": codes, "distributions": loaded}))
"""


def normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def required_by(names: list[str]) -> set[str]:
    """The distributions `names` need, transitively, leaving out what only their extras need."""
    from importlib.metadata import requires

    found: set[str] = set()
    pending = list(names)
    while pending:
        name = normalized(pending.pop())
        if name in found:
            continue
        found.add(name)
        for line in requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def core_dependencies() -> list[str]:
    project = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line).name for line in project["dependencies"]]


def test_bep_and_the_sdk_run_on_the_core_dependencies_alone(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(EXTRAS_ONLY)],
        cwd=REPOSITORY_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY_ROOT), "BEP_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.splitlines()[-1])
    assert report["codes"] == [0, 0], finished.stderr
    loaded = {normalized(d) for d in report["distributions"]} - {"batch-endpoints"}
    core = core_dependencies()
    assert loaded - OPTIONAL <= required_by(core), sorted(loaded - OPTIONAL - required_by(core))
    # And nothing declared that they do not use.
    assert {normalized(name) for name in core} <= loaded
