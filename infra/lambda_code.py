"""The Lambdas' code: the project's packages and their dependencies, bundled by pip, no Docker. Two assets:

- the API function's: pyproject's dependencies (what `bep` and the SDK need) and its `aws` extra; the scoring
  runner's libraries (the `runner` extra: pandas, numpy) are no part of either: 38 MB unzipped.
- the workflow functions' (plan, finalize, mark failed): the same plus pyarrow (the `tabular` extra), which plan
  needs to parse Parquet inputs' footers (batch_endpoints/parquet_footer.py) and finalize to merge Parquet parts
  into one Parquet output. pyarrow 26 imports without numpy. Its wheel is 166 MB unzipped; PYARROW_UNUSED drops
  what neither loads (to 102 MB): the asset is 140 MB unzipped (57 MB zipped), of Lambda's 250.

`pip install --target` with `--platform manylinux... --only-binary=:all:` fetches the Linux wheels Lambda runs,
whatever machine synthesizes the stack, at the versions in requirements.lock (the ones the tests ran).
tests/test_infra_bundling.py builds both and imports the handlers (and the Parquet merge) from each alone, so a
new import would show there, and measures them.

Bundling runs at `cdk synth` and `cdk deploy` for every stack CDK bundles; tests synthesize with bundling off
(context `aws:cdk:bundling-stacks` = []), where each asset's hash still follows every file that goes into it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from batch_endpoints.lock_constraints import constraints
from batch_endpoints.pip_install import pip_install_command

# Not the 3.11 of development, CI and the runner's images, for two reasons: Lambda's python3.11 runs on Amazon
# Linux 2 (glibc 2.26, end of life June 2026), and pyarrow, which the workflow bundle needs, ships only
# manylinux_2_28 wheels since version 21; python3.12 runs on Amazon Linux 2023 (glibc 2.34), supported to 2028.
# tests/test_infra_bundling.py builds the bundles for this version and imports the handlers with its interpreter.
RUNTIME = lambda_.Runtime.PYTHON_3_12
RUNTIME_PYTHON = RUNTIME.name.removeprefix("python")
"""The interpreter version the wheels are fetched for: RUNTIME's (3.12)."""
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
"""x86_64 Lambda (Amazon Linux 2023, glibc 2.34) runs wheels of either tag."""
PACKAGES = ("batch_endpoints", "lambdas")
TABLES_EXTRA = "tabular"
# Only these go into the asset's hash (and nothing is copied from the rest of the repository).
SOURCES = ("pyproject.toml", "requirements.lock", *PACKAGES)
JUNK = ("__pycache__", "*.pyc")
# Dropped from the installed libraries, with their console scripts in bin/.
STRIPPED = ("tests", "__pycache__")
# Parts of pyarrow a Parquet merge never loads (paths relative to the bundle, globs): C++ headers and Cython
# sources; Arrow Flight (RPC, 33 MB); the S3 filesystem, loaded only when pyarrow itself opens S3 (17 MB: the
# Lambdas reach S3 through boto3) and pyarrow.fs does without it; pyarrow's C++ test module; and the copies of
# libarrow_python* under their development names: a wheel cannot hold symlinks, so each library comes three
# times, and the loader asks only for its soname (libarrow_python.so.<major>).
PYARROW_UNUSED = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pyx",
    "pyarrow/*flight*",
    "pyarrow/*s3*",
    "pyarrow/_pyarrow_cpp_tests*",
    "pyarrow/libarrow_python*.so",
    "pyarrow/libarrow_python*.so.*.*.*",
)
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


def requirements(root: Path, *, tables: bool = False) -> list[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *extras["aws"], *(extras[TABLES_EXTRA] if tables else [])]


@jsii.implements(cdk.ILocalBundling)
class PipBundling:
    """Builds the bundle on the synthesizing machine (CDK's local bundling: tried before Docker)."""

    def __init__(self, root: Path, *, tables: bool = False, python_version: str = RUNTIME_PYTHON) -> None:
        self.root = root
        self.tables = tables
        self.python_version = python_version

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        self.bundle(Path(output_dir))
        return True

    def bundle(self, out: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            pins = Path(scratch, "constraints.txt")
            pins.write_text(constraints((self.root / "requirements.lock").read_text()))
            self._pip_install(out, pins)
        shutil.rmtree(out / "bin", ignore_errors=True)
        for name in STRIPPED:
            for path in sorted(out.rglob(name), reverse=True):
                if path.is_dir():
                    shutil.rmtree(path)
        for pattern in PYARROW_UNUSED:
            for path in sorted(out.glob(pattern), reverse=True):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        for package in PACKAGES:
            shutil.copytree(self.root / package, out / package, ignore=shutil.ignore_patterns(*JUNK))

    def _pip_install(self, out: Path, pins: Path) -> None:
        platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
        command = pip_install_command(
            str(out),
            "--no-compile",
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            *platforms,
            # The lock's versions without its hashes (batch_endpoints/lock_constraints.py says why).
            "--constraint",
            str(pins),
            *requirements(self.root, tables=self.tables),
        )
        subprocess.run(command, check=True)


def project_code(root: Path, *, tables: bool = False) -> lambda_.Code:
    """The asset the functions run from; with `tables`, the one that also holds pyarrow (the workflow's)."""
    return lambda_.Code.from_asset(
        str(root),
        # Everything out, then back in what the bundle is made from.
        exclude=["*", *(f"!{source}" for source in SOURCES), *(f"!{p}/**" for p in PACKAGES), *JUNK],
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or fails the synth with pip's error.
            image=RUNTIME.bundling_image,
            # jsii calls try_bundle(output_dir, options) with the options object as one argument, where the
            # generated ILocalBundling spells its fields out as keywords.
            local=PipBundling(root, tables=tables),  # type: ignore[arg-type]
            # Not passed to anything; here so that the asset's hash changes with the recipe.
            environment={
                "PYTHON_VERSION": RUNTIME_PYTHON,
                "PLATFORMS": ",".join(PLATFORMS),
                "EXTRAS": TABLES_EXTRA if tables else "",
                "STRIPPED": ",".join(PYARROW_UNUSED) if tables else "",
            },
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
    """A function of the stack: the project's code, X-Ray tracing, JSON logs (Powertools) kept for LOG_RETENTION."""
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
