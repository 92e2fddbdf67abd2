"""A pipeline's parallel step on the local backend, as Azure's parallel nodes run: its task's program_arguments in
the entry script's argv, its mini_batch_error_threshold failing the step, and a resumed job keeping the
mini-batches its step had finished. Each is checked by records and files, never by timing."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from batch_endpoints.adapters.local.orchestrator import LocalOrchestrator
from batch_endpoints.process_groups import kill_group
from tests.test_pipeline_jobs_local import control_fixture, ended, start, steps_of, wait_for  # noqa: F401

PIPELINE = """\
type: pipeline
name: parallel
inputs:
  input_data: {{type: uri_folder}}
  label: {{type: string, default: spam}}
outputs:
  scores: {{type: uri_folder}}
jobs:
  score:
    type: parallel
    component:
      inputs:
        data: {{type: uri_folder}}
        label: {{type: string}}
        cutoff: {{type: number, default: 0.5}}
      outputs: {{out: {{type: uri_folder}}}}
      input_data: ${{{{inputs.data}}}}
      mini_batch_size: "1"
      task:
        code: src
        entry_script: score.py
        append_row_to: ${{{{outputs.out}}}}
        program_arguments: --label ${{{{inputs.label}}}} --cutoff ${{{{inputs.cutoff}}}}
    inputs:
      data: ${{{{parent.inputs.input_data}}}}
      label: ${{{{parent.inputs.label}}}}
    outputs:
      out: ${{{{parent.outputs.scores}}}}
{step_settings}"""

# Writes each file's name, the --label and --cutoff it was given, into the output; a file named in the control
# folder's fail-NAME fails; on wait-NAME the worker writes its pid and sleeps until killed or released.
SCORE = """\
import argparse, os, pathlib, time

control = pathlib.Path(os.environ["CONTROL"])

def init():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--label")
    parser.add_argument("--cutoff", type=float)
    args, _ = parser.parse_known_args()

def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = pathlib.Path(path).stem
        with open(control / "runs", "a") as runs:
            runs.write(name + "\\n")
        if (control / f"fail-{name}").exists():
            raise RuntimeError(f"{name} was told to fail")
        if (control / f"wait-{name}").exists():
            (control / f"pid-{name}").write_text(str(os.getpid()))
            while not (control / f"release-{name}").exists():
                time.sleep(0.1)
        rows.append(f"{name} {args.label} {args.cutoff}")
    return rows
"""


def deploy(bep, root: Path, step_settings: str = "") -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "score.py").write_text(SCORE)
    (root / "pipeline.yml").write_text(PIPELINE.format(step_settings=step_settings))
    (root / "deployment.yml").write_text(
        "name: steps\nendpoint_name: shop\ntype: pipeline\ncomponent: pipeline.yml\n"
        "settings:\n  default_compute: cpu-cluster\n"
    )
    (root / "data").mkdir()
    for name in ("a", "b", "c"):
        (root / "data" / f"{name}.txt").write_text(name)
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", root / "deployment.yml", "--set-default")


def rows_of(job: dict) -> list[str]:
    return sorted((Path(job["pipeline"]["outputs"]["scores"]) / "parallel_run_step.txt").read_text().splitlines())


def test_program_arguments_reach_the_entry_scripts_argv_with_their_inputs_values(bep, home, tmp_path, control):
    deploy(bep, tmp_path / "p")

    job_id = bep(
        "endpoint",
        "invoke",
        "--name",
        "shop",
        "--set",
        f"inputs.input_data.path={tmp_path / 'p' / 'data'}",
        "inputs.label=ham and eggs",
    ).out.split()[0]

    job = ended(bep, job_id)
    assert job["status"] == "Completed", job
    step_job = bep("job", "show", "--name", f"{job_id}-score").json()
    assert step_job["program_arguments"] == ["--label", "ham and eggs", "--cutoff", "0.5"]
    # Quoted as one argument each: a value with spaces stays one, and adds no other.
    assert rows_of(job) == ["a ham and eggs 0.5", "b ham and eggs 0.5", "c ham and eggs 0.5"]


@pytest.mark.parametrize(("threshold", "status"), [(0, "Failed"), (1, "Completed")])
def test_mini_batch_error_threshold_counts_the_failed_mini_batches(bep, home, tmp_path, control, threshold, status):
    (control / "fail-b").touch()
    deploy(bep, tmp_path / "p", f"    mini_batch_error_threshold: {threshold}\n")

    job = ended(bep, start(bep, tmp_path / "p"))

    assert job["status"] == status, job
    step_job = bep("job", "show", "--name", f"{job['id']}-score").json()
    assert (step_job["settings"]["mini_batch_error_threshold"], step_job["counts"]["mini_batches_failed"]) == (
        threshold,
        1,
    )
    if status == "Failed":
        assert "mini_batch_error_threshold exceeded: 1 mini-batches failed, 0 allowed" in job["error"]


def test_a_bad_mini_batch_error_threshold_is_refused_naming_the_step(bep, home, tmp_path, control):
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "src" / "score.py").write_text(SCORE)
    (root / "pipeline.yml").write_text(PIPELINE.format(step_settings="    mini_batch_error_threshold: -2\n"))

    refused = bep("component", "create", "--file", root / "pipeline.yml", ok=False)

    assert refused.code == 2 and "jobs.score.mini_batch_error_threshold" in refused.err


def test_resume_keeps_the_mini_batches_a_parallel_step_had_finished(bep, home, tmp_path, control):
    (control / "wait-c").touch()
    deploy(bep, tmp_path / "p", "    max_concurrency_per_instance: 1\n")
    job_id = start(bep, tmp_path / "p")
    pid_file = control / "pid-c"
    job = wait_for(bep, job_id, lambda _: pid_file.exists() and pid_file.read_text(), "c's mini-batch running")
    # The job's host dies, and with it the step's runner instance and its worker (each a group of its own):
    # nothing closes the job.
    worker = int(pid_file.read_text())
    instance = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
    for leader in (int(job["execution"].rpartition(":")[2]), os.getpgid(instance), os.getpgid(worker)):
        kill_group(leader)
    host = LocalOrchestrator({})
    wait_for(bep, job_id, lambda _: not host.is_running(bep.service.get_job(job_id)), "its host's exit")
    before = Counter((control / "runs").read_text().split())
    assert before == {"a": 1, "b": 1, "c": 1}, f"a and b finished before c was stopped: {before}"

    (control / "release-c").touch()
    bep("job", "resume", "--name", job_id)

    job = wait_for(bep, job_id, lambda j: j["status"] in {"Completed", "Failed"} and j["resumes"] == 1, "an end")
    assert job["status"] == "Completed", job
    assert Counter((control / "runs").read_text().split()) == {"a": 1, "b": 1, "c": 2}
    assert rows_of(job) == ["a spam 0.5", "b spam 0.5", "c spam 0.5"]
    assert steps_of(job)["score"]["status"] == "Completed"
