"""The core's log records inside a Lambda: one JSON line each, with the invocation's correlation fields (request
id, cold start, the handler's appended keys such as the job id), like the handler's own."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

CORE_LOGGER = "batch_endpoints"


def log_core_as(logger: Logger) -> None:
    """Give the core's loggers the handler's JSON handler and level. Powertools copies to the top-level loggers that
    exist when it is called, so the package's is made first; every module's logger under it propagates to it."""
    logging.getLogger(CORE_LOGGER)
    copy_config_to_registered_loggers(source_logger=logger, include={CORE_LOGGER})
