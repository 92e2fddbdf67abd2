"""A pipeline job's steps on the local backend: independent steps side by side, a failed step failing the job (or
not stopping the steps that do not need it), cancel stopping the running steps' processes, and resume keeping the
steps that completed. Each is checked by the steps' records, never by timing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from batch_endpoints.adapters.local.orchestrator import LocalOrchestrator

STEP = """\
  {name}:
    type: command
    component:
      code: src
      inputs: {{data: {{type: uri_folder}}}}
      outputs: {{out: {{type: uri_folder}}}}
      command: python step.py {name} ${{{{inputs.data}}}} ${{{{outputs.out}}}}
    inputs:
      data: {source}
"""

# Each step writes its name into its output; a step named in FAIL fails unless its release file exists; a step
# named in WAIT writes its pid and sleeps until killed.
SCRIPT = """\
import os, pathlib, sys, time
name, source, target = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
control = pathlib.Path(os.environ["CONTROL"])
if (control / f"fail-{name}").exists() and not (control / f"release-{name}").exists():
    sys.exit(f"{name} was told to fail")
if (control / f"wait-{name}").exists():
    (control / f"pid-{name}").write_text(str(os.getpid()))
    time.sleep(600)
(target / "made-by").write_text(name)
"""


def pipeline(steps: dict[str, str | None], *, continue_on_failure: bool = False) -> tuple[str, str]:
    """The pipeline file and the deployment file for steps name -> the step it reads (None: the pipeline's input)."""
    jobs = "".join(
        STEP.format(
            name=name,
            source="${{parent.inputs.input_data}}" if source is None else f"${{{{parent.jobs.{source}.outputs.out}}}}",
        )
        for name, source in steps.items()
    )
    text = f"type: pipeline\nname: steps\ninputs:\n  input_data: {{type: uri_folder}}\njobs:\n{jobs}"
    deployment = (
        "name: steps\nendpoint_name: shop\ntype: pipeline\ncomponent: pipeline.yml\n"
        f"settings:\n  default_compute: cpu-cluster\n  continue_on_step_failure: {str(continue_on_failure).lower()}\n"
    )
    return text, deployment


@pytest.fixture(name="control")
def control_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "control"
    folder.mkdir()
    monkeypatch.setenv("CONTROL", str(folder))  # the job host and its steps inherit it
    return folder


def write_project(root: Path, steps: dict[str, str | None], **options: bool) -> None:
    """The steps' code, pipeline, deployment (deployment.yml) and input folder (data/) under `root`."""
    text, deployment = pipeline(steps, **options)
    (root / "src").mkdir(parents=True)
    (root / "src" / "step.py").write_text(SCRIPT)
    (root / "pipeline.yml").write_text(text)
    (root / "deployment.yml").write_text(deployment)
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x\n1\n")


def deploy(bep, root: Path, steps: dict[str, str | None], **options: bool) -> None:
    write_project(root, steps, **options)
    bep("endpoint", "create", "--name", "shop")
    bep("deployment", "create", "--file", root / "deployment.yml", "--set-default")


def start(bep, root: Path) -> str:
    return bep("endpoint", "invoke", "--name", "shop", "--set", f"inputs.input_data.path={root / 'data'}").out.split()[
        0
    ]


def wait_for(bep, job_id: str, done, what: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = bep("job", "show", "--name", job_id).json()
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {what}: {job}")


def ended(bep, job_id: str) -> dict:
    return wait_for(bep, job_id, lambda job: job["status"] in {"Completed", "Failed", "Canceled"}, "an end")


def steps_of(job: dict) -> dict[str, dict]:
    return {run["step"]: run for run in job["pipeline"]["steps"]}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the local cpu-cluster has one instance per core")
def test_independent_steps_run_side_by_side(bep, home, tmp_path, control):
    deploy(bep, tmp_path / "p", {"left": None, "right": None, "join": "left"})

    job = ended(bep, start(bep, tmp_path / "p"))

    assert job["status"] == "Completed", job
    left, right, join = (steps_of(job)[name] for name in ("left", "right", "join"))
    assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"]
    assert join["started_at"] >= left["ended_at"]


def test_a_failed_step_fails_the_job_and_nothing_after_it_runs(bep, home, tmp_path, control):
    (control / "fail-first").touch()
    deploy(bep, tmp_path / "p", {"first": None, "second": "first"})

    job = ended(bep, start(bep, tmp_path / "p"))

    assert job["status"] == "Failed"
    assert (
        "step first failed" in job["error"]
        and "first was told to fail" in Path(steps_of(job)["first"]["log_uri"]).read_text()
    )
    assert steps_of(job)["second"]["status"] == "Canceled"
    assert steps_of(job)["second"]["started_at"] is None


def test_continue_on_step_failure_runs_the_steps_that_do_not_need_the_failed_one(bep, home, tmp_path, control):
    (control / "fail-broken").touch()
    deploy(bep, tmp_path / "p", {"broken": None, "after": "broken", "apart": None}, continue_on_failure=True)

    job = ended(bep, start(bep, tmp_path / "p"))

    runs = steps_of(job)
    assert job["status"] == "Failed"
    assert (runs["broken"]["status"], runs["after"]["status"], runs["apart"]["status"]) == (
        "Failed",
        "Skipped",
        "Completed",
    )
    assert (Path(runs["apart"]["outputs"]["out"]) / "made-by").read_text() == "apart"


def test_cancel_stops_the_running_step_and_kills_its_process(bep, home, tmp_path, control):
    (control / "wait-slow").touch()
    deploy(bep, tmp_path / "p", {"slow": None, "later": "slow"})
    job_id = start(bep, tmp_path / "p")
    pid_file = control / "pid-slow"
    wait_for(bep, job_id, lambda _: pid_file.exists() and pid_file.read_text(), "a running step")

    bep("job", "cancel", "--name", job_id)

    job = ended(bep, job_id)
    assert job["status"] == "Canceled"
    assert (steps_of(job)["slow"]["status"], steps_of(job)["later"]["status"]) == ("Canceled", "Canceled")
    assert not alive(int(pid_file.read_text()))


def alive(pid: int) -> bool:
    """Whether the process runs: a killed one whose parent has not reaped it yet (a zombie) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_resume_keeps_the_completed_steps_and_runs_the_rest(bep, home, tmp_path, control):
    (control / "fail-second").touch()
    deploy(bep, tmp_path / "p", {"first": None, "second": "first"})
    job_id = start(bep, tmp_path / "p")
    failed = ended(bep, job_id)
    assert failed["status"] == "Failed"
    host = LocalOrchestrator({})
    wait_for(bep, job_id, lambda _: not host.is_running(bep.service.get_job(job_id)), "its host's exit")

    (control / "release-second").touch()
    bep("job", "resume", "--name", job_id)

    job = wait_for(bep, job_id, lambda j: j["status"] in {"Completed", "Failed"} and j["resumes"] == 1, "an end")
    assert job["status"] == "Completed", job
    assert steps_of(job)["first"]["started_at"] == steps_of(failed)["first"]["started_at"]
    assert steps_of(job)["second"]["status"] == "Completed"


def test_rerun_runs_every_step_again_as_a_new_job_with_outputs_of_its_own(bep, home, tmp_path, control):
    (control / "fail-second").touch()
    deploy(bep, tmp_path / "p", {"first": None, "second": "first"})
    failed = ended(bep, start(bep, tmp_path / "p"))
    (control / "release-second").touch()

    rerun_id = bep("job", "rerun", "--name", failed["id"]).out.split()[0]

    rerun = ended(bep, rerun_id)
    assert (rerun["status"], rerun["rerun_of"]) == ("Completed", failed["id"])
    assert rerun["pipeline"]["data_inputs"] == failed["pipeline"]["data_inputs"]
    first = steps_of(rerun)["first"]["outputs"]["out"]
    assert rerun_id in first and (Path(first) / "made-by").read_text() == "first"


def test_a_pipeline_job_reruns_whole(bep, home, tmp_path, control):
    deploy(bep, tmp_path / "p", {"first": None})
    job = ended(bep, start(bep, tmp_path / "p"))

    refused = bep("job", "rerun", "--name", job["id"], "--failed", ok=False)

    assert refused.code == 2 and "failed" in refused.err
    assert len(bep("job", "list", "--endpoint-name", "shop", "--output", "json").json()) == 1


PARALLEL = """\
type: pipeline
name: parallel
inputs:
  input_data: {type: uri_folder}
jobs:
  score:
    type: parallel
    component:
      inputs: {data: {type: uri_folder}}
      outputs: {out: {type: uri_folder}}
      input_data: ${{inputs.data}}
      mini_batch_size: "1"
      task:
        code: src
        entry_script: slow.py
        append_row_to: ${{outputs.out}}
    inputs:
      data: ${{parent.inputs.input_data}}
"""

SLOW = """\
import os, pathlib, time

def run(mini_batch):
    control = pathlib.Path(os.environ["CONTROL"])
    (control / "pid-parallel").write_text(str(os.getpid()))
    time.sleep(600)
"""


def test_cancel_stops_a_running_parallel_steps_own_job(bep, home, tmp_path, control):
    root = tmp_path / "p"
    deploy(bep, root, {"unused": None})
    (root / "src" / "slow.py").write_text(SLOW)
    (root / "pipeline.yml").write_text(PARALLEL)
    bep("deployment", "create", "--file", root / "deployment.yml")  # updates it to the parallel pipeline
    job_id = start(bep, root)
    pid_file = control / "pid-parallel"
    wait_for(bep, job_id, lambda _: pid_file.exists() and pid_file.read_text(), "a running mini-batch")

    bep("job", "cancel", "--name", job_id)

    job = ended(bep, job_id)
    step_job = bep("job", "show", "--name", f"{job_id}-score").json()
    assert (job["status"], steps_of(job)["score"]["status"]) == ("Canceled", "Canceled")
    assert (step_job["status"], step_job["parent_job_name"]) == ("Canceled", job_id)
    assert not alive(int(pid_file.read_text()))
