"""Azure's long-running operation handle (`LROPoller`): `begin_*` methods return one.

The operations behind it finish before `begin_*` returns (creating an endpoint or a deployment writes records and
registers a job definition, in seconds), so the poller is already done and holds the result.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class LROPoller(Generic[T]):
    def __init__(self, result: T) -> None:
        self._result = result

    def result(self, timeout: float | None = None) -> T:
        return self._result

    def wait(self, timeout: float | None = None) -> None:
        return None

    def done(self) -> bool:
        return True

    def status(self) -> str:
        return "Succeeded"
