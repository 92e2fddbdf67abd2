"""The harness that holds moto to AWS's limits (tests/aws_limits.py) triggers on each limit, so that it cannot
pass silently: a state too big fails the execution even with a Catch, a SubmitJob too big and an execution name
too long are refused, Lambda's payload limits hold, and a step whose requests grow with its input is projected
over its time limit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests import aws_limits
from tests.aws_fixtures import BUCKET, aws_fixture, create_batch_computes, role_arn  # noqa: F401
from tests.aws_limits import (
    LAMBDA_PAYLOAD_BYTES,
    MOTO_DYNAMODB_ITEM_BYTES,
    STATE_PAYLOAD_BYTES,
    SUBMIT_JOB_BYTES,
    AwsLimitExceeded,
    RequestLedger,
    StepCutOff,
    StepRun,
    aws_requests,  # noqa: F401
    check_lambda_payload,
    fail_on_steps_over_limit,
)
from tests.infra_fixtures import executing_aws, function_arn, route_lambda_tasks  # noqa: F401

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
CAUGHT = {"Caught": {"Type": "Pass", "End": True}}
CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]


def run_machine(definition: dict[str, Any], execution_input: Any = None) -> dict[str, Any]:
    client = boto3.client("stepfunctions")
    machine = client.create_state_machine(
        name=f"limits-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=role_arn("limits")
    )["stateMachineArn"]
    arn = client.start_execution(stateMachineArn=machine, input=json.dumps(execution_input or {}))["executionArn"]
    deadline = time.monotonic() + 60
    while (execution := client.describe_execution(executionArn=arn))["status"] not in FINAL:
        assert time.monotonic() < deadline, execution
        time.sleep(0.05)
    return execution


def states_entered(execution: dict[str, Any]) -> list[str]:
    events = boto3.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def distributed_map(item_bytes: int) -> dict[str, Any]:
    """A Distributed Map whose children each return `item_bytes` characters, its result discarded, every error
    caught."""
    child = {"Type": "Pass", "Parameters": {"text.$": "$.text"}, "End": True}
    return {
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"text.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Child",
                    "States": {"Child": child},
                },
                "MaxConcurrency": 10,
                "ResultPath": None,
                "Catch": CATCH_ALL,
                "End": True,
            },
            **CAUGHT,
        },
    }


@pytest.mark.parametrize("children", [60, 70])
def test_a_distributed_maps_aggregated_results_over_256_kib_fail_the_execution_though_discarded_and_caught(
    executing_aws: None,  # noqa: F811
    children: int,
) -> None:
    item_bytes = 4000  # each child's output is {"text": ...}: 60 of them fit in 256 KiB, 70 do not
    execution = run_machine(distributed_map(item_bytes), {"items": ["x" * item_bytes] * children})

    aggregated = len(json.dumps([{"text": "x" * item_bytes}] * children, separators=(",", ":")))
    if aggregated <= STATE_PAYLOAD_BYTES:
        assert execution["status"] == "SUCCEEDED", execution
        return
    # States.ALL does not catch it, and ResultPath null does not prevent it.
    assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded"), execution
    assert f"{aggregated:,} bytes" in execution["cause"]
    assert "Caught" not in states_entered(execution)


def writing_results_to_s3(item_bytes: int) -> dict[str, Any]:
    """A Distributed Map over small items whose children each return `item_bytes` characters, with a ResultWriter
    to the bucket and under the prefix its input names ($.bucket, runs/<$.run>), its result kept at $.written."""
    definition = distributed_map(item_bytes)
    child = {"Type": "Pass", "Result": {"text": "x" * item_bytes}, "End": True}
    writer = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "States.Format('runs/{}', $.run)"},
    }
    the_map = definition["States"]["Map"]
    the_map["ItemProcessor"]["States"] = {"Child": child}
    the_map |= {"ResultWriter": writer, "ResultPath": "$.written"}
    return definition


@pytest.mark.parametrize("children", [60, 70])
def test_a_distributed_map_with_a_result_writer_holds_only_where_its_results_went_at_any_size(
    executing_aws: None,  # noqa: F811
    children: int,
) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    # 70 children's outputs are over 256 KiB, as above: written to S3, they are not in the state.
    execution = run_machine(writing_results_to_s3(4000), {"items": [1] * children, "bucket": BUCKET, "run": "r1"})

    assert execution["status"] == "SUCCEEDED", execution
    written = json.loads(execution["output"])["written"]
    assert aws_limits.is_result_writer_description(written), written
    # The Parameters' paths read the Map's input, as on AWS; Step Functions adds the map run's id.
    map_run_id = written["MapRunArn"].rsplit(":", 1)[1]
    assert written["ResultWriterDetails"] == {"Bucket": BUCKET, "Key": f"runs/r1/{map_run_id}/manifest.json"}
    boto3.client("s3").head_object(Bucket=BUCKET, Key=written["ResultWriterDetails"]["Key"])


def test_a_map_whose_result_writer_left_the_results_in_the_state_fails_the_test_though_caught(
    executing_aws: None,  # noqa: F811
    aws_requests: RequestLedger,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
        ResultWriter,
    )

    # A moto that ignored the ResultWriter would leave the aggregated array as the Map's result.
    monkeypatch.setattr(ResultWriter, "_eval_body", lambda writer, env: None)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    execution = run_machine(writing_results_to_s3(1), {"items": [1] * 3, "bucket": BUCKET, "run": "r1"})

    # The Map's Catch takes it, so the execution succeeds; the test fails at its end all the same.
    assert "Caught" in states_entered(execution)
    (departure,) = aws_requests.unlike_aws
    assert "has a ResultWriter but its result is not where its children's outputs went" in departure
    with pytest.raises(pytest.fail.Exception, match="moto did what AWS does not"):
        fail_on_steps_over_limit(aws_requests)
    aws_requests.unlike_aws.clear()


def test_a_lambda_result_over_256_kib_fails_the_execution_though_every_error_is_caught(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route_lambda_tasks(monkeypatch, {function_arn("Big"): lambda event, context: {"text": "x" * STATE_PAYLOAD_BYTES}})
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn("Big"), "Payload": {}},
        "ResultPath": None,
        "Catch": CATCH_ALL,
        "End": True,
    }

    execution = run_machine({"StartAt": "Task", "States": {"Task": task, **CAUGHT}})

    assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded"), execution
    assert "Caught" not in states_entered(execution)


def test_a_lambda_response_over_6_mb_is_a_function_error_the_workflow_can_catch(
    executing_aws: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    huge = "x" * LAMBDA_PAYLOAD_BYTES
    route_lambda_tasks(monkeypatch, {function_arn("Huge"): lambda event, context: huge})
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn("Huge"), "Payload": {}},
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
        "End": True,
    }

    execution = run_machine({"StartAt": "Task", "States": {"Task": task, **CAUGHT}})

    assert execution["status"] == "SUCCEEDED", execution
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "Function.ResponseSizeTooLarge"
    assert f"{LAMBDA_PAYLOAD_BYTES:,}" in error["Cause"]


def test_the_api_lambdas_events_and_responses_are_held_to_6_mb() -> None:
    check_lambda_payload("response", {"body": "x" * (LAMBDA_PAYLOAD_BYTES - 100)})
    with pytest.raises(AwsLimitExceeded, match="Lambda response payload of 6,291,4"):
        check_lambda_payload("response", {"body": "x" * LAMBDA_PAYLOAD_BYTES})


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("j" * 81, "81 characters, expected 1 to 80"),
        ("job 1", "' ' is not allowed"),
        ("job/1", "'/' is not allowed"),
        ("job\x07", "'\\x07' is not allowed"),
    ],
)
def test_an_execution_name_too_long_or_with_a_forbidden_character_is_refused(
    executing_aws: None,  # noqa: F811
    name: str,
    problem: str,
) -> None:
    client = boto3.client("stepfunctions")
    machine = client.create_state_machine(
        name="names",
        definition=json.dumps({"StartAt": "P", "States": CAUGHT | {"P": {"Type": "Pass", "End": True}}}),
        roleArn=role_arn("names"),
    )["stateMachineArn"]
    assert client.start_execution(stateMachineArn=machine, name="j" * 80)["executionArn"].endswith("j" * 80)

    with pytest.raises(ClientError) as refused:
        client.start_execution(stateMachineArn=machine, name=name)

    assert refused.value.response["Error"]["Code"] == "InvalidName"
    assert problem in refused.value.response["Error"]["Message"]
    assert len(client.list_executions(stateMachineArn=machine)["executions"]) == 1


@pytest.fixture(name="submit_job")
def submit_job_fixture(aws: None) -> Callable[..., dict[str, Any]]:
    batch = boto3.client("batch")
    queue = create_batch_computes()[0]["job_queue"]
    definition = batch.register_job_definition(
        jobDefinitionName="bep-digits_blue",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 512, "command": ["Ref::shard"]},
    )["jobDefinitionArn"]

    def submit(name: str = "job-1", **fields: Any) -> dict[str, Any]:
        return batch.submit_job(jobName=name, jobQueue=queue, jobDefinition=definition, **fields)

    return submit


def test_a_submit_job_request_over_30_kib_is_refused(submit_job: Callable[..., dict[str, Any]]) -> None:
    assert submit_job(parameters={"shard": "s" * (SUBMIT_JOB_BYTES - 1024)})["jobId"]

    with pytest.raises(ClientError) as refused:
        submit_job(parameters={"shard": "s" * SUBMIT_JOB_BYTES})

    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert "exceeds the maximum of 30,720" in refused.value.response["Error"]["Message"]
    assert len(boto3.client("batch").list_jobs(jobQueue="bep-cpu", jobStatus="SUCCEEDED")["jobSummaryList"]) == 1


@pytest.mark.parametrize("name", ["j" * 129, "job.1", "-job"])
def test_a_batch_job_name_over_128_or_with_other_characters_is_refused(
    submit_job: Callable[..., dict[str, Any]], name: str
) -> None:
    assert submit_job(name="j" * 128)["jobName"] == "j" * 128

    with pytest.raises(ClientError) as refused:
        submit_job(name=name)

    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert "must be 1 to 128 letters, digits, hyphens and underscores" in refused.value.response["Error"]["Message"]


def test_a_dynamodb_item_over_400_kb_is_refused_as_moto_already_does(aws: None) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="items",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="items", Item={"pk": {"S": "small"}, "v": {"S": "x" * 390_000}})

    for write in (
        lambda: dynamodb.put_item(
            TableName="items", Item={"pk": {"S": "big"}, "v": {"S": "x" * MOTO_DYNAMODB_ITEM_BYTES}}
        ),
        lambda: dynamodb.update_item(
            TableName="items",
            Key={"pk": {"S": "small"}},
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "x" * 20_000}},
        ),
    ):
        with pytest.raises(ClientError) as refused:
            write()
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "Item size" in refused.value.response["Error"]["Message"]
    assert "w" not in dynamodb.get_item(TableName="items", Key={"pk": {"S": "small"}})["Item"]


# ---------------------------------------------------------------------------------------------- time


def head_objects(count: int) -> None:
    s3 = boto3.client("s3")
    for n in range(count):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BUCKET, Key=f"missing/{n}")


@pytest.fixture(name="bucket")
def bucket_fixture(aws: None) -> Iterator[None]:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield


def test_a_step_whose_requests_grow_with_its_input_is_projected_over_its_limit(
    bucket: None,
    aws_requests: RequestLedger,  # noqa: F811
) -> None:
    """A finalize that makes one request per mini-batch: fine at 100, over a (scaled down) limit at 200."""
    for size in (100, 200):
        with aws_requests.step(f"finalize of {size}"):
            head_objects(size)

    assert aws_requests.assert_fits("finalize of 100", limit_s=3).seconds == pytest.approx(2.0)
    with pytest.raises(AwsLimitExceeded) as over:
        aws_requests.assert_fits("finalize of 200", limit_s=3)
    assert "200 AWS requests (s3 200; s3:HeadObject 200)" in str(over.value)
    assert "projected 4.0 s" in str(over.value) and "limit 3 s" in str(over.value)


def test_a_step_in_the_tests_thread_is_cut_off_at_its_limit_and_requests_outside_any_step_count_for_none(
    bucket: None,
    aws_requests: RequestLedger,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(aws_limits.STEP_LIMITS_S, "api", 1.0)
    head_objects(60)  # the test's own setup: no step
    with aws_requests.step("api"):
        head_objects(50)
    with pytest.raises(StepCutOff, match="step 'api': 51 AWS requests"), aws_requests.step("api"):
        head_objects(60)

    # The second run stopped at the request that took it over 1 s (20 ms each); nothing is reported again when
    # the test ends.
    assert [len(run.requests) for run in aws_requests.runs] == [50, 51]
    assert aws_requests.over_limit() == []


def test_a_step_in_another_thread_runs_on_and_fails_as_it_ends(
    bucket: None,
    aws_requests: RequestLedger,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(aws_limits.STEP_LIMITS_S, "finalize", 1.0)

    def finalize() -> None:
        with aws_requests.step("finalize"):
            head_objects(60)

    with ThreadPoolExecutor(1) as pool, pytest.raises(AwsLimitExceeded, match="step 'finalize': 60 AWS requests"):
        pool.submit(finalize).result()

    assert [str(p) for p in aws_requests.over_limit()] == [str(aws_requests.projection("finalize"))]
    aws_requests.runs.clear()  # reported: the test's end need not fail on it


def test_a_step_that_uses_a_thread_pool_is_credited_with_its_busiest_thread_only(
    bucket: None,
    aws_requests: RequestLedger,  # noqa: F811
) -> None:
    with aws_requests.step("finalize"), ThreadPoolExecutor(4) as pool:
        head_objects(3)
        list(pool.map(head_objects, [10, 10, 10, 30]))

    projection = aws_requests.projection("finalize")
    assert sum(projection.requests.values()) == 63
    # The step's own 3, then the pool's busiest thread: at least the 30 of one task, at most all 60.
    assert 33 <= sum(projection.critical_path.values()) < 63
    assert projection.threads >= 2


def test_critical_path_is_the_steps_own_thread_plus_each_pools_busiest_thread() -> None:
    run = StepRun("finalize")
    run.requests += [("main", "dynamodb", "GetItem")] * 2
    run.requests += [((1, 11), "s3", "GetObject")] * 5 + [((1, 12), "s3", "GetObject")] * 7
    run.requests += [((2, 21), "states", "DescribeExecution")] * 3

    projection = run.projection(limit_s=0.5)

    assert projection.critical_path == {"dynamodb": 2, "s3": 7, "states": 3}
    assert projection.seconds == pytest.approx(2 * 0.010 + 7 * 0.020 + 3 * 0.050)
    assert projection.fits


def test_a_workflow_step_over_its_limit_in_another_thread_fails_the_test_when_it_ends() -> None:
    ledger = RequestLedger()
    run = StepRun("finalize", requests=[("main", "s3", "GetObject")] * 45_001)
    ledger.runs.append(run)

    with pytest.raises(pytest.fail.Exception, match="step 'finalize': 45,001 AWS requests"):
        fail_on_steps_over_limit(ledger)
