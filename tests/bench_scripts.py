"""Running a benchmark script of bench/ small, as the tests that keep them working do: in a process of its own,
with its cached inputs (BENCH_DATA) in the test's folder instead of the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(script: str, *arguments: str, data: Path) -> subprocess.CompletedProcess[str]:
    """bench/`script` with `arguments`, its inputs made under `data`; fails the test if it does not exit 0."""
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments],
        env={**os.environ, "BENCH_DATA": str(data)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done
