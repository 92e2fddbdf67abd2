"""A pipeline's command step as its Batch job runs it (`python -m batch_container.command_step`): its inputs brought
into a working folder, its command run there, its outputs stored where the step's record says, and the step's
record ended with how it went."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_container import requirements
from batch_container.__main__ import main as container_main
from batch_container.command_step import main, run_command_step
from batch_endpoints.adapters.local.blobs import to_path
from batch_endpoints.backend import Backend
from batch_endpoints.errors import ValidationError
from batch_endpoints.repository import Repository
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import Environment, Job, StepRun, StepStatus
from tests.core_fixtures import local_backend_fixture, recorder_fixture, service_fixture  # noqa: F401
from tests.test_pipeline_jobs_local import control_fixture  # noqa: F401 (pytest fixture)
from tests.test_pipeline_rounds import recorded_job


@pytest.fixture
def job(service: BatchEndpointService, tmp_path: Path) -> Job:
    return recorded_job(service, tmp_path / "project")


def step_record(backend: Backend, job_id: str, step: str) -> StepRun:
    pipeline = Repository(backend.records).get_job(job_id).pipeline
    assert pipeline is not None
    return pipeline.step(step)


def test_the_command_runs_on_its_inputs_and_its_output_is_stored_where_the_step_says(
    job, local_backend, tmp_path, control
):
    returned = run_command_step(local_backend, job.id, "a", folder=str(tmp_path / "step"))

    recorded = step_record(local_backend, job.id, "a")
    assert returned == 0
    assert (recorded.status.value, recorded.error) == ("Completed", None)
    assert (Path(to_path(recorded.outputs["out"])) / "made-by").read_text() == "a"


def test_a_command_that_fails_records_its_exit_code_and_stores_no_output(job, local_backend, tmp_path, control):
    (control / "fail-a").touch()

    returned = run_command_step(local_backend, job.id, "a", folder=str(tmp_path / "step"))

    recorded = step_record(local_backend, job.id, "a")
    assert returned == 1
    assert (recorded.status.value, recorded.error) == ("Failed", "its command exited with code 1")
    assert not (Path(to_path(recorded.outputs["out"])) / "made-by").exists()


def test_a_step_the_job_does_not_have_is_refused_naming_the_step(job, local_backend, tmp_path):
    with pytest.raises(ValidationError) as refused:
        run_command_step(local_backend, job.id, "nope", folder=str(tmp_path / "step"))

    assert refused.value.field == "step"


def test_the_entry_point_exits_1_naming_what_it_cannot_run(job, caplog, monkeypatch, local_backend):
    monkeypatch.setattr("batch_container.command_step.from_environment", lambda: local_backend)

    assert main(["--job-id", "no-such-job", "--step", "a"]) == 1
    assert "cannot run step a of job no-such-job: job 'no-such-job' does not exist" in caplog.text


def test_the_images_entry_point_runs_the_step_a_batch_job_overrides_its_command_with(
    job, local_backend, monkeypatch, control
):
    """A Batch job overrides only the command, not the image's entry point (python -m batch_container): a
    pipeline's round submits `--job-id J --step S`, which runs the step as `python -m batch_container.command_step`."""
    monkeypatch.setattr("batch_container.command_step.from_environment", lambda: local_backend)

    assert container_main(["--job-id", job.id, "--step", "a"]) == 0

    step = step_record(local_backend, job.id, "a")
    assert step.status == StepStatus.COMPLETED
    assert (Path(to_path(step.outputs["out"])) / "made-by").read_text() == "a"


def with_requirements(backend: Backend, job: Job, step: str, *wanted: str) -> None:
    """The step's component given an environment with pip requirements, as a deployment pins it."""
    assert job.deployment.component is not None
    jobs = dict(job.deployment.component.jobs)
    component = jobs[step].component
    assert not isinstance(component, str)
    environment = Environment(pip_requirements=list(wanted))
    jobs[step] = jobs[step].model_copy(update={"component": component.model_copy(update={"environment": environment})})
    deployment = job.deployment.model_copy(
        update={"component": job.deployment.component.model_copy(update={"jobs": jobs})}
    )
    Repository(backend.records).update_job(
        job.id, lambda current: current.model_copy(update={"deployment": deployment})
    )


def test_a_requirement_this_python_lacks_fails_the_step_before_its_command_runs_naming_the_pip_line(
    job, local_backend, tmp_path, control, monkeypatch
):
    monkeypatch.delenv(requirements.INSTALL_VARIABLE, raising=False)
    with_requirements(local_backend, job, "a", "packaging", "no-such-package-here==1.0")

    returned = run_command_step(local_backend, job.id, "a", folder=str(tmp_path / "step"))

    recorded = step_record(local_backend, job.id, "a")
    assert returned == 1
    assert recorded.status == StepStatus.FAILED
    assert "pip install no-such-package-here==1.0" in (recorded.error or "")
    assert "step a's environment" in (recorded.error or "")
    assert not (Path(to_path(recorded.outputs["out"])) / "made-by").exists()


def test_on_the_runners_image_the_unmet_requirements_are_installed_for_the_command(
    job, local_backend, tmp_path, control, monkeypatch
):
    monkeypatch.setenv(requirements.INSTALL_VARIABLE, "1")
    installed: list[tuple[list[str], str]] = []
    monkeypatch.setattr(
        requirements, "install", lambda wanted, target, *, variables: installed.append((list(wanted), target))
    )
    with_requirements(local_backend, job, "a", "packaging", "no-such-package-here==1.0")

    returned = run_command_step(local_backend, job.id, "a", folder=str(tmp_path / "step"))

    assert returned == 0
    assert installed == [(["no-such-package-here==1.0"], str(tmp_path / "step" / "site"))]
