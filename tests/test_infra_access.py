"""infra/access.py: the admin and invoker policies, and an invoker scoped to one endpoint, matched the way IAM
matches execute-api ARNs (`*` and `?` wildcards, `*` crossing slashes)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest

from batch_endpoints.api.openapi import openapi_document
from batch_endpoints.service import new_job_id
from infra.access import endpoint_routes
from tests.infra_fixtures import OPTIONS, Synthesis, synthesize

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
        names = {"model_name": "digits", "environment_name": "torch", "data_name": "images", "datastore_name": "raw"}
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


def test_endpoint_routes_refuse_names_that_are_not_endpoint_names() -> None:
    for name in ("digits*", "a", "bad/name", "-x"):
        with pytest.raises(ValueError):
            endpoint_routes(name)


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
