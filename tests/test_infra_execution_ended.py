"""infra/workflow.py: the EventBridge rule that hands this state machine's executions that ended outside its states
(ABORTED, FAILED, TIMED_OUT) to the execution_ended function, which may do what Finalize does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.workflow.ended_executions import ENDED_STATUSES
from tests.infra_fixtures import Synthesis, synthesize

HANDLER = "lambdas.workflow.handlers.execution_ended"


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


def logical_id(synthesis: Synthesis, resource_type: str, **properties: Any) -> str:
    (found,) = (
        name
        for name, props in synthesis.resources(resource_type).items()
        if all(props.get(key) == value for key, value in properties.items())
    )
    return found


def granted(synthesis: Synthesis, function_id: str) -> set[tuple[str, str]]:
    """(action, resource) of every statement of the function's role's policies."""
    role = synthesis.resources("AWS::Lambda::Function")[function_id]["Role"]["Fn::GetAtt"][0]
    pairs = set()
    for policy in synthesis.resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Roles"]:
            continue
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            pairs |= {(action, json.dumps(resource, sort_keys=True)) for action in actions for resource in resources}
    return pairs


def test_the_rule_selects_both_state_machines_executions_that_ended_outside_their_states(synthesis: Synthesis) -> None:
    (rule,) = synthesis.resources("AWS::Events::Rule").values()
    machines = synthesis.resources("AWS::StepFunctions::StateMachine")

    pattern = rule["EventPattern"]

    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    # The job workflow's and the pipeline workflow's: the same step closes both kinds of job.
    assert sorted(ref["Ref"] for ref in pattern["detail"]["stateMachineArn"]) == sorted(machines)
    assert sorted(pattern["detail"]["status"]) == sorted(ENDED_STATUSES) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert rule["State"] == "ENABLED"


def test_the_rule_invokes_the_function_with_retries_and_a_dead_letter_queue(synthesis: Synthesis) -> None:
    ((rule_id, rule),) = synthesis.resources("AWS::Events::Rule").items()
    function = logical_id(synthesis, "AWS::Lambda::Function", Handler=HANDLER)
    (queue,) = synthesis.resources("AWS::SQS::Queue")

    (target,) = rule["Targets"]

    assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 24 * 3600}
    assert any(
        p["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
        and p["Principal"] == "events.amazonaws.com"
        and p["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}
        for p in synthesis.resources("AWS::Lambda::Permission").values()
    )
    # Lambda's own retries of the asynchronous invocation end in the same queue.
    (invoke_config,) = synthesis.resources("AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["FunctionName"] == {"Ref": function}
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}


def test_the_function_may_do_what_finalize_does_for_as_long(synthesis: Synthesis) -> None:
    functions = synthesis.resources("AWS::Lambda::Function")
    ended = logical_id(synthesis, "AWS::Lambda::Function", Handler=HANDLER)
    finalize = logical_id(synthesis, "AWS::Lambda::Function", Handler="lambdas.workflow.handlers.finalize")
    (queue,) = synthesis.resources("AWS::SQS::Queue")

    assert functions[ended]["Timeout"] == functions[finalize]["Timeout"] == 900
    assert functions[ended]["MemorySize"] == functions[finalize]["MemorySize"]
    assert functions[ended]["Code"] == functions[finalize]["Code"]
    assert functions[ended]["Environment"] == functions[finalize]["Environment"]
    extra = granted(synthesis, ended) - granted(synthesis, finalize)
    assert granted(synthesis, finalize) <= granted(synthesis, ended)
    # Besides Finalize's rights, only sending what failed to its own queue.
    assert {resource for _, resource in extra} == {json.dumps({"Fn::GetAtt": [queue, "Arn"]})}
    assert {action for action, _ in extra} <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
