"""infra/stack.py: the logical ids of the resources that hold data, are named, or are known by their ARN outside
the stack. CloudFormation replaces a resource whose logical id changes (a new one is created, the old one deleted or,
if retained, orphaned): a table or a bucket replaced on an upgrade leaves the data behind, a job queue or a log group
with a fixed name fails the update, and a replaced API or managed policy changes the URL or ARN that callers hold.
A refactoring that moves one of these constructs must keep its id (or override it back)."""

from __future__ import annotations

import pytest

from tests.infra_fixtures import OPTIONS, Synthesis, synthesize

STATEFUL = {
    # The records and the data: retained, so a new id would start empty beside the old ones.
    "AWS::DynamoDB::Table": {"StorageRecords0990588D"},
    "AWS::S3::Bucket": {"StorageData6BB23F4E", "StorageLogs2A2D4D26"},
    # Execution-ended events no step could deliver, kept for an operator to replay.
    "AWS::SQS::Queue": {"WorkflowExecutionEndedFailures0F5EEA89"},
    # Logs of jobs, steps and requests, deleted with their log group when it is replaced; the workflow's is named.
    "AWS::Logs::LogGroup": {
        "ApiAccessLogs50B185DB",
        "ApiHandlerLogsC9EFE062",
        "ComputeScoringLogsAF0EAC58",
        "WorkflowLogs8B0907C7",
        "WorkflowPlanLogs447354CE",
        "WorkflowFinalizeLogsE4F45B3E",
        "WorkflowMarkFailedLogsE1E194BB",
        "WorkflowExecutionEndedLogsD91007DD",
        "PipelinesLogs76EDB6CA",
        "PipelinesRoundLogs06C0D291",
        "PipelinesStepEndedLogs9614ACAB",
    },
    # Named <stack>-<compute>; the deployments' jobs and running shards are in them.
    "AWS::Batch::JobQueue": {"ComputeCpuClusterQueue418890A9", "ComputeGpuClusterQueueCEB76E6B"},
    # Job records name their executions by these state machines' ARNs.
    "AWS::StepFunctions::StateMachine": {"WorkflowStateMachine8F1B1C15", "PipelinesStateMachineA83E08E0"},
    # Its id is in the URL every CLI and SDK configuration holds.
    "AWS::ApiGateway::RestApi": {"ApiRestApiE35FEAFE"},
    # Attached by ARN to callers' users and roles; alarms' subscribers subscribe by ARN.
    "AWS::IAM::ManagedPolicy": {"AccessAdmin0DB03881", "AccessInvoker4545B685"},
    "AWS::SNS::Topic": {"MonitoringAlarms66989066"},
}
SCOPED_INVOKERS = {"AccessInvokerdigitsD34B7A56", "AccessInvokerfraudv2DEB44FDF"}
"""The policies of OPTIONS' scoped_invokers (digits, fraud-v2)."""


def logical_ids(synthesis: Synthesis) -> dict[str, set[str]]:
    return {resource_type: set(synthesis.resources(resource_type)) for resource_type in STATEFUL}


def test_the_stateful_resources_keep_their_logical_ids() -> None:
    assert logical_ids(synthesize()) == STATEFUL


@pytest.mark.parametrize("context", [OPTIONS], ids=["every setting changed"])
def test_the_stateful_resources_keep_their_logical_ids_whatever_the_settings(context: dict[str, str]) -> None:
    expected = {**STATEFUL, "AWS::IAM::ManagedPolicy": STATEFUL["AWS::IAM::ManagedPolicy"] | SCOPED_INVOKERS}
    assert logical_ids(synthesize(**context)) == expected
