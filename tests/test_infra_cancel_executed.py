"""A job canceled while its shards run, on the synthesized state machine executed by moto (tests/infra_fixtures.py):
the API's cancel records the request and stops the execution, which ends ABORTED without running another state;
EventBridge hands that end to the execution_ended step, which closes the job."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_endpoints.specs import JobStatus
from lambdas.workflow import handlers
from tests.aws_fixtures import INPUT_BUCKET, put_objects
from tests.infra_fixtures import LAMBDA_CONTEXT, executing_aws  # noqa: F401
from tests.test_execution_ended import ended_event
from tests.test_infra_workflow_executed import workflow_definition  # noqa: F401
from tests.test_runner_on_aws import MEAN_PIXEL_SCRIPT, digit_pngs
from tests.workflow_fixtures import deploy_workflow

pytestmark = pytest.mark.slow


# moto 5.2.1's interpreter: stopping the execution wakes the thread waiting on the .sync Batch job, which dies
# comparing a dict with a number; the execution is ABORTED all the same.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_job_canceled_while_its_shards_run_ends_canceled_once_its_aborted_execution_is_reported(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    workflow_definition: tuple[dict[str, Any], dict[str, str]],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The API's cancel records the request and stops the execution; the execution ends ABORTED without running
    another state, and EventBridge hands that end to execution_ended, which finalizes the job as Canceled."""
    scoring, canceled = threading.Event(), threading.Event()

    @contextlib.contextmanager
    def hold_shards_until_canceled(step: str) -> Iterator[None]:
        if step == "batch job":
            scoring.set()
            assert canceled.wait(60), "the test never canceled the job"
        yield

    deployed = deploy_workflow(monkeypatch, *workflow_definition, around=hold_shards_until_canceled)
    try:
        deployed.ready(tmp_path, MEAN_PIXEL_SCRIPT)
        put_objects(INPUT_BUCKET, {f"digits/{name}": data for name, data in digit_pngs(6).items()})
        job = deployed.service.invoke(deployed.invocation(f"s3://{INPUT_BUCKET}/digits"))
        assert scoring.wait(60), "no shard started"

        requested = deployed.service.cancel_job(job.id)
        canceled.set()
        execution = deployed.wait(job.execution)

        assert requested.status == JobStatus.CANCEL_REQUESTED
        assert execution["status"] == "ABORTED", execution
        assert "Merge outputs and finish job" not in deployed.states_entered(job.execution)
        assert deployed.service.get_job(job.id).status == JobStatus.CANCEL_REQUESTED
        event = ended_event(job.execution)
        result = handlers.execution_ended(event, LAMBDA_CONTEXT)

        final = deployed.service.get_job(job.id)
        assert result == {"job_id": job.id, "status": "Canceled", "closed": True}
        assert final.status == JobStatus.CANCELED and final.counts.files == 6
        counts = final.counts
        assert counts.files_succeeded + counts.files_failed + counts.files_not_scored == 6
        assert not deployed.backend.blobs.exists(final.output_uri or "")
    finally:
        canceled.set()
        handlers.set_backend(None)
