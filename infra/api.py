"""The HTTPS API: an API Gateway REST API whose every method requires a SigV4 signature (AWS_IAM), proxying every
path to the API Lambda, where the Powertools resolver routes it (batch_endpoints.api.app).

Who may call what is IAM's business (access.py): API Gateway checks the caller's execute-api:Invoke permission
on the method and path before the Lambda runs. Request bodies are validated by the Lambda (pydantic models, the
same as the local server's); API Gateway validates what it cheaply can: the request's declared parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.lambda_code import project_function

STAGE = "v1"
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
# API Gateway gives up on an integration after 29 s.
TIMEOUT = cdk.Duration.seconds(29)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        rate_limit: int,
        burst_limit: int,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.RETAIN
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{cdk.Stack.of(self).stack_name}-api",
            description="Batch endpoints: models, endpoints, deployments and jobs (SigV4-signed requests only)",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Access and error logs need API Gateway's account-wide CloudWatch role; this creates it (and keeps it
            # when the stack goes: other APIs of the account may rely on it).
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=rate_limit,
                throttling_burst_limit=burst_limit,
            ),
            default_method_options=apigateway.MethodOptions(authorization_type=apigateway.AuthorizationType.IAM),
        )
        # RestApi outputs its stage's URL by itself; the stack's ApiUrl output says the same with a description.
        self.rest_api.node.try_remove_child("Endpoint")
        self.url = f"https://{self.rest_api.rest_api_id}.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}/{STAGE}"
        """The base URL, built from the API's id rather than its stage so that the API Lambda may carry it
        (BEP_API_URL) without a dependency cycle (stage → deployment → methods → Lambda)."""
        self.function = project_function(
            self,
            "Handler",
            code=code,
            handler="lambdas.api.handler.lambda_handler",
            description="Batch endpoints API: CRUD of models, endpoints and deployments; invoke and follow jobs",
            environment={**environment, "BEP_API_URL": self.url},
            memory_mib=1024,
            timeout=TIMEOUT,
        )
        validator = self.rest_api.add_request_validator(
            "Parameters", request_validator_name="parameters", validate_request_parameters=True
        )
        # One integration for every path: the resolver owns routing, and its 404 and 405 answers.
        integration = apigateway.LambdaIntegration(self.function, allow_test_invoke=False, timeout=TIMEOUT)
        method_options = {"authorization_type": apigateway.AuthorizationType.IAM, "request_validator": validator}
        self.rest_api.root.add_method("ANY", integration, **method_options)
        self.rest_api.root.add_proxy(default_integration=integration, any_method=False).add_method(
            "ANY", integration, **method_options
        )
