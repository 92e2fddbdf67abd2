"""infra/api.py and the stack's grants to the API Lambda: every method signed (AWS_IAM), logs, throttling, and the
least privilege the Lambda needs."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from tests.infra_fixtures import Synthesis, listed, readable, role_statements, synthesize


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


def test_the_api_is_named_after_the_stack(synthesis: Synthesis) -> None:
    (api,) = synthesis.resources("AWS::ApiGateway::RestApi").values()
    assert api["Name"] == "BatchEndpoints-api"


def test_every_method_requires_a_sigv4_signature(synthesis: Synthesis) -> None:
    methods = synthesis.resources("AWS::ApiGateway::Method")
    assert len(methods) == 2  # ANY on / and on /{proxy+}: the Lambda's resolver routes
    for method in methods.values():
        assert method["AuthorizationType"] == "AWS_IAM"
        assert method["HttpMethod"] == "ANY"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        assert "RequestValidatorId" in method


def test_the_stage_logs_access_and_is_throttled(synthesis: Synthesis) -> None:
    (stage,) = synthesis.resources("AWS::ApiGateway::Stage").values()
    assert stage["StageName"] == "v1"
    assert "$context.identity.user" in stage["AccessLogSetting"]["Format"]
    (method_settings,) = stage["MethodSettings"]
    assert (method_settings["ThrottlingRateLimit"], method_settings["ThrottlingBurstLimit"]) == (50, 100)
    assert method_settings["LoggingLevel"] == "ERROR"
    assert stage["TracingEnabled"] is True


def test_every_function_runs_a_handler_of_the_repository(synthesis: Synthesis) -> None:
    functions = [
        f for f in synthesis.resources("AWS::Lambda::Function").values() if f["Handler"].startswith("lambdas.")
    ]
    assert sorted(f["Handler"] for f in functions) == [
        "lambdas.api.handler.lambda_handler",
        "lambdas.workflow.handlers.execution_ended",
        "lambdas.workflow.handlers.finalize",
        "lambdas.workflow.handlers.mark_failed",
        "lambdas.workflow.handlers.pipeline_round",
        "lambdas.workflow.handlers.pipeline_step_ended",
        "lambdas.workflow.handlers.plan",
    ]
    for function in functions:
        module, _, name = function["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
        assert function["Runtime"] == "python3.12"
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert function["Environment"]["Variables"]["BEP_BACKEND"] == "aws"
    # Two bundles: the API's, and the workflow steps' (which also holds pyarrow, for Parquet outputs).
    by_part = {
        part: {json.dumps(f["Code"], sort_keys=True) for f in functions if f["Handler"].split(".")[1] == part}
        for part in ("api", "workflow")
    }
    assert len(by_part["api"]) == len(by_part["workflow"]) == 1 and by_part["api"] != by_part["workflow"]


def test_the_api_lambda_knows_every_part_of_the_stack(synthesis: Synthesis) -> None:
    variables = _api_function(synthesis)["Environment"]["Variables"]
    assert set(variables) >= {
        "BEP_TABLE",
        "BEP_BUCKET",
        "BEP_STATE_MACHINE_ARN",
        "BEP_COMPUTES",
        "BEP_IMAGES",
        "BEP_JOB_ROLE_ARN",
        "BEP_EXECUTION_ROLE_ARN",
        "BEP_LOG_GROUP",
        "BEP_API_URL",
    }
    assert variables["BEP_API_URL"]["Fn::Join"][1][-1] == "/v1"


def test_the_api_lambda_is_granted_what_it_uses_and_no_more(synthesis: Synthesis) -> None:
    statements = role_statements(synthesis, "ApiHandlerServiceRole")
    by_action = {action: s["Resource"] for s in statements for action in listed(s["Action"])}
    started = [listed(s["Resource"]) for s in statements if "states:StartExecution" in listed(s["Action"])]
    # A model job's state machine and the pipeline jobs' one, and their executions only.
    assert sorted(ref["Ref"] for refs in started for ref in refs) == [
        "PipelinesStateMachineA83E08E0",
        "WorkflowStateMachine8F1B1C15",
    ]
    stopped = [r for s in statements if "states:StopExecution" in listed(s["Action"]) for r in listed(s["Resource"])]
    assert len(stopped) == 2 and all(readable(resource).endswith(":*") for resource in stopped)
    assert readable(by_action["batch:RegisterJobDefinition"]).endswith(":job-definition/bep-*")
    pass_role = [r for s in statements if "iam:PassRole" in listed(s["Action"]) for r in listed(s["Resource"])]
    # The job definitions' roles, and the instance role of the computes users create.
    assert sorted(r["Fn::GetAtt"][0] for r in pass_role) == [
        "ComputeCpuClusterEnvironmentInstanceProfileRole919B0392",
        "ComputeExecutionRoleCE43D454",
        "ComputeJobRoleB2047C5C",
    ]
    assert by_action["logs:FilterLogEvents"] == {"Fn::GetAtt": ["ComputeScoringLogsAF0EAC58", "Arn"]}
    # Records by table and index name; no Scan, no PutItem (documents are written with UpdateItem).
    assert "dynamodb:Scan" not in by_action and "dynamodb:PutItem" not in by_action
    assert sorted(readable(r) for r in by_action["dynamodb:Query"]) == [
        "<StorageRecords0990588D.Arn>",
        "<StorageRecords0990588D.Arn>/index/by_created",
        "<StorageRecords0990588D.Arn>/index/by_kind",
        "<StorageRecords0990588D.Arn>/index/by_parent",
    ]
    assert not any(action.endswith("*") for action in by_action)


def test_data_buckets_from_context_are_granted_to_the_lambdas_and_jobs() -> None:
    from tests.infra_fixtures import OPTIONS

    synthesis = synthesize(**OPTIONS)
    # Jobs write too: a scoring script's own files (AZUREML_BI_OUTPUT_PATH) go straight to the job's output folder.
    for role, writes in (("ApiHandlerServiceRole", True), ("WorkflowPlanServiceRole", True), ("ComputeJobRole", True)):
        statements = role_statements(synthesis, role)
        objects: dict[str, set[str]] = {}
        for s in statements:
            for resource in listed(s["Resource"]):
                if "user-images" in readable(resource):
                    objects.setdefault(readable(resource), set()).update(listed(s["Action"]))
        assert objects["arn:<AWS::Partition>:s3:::user-images/*"] >= {"s3:GetObject"}
        assert ("s3:PutObject" in objects["arn:<AWS::Partition>:s3:::user-images/*"]) is writes


def _api_function(synthesis: Synthesis) -> dict[str, Any]:
    (api,) = (
        f for f in synthesis.resources("AWS::Lambda::Function").values() if f["Handler"].startswith("lambdas.api")
    )
    return api
