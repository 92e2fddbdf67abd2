"""The API Lambda: API Gateway (REST, IAM authorization) proxy events in, the resolver's responses out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_endpoints.api.app import SERVICE_NAME, app
from lambdas.core_logs import log_core_as

logger = Logger(service=SERVICE_NAME)
log_core_as(logger)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace="BatchEndpoints", service=SERVICE_NAME)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
