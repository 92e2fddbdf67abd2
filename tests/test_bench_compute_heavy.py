"""bench/throughput.py's compute-heavy workload, run small: every method scores, and the report carries every
ratio and verdict that `make bench` prints at full size (bench/compute_heavy.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.bench_scripts import run_bench

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def test_the_compute_heavy_workload_runs_small_and_reports_every_ratio_and_verdict(tmp_path: Path) -> None:
    """With Ray installed (make bench installs it), Ray Data runs as a whole process and is compared; without it,
    the script says so and measures the rest."""
    done = run_bench(
        "throughput.py",
        *("--workload", "cnn", "--files", "20", "--repeats", "1", "--workers", "2"),
        *("--out", str(tmp_path / "results")),
        data=tmp_path / "data",
    )

    with_ray = importlib.util.find_spec("ray") is not None
    assert ("Ray Data: not run: ray not installed" in done.stdout) is not with_ray
    record = json.loads((tmp_path / "results" / "compute_heavy.json").read_text())
    results = record["results"]
    ray = ["Ray Data"] if with_ray else []
    assert set(results["files_per_s"]) == {"baseline", "ours (50)", "ours (10)", "ours, 1 worker (50)", *ray}
    assert all(rate > 0 for rate in results["files_per_s"].values())
    assert set(results["ratios"]) == {
        "ours (50) / baseline",
        "ours (10) / baseline",
        "ours, 1 worker (50) / baseline",
        *(["ours (50) / Ray Data"] if with_ray else []),
    }
    assert [t["name"] for t in record["targets"]] == [
        "ours (50) / baseline",
        "ours (10) / baseline",
        *(["ours (50) / Ray Data"] if with_ray else []),
        "2 workers' steady rate / (2 x one worker's)",
    ]
    assert all(t["verdict"] == "met" or t["verdict"].startswith("MISSED by") for t in record["targets"])
    assert record["config"]["files"] == 20
