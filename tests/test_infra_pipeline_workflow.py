"""infra/pipeline_workflow.py: the pipeline jobs' state machine may do what its rounds need and no more, and the API
and the round's Lambda know the state machines they start."""

from __future__ import annotations

import pytest

from tests.infra_fixtures import Synthesis, listed, readable, role_statements, synthesize

PIPELINES = "PipelinesStateMachineA83E08E0"
MODEL_JOBS = "WorkflowStateMachine8F1B1C15"


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


def allowed(synthesis: Synthesis, role_prefix: str) -> dict[str, list[str]]:
    """action -> the resources it is allowed on, readable."""
    found: dict[str, list[str]] = {}
    for statement in role_statements(synthesis, role_prefix):
        for action in listed(statement["Action"]):
            found.setdefault(action, []).extend(readable(r) for r in listed(statement["Resource"]))
    return found


def test_the_pipeline_machine_starts_only_the_model_job_machine_and_watches_only_its_executions(synthesis) -> None:
    actions = allowed(synthesis, "PipelinesStateMachineRole")

    assert actions["states:StartExecution"] == [f"<{MODEL_JOBS}>"]
    for action in ("states:DescribeExecution", "states:StopExecution"):
        (executions,) = actions[action]
        assert ":execution:" in executions and MODEL_JOBS in executions, action
    assert any("StepFunctionsGetEventsForStepFunctionsExecutionRule" in r for r in actions["events:PutRule"])


def test_the_pipeline_machine_submits_batch_jobs_and_invokes_only_its_own_functions(synthesis) -> None:
    actions = allowed(synthesis, "PipelinesStateMachineRole")

    assert any(r.endswith(":job-definition/bep-*") for r in actions["batch:SubmitJob"])
    assert any("StepFunctionsGetEventsForBatchJobsRule" in r for r in actions["events:PutRule"])
    invoked = {r.split(".Arn>")[0].lstrip("<") for r in actions["lambda:InvokeFunction"]}
    assert invoked == {"PipelinesRoundD33A5B9D", "PipelinesStepEnded6B42BAD7"}


def test_the_api_starts_pipeline_jobs_and_the_round_names_the_model_job_machine(synthesis) -> None:
    functions = synthesis.resources("AWS::Lambda::Function")
    api = next(f for f in functions.values() if f["Handler"] == "lambdas.api.handler.lambda_handler")
    (round_function,) = (f for f in functions.values() if f["Handler"].endswith(".pipeline_round"))

    assert api["Environment"]["Variables"]["BEP_PIPELINE_STATE_MACHINE_ARN"] == {"Ref": PIPELINES}
    assert round_function["Environment"]["Variables"]["BEP_STATE_MACHINE_ARN"] == {"Ref": MODEL_JOBS}
    assert "BEP_COMPUTES" in round_function["Environment"]["Variables"]
