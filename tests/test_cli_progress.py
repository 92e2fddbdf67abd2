"""The CLI's progress line (batch_endpoints/progress.py): one drawer for an upload's bytes and a job's
mini-batches, redrawn in place on a terminal; a pipe gets whole lines, or none."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from batch_endpoints import progress
from batch_endpoints.progress import StatusLine, bar
from batch_endpoints.specs import JobCounts, JobStatus, PipelineRun, StepRun, StepStatus


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def job_polls(*states: tuple[JobStatus, int]):
    """A poll that answers each (status, mini-batches done) in turn, for a job of 4 mini-batches."""
    answers = iter(states)

    def poll():
        status, done = next(answers)
        job = SimpleNamespace(status=status, counts=JobCounts(files=8, mini_batches=4), pipeline=None)
        return job, {"mini_batches_done": done}

    return poll


RUN = [(JobStatus.QUEUED, 0), (JobStatus.RUNNING, 1), (JobStatus.RUNNING, 1), (JobStatus.RUNNING, 3)]
DONE = (JobStatus.COMPLETED, 4)


@pytest.mark.parametrize(("fraction", "drawn"), [(0.0, "." * 30), (0.5, "#" * 15 + "." * 15), (1.0, "#" * 30)])
def test_a_bar_is_filled_by_its_fraction_and_no_further(fraction, drawn):
    assert bar(fraction) == f"[{drawn}]"
    assert bar(fraction * 3) == bar(min(fraction * 3, 1.0))


def test_a_job_is_redrawn_in_place_on_a_terminal_and_its_line_ended():
    out = Terminal()

    job = progress.watch(job_polls(*RUN, DONE), out=out, interval_s=0)

    assert job.status == JobStatus.COMPLETED
    assert out.getvalue().count("\r") == 5 and out.getvalue().count("\n") == 1
    last = out.getvalue().rsplit("\r", 1)[1]
    assert last.startswith(f"Completed  [{'#' * 30}] mini-batches 4/4") and last.endswith("ETA -\n")


def test_a_pipe_gets_a_jobs_first_and_last_lines_and_no_more_often_than_it_asks(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_PRINT_EVERY_S", float("inf"))
    out = io.StringIO()

    progress.watch(job_polls(*RUN, DONE), out=out, interval_s=0)

    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["Queued", "Completed"]
    assert "\r" not in out.getvalue()


def test_a_pipe_gets_each_changed_line_once_when_it_asks_for_all():
    out = io.StringIO()
    line = StatusLine(out, plain_every_s=0)

    for text in ("a", "a", "b", "b", "c"):
        line.show(text, last=text == "c")
    line.close()

    assert out.getvalue() == "a\nb\nc\n"


def test_an_uploads_bar_draws_nothing_on_a_pipe():
    out = io.StringIO()
    line = StatusLine(out)

    line.show("uploading", last=True)
    line.close()

    assert out.getvalue() == ""


def test_a_pipeline_jobs_line_counts_its_steps_and_a_running_parallel_steps_mini_batches():
    steps = [
        StepRun(name="j-prep", step="prep", type="command", status=StepStatus.COMPLETED),
        StepRun(name="j-score", step="score", type="parallel", status=StepStatus.RUNNING),
        StepRun(name="j-post", step="post", type="command"),
    ]

    line = progress.pipeline_line(JobStatus.RUNNING, PipelineRun(steps=steps), {"mini_batches_done": 2})

    assert "steps 1/3" in line and "running score" in line and "mini-batches done 2" in line
