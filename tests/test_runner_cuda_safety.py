"""Nothing initialises CUDA before the workers' fork server forks them (batch_container.preload, workers).

A CUDA context cannot cross a fork: a worker forked from a process that had initialised CUDA fails at its first
use of the GPU ("Cannot re-initialize CUDA in forked subprocess"). The fork server imports torch for the workers,
so torch's state in a freshly forked worker, before its script touches anything, is the server's: this test reads
it there, on a machine without a GPU too, and shows that the worker's own device selection still runs.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.faults import INPUT_FILES, deploy, run_job, workspace_fixture  # noqa: F401 (a fixture)

torch = pytest.importorskip("torch")

# At the top of the module: what the worker inherited from the fork server, before the script imports anything.
SCRIPT = """\
import os
import sys

INHERITED = {
    "torch_preloaded": "torch" in sys.modules,
    "cuda_initialized": sys.modules["torch"].cuda.is_initialized() if "torch" in sys.modules else None,
    "bad_fork": sys.modules["torch"].cuda._is_in_bad_fork() if "torch" in sys.modules else None,
}
import torch


def init():
    global device
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.ones(1, device=device)  # the device path: a tensor on the chosen device


def run(mini_batch):
    return [
        f"{os.path.basename(p)} preloaded={INHERITED['torch_preloaded']} "
        f"cuda_initialized={INHERITED['cuda_initialized']} bad_fork={INHERITED['bad_fork']} device={device.type}"
        for p in mini_batch
    ]
"""


def test_workers_forked_after_torch_is_preloaded_inherit_no_cuda_state_and_pick_their_device(bep, workspace) -> None:
    (workspace["code"] / "score.py").write_text(SCRIPT)  # in place of the fault script, before deploying it
    deploy(bep, workspace, "ok", max_concurrency_per_instance=2)

    job = run_job(bep, workspace)

    assert job["status"] == "Completed", job
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert sorted(pd.read_csv(job["output_uri"])["prediction"]) == [
        f"{name} preloaded=True cuda_initialized=False bad_fork=False device={device}" for name in sorted(INPUT_FILES)
    ]
