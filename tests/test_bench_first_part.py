"""bench/first_part.py run small: the digits example's wall time to its first part, for a deployment's first job and
for a later one (its fork server warm), the CPU of each step on that path, the path's sums cold and with a warm
fork server, and the four verdicts that `make bench` prints."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from tests.bench_scripts import run_bench

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

STEPS = [
    "interpreter",
    "job host imports",
    "runner imports",
    "fork server imports",
    "worker: script import + init()",
    "worker: first run()",
]


def test_the_first_part_profile_runs_small_and_sums_the_path_cold_and_warm(tmp_path: Path) -> None:
    run_bench("first_part.py", "--files", "10", "--repeats", "1", "--out", str(tmp_path / "results"), data=tmp_path)

    record = json.loads((tmp_path / "results" / "first_part.json").read_text())
    results = record["results"]
    assert {kind: len(walls) for kind, walls in results["wall_s"].items()} == {"first_job": 1, "later_jobs": 1}
    assert all(wall > 0 for walls in results["wall_s"].values() for wall in walls)
    cpu = {name: statistics.median(values) for name, values in results["cpu_s"].items()}
    assert list(cpu) == STEPS
    # Importing torch and pandas is real work: a step that measured nothing would mean the wrong thing was timed.
    assert cpu["fork server imports"] > cpu["runner imports"] > 0
    assert results["cold_path_cpu_s"] == pytest.approx(3 * cpu["interpreter"] + sum(cpu.values()) - cpu["interpreter"])
    assert results["warm_cpu_s"] == pytest.approx(
        results["cold_path_cpu_s"] - cpu["interpreter"] - cpu["fork server imports"]
    )
    assert [t["name"] for t in record["targets"]] == [
        "invoke -> first part, a deployment's later jobs",
        "invoke -> first part, its first job",
        "its CPU path, cold (a bound on an idle machine)",
        "its CPU path with a warm fork server",
    ]
    assert all(t["verdict"] == "met" or t["verdict"].startswith("MISSED by") for t in record["targets"])
    assert any("torch" in note for note in record["notes"])
