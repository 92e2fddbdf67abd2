"""The Lambdas' code: one asset with the project's packages and their dependencies, bundled by pip, no Docker.

`pip install --target` with `--platform manylinux... --only-binary=:all:` fetches the Linux wheels Lambda runs,
whatever machine synthesizes the stack, at the versions in requirements.lock (the ones the tests ran). The
requirements are the project's own: pyproject's dependencies and its `aws` extra, less the libraries only the
scoring runner uses (pandas, numpy), which no Lambda code path imports; tests/test_infra_bundling.py imports the
handlers from the bundle alone, so a new import of them would show there. The bundle is about 50 MB of
Lambda's 250.

All four functions share the asset: one bundle per synth, one upload per deploy. Bundling runs at `cdk synth`
and `cdk deploy` for every stack CDK bundles; tests synthesize with bundling off (context
`aws:cdk:bundling-stacks` = []), where the asset's hash still follows every file that goes into it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

RUNTIME = lambda_.Runtime.PYTHON_3_12
RUNTIME_PYTHON = RUNTIME.name.removeprefix("python")
"""The interpreter version the wheels are fetched for: RUNTIME's (3.12)."""
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
"""x86_64 Lambda (Amazon Linux 2023, glibc 2.34) runs wheels of either tag."""
PACKAGES = ("batch_endpoints", "lambdas")
RUNNER_ONLY = ("pandas", "numpy")
# Only these go into the asset's hash (and nothing is copied from the rest of the repository).
SOURCES = ("pyproject.toml", "requirements.lock", *PACKAGES)
JUNK = ("__pycache__", "*.pyc")
# Dropped from the installed libraries, with their console scripts in bin/.
STRIPPED = ("tests", "__pycache__")
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


def requirements(root: Path) -> list[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    core = [r for r in project["dependencies"] if re.split(r"[<>=!~\[;\s]", r, maxsplit=1)[0] not in RUNNER_ONLY]
    return [*core, *project["optional-dependencies"]["aws"]]


@jsii.implements(cdk.ILocalBundling)
class PipBundling:
    """Builds the bundle on the synthesizing machine (CDK's local bundling: tried before Docker)."""

    def __init__(self, root: Path, *, python_version: str = RUNTIME_PYTHON) -> None:
        self.root = root
        self.python_version = python_version

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        self.bundle(Path(output_dir))
        return True

    def bundle(self, out: Path) -> None:
        platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(out),
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            *platforms,
            "--constraint",
            str(self.root / "requirements.lock"),
            *requirements(self.root),
        ]
        subprocess.run(command, check=True)
        shutil.rmtree(out / "bin", ignore_errors=True)
        for name in STRIPPED:
            for path in sorted(out.rglob(name), reverse=True):
                if path.is_dir():
                    shutil.rmtree(path)
        for package in PACKAGES:
            shutil.copytree(self.root / package, out / package, ignore=shutil.ignore_patterns(*JUNK))


def project_code(root: Path) -> lambda_.Code:
    """The asset every function of the stack runs from."""
    return lambda_.Code.from_asset(
        str(root),
        # Everything out, then back in what the bundle is made from.
        exclude=["*", *(f"!{source}" for source in SOURCES), *(f"!{p}/**" for p in PACKAGES), *JUNK],
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or fails the synth with pip's error.
            image=RUNTIME.bundling_image,
            local=PipBundling(root),
            # Not passed to anything; here so that the asset's hash changes with the recipe.
            environment={"PYTHON_VERSION": RUNTIME_PYTHON, "PLATFORMS": ",".join(PLATFORMS)},
        ),
    )


def project_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str,
    description: str,
    environment: Mapping[str, str],
    memory_mib: int,
    timeout: cdk.Duration,
) -> lambda_.Function:
    """A function of the stack: the shared code, X-Ray tracing, JSON logs (Powertools) kept for LOG_RETENTION."""
    log_group = logs.LogGroup(
        scope, f"{construct_id}Logs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    return lambda_.Function(
        scope,
        construct_id,
        code=code,
        handler=handler,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.X86_64,
        description=description,
        environment={"POWERTOOLS_LOG_LEVEL": "INFO", **environment},
        memory_size=memory_mib,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
    )
