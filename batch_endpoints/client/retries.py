"""Whether, when and how long the SDK waits before sending a request again: only a request that cannot act
twice is sent again, after a capped exponential backoff with full jitter.

A failed attempt may still have been carried out: a timeout or a 5xx can come after the service acted, and only
the answer was lost. So a request is sent again only when a second delivery changes nothing more: a method HTTP
defines as idempotent (RFC 9110, section 9.2.2), or a request carrying an Idempotency-Key, which the API answers
with what the first delivery did (batch_endpoints/idempotency.py).

Full jitter (a random wait between 0 and the capped exponential) is what AWS's SDKs use: clients throttled
together spread out instead of retrying in lockstep (AWS Architecture Blog, "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from batch_endpoints.idempotency import HEADER as IDEMPOTENCY_HEADER

# Throttling, and failures of the service or the gateway in front of it that a later attempt may not meet.
# 501 (not implemented) will not change; every other 4xx is the request's fault and is never retried.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def resendable(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a second delivery of the request changes nothing the first did not."""
    keyed = any(name.lower() == IDEMPOTENCY_HEADER.lower() for name in headers)
    return method.upper() in IDEMPOTENT_METHODS or keyed


@dataclass
class RetryPolicy:
    max_attempts: int = 4
    """Attempts in all, the first included (AWS SDKs' standard mode makes 3)."""
    base_s: float = 0.5
    max_wait_s: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def retryable(self, status: int, code: str = "") -> bool:
        return status in RETRYABLE_STATUSES or code in THROTTLING_CODES

    def wait(self, attempt: int, retry_after_s: float | None = None) -> None:
        """Sleep before attempt `attempt + 1` (attempts count from 1); a server's Retry-After is a floor."""
        backoff = self.random() * min(self.max_wait_s, self.base_s * 2 ** (attempt - 1))
        if retry_after_s is not None:
            backoff = max(backoff, min(retry_after_s, self.max_wait_s))
        self.sleep(backoff)
