"""What a job does when scoring code misbehaves, end to end through the CLI and real processes.

Every test checks the invariant the product promises: each input file is either in the output exactly once or
in the errors file, never both, never neither.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = textwrap.dedent(
    """
    import os
    import time

    import pandas as pd

    MODE = os.environ.get("MODE", "ok")


    def run(mini_batch):
        names = [os.path.basename(path) for path in mini_batch]
        bad = [name for name in names if "bad" in name]
        if bad and MODE == "raise":
            raise ValueError(f"cannot score {bad[0]}")
        if bad and MODE == "hang":
            time.sleep(120)
        if bad and MODE == "exit":
            os._exit(3)
        if MODE == "fewer":
            names = [name for name in names if "bad" not in name]
        if MODE == "nothing":
            return None
        return pd.DataFrame({"file": names, "length": [len(n) for n in names]})
    """
)
GOOD, BAD = 18, 2


@pytest.fixture
def workspace(bep, tmp_path: Path) -> dict[str, Path]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("42")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(GOOD):
        (inputs / f"item-{n:02d}.txt").write_text(str(n))
    for n in range(BAD):
        (inputs / f"item-{n:02d}-bad.txt").write_text("bad")
    bep("model", "create", "--name", "echo", "--path", model)
    bep("endpoint", "create", "--name", "echo-endpoint")
    return {"root": tmp_path, "code": code, "inputs": inputs}


def deploy(bep, workspace: dict[str, Path], mode: str, **settings: object) -> None:
    spec = {
        "name": "echo",
        "endpoint_name": "echo-endpoint",
        "model": "azureml:echo:1",
        "code_configuration": {"code": str(workspace["code"]), "scoring_script": "score.py"},
        "compute": "azureml:cpu-cluster",
        "settings": {
            "mini_batch_size": 1,
            "max_concurrency_per_instance": 2,
            "retry_settings": {"max_retries": 1, "timeout": 10},
            "environment_variables": {"MODE": mode},
            **settings,
        },
    }
    path = workspace["root"] / "deployment.yml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    bep("deployment", "create", "--file", path, "--set-default")


def run_job(bep, workspace: dict[str, Path], *extra: str) -> dict:
    job_id = bep("endpoint", "invoke", "--name", "echo-endpoint", "--input", workspace["inputs"], *extra).out.strip()
    bep("job", "stream", "--name", job_id, ok=False)
    return bep("job", "show", "--name", job_id).json()


def errors_of(job: dict) -> list[dict]:
    path = Path(job["scratch_uri"]) / "errors.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_every_file_accounted_for(job: dict, expect_output: bool = True) -> None:
    failed = {e["file"] for e in errors_of(job)}
    assert len(failed) == len(errors_of(job)), "a file is listed twice in the errors file"
    if expect_output:
        rows = pd.read_csv(job["output_uri"])
        assert rows["file"].is_unique, "a file was scored twice"
        scored = set(rows["file"])
        assert not scored & failed
        assert scored | failed == {f"item-{n:02d}.txt" for n in range(GOOD)} | {
            f"item-{n:02d}-bad.txt" for n in range(BAD)
        }
    assert job["counts"]["files_succeeded"] + job["counts"]["files_failed"] == GOOD + BAD


def test_run_raising_for_some_files_fails_only_those_files_after_retries(bep, workspace):
    deploy(bep, workspace, "raise")
    job = run_job(bep, workspace)
    assert job["status"] == "Completed"
    assert job["counts"]["files_failed"] == BAD and job["counts"]["files_succeeded"] == GOOD
    errors = errors_of(job)
    assert sorted(e["file"] for e in errors) == ["item-00-bad.txt", "item-01-bad.txt"]
    assert all("ValueError: cannot score" in e["error"] for e in errors)
    assert_every_file_accounted_for(job)


def test_run_returning_fewer_rows_fails_the_missing_files(bep, workspace):
    deploy(bep, workspace, "fewer", mini_batch_size=5)
    job = run_job(bep, workspace)
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("no row" in e["error"] for e in errors_of(job))
    assert_every_file_accounted_for(job)


def test_run_hanging_past_the_timeout_is_killed_and_the_job_goes_on(bep, workspace):
    deploy(bep, workspace, "hang", retry_settings={"max_retries": 0, "timeout": 2})
    job = run_job(bep, workspace)
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("timed out" in e["error"] for e in errors_of(job))
    assert_every_file_accounted_for(job)


def test_worker_process_dying_is_replaced_and_only_its_files_fail(bep, workspace):
    deploy(bep, workspace, "exit")
    job = run_job(bep, workspace)
    assert job["status"] == "Completed" and job["counts"]["files_failed"] == BAD
    assert all("died" in e["error"] for e in errors_of(job))
    assert_every_file_accounted_for(job)


def test_error_threshold_zero_fails_the_job_on_the_first_bad_file(bep, workspace):
    deploy(bep, workspace, "raise", error_threshold=0, max_concurrency_per_instance=1)
    job = run_job(bep, workspace)
    assert job["status"] == "Failed" and "error_threshold" in job["error"]
    assert not Path(job["output_uri"]).exists()
    assert job["counts"]["files_failed"] >= 1
    assert job["counts"]["files_succeeded"] + job["counts"]["files_failed"] == GOOD + BAD


@pytest.mark.parametrize(("threshold", "status"), [(BAD, "Completed"), (BAD - 1, "Failed"), (-1, "Completed")])
def test_error_threshold_counts_failed_files(bep, workspace, threshold, status):
    deploy(bep, workspace, "raise", error_threshold=threshold)
    job = run_job(bep, workspace)
    assert job["status"] == status
    if status == "Completed":
        assert_every_file_accounted_for(job)


def test_error_threshold_can_be_overridden_per_invocation(bep, workspace):
    deploy(bep, workspace, "raise", error_threshold=-1)
    job = run_job(bep, workspace, "--set", "error_threshold=0")
    assert job["status"] == "Failed" and job["settings"]["error_threshold"] == 0


def test_summary_only_writes_no_output_file_but_counts_every_file(bep, workspace):
    deploy(bep, workspace, "raise", output_action="summary_only")
    job = run_job(bep, workspace)
    assert job["status"] == "Completed" and job["output_uri"] is None
    assert job["counts"]["files_succeeded"] == GOOD and job["counts"]["files_failed"] == BAD
    assert not list(Path(job["scratch_uri"]).glob("parts/*"))
    summary = json.loads((Path(job["scratch_uri"]) / "summary.json").read_text())
    assert summary["counts"]["files_failed"] == BAD and summary["output"] is None


def test_run_returning_none_counts_files_as_scored_without_rows(bep, workspace):
    deploy(bep, workspace, "nothing", mini_batch_size=4)
    job = run_job(bep, workspace)
    assert job["status"] == "Completed"
    assert job["counts"]["files_succeeded"] == GOOD + BAD and job["counts"]["rows"] == 0


def test_cancel_stops_a_running_job_within_seconds_and_writes_no_output(bep, workspace):
    deploy(bep, workspace, "hang", retry_settings={"max_retries": 0, "timeout": 600})
    job_id = bep("endpoint", "invoke", "--name", "echo-endpoint", "--input", workspace["inputs"]).out.strip()
    service = bep.service
    deadline = time.monotonic() + 60
    while service.job_progress(job_id).get("mini_batches_done", 0) < 1:  # wait until it is really scoring
        assert time.monotonic() < deadline, "the job never started scoring"
        time.sleep(0.2)
    cancel_sent = time.monotonic()
    bep("job", "cancel", "--name", job_id)
    assert bep("job", "stream", "--name", job_id, ok=False).code == 1
    assert time.monotonic() - cancel_sent < 15
    job = bep("job", "show", "--name", job_id).json()
    assert job["status"] == "Canceled"
    assert not Path(job["output_uri"]).exists()
    assert list(Path(job["scratch_uri"]).glob("results/*.json")), "finished mini-batches are kept"
    second = bep("job", "cancel", "--name", job_id, ok=False)
    assert second.code == 4 and "already ended" in second.err


def test_job_logs_show_what_the_scoring_code_printed(bep, workspace):
    code = workspace["code"]
    (code / "score.py").write_text(
        (code / "score.py")
        .read_text()
        .replace("    names = [", "    print('scoring', len(mini_batch))\n    names = [", 1)
    )
    deploy(bep, workspace, "ok", mini_batch_size=5)
    job = run_job(bep, workspace)
    printed = bep("job", "logs", "--name", job["id"]).out.splitlines()
    assert sum(1 for line in printed if line.endswith("scoring 5")) == (GOOD + BAD) // 5
    assert all(line.startswith("[0-worker-") for line in printed if "scoring" in line)


def test_a_job_that_scores_no_file_fails_even_with_unlimited_errors(bep, workspace):
    (workspace["code"] / "score.py").write_text(
        "def init():\n    raise RuntimeError('no model here')\n\ndef run(mini_batch):\n    return mini_batch\n"
    )
    deploy(bep, workspace, "ok", error_threshold=-1, retry_settings={"max_retries": 0, "timeout": 10})
    job = run_job(bep, workspace)
    assert job["status"] == "Failed"
    assert "no file was scored" in job["error"] and "no model here" in job["error"]
    assert job["counts"]["files_failed"] == GOOD + BAD
