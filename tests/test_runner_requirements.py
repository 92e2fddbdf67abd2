"""An environment's pip requirements at runner start (batch_container/requirements.py): installed for the workers
where the runner may (the cloud, our image), checked with the pip line to run where it may not (locally).
Hermetic: the package installed is a wheel built here, found with PIP_NO_INDEX and PIP_FIND_LINKS."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from batch_container import requirements
from batch_container.runner import ScoringScriptError, ShardRunner
from batch_endpoints import workflow
from batch_endpoints.adapters.local.blobs import FolderBlobStore
from batch_endpoints.adapters.local.records import SqliteRecordStore
from batch_endpoints.backend import Backend
from batch_endpoints.specs import (
    Environment,
    Job,
    JobStatus,
    RetrySettings,
    RunSettings,
)
from tests.core_fixtures import record_runner_job, run_in_process

pytestmark = pytest.mark.slow

SCRIPT = """\
def run(mini_batch):
    import bep_tiny

    return [bep_tiny.VALUE] * len(mini_batch)
"""
MISSING = "surely-not-a-package-bep==1.0"


def tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel of `bep-tiny` 1.0: a zip holding the package and its dist-info."""
    folder.mkdir()
    wheel = folder / "bep_tiny-1.0-py3-none-any.whl"
    info = "bep_tiny-1.0.dist-info"
    files = {
        "bep_tiny/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: bep-tiny\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return folder


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    return tiny_wheel(tmp_path / "wheels")


def record_job(tmp_path: Path, pip_requirements: list[str], variables: dict[str, str]) -> tuple[Backend, Job]:
    records = SqliteRecordStore(str(tmp_path / "records.db"))
    blobs = FolderBlobStore(str(tmp_path / "storage"))
    backend = Backend("local", records, blobs, None, None, None, "", {})  # type: ignore[arg-type]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(3):
        (inputs / f"{n}.txt").write_text(str(n))
    settings = RunSettings(
        mini_batch_size=2, environment_variables=variables, retry_settings=RetrySettings(max_retries=0, timeout=60)
    )
    environment = Environment(pip_requirements=pip_requirements)
    return backend, record_runner_job(backend, SCRIPT, inputs, settings, environment=environment)


def run_job_expecting_failure(backend: Backend, job: Job) -> tuple[Job, ScoringScriptError]:
    """Run a job whose workers cannot start: each shard fails (its runner would exit 1), finalize says why."""
    plan = workflow.plan_job(backend, job.id)
    for uri in plan.shard_uris:
        with ShardRunner(backend.records, backend.blobs, job.id) as runner, pytest.raises(ScoringScriptError) as caught:
            runner.run_shard(runner.load_shard(uri))
    return workflow.finalize_job(backend, job.id), caught.value


@pytest.fixture
def in_the_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(requirements.INSTALL_VARIABLE, "1")


def test_unmet_requirements_are_the_missing_and_the_wrong_versions():
    pandas = pd.__version__
    found = requirements.unmet(
        ["pandas", f"pandas=={pandas}", "pandas<1", "mlflow==0.0.1", MISSING, 'pytest; sys_platform == "nowhere"']
    )

    assert [(u.requirement, u.installed is None) for u in found] == [
        ("pandas<1", False),
        ("mlflow==0.0.1", False),  # served by mlflow-skinny, at another version
        (MISSING, True),
    ]


def test_the_cloud_runner_installs_what_the_image_lacks_for_the_workers(tmp_path, wheels, in_the_cloud, caplog):
    caplog.set_level("INFO", logger="batch_container.requirements")
    backend, job = record_job(
        tmp_path, ["bep-tiny==1.0", "pandas"], {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    )

    finished = run_in_process(backend, job)

    assert finished.status == JobStatus.COMPLETED, finished.error
    assert pd.read_csv(tmp_path / "out" / "predictions.csv")["prediction"].tolist() == [42, 42, 42]
    # Only what was unmet went to pip; pandas, installed here, did not.
    assert "installing the environment's pip requirements: bep-tiny==1.0\n" in caplog.text + "\n"
    assert "bep_tiny" not in sys.modules  # installed for the workers, not into this Python


def test_requirements_already_met_call_no_pip(tmp_path, in_the_cloud, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("pip was called")

    monkeypatch.setattr(requirements.subprocess, "run", no_pip)
    backend, job = record_job(tmp_path, ["pandas", f"pandas=={pd.__version__}", "numpy>=1"], {})
    (tmp_path / "storage" / "code" / "score.py").write_text("def run(mini_batch):\n    return [1] * len(mini_batch)\n")

    assert run_in_process(backend, job).status == JobStatus.COMPLETED


def test_a_package_pip_cannot_find_fails_the_job_with_pips_message(tmp_path, wheels, in_the_cloud):
    backend, job = record_job(tmp_path, [MISSING], {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})

    finished, error = run_job_expecting_failure(backend, job)

    assert error.field == "environment.pip_requirements"
    assert finished.status == JobStatus.FAILED
    assert f"cannot install {MISSING} for Python {sys.version_info.major}.{sys.version_info.minor}." in finished.error
    assert "No matching distribution found for surely-not-a-package-bep==1.0" in finished.error


def test_a_pin_with_no_wheel_for_this_python_fails_before_any_worker_starts_naming_it(tmp_path, wheels, in_the_cloud):
    # Version 2.0 exists only as a wheel for Python 2.7: pip sees it and skips it.
    (wheels / "bep_tiny-2.0-py27-none-any.whl").write_bytes((wheels / "bep_tiny-1.0-py3-none-any.whl").read_bytes())
    backend, job = record_job(
        tmp_path, ["pandas", "bep-tiny==2.0"], {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    )
    (tmp_path / "storage" / "code" / "score.py").write_text("def init():\n    raise SystemExit('init ran')\n")

    finished, error = run_job_expecting_failure(backend, job)

    assert error.field == "environment.pip_requirements" and "init ran" not in finished.error
    assert finished.status == JobStatus.FAILED and finished.counts.files_succeeded == 0
    assert "cannot install bep-tiny==2.0 for Python" in finished.error
    assert "pin a version that has one" in finished.error


def test_azure_only_packages_are_skipped_with_a_note_and_never_installed(tmp_path, wheels, in_the_cloud, caplog):
    caplog.set_level("INFO", logger="batch_container.requirements")
    azure = ["azureml-core==1.55.0", "azureml-dataset-runtime[fuse]", "AzureML_Defaults", "inference-schema>=1.5"]
    backend, job = record_job(tmp_path, [*azure, "bep-tiny==1.0"], {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})

    finished = run_in_process(backend, job)

    assert finished.status == JobStatus.COMPLETED, finished.error
    assert "installing the environment's pip requirements: bep-tiny==1.0\n" in caplog.text + "\n"
    assert f"skipping {', '.join(azure)}: only Azure ML's own runtime uses them" in caplog.text


def test_locally_azure_only_packages_are_not_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv(requirements.INSTALL_VARIABLE, raising=False)

    assert requirements.without_azure_only(["azureml-mlflow", "pandas", "not a requirement!"]) == [
        "pandas",
        "not a requirement!",
    ]
    requirements.check_installed(
        requirements.without_azure_only(["azureml-core", "azureml-defaults", "pandas"]), needed_by="a test"
    )


def test_locally_a_missing_package_fails_with_the_pip_line_and_installs_nothing(tmp_path, wheels, monkeypatch):
    monkeypatch.delenv(requirements.INSTALL_VARIABLE, raising=False)
    monkeypatch.setattr(requirements, "install", lambda *a, **k: pytest.fail("the local runner installed"))
    backend, job = record_job(tmp_path, ["bep-tiny==1.0"], {"PIP_FIND_LINKS": str(wheels)})

    finished, error = run_job_expecting_failure(backend, job)

    assert finished.status == JobStatus.FAILED and error.field == "environment.pip_requirements"
    assert "the deployment's environment needs packages this environment lacks: bep-tiny==1.0" in finished.error
    assert "(pip install bep-tiny==1.0)" in finished.error
