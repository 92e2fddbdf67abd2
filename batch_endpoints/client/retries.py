"""When and how long the SDK waits before sending a request again: capped exponential backoff with full jitter.

Full jitter (a random wait between 0 and the capped exponential) is what AWS's SDKs use: clients throttled
together spread out instead of retrying in lockstep (AWS Architecture Blog, "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Throttling, and failures of the service or the gateway in front of it that a later attempt may not meet.
# 501 (not implemented) will not change; every other 4xx is the request's fault and is never retried.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})


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
