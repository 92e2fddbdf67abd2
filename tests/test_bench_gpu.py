"""bench/gpu.py run small: on a machine without CUDA both methods score on the CPU, so the path a GPU run takes
(images made, the DataLoader loop, ours on gpu-cluster, the comparison and its verdict) runs in every test run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_scripts import run_bench

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def test_the_gpu_workload_runs_small_and_reports_both_rates_their_ratio_and_the_verdict(tmp_path: Path) -> None:
    done = run_bench(
        "gpu.py",
        *("--images", "12", "--image-size", "48", "--repeats", "1", "--workers", "2", "--mini-batch-size", "4"),
        *("--out", str(tmp_path / "results")),
        data=tmp_path / "data",
    )

    on_gpu = torch.cuda.is_available()
    assert f"12 48x48 images on {'cuda' if on_gpu else 'cpu'}, 2 workers" in done.stdout
    record = json.loads((tmp_path / "results" / ("gpu.json" if on_gpu else "gpu-on-cpu.json")).read_text())
    results = record["results"]
    assert set(results["images_per_s"]) == {"loop", "loop alone", "ours"}
    assert all(rate > 0 for rate in results["images_per_s"].values())
    assert results["ratio"] == pytest.approx(results["images_per_s"]["ours"] / results["images_per_s"]["loop"])
    assert [t["name"] for t in record["targets"]] == ["ours / DataLoader loop"]
    assert record["targets"][0]["verdict"] == "met" or record["targets"][0]["verdict"].startswith("MISSED by")
    assert record["config"]["device"].startswith("cuda" if on_gpu else "cpu")
    assert len(list((tmp_path / "data" / "rgb-48-12").rglob("*.jpg"))) == 12
