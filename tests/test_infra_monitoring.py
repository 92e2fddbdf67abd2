"""infra/monitoring.py and the stack's outputs: a dashboard, alarms that notify a topic, links to the consoles."""

from __future__ import annotations

import json

import pytest

from tests.infra_fixtures import Synthesis, synthesize


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


def test_alarms_on_failed_jobs_lambda_errors_and_api_server_errors(synthesis: Synthesis) -> None:
    alarms = list(synthesis.resources("AWS::CloudWatch::Alarm").values())
    metrics = {
        query["MetricStat"]["Metric"]["MetricName"]
        for alarm in alarms
        for query in alarm.get("Metrics", [])
        if "MetricStat" in query
    } | {alarm["MetricName"] for alarm in alarms if "MetricName" in alarm}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "Errors", "5XXError"} <= metrics
    (topic,) = synthesis.resources("AWS::SNS::Topic")
    assert all(alarm["AlarmActions"] == [{"Ref": topic}] for alarm in alarms)
    assert all(alarm["TreatMissingData"] == "notBreaching" for alarm in alarms)


def test_the_dashboard_shows_jobs_lambdas_the_api_and_scoring_errors(synthesis: Synthesis) -> None:
    (dashboard,) = synthesis.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    for shown in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "Errors", "Throttles", "Latency"):
        assert shown in body
    assert "Scoring containers: latest errors" in body


def dashboard_widgets(synthesis: Synthesis) -> list[dict]:
    """The dashboard body as JSON: its Fn::Join's references (region, names) become placeholders."""
    (dashboard,) = synthesis.resources("AWS::CloudWatch::Dashboard").values()
    _, parts = dashboard["DashboardBody"]["Fn::Join"]
    return json.loads("".join(part if isinstance(part, str) else "REF" for part in parts))["widgets"]


def test_the_dashboard_shows_the_workflow_metrics_of_every_endpoint(synthesis: Synthesis) -> None:
    graphs = {
        widget["properties"]["title"]: [item[0]["expression"] for item in widget["properties"]["metrics"]]
        for widget in dashboard_widgets(synthesis)
        if widget["properties"].get("metrics") and "expression" in widget["properties"]["metrics"][0][0]
    }

    def search(name: str) -> str:
        return f"SEARCH('{{BatchEndpoints,endpoint}} MetricName=\"{name}\"', 'Sum', 300)"

    assert graphs["Jobs by endpoint"] == [
        search(n) for n in ("JobsStarted", "JobsCompleted", "JobsFailed", "JobsCanceled")
    ]
    assert graphs["Mini-batches per second by endpoint"] == [
        f"{search('MiniBatchesScored')} / 300",
        search("MiniBatchesPlanned"),
    ]
    assert graphs["Files by endpoint"] == [
        search(n) for n in ("FilesFailed", "FilesNotScored", "FilesSucceeded", "FilesPlanned")
    ]
    alarmed = json.dumps(synthesis.resources("AWS::CloudWatch::Alarm"))
    assert "FilesFailed" not in alarmed  # failed files can be normal: the error_threshold decides


def test_the_outputs_name_everything_a_user_needs(synthesis: Synthesis) -> None:
    outputs = synthesis.template["Outputs"]
    assert {
        "ApiUrl",
        "DataBucketName",
        "RecordTableName",
        "StateMachineArn",
        "PipelineStateMachineArn",
        "AdminPolicyArn",
        "InvokerPolicyArn",
        "AlarmTopicArn",
        "DashboardUrl",
        "StateMachineConsoleUrl",
        "BatchConsoleUrl",
        "CpuJobQueueArn",
        "GpuJobQueueArn",
    } <= set(outputs)
    assert all(output.get("Description") for output in outputs.values())


def test_the_failed_jobs_alarm_counts_both_state_machines_failed_and_timed_out_executions(synthesis: Synthesis) -> None:
    machines = set(synthesis.resources("AWS::StepFunctions::StateMachine"))
    (alarm,) = (a for a in synthesis.resources("AWS::CloudWatch::Alarm").values() if "job's execution" in str(a))
    watched = {
        (query["MetricStat"]["Metric"]["MetricName"], dimension["Value"]["Ref"])
        for query in alarm["Metrics"]
        if "MetricStat" in query
        for dimension in query["MetricStat"]["Metric"]["Dimensions"]
    }

    assert watched == {(name, m) for name in ("ExecutionsFailed", "ExecutionsTimedOut") for m in machines}
    assert len(machines) == 2
