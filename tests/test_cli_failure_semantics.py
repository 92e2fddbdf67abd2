"""How a job's settings meet misbehaving scoring code, end to end through the CLI and real processes: the error
threshold, summary_only, run() returning None, logs. The faults themselves (run() raising, hanging, dying, ...)
are the fault-injection suite's (test_fault_injection.py), with the same script and workspace (tests/faults.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults import BAD, GOOD, check, deploy, run_job, workspace_fixture  # noqa: F401 (a fixture)


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
        check([job])


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
