"""How a job's settings meet misbehaving scoring code, end to end through the CLI and real processes: the error
threshold, summary_only, run() returning None, logs. The faults themselves (run() raising, hanging, dying, ...)
are the fault-injection suite's (test_fault_injection.py), with the same script and workspace (tests/faults.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults import (  # noqa: F401 (a fixture)
    BAD,
    GOOD,
    INPUT_FILES,
    check,
    deploy,
    errors_of,
    run_job,
    runs_of,
    workspace_fixture,
)


def test_error_threshold_zero_fails_the_job_on_the_first_bad_file(bep, workspace):
    # One file a mini-batch, one at a time, in listing order: the job must stop right after the first bad file.
    deploy(bep, workspace, "raise", error_threshold=0, max_concurrency_per_instance=1)
    job_id = bep("endpoint", "invoke", "--name", "echo-endpoint", "--input", workspace["inputs"]).out.strip()
    streamed = bep("job", "stream", "--name", job_id, ok=False)
    job = bep("job", "show", "--name", job_id).json()

    listing = sorted(INPUT_FILES)
    first_bad = next(n for n, name in enumerate(listing) if "bad" in name)
    assert set(runs_of(workspace)) == set(listing[: first_bad + 1]), "files were scored after the first bad one"
    assert job["status"] == "Failed" and not Path(job["output_uri"]).exists()
    failed, not_scored = 1, len(listing) - first_bad - 1
    counts = (first_bad, failed, not_scored)
    assert (
        job["counts"]["files_succeeded"],
        job["counts"]["files_failed"],
        job["counts"]["files_not_scored"],
    ) == counts
    assert job["error"].startswith(
        f"error_threshold exceeded: 1 file failed, 0 allowed; {not_scored} not scored (the job stopped)"
    )
    errors = errors_of(job)
    assert [e["file"] for e in errors if not e["error"].startswith("not scored")] == [listing[first_bad]]
    assert sorted(e["file"] for e in errors if e["error"].startswith("not scored")) == listing[first_bad + 1 :]
    summary = json.loads((Path(job["scratch_uri"]) / "summary.json").read_text())
    assert summary["counts"]["files_not_scored"] == not_scored and summary["counts"]["files_failed"] == failed
    assert f"{first_bad} of {len(listing)} files scored, 1 failed, {not_scored} not scored" in streamed.err
    last_progress = [line for line in streamed.err.splitlines() if line.startswith("Failed ")][-1]
    assert last_progress.endswith(f"files 1/{len(listing)}  failed 1  not scored {not_scored}  ETA -")


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
