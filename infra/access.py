"""Who may call the API: IAM managed policies that allow execute-api:Invoke on parts of it. Attach them to the users,
groups or roles of the callers; API Gateway checks them on every SigV4-signed request.

- admin: every method and path (models, endpoints, deployments, uploads, jobs).
- invoker: what a system that scores data needs: upload a local input, invoke an endpoint, follow, list, cancel,
  rerun and resume its jobs, read their logs, and read (never change) endpoints, deployments, models,
  environments, components, data assets, datastores and computes: every GET.
- an endpoint's invoker (`endpoint_invoker_policies`, one per name of context scoped_invokers): the invoker's
  rights on one endpoint and its jobs only. Job ids are `<endpoint>-<12 hex digits>` (service.new_job_id), so `?`
  wildcards match exactly that endpoint's jobs and not those of an endpoint whose name merely starts the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from constructs import Construct

from batch_endpoints.service import new_job_id
from batch_endpoints.specs import EndpointName, validation_error

ENDPOINT_NAMES = pydantic.TypeAdapter(EndpointName)
JOB_ID_SUFFIX_LENGTH = len(new_job_id("e")) - len("e-")

ADMIN_ROUTES = (("*", "/*"),)
INVOKER_ROUTES = (
    ("POST", "/endpoints/*/jobs"),
    ("POST", "/inputs/uploads"),  # a local input, uploaded before the invoke
    ("POST", "/jobs/*/cancel"),
    ("POST", "/jobs/*/rerun"),
    ("POST", "/jobs/*/resume"),
    ("GET", "/jobs"),  # every job
    ("GET", "/jobs/*"),  # a job, and its logs
    ("GET", "/endpoints"),
    ("GET", "/endpoints/*"),  # an endpoint, its deployments, its jobs
    ("GET", "/models"),
    ("GET", "/models/*"),
    ("GET", "/environments"),
    ("GET", "/environments/*"),
    ("GET", "/components"),
    ("GET", "/components/*"),
    ("GET", "/data"),
    ("GET", "/data/*"),
    ("GET", "/datastores"),
    ("GET", "/datastores/*"),
    ("GET", "/computes"),
    ("GET", "/computes/*"),
)


def endpoint_routes(endpoint_name: str) -> tuple[tuple[str, str], ...]:
    """The invoker's routes narrowed to one endpoint and its jobs."""
    # A name is also a pattern here: one with IAM's wildcards in it would reach other endpoints' jobs.
    try:
        ENDPOINT_NAMES.validate_python(endpoint_name)
    except pydantic.ValidationError as error:
        raise validation_error(error.errors(), prefix="scoped_invokers") from None
    job = f"{endpoint_name}-{'?' * JOB_ID_SUFFIX_LENGTH}"
    return (
        ("POST", f"/endpoints/{endpoint_name}/jobs"),
        ("GET", f"/endpoints/{endpoint_name}"),
        ("GET", f"/endpoints/{endpoint_name}/*"),
        ("GET", f"/jobs/{job}"),
        ("GET", f"/jobs/{job}/logs"),
        ("POST", f"/jobs/{job}/cancel"),
        ("POST", f"/jobs/{job}/rerun"),
        ("POST", f"/jobs/{job}/resume"),
        ("POST", "/inputs/uploads"),
    )


class ApiAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigateway.RestApi,
        stage: str,
        scoped_invokers: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.rest_api = rest_api
        self.stage = stage
        self.admin_policy = iam.ManagedPolicy(
            self,
            "Admin",
            description="Batch endpoints API: every operation (models, endpoints, deployments, jobs)",
            statements=[self.invoke_statement(ADMIN_ROUTES)],
        )
        self.invoker_policy = iam.ManagedPolicy(
            self,
            "Invoker",
            description="Batch endpoints API: invoke any endpoint, follow and cancel jobs, read definitions",
            statements=[self.invoke_statement(INVOKER_ROUTES)],
        )
        self.endpoint_invoker_policies = {name: self._endpoint_invoker_policy(name) for name in scoped_invokers}
        """{endpoint name: the policy for the callers of that endpoint only} (context scoped_invokers)."""

    def _endpoint_invoker_policy(self, endpoint_name: str) -> iam.ManagedPolicy:
        return iam.ManagedPolicy(
            self,
            f"Invoker-{endpoint_name}",
            description=f"Batch endpoints API: invoke endpoint {endpoint_name}, follow and cancel its jobs",
            statements=[self.invoke_statement(endpoint_routes(endpoint_name))],
        )

    def invoke_statement(self, routes: tuple[tuple[str, str], ...]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["execute-api:Invoke"],
            resources=[self.rest_api.arn_for_execute_api(method, path, self.stage) for method, path in routes],
        )
