"""infra/lambda_code.py: the Lambda bundles, built for real with pip (network, or pip's cache), hold everything the
handlers import: the API's, and the workflow's, which also reads Parquet inputs' footers and merges Parquet outputs
with pyarrow. They are built for the Lambda runtime's Python, as `cdk synth` builds them, and the handlers are
imported from them by that version's interpreter with nothing else on the path: the runtime is the one place the
project runs another version than development's (infra/lambda_code.py says why)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.lambda_code import PACKAGES, RUNTIME_PYTHON, PipBundling
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
# Two Parquet parts with different columns, merged by finalize's code into one file, read back, and its footer read
# as plan reads an input's: pyarrow loads everything both need from the workflow bundle (numpy is not there).
PARQUET_MERGE_AND_FOOTER = """
import io
import pyarrow as pa, pyarrow.parquet as pq
from batch_endpoints import merging

def part(**columns):
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue().to_pybytes()

parts = {"p0": part(file=["a", "b"], score=[1, 2]), "p1": part(file=["c"], score=[0.5], label=["x"])}
merged = b"".join(merging.merged("parquet", parts.__getitem__, [("p0", []), ("p1", [])]))
# Without threads, as the merge reads: pyarrow may abort at exit while its pool's threads wind down.
table = pq.read_table(pa.BufferReader(merged), use_threads=False)
print(table.column_names, table.column("score").to_pylist())

from batch_endpoints import parquet_footer

class Store:
    def read_range(self, uri, start, end=None):
        return merged[start:end]

print(parquet_footer.read_footer(Store(), "merged").metadata.num_rows)
"""


def size_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1024**2


def lambda_python() -> str:
    interpreter = shutil.which(f"python{RUNTIME_PYTHON}")
    if interpreter is None:
        # The bundles are still built above for that version (pip fetches its wheels from any interpreter); only
        # importing from them needs it.
        pytest.skip(f"importing the Lambda bundles needs python{RUNTIME_PYTHON}, which this machine lacks")
    return interpreter


def run_from(bundle: Path, script: str) -> subprocess.CompletedProcess:
    # -S: no site-packages, so only the standard library and the bundle can satisfy the imports. PYENV_VERSION
    # lets a pyenv shim run that interpreter beside another global one (anything else ignores it).
    return subprocess.run(
        [lambda_python(), "-S", "-c", f"import sys; sys.path.insert(0, {str(bundle)!r})\n{script}"],
        cwd=bundle,
        capture_output=True,
        text=True,
        env={**os.environ, "PYENV_VERSION": RUNTIME_PYTHON},
    )


def build(tmp_path_factory: pytest.TempPathFactory, *, tables: bool) -> Path:
    out = tmp_path_factory.mktemp("workflow-bundle" if tables else "api-bundle")
    PipBundling(REPOSITORY_ROOT, tables=tables).bundle(out)
    return out


@pytest.fixture(scope="module")
def api_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory, tables=False)


@pytest.fixture(scope="module")
def workflow_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory, tables=True)


@pytest.fixture(params=["api", "workflow"])
def bundle(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_bundle")


def test_the_handlers_import_from_the_bundle_alone_on_the_runtime_python(bundle: Path) -> None:
    finished = run_from(bundle, "; ".join([*(f"import {m}" for m in IMPORTS), "print(sys.version_info[:2])"]))
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == str(tuple(int(part) for part in RUNTIME_PYTHON.split(".")))


def test_a_parquet_merge_and_footer_run_from_the_workflow_bundle_alone(workflow_bundle: Path) -> None:
    finished = run_from(workflow_bundle, PARQUET_MERGE_AND_FOOTER)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split("\n")[:2] == ["['file', 'score', 'label'] [1.0, 2.0, 0.5]", "3"]
    assert not (workflow_bundle / "numpy").exists()


def test_the_bundles_fit_lambda_and_the_api_bundle_stays_small(api_bundle: Path, workflow_bundle: Path) -> None:
    assert size_mb(workflow_bundle) < 0.7 * LAMBDA_UNZIPPED_LIMIT / 1024**2, f"{size_mb(workflow_bundle):.0f} MB"
    assert size_mb(api_bundle) < 0.3 * LAMBDA_UNZIPPED_LIMIT / 1024**2, f"{size_mb(api_bundle):.0f} MB"
    assert not (api_bundle / "pyarrow").exists()
    assert not list(workflow_bundle.glob("pyarrow/include")) and not list(workflow_bundle.rglob("*.pyx"))


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
