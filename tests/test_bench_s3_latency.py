"""bench/s3_latency.py run small: ours and the sequential loop read every object through the delaying proxy, score
the same, and the report carries the busy fraction, both rates, their ratio and the prefetch sizing used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
pytestmark = pytest.mark.slow


def test_the_s3_latency_benchmark_runs_small_and_reports_busy_fraction_rates_and_sizing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "s3_latency.py"), "--small", "--workers", "2", "--out", str(tmp_path)],
        env={**os.environ, "BEP_CPUS": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "s3_latency.json").read_text())
    ours, loop = record["results"]["ours"], record["results"]["loop"]
    assert (ours["files"], loop["files"]) == (200, 100)
    assert 0 < ours["busy"] <= 1
    assert ours["files_per_s"] > 0 and loop["files_per_s"] > 0
    assert record["results"]["ratio"] == pytest.approx(ours["files_per_s"] / loop["files_per_s"])
    # The sizing a 2-vCPU instance gives 2 workers (batch_endpoints/fetch_sizing.py).
    assert (ours["prefetch_depth"], ours["fetch_threads"]) == (4, 16)
    assert record["config"]["prefetch depth (mini-batches)"] == 4
    assert [t["name"] for t in record["targets"]] == ["worker busy fraction", "ours / sequential loop (end to end)"]
    assert "worker busy fraction" in done.stdout
