"""How far ahead a runner fetches follows the instance, and each knob can be set by the job, or is refused."""

from __future__ import annotations

import pytest

from batch_endpoints.errors import ValidationError
from batch_endpoints.fetch_sizing import FetchSizing, fetch_sizing, fetch_threads

GIB = 1024**3
MIB = 1024**2


@pytest.mark.parametrize(
    ("workers", "cpus", "memory", "expected"),
    [
        (1, 2, 8 * GIB, FetchSizing(depth=2, threads=16, byte_budget=512 * MIB)),
        (4, 4, 16 * GIB, FetchSizing(depth=8, threads=32, byte_budget=GIB)),
        (16, 96, 768 * GIB, FetchSizing(depth=32, threads=64, byte_budget=2 * GIB)),  # threads and budget capped
        (1, 1, 512 * MIB, FetchSizing(depth=2, threads=8, byte_budget=64 * MIB)),  # the budget's floor
    ],
)
def test_the_sizing_follows_workers_vcpus_and_memory(
    workers: int, cpus: int, memory: int, expected: FetchSizing
) -> None:
    assert fetch_sizing(workers, {"BEP_CPUS": str(cpus)}, memory=memory) == expected


def test_the_job_can_set_each_knob() -> None:
    environ = {"BEP_CPUS": "2", "BEP_PREFETCH_DEPTH": "5", "BEP_FETCH_THREADS": "100", "BEP_PREFETCH_BYTES": "12345"}
    assert fetch_sizing(3, environ, memory=8 * GIB) == FetchSizing(depth=5, threads=100, byte_budget=12345)
    assert fetch_threads(environ) == 100


@pytest.mark.parametrize("name", ["BEP_PREFETCH_DEPTH", "BEP_FETCH_THREADS", "BEP_PREFETCH_BYTES", "BEP_CPUS"])
@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"{name} must be a whole number of at least 1, got '{value}'") as caught:
        fetch_sizing(2, {name: value}, memory=8 * GIB)
    assert caught.value.field == name
