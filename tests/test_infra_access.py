"""infra/access.py: the admin and invoker policies, and an invoker scoped to one endpoint, matched the way IAM
matches execute-api ARNs (`*` and `?` wildcards, `*` crossing slashes)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import aws_cdk as cdk
import pytest

from batch_endpoints.api.openapi import openapi_document
from batch_endpoints.errors import ValidationError
from batch_endpoints.service import new_job_id
from infra.access import endpoint_routes
from infra.settings import StackSettings
from infra.stack import BatchEndpointsStack
from tests.infra_fixtures import OPTIONS, Synthesis, cdk_context, scratch_folder, synthesize

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"


@pytest.fixture(scope="module")
def policies() -> dict[str, list[str]]:
    """{policy description: the execute-api ARNs it allows}, the API's id replaced by abc123."""
    return _invoke_policies(synthesize(**OPTIONS))


def allowed(resources: list[str], method: str, path: str) -> bool:
    return any(fnmatchcase(f"{API}/{method}{path}", pattern) for pattern in resources)


def test_the_admin_policy_allows_every_operation(policies: dict[str, list[str]]) -> None:
    admin = policies["admin"]
    for method, path in [("PUT", "/endpoints/digits"), ("DELETE", "/models/digits/versions/1"), ("GET", "/")]:
        assert allowed(admin, method, path)


def test_the_invoker_may_invoke_follow_and_cancel_but_not_change_definitions(policies: dict[str, list[str]]) -> None:
    invoker = policies["invoker"]
    job = new_job_id("digits")
    for method, path in [
        ("POST", "/endpoints/digits/jobs"),
        ("GET", "/endpoints/digits/jobs"),
        ("GET", f"/jobs/{job}"),
        ("GET", f"/jobs/{job}/logs"),
        ("POST", f"/jobs/{job}/cancel"),
        ("POST", f"/jobs/{job}/rerun"),
        ("POST", f"/jobs/{job}/resume"),
        ("POST", "/inputs/uploads"),
        ("GET", "/endpoints"),
        ("GET", "/endpoints/digits"),
        ("GET", "/models/digits/versions/1"),
    ]:
        assert allowed(invoker, method, path), (method, path)
    for method, path in [
        ("PUT", "/endpoints/digits"),
        ("PATCH", "/endpoints/digits"),
        ("DELETE", "/endpoints/digits/deployments/blue"),
        ("PUT", "/models/digits/versions/2"),
        ("POST", "/models/digits/uploads"),
        ("POST", "/code/uploads"),
    ]:
        assert not allowed(invoker, method, path), (method, path)


def test_the_invoker_may_read_everything_and_change_nothing_but_jobs(policies: dict[str, list[str]]) -> None:
    """Every route of the API as its OpenAPI document lists it, path parameters filled in."""
    samples = {"endpoint_name": "digits", "deployment_name": "blue", "job_id": new_job_id("digits")}
    for path, operations in openapi_document()["paths"].items():
        names = {
            "model_name": "digits",
            "environment_name": "torch",
            "component_name": "prepare",
            "data_name": "images",
            "datastore_name": "raw",
            "compute_name": "batch-cluster",
        }
        concrete = path.format_map({**samples, **names, "version": "1"})
        for method in operations:
            starts_or_cancels_a_job = (method, path) in {
                ("post", "/endpoints/{endpoint_name}/jobs"),
                ("post", "/inputs/uploads"),
                ("post", "/jobs/{job_id}/cancel"),
                ("post", "/jobs/{job_id}/rerun"),
                ("post", "/jobs/{job_id}/resume"),
            }
            expected = method == "get" or starts_or_cancels_a_job
            assert allowed(policies["invoker"], method.upper(), concrete) is expected, (method, path)


def test_an_endpoints_invoker_reaches_that_endpoint_and_its_jobs_only(policies: dict[str, list[str]]) -> None:
    scoped = policies["endpoint digits"]
    mine, theirs = new_job_id("digits"), new_job_id("digits-v2")
    assert allowed(scoped, "POST", "/endpoints/digits/jobs")
    assert allowed(scoped, "GET", f"/jobs/{mine}")
    assert allowed(scoped, "GET", f"/jobs/{mine}/logs")
    assert allowed(scoped, "POST", f"/jobs/{mine}/cancel")
    assert allowed(scoped, "POST", f"/jobs/{mine}/rerun")
    assert allowed(scoped, "GET", "/endpoints/digits/deployments")
    # An endpoint whose name starts the same way is another endpoint.
    assert not allowed(scoped, "POST", "/endpoints/digits-v2/jobs")
    assert not allowed(scoped, "GET", f"/jobs/{theirs}")
    assert not allowed(scoped, "POST", f"/jobs/{theirs}/cancel")
    assert not allowed(scoped, "POST", f"/jobs/{theirs}/resume")
    assert not allowed(scoped, "GET", "/endpoints")
    assert not allowed(scoped, "PUT", "/endpoints/digits")


@pytest.mark.parametrize("name", ["digits*", "dig?ts", "a", "bad/name", "-x", "digits\n", "d" * 33])
def test_endpoint_routes_refuse_names_that_are_not_endpoint_names(name: str) -> None:
    # The core's rule for endpoint names: a wildcard, a trailing newline or a 33rd character is refused.
    with pytest.raises(ValidationError) as refused:
        endpoint_routes(name)
    assert refused.value.field == "scoped_invokers"
    assert "must be 3-32 characters" in str(refused.value)


def test_endpoint_routes_take_the_longest_endpoint_name() -> None:
    assert ("POST", f"/endpoints/{'d' * 32}/jobs") in endpoint_routes("d" * 32)


def test_the_stack_outputs_every_policy_arn() -> None:
    outputs = synthesize(**OPTIONS).template["Outputs"]
    assert {"AdminPolicyArn", "InvokerPolicyArn", "InvokerPolicyArndigits", "InvokerPolicyArnfraudv2"} <= set(outputs)


def _invoke_policies(synthesis: Synthesis) -> dict[str, list[str]]:
    found = {}
    for policy in synthesis.resources("AWS::IAM::ManagedPolicy").values():
        description = policy["Description"]
        name = (
            "admin"
            if "every operation" in description
            else f"endpoint {description.split('endpoint ')[1].split(',')[0]}"
            if "invoke endpoint" in description
            else "invoker"
        )
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Action"] == "execute-api:Invoke"
        found[name] = (
            [_arn(resource) for resource in statement["Resource"]]
            if isinstance(statement["Resource"], list)
            else [_arn(statement["Resource"])]
        )
    return found


def _arn(resource: Any) -> str:
    names = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    return "".join(
        part if isinstance(part, str) else names.get(part["Ref"], "abc123") for part in resource["Fn::Join"][1]
    )


def test_a_scoped_invoker_that_is_not_an_endpoint_name_stops_the_synthesis_naming_the_setting() -> None:
    app = cdk.App(outdir=str(scratch_folder("bep-cdk-out-")), context=cdk_context())
    with pytest.raises(ValidationError) as refused:
        BatchEndpointsStack(app, "BatchEndpoints", settings=StackSettings(scoped_invokers=("digits", "fraud*")))
    assert refused.value.field == "scoped_invokers"
    assert "'fraud*'" in str(refused.value)
