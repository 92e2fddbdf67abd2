"""infra/lambda_code.py: the Lambda bundle, built for real with pip (network, or pip's cache), holds everything the
handlers import. It is built for this interpreter's version, so that the handlers can be imported from it here
with nothing else on the path; `cdk synth` builds the same recipe for the Lambda runtime's version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.lambda_code import PACKAGES, PipBundling
from tests.infra_fixtures import REPOSITORY_ROOT

pytestmark = pytest.mark.slow

# Lambda takes at most 250 MB unzipped for a function's code and layers together.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024**2
IMPORTS = (
    "lambdas.api.handler",
    "lambdas.workflow.handlers",
    "batch_endpoints.adapters.aws.backend",
    "batch_endpoints.workflow",
    "aws_xray_sdk.core",
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lambda-bundle")
    PipBundling(REPOSITORY_ROOT, python_version=f"{sys.version_info.major}.{sys.version_info.minor}").bundle(out)
    return out


def test_the_handlers_import_from_the_bundle_alone(bundle: Path) -> None:
    # -S: no site-packages, so only the standard library and the bundle can satisfy the imports.
    script = f"import sys; sys.path.insert(0, {str(bundle)!r}); " + "; ".join(f"import {m}" for m in IMPORTS)
    finished = subprocess.run([sys.executable, "-S", "-c", script], cwd=bundle, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr


def test_the_bundle_fits_lambda_with_room_to_spare(bundle: Path) -> None:
    size = sum(path.stat().st_size for path in bundle.rglob("*") if path.is_file())
    assert size < 0.7 * LAMBDA_UNZIPPED_LIMIT, f"{size / 1024**2:.0f} MB"


def test_the_bundle_carries_the_project_code_without_caches_or_test_suites(bundle: Path) -> None:
    for package in PACKAGES:
        sources = {p.relative_to(REPOSITORY_ROOT) for p in (REPOSITORY_ROOT / package).rglob("*.py")}
        assert {p.relative_to(bundle) for p in (bundle / package).rglob("*.py")} == sources
    assert not [p for p in bundle.rglob("__pycache__")]
    assert not [p for p in bundle.rglob("tests") if p.is_dir()]
    assert not (bundle / "bin").exists()


def test_the_bundle_leaves_out_what_only_the_scoring_runner_uses(bundle: Path) -> None:
    assert not (bundle / "pandas").exists() and not (bundle / "numpy").exists()
    assert not (bundle / "batch_container").exists()
