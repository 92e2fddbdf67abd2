"""`python -m batch_container.command_step --job-id J --step S`: run one command step of a pipeline job, the
Batch job a pipeline's round submits for it. The step's record (its inputs' values and URIs, its outputs' URIs)
says everything; the Batch job's parameters are only the two names (a SubmitJob request is at most 30 KiB).

Its inputs are brought into a working folder, its command runs there (its stdout and stderr are the container's,
which Batch sends to CloudWatch Logs), its outputs are stored under the job when it succeeds, and the step's
record says how it ended. Exit status: the command's own (0 when the step completed); 1 when the step cannot run
at all (no such job or step, not a command step).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile

from batch_container import requirements
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.backend import Backend
from batch_endpoints.command_steps import PreparedCommand, prepare_command, store_outputs
from batch_endpoints.errors import BatchEndpointError, ValidationError
from batch_endpoints.pipeline_graph import pipeline_steps
from batch_endpoints.pipeline_rounds import record_step
from batch_endpoints.repository import Repository
from batch_endpoints.specs import Environment
from batch_endpoints.specs.components import CommandComponent

log = logging.getLogger("batch_container.command_step")


def run_command_step(backend: Backend, job_id: str, step: str, *, folder: str) -> int:
    repo = Repository(backend.records)
    job = repo.get_job(job_id)
    if job.pipeline is None or job.deployment.component is None:
        raise ValidationError(f"job {job_id} is not a pipeline job", field="job_id")
    component = pipeline_steps(job.deployment.component).get(step)
    if not isinstance(component, CommandComponent):
        raise ValidationError(f"is not a command step of job {job_id}", field="step")
    run = job.pipeline.step(step)
    prepared = prepare_command(backend.blobs, run, component, folder)
    try:
        _meet_requirements(step, component, prepared, folder)
    except requirements.RequirementsError as exc:
        unmet = str(exc)
        log.error("%s", unmet)
        repo.update_job(job_id, lambda current: record_step(current, step, unmet))
        return 1
    log.info("$ %s", prepared.command)
    sys.stdout.flush()
    returned = subprocess.run(
        ["/bin/sh", "-c", prepared.command], cwd=prepared.cwd, env=prepared.environment, stdin=subprocess.DEVNULL
    ).returncode
    error = f"its command exited with code {returned}" if returned != 0 else None
    if error is None:
        store_outputs(backend.blobs, prepared, run)
    repo.update_job(job_id, lambda current: record_step(current, step, error))
    return returned


def _meet_requirements(step: str, component: CommandComponent, prepared: PreparedCommand, folder: str) -> None:
    """The step's environment's pip requirements, as a model deployment's are met (batch_container/requirements.py),
    put first on the command's PYTHONPATH when installed. A reference the deployment could not pin (an environment
    not registered here, such as Azure's curated ones) has none."""
    environment = component.environment
    if not isinstance(environment, Environment):
        return
    site = requirements.meet(
        environment.pip_requirements,
        os.path.join(folder, "site"),
        variables=component.environment_variables,
        needed_by=f"step {step}'s environment",
    )
    if site is not None:
        path = prepared.environment.get("PYTHONPATH", "")
        prepared.environment["PYTHONPATH"] = os.pathsep.join(filter(None, (site, path)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch_container.command_step")
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--step", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s step %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="bep-step-") as folder:
            return run_command_step(from_environment(), args.job_id, args.step, folder=folder)
    except BatchEndpointError as exc:
        log.error("cannot run step %s of job %s: %s", args.step, args.job_id, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
