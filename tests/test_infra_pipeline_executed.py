"""The synthesized pipeline state machine, executed by moto (tests/infra_fixtures.py): its rounds run the real
pipeline_round and pipeline_step_ended handlers, a command step's Batch job runs the real
`batch_container.command_step`, and a parallel step runs as an execution of the synthesized model-job state
machine, whose Batch jobs run the real scoring runner, all on moto's S3 and DynamoDB.

The pipeline is examples/pipeline's shape, small: prepare (command) -> score (parallel) -> summarize (command), with
a literal input and two outputs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_endpoints import yaml_specs
from batch_endpoints.service import InvokeRequest
from batch_endpoints.specs import Job, JobStatus, StepStatus
from batch_endpoints.specs.invocation import NamedInput
from lambdas.workflow import handlers
from tests.aws_fixtures import INPUT_BUCKET, put_objects
from tests.core_fixtures import write_tree
from tests.infra_fixtures import (
    HOST_TERMINATED,
    LAMBDA_CONTEXT,
    HostTerminated,
    executing_aws,  # noqa: F401 (pytest fixture)
    state_machine_definition,
    synthesize,
)
from tests.test_execution_ended import ended_event
from tests.workflow_fixtures import Deployed, Step, deploy_workflow

pytestmark = pytest.mark.slow

PIPELINE = """\
type: pipeline
name: tally
inputs:
  input_data: {type: uri_folder}
  score_mode: {type: string, default: append, enum: [append, replace]}
outputs:
  scores: {type: uri_folder}
  summary: {type: uri_folder}
jobs:
  prepare:
    type: command
    component:
      type: command
      code: prepare
      inputs: {data: {type: uri_folder}}
      outputs: {prepared: {type: uri_folder}}
      command: python prepare.py ${{inputs.data}} ${{outputs.prepared}}
    inputs: {data: "${{parent.inputs.input_data}}"}
  score:
    type: parallel
    component:
      type: parallel
      inputs: {data: {type: uri_folder}}
      outputs: {predictions: {type: uri_folder}}
      input_data: ${{inputs.data}}
      mini_batch_size: "2"
      resources: {instance_count: 1}
      error_threshold: 0
      retry_settings: {max_retries: 0, timeout: 60}
      task:
        type: run_function
        code: score
        entry_script: score.py
        append_row_to: ${{outputs.predictions}}
    inputs: {data: "${{parent.jobs.prepare.outputs.prepared}}"}
  summarize:
    type: command
    component:
      type: command
      code: summarize
      inputs:
        predictions: {type: uri_folder}
        score_mode: {type: string}
      outputs: {scores: {type: uri_folder}, summary: {type: uri_folder}}
      command: >-
        python summarize.py ${{inputs.predictions}} ${{inputs.score_mode}} ${{outputs.scores}}
        ${{outputs.summary}}
    inputs:
      predictions: "${{parent.jobs.score.outputs.predictions}}"
      score_mode: "${{parent.inputs.score_mode}}"
    outputs:
      scores: "${{parent.outputs.scores}}"
      summary: "${{parent.outputs.summary}}"
"""

DEPLOYMENT = """\
name: tally
endpoint_name: tally
type: pipeline
component: pipeline.yml
settings: {default_compute: cpu-cluster}
"""

# Each CSV's values, doubled; a file named broken.csv fails the step, with an exit code the job definition's retry
# strategy (for a parallel step's shards) would retry.
PREPARE = """\
import pathlib, sys
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in sorted(source.glob("*.csv")):
    if path.name == "broken.csv":
        print(f"cannot prepare {path.name}", file=sys.stderr)
        sys.exit(3)
    values = [int(line) * 2 for line in path.read_text().split()]
    (target / path.name).write_text("\\n".join(map(str, values)) + "\\n")
"""

SCORE = """\
import os


def run(mini_batch):
    return [f"{os.path.basename(path)} {sum(int(v) for v in open(path).read().split())}" for path in mini_batch]
"""

SUMMARIZE = """\
import pathlib, sys
predictions, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
scores, summary = pathlib.Path(sys.argv[3]), pathlib.Path(sys.argv[4])
rows = sorted((predictions / "parallel_run_step.txt").read_text().splitlines())
(scores / "scores.txt").write_text("\\n".join(rows) + "\\n")
(summary / "summary.txt").write_text(f"{mode} {len(rows)} {sum(int(row.split()[1]) for row in rows)}\\n")
"""

INPUTS = {"a.csv": b"1\n2\n", "b.csv": b"3\n", "c.csv": b"4\n5\n6\n"}


@pytest.fixture(scope="module")
def definitions() -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    synthesis = synthesize()
    model_jobs, functions = state_machine_definition(synthesis)
    pipelines, _ = state_machine_definition(synthesis, "Pipelines")
    return model_jobs, functions, pipelines


def deploy(
    monkeypatch: pytest.MonkeyPatch,
    definitions: tuple[dict[str, Any], dict[str, str], dict[str, Any]],
    tmp_path: Path,
    around: Step | None = None,
) -> Deployed:
    """Both state machines on moto, and endpoint tally whose default deployment is the pipeline, registered as the
    API registers a deployment (its Batch job definition included)."""
    model_jobs, functions, pipelines = definitions
    extra = {"around": around} if around else {}
    deployed = deploy_workflow(monkeypatch, model_jobs, functions, pipelines=pipelines, **extra)
    root = write_tree(
        tmp_path / "project",
        {
            "pipeline.yml": PIPELINE,
            "deployment.yml": DEPLOYMENT,
            "prepare/prepare.py": PREPARE,
            "score/score.py": SCORE,
            "summarize/summarize.py": SUMMARIZE,
        },
    )
    deployed.service.create_endpoint(yaml_specs.load_endpoint_mapping({"name": "tally"}))
    deployed.service.create_deployment(yaml_specs.load_deployment(root / "deployment.yml"), set_default=True)
    return deployed


def invoke(deployed: Deployed, inputs: dict[str, bytes]) -> Job:
    put_objects(INPUT_BUCKET, {f"tally/{name}": data for name, data in inputs.items()})
    request = InvokeRequest(
        endpoint_name="tally",
        named_inputs={
            "input_data": NamedInput(path=f"s3://{INPUT_BUCKET}/tally"),
            "score_mode": NamedInput(default="replace"),
        },
    )
    return deployed.service.invoke(request)


def statuses(job: Job) -> dict[str, StepStatus]:
    assert job.pipeline is not None
    return {run.step: run.status for run in job.pipeline.steps}


Deploying = Callable[..., Deployed]


@pytest.fixture
def deploying(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    definitions: tuple[dict[str, Any], dict[str, str], dict[str, Any]],
    tmp_path: Path,
) -> Iterator[Deploying]:
    """`deploy`, given only how to wrap each step (`around`)."""
    yield lambda around=None: deploy(monkeypatch, definitions, tmp_path, around)
    handlers.set_backend(None)


def test_a_pipeline_job_runs_its_steps_in_rounds_and_ends_completed_with_its_outputs_in_s3(
    deploying: Deploying,
) -> None:
    deployed = deploying()

    job = invoke(deployed, INPUTS)
    execution = deployed.wait(job.execution or "")
    final = deployed.service.get_job(job.id)

    assert execution["status"] == "SUCCEEDED", (execution, final.error)
    assert execution["name"] == job.id and execution["stateMachineArn"] == deployed.pipelines_arn
    assert final.status == JobStatus.COMPLETED and final.ended_at is not None
    assert statuses(final) == {name: StepStatus.COMPLETED for name in ("prepare", "score", "summarize")}
    assert final.pipeline is not None
    blobs = deployed.backend.blobs
    summary = final.pipeline.outputs["summary"].rstrip("/") + "/summary.txt"
    scores = final.pipeline.outputs["scores"].rstrip("/") + "/scores.txt"
    # Every value doubled by prepare, summed per file by the parallel step, gathered by summarize.
    assert blobs.get_bytes(summary).decode() == "replace 3 42\n"
    assert blobs.get_bytes(scores).decode().splitlines() == ["a.csv 6", "b.csv 6", "c.csv 30"]
    # One round a step, in dependency order: each round's steps, then the next round picked.
    entered = deployed.states_entered(execution["executionArn"])
    assert entered.count("Pick the ready steps") == 4
    assert entered.count("Run the command step") == 2 and entered.count("Run the parallel step's job") == 1
    assert entered[-2:] == ["How did the job end?", "Job completed"]
    # Command steps are Batch jobs named <job id>-<step>, told which job and step to run; the parallel step's job
    # scored its shards in a child execution of the model-job state machine, named after its job.
    commands = [j for j in deployed.batch_jobs if "step" in j["options"]]
    assert [(j["name"], j["options"]) for j in commands] == [
        (f"{job.id}-{step}", {"job_id": job.id, "step": step}) for step in ("prepare", "summarize")
    ]
    child = deployed.service.get_job(f"{job.id}-score")
    assert child.status == JobStatus.COMPLETED and child.parent_job_name == job.id
    assert child.execution == f"{deployed.state_machine_arn.replace(':stateMachine:', ':execution:')}:{child.id}"
    assert deployed.wait(child.execution)["status"] == "SUCCEEDED"
    assert all(j["options"]["job_id"] == child.id for j in deployed.batch_jobs if "shard" in j["options"])


def test_a_failing_command_step_fails_the_job_naming_the_step_and_the_steps_after_it_never_run(
    deploying: Deploying,
) -> None:
    deployed = deploying()

    job = invoke(deployed, {**INPUTS, "broken.csv": b"7\n"})
    execution = deployed.wait(job.execution or "")
    final = deployed.service.get_job(job.id)

    assert (execution["status"], execution["error"]) == ("FAILED", "JobFailed")
    assert final.status == JobStatus.FAILED
    assert final.error is not None and final.error.startswith("step prepare failed: ")
    assert execution["cause"] == final.error
    assert statuses(final) == {
        "prepare": StepStatus.FAILED,
        "score": StepStatus.CANCELED,
        "summarize": StepStatus.CANCELED,
    }
    assert [(j["name"], j["attempt"]) for j in deployed.batch_jobs] == [(f"{job.id}-prepare", 1)]  # run once
    assert "Run the parallel step's job" not in deployed.states_entered(execution["executionArn"])


def test_a_command_step_whose_host_went_away_runs_again_and_the_job_completes(deploying: Deploying) -> None:
    lost = threading.Event()

    @contextlib.contextmanager
    def lose_the_first_steps_host(step: str) -> Iterator[None]:
        if step == "batch job" and not lost.is_set():
            lost.set()
            raise HostTerminated()
        yield

    deployed = deploying(lose_the_first_steps_host)

    job = invoke(deployed, INPUTS)
    execution = deployed.wait(job.execution or "")

    assert execution["status"] == "SUCCEEDED", execution
    assert deployed.service.get_job(job.id).status == JobStatus.COMPLETED
    prepare = [(j["attempt"], j["reason"]) for j in deployed.batch_jobs if j["name"] == f"{job.id}-prepare"]
    assert prepare == [(1, HOST_TERMINATED), (2, None)]


# moto 5.2.1's interpreter: stopping the execution wakes the thread waiting on the .sync task, which may die
# comparing a dict with a number (tests/test_infra_cancel_executed.py); and an execution stopped inside an inline
# Map's iteration ends FAILED there (its Map dies reading the abort), where Step Functions ends it ABORTED. The
# test hands execution_ended the event Step Functions sends, ABORTED.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_pipeline_job_canceled_while_a_step_runs_ends_canceled_once_its_aborted_execution_is_reported(
    deploying: Deploying,
) -> None:
    running, canceled = threading.Event(), threading.Event()

    @contextlib.contextmanager
    def hold_the_first_step_until_canceled(step: str) -> Iterator[None]:
        if step == "batch job" and not running.is_set():
            running.set()
            assert canceled.wait(60), "the test never canceled the job"
        yield

    deployed = deploying(hold_the_first_step_until_canceled)
    try:
        job = invoke(deployed, INPUTS)
        assert running.wait(60), "no step started"

        requested = deployed.service.cancel_job(job.id)
        canceled.set()
        execution = deployed.wait(job.execution or "")
        assert requested.status == JobStatus.CANCEL_REQUESTED
        assert execution["status"] in ("ABORTED", "FAILED"), execution
        # No state ran after the stop: the round's record is as the cancel left it.
        assert deployed.service.get_job(job.id).status == JobStatus.CANCEL_REQUESTED
        result = handlers.execution_ended(ended_event(job.execution or "", status="ABORTED"), LAMBDA_CONTEXT)
    finally:
        canceled.set()

    final = deployed.service.get_job(job.id)
    assert result == {"job_id": job.id, "status": "Canceled", "closed": True}
    assert final.status == JobStatus.CANCELED
    # The steps never started are Canceled. moto's Batch does not terminate the job the stopped execution waited
    # on (AWS Batch would), so its container may finish and record its step Completed before the job is closed;
    # once closed, the step keeps Canceled.
    steps = statuses(final)
    assert (steps["score"], steps["summarize"]) == (StepStatus.CANCELED, StepStatus.CANCELED)
    assert steps["prepare"] in (StepStatus.COMPLETED, StepStatus.CANCELED)
    assert final.error is None and final.ended_at is not None
    assert "Run the parallel step's job" not in deployed.states_entered(execution["executionArn"])
