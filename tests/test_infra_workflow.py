"""infra/job_states.py and infra/workflow.py: the state machine's definition, read from the template as JSON,
against the contract in lambdas.workflow. tests/test_infra_workflow_executed.py runs the same definition."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra_fixtures import REPOSITORY_ROOT, Synthesis, state_machine_definition, synthesize

SUBMIT_JOB_SYNC = "arn:aws:states:::batch:submitJob.sync"


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


@pytest.fixture(scope="module")
def definition(synthesis: Synthesis) -> dict[str, Any]:
    return state_machine_definition(synthesis)[0]


@pytest.fixture(scope="module")
def statements(synthesis: Synthesis) -> list[dict[str, Any]]:
    """The state machine role's policy statements."""
    return [
        statement
        for logical_id, policy in synthesis.resources("AWS::IAM::Policy").items()
        if logical_id.startswith("WorkflowStateMachine")
        for statement in policy["PolicyDocument"]["Statement"]
    ]


@pytest.fixture(scope="module")
def score_shards(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]["Score shards"]


def test_plan_then_a_distributed_map_over_the_shard_list_in_s3_then_finalize(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "Plan mini-batches and shards"
    assert states["Plan mini-batches and shards"]["Next"] == "Input listed?"
    assert states["Input listed?"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.plan.planned", "BooleanEquals": False, "Next": "Plan mini-batches and shards"}],
        "Default": "Score shards",
    }
    assert states["Score shards"]["Next"] == "Merge outputs and finish job"
    assert states["Merge outputs and finish job"]["Next"] == "Did the job complete?"
    plan = states["Plan mini-batches and shards"]
    assert plan["Resource"] == "arn:aws:states:::lambda:invoke"
    assert plan["Parameters"]["Payload"] == {"job_id.$": "$.job_id"}
    assert plan["ResultPath"] == "$.plan"
    assert plan["ResultSelector"]["planned.$"] == "$.Payload.planned"


def test_the_map_reads_its_items_from_s3_at_most_instance_count_at_once(score_shards: dict[str, Any]) -> None:
    assert score_shards["Type"] == "Map"
    assert score_shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert score_shards["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.plan.shards_bucket", "Key.$": "$.plan.shards_key"},
    }
    assert score_shards["MaxConcurrencyPath"] == "$.instance_count"
    assert score_shards["ResultPath"] is None


def test_each_item_carries_ids_only_as_the_contract_says(score_shards: dict[str, Any]) -> None:
    assert score_shards["ItemSelector"] == {
        "shard.$": "$$.Map.Item.Value.shard",
        "job_id.$": "$.job_id",
        "compute.$": "$.compute",
        "job_queue.$": "$.job_queue",
        "job_definition.$": "$.job_definition",
        "attempt_duration_s.$": "$.plan.attempt_duration_s",
        "shard_number.$": "$$.Map.Item.Index",
    }


def test_both_branches_submit_the_shard_to_batch_and_wait(score_shards: dict[str, Any]) -> None:
    processor = score_shards["ItemProcessor"]
    choice = processor["States"][processor["StartAt"]]
    assert choice["Type"] == "Choice"
    assert choice["Choices"] == [{"Variable": "$.compute", "StringEquals": "gpu", "Next": "Score shard on GPU"}]
    assert choice["Default"] == "Score shard on CPU"
    for name in ("Score shard on CPU", "Score shard on GPU"):
        task = processor["States"][name]
        assert task["Resource"] == SUBMIT_JOB_SYNC
        assert task["Parameters"] == {
            "JobName.$": "States.Format('{}-s{}', $.job_id, $.shard_number)",
            "JobQueue.$": "$.job_queue",
            "JobDefinition.$": "$.job_definition",
            "Parameters": {"job_id.$": "$.job_id", "shard.$": "$.shard"},
            "Timeout": {"AttemptDurationSeconds.$": "$.attempt_duration_s"},
        }
        assert task["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Did the Batch job run?"}
        ]
        assert task["Next"] == "Shard scored"


def test_only_transient_batch_errors_are_retried_and_for_minutes_not_hours(score_shards: dict[str, Any]) -> None:
    processor = score_shards["ItemProcessor"]
    for name in ("Score shard on CPU", "Score shard on GPU"):
        (retry,) = processor["States"][name]["Retry"]
        assert set(retry["ErrorEquals"]) == {
            "Batch.ServerException",
            "Batch.AWSBatchException",
            "Batch.TooManyRequestsException",
            "Batch.SdkClientException",
        }
        # A client error (an inactive job definition) and a job that failed go straight to the Catch.
        assert not {"Batch.ClientException", "States.TaskFailed", "States.ALL"} & set(retry["ErrorEquals"])
        assert retry["JitterStrategy"] == "FULL"
        waits = [
            min(retry["IntervalSeconds"] * retry["BackoffRate"] ** n, retry["MaxDelaySeconds"])
            for n in range(retry["MaxAttempts"])
        ]
        assert sum(waits) <= 10 * 60


def test_every_child_execution_ends_with_an_empty_output(score_shards: dict[str, Any]) -> None:
    """Every end of the item processor is a Pass whose result is {}: what the Map's ResultWriter writes to S3 stays
    a few bytes per shard, whatever the shard's Batch job said."""
    states = score_shards["ItemProcessor"]["States"]
    ends = {name: state for name, state in states.items() if state.get("End") or state["Type"] in ("Succeed", "Fail")}
    assert set(ends) == {"Shard scored", "Shard failed"}
    assert all(state == {"Type": "Pass", "Result": {}, "End": True} for state in ends.values())
    assert states["Record why the shard failed"]["Next"] == "Shard failed"
    assert states["Record why the shard failed"]["Catch"][0]["Next"] == "Shard failed"


def test_a_failed_shard_records_its_reason_once_per_job_in_the_record_table(score_shards: dict[str, Any]) -> None:
    states = score_shards["ItemProcessor"]["States"]
    record = states["Record why the shard failed"]
    assert record["Resource"] == "arn:aws:states:::dynamodb:updateItem"
    parameters = record["Parameters"]
    assert parameters["Key"] == {"pk": {"S.$": "States.Format('shard_failure#{}', $.job_id)"}}
    assert "#data = if_not_exists(#data, :data)" in parameters["UpdateExpression"]
    assert "ADD c_shards_failed :one" in parameters["UpdateExpression"]
    assert parameters["ExpressionAttributeValues"][":data"] == {"S.$": "States.JsonToString($.failure)"}
    # Every state that leads there puts a small {"shard", "reason"} at $.failure.
    reasons = {name: s for name, s in states.items() if s.get("Next") == "Record why the shard failed"}
    assert {"Take Batch's reason", "Take the error as the reason", "No capacity on gpu-cluster"} <= set(reasons)
    assert all(
        s["ResultPath"] == "$.failure" and s["Parameters"]["shard.$"] == "$.shard_number" for s in reasons.values()
    )
    # A Cause is parsed as JSON only when it is a Batch job's description.
    (parse_guard,) = states["Did the Batch job run?"]["Choices"][:1]
    assert {"Variable": "$.error.Cause", "StringMatches": "{*}"} in parse_guard["And"]
    assert parse_guard["Next"] == "Read the Batch job's description"


def test_a_shard_canceled_in_runnable_says_which_compute_and_what_to_check(score_shards: dict[str, Any]) -> None:
    states = score_shards["ItemProcessor"]["States"]
    gpu = states["No capacity on gpu-cluster"]["Parameters"]["reason"]
    assert gpu.startswith("no capacity for gpu-cluster's instance types in 30 min: check the EC2 vCPU quota ")
    assert "'Running On-Demand G and VT instances'" in gpu
    (when_gpu,) = [c for c in states["Did Batch say why?"]["Choices"] if c.get("Next") == "No capacity on gpu-cluster"]
    assert {"Variable": "$.compute", "StringEquals": "gpu"} in when_gpu["And"]
    assert {
        "Variable": "$.batch_job.description.StatusReason",
        "StringMatches": "Canceled by JobStateTimeLimit action*",
    } in when_gpu["And"]


def test_plan_map_and_finalize_are_caught_by_mark_failed_then_fail(definition: dict[str, Any]) -> None:
    states = definition["States"]
    for name in ("Plan mini-batches and shards", "Score shards", "Merge outputs and finish job"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Mark job failed"}
        ]
    mark_failed = states["Mark job failed"]
    assert mark_failed["Parameters"]["Payload"] == {"job_id.$": "$.job_id", "error.$": "$.error"}
    assert states[mark_failed["Next"]] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def test_lambda_steps_retry_lambda_faults_and_throttling(definition: dict[str, Any]) -> None:
    for name in ("Plan mini-batches and shards", "Merge outputs and finish job", "Mark job failed"):
        retried = {error for retry in definition["States"][name]["Retry"] for error in retry["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried


def test_a_job_that_finalize_fails_fails_the_execution(definition: dict[str, Any]) -> None:
    outcome = definition["States"]["Did the job complete?"]
    assert {c["StringEquals"]: c["Next"] for c in outcome["Choices"]} == {
        "Failed": "Job failed",
        "Canceled": "Job canceled",
    }
    assert definition["States"]["Job failed"]["CausePath"] == "$.result.error"
    assert definition["States"][outcome["Default"]]["Type"] == "Succeed"


def test_the_state_machine_is_standard_logs_errors_without_execution_data_and_is_traced(synthesis: Synthesis) -> None:
    for machine in synthesis.resources("AWS::StepFunctions::StateMachine").values():
        assert machine["StateMachineType"] == "STANDARD"
        assert machine["LoggingConfiguration"]["Level"] == "ERROR"
        assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
        assert machine["TracingConfiguration"] == {"Enabled": True}


def test_a_deployer_may_log_every_state_with_its_data() -> None:
    synthesis = synthesize(workflow_log_level="all", workflow_log_execution_data="true")
    for machine in synthesis.resources("AWS::StepFunctions::StateMachine").values():
        assert machine["LoggingConfiguration"]["Level"] == "ALL"
        assert machine["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert synthesis.violations() == []


def test_the_state_machine_may_run_its_map_submit_jobs_and_read_the_shard_list(
    statements: list[dict[str, Any]],
) -> None:
    granted = {
        action for s in statements for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"states:StartExecution", "states:DescribeExecution", "states:StopExecution"} <= granted
    assert {"batch:SubmitJob", "batch:DescribeJobs", "batch:TerminateJob", "events:PutRule"} <= granted
    assert "dynamodb:UpdateItem" in granted
    (read,) = (s for s in statements if s["Action"] == "s3:GetObject")
    assert json.dumps(read["Resource"]).endswith('"/jobs/*"]]}')


def test_the_maps_children_outputs_go_to_s3_under_the_jobs_scratch_and_its_own_output_is_discarded(
    score_shards: dict[str, Any],
) -> None:
    # Without the feature flag CDK drops ResultWriterV2 silently: this reads the synthesized definition.
    assert score_shards["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {
            "Bucket.$": "$.plan.shards_bucket",
            "Prefix.$": "States.Format('jobs/{}/map-results', $.job_id)",
        },
    }
    assert score_shards["ResultPath"] is None


def test_the_state_machine_may_write_the_maps_results_under_the_jobs_scratch_only(
    statements: list[dict[str, Any]],
) -> None:
    writes = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    (write,) = writes
    assert sorted(write["Action"]) == [
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ]
    assert json.dumps(write["Resource"]).endswith('"/jobs/*/map-results/*"]]}')


def test_cdk_json_turns_on_the_distributed_map_result_writer_v2_flag() -> None:
    context = json.loads((REPOSITORY_ROOT / "cdk.json").read_text())["context"]
    assert context["@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"] is True
