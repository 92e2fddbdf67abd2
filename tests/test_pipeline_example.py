"""The pipeline example end to end on the local backend: prepare (command), score (parallel, the tabular example's
MLflow model), summarize (command), with the literal score_mode and two outputs."""

from __future__ import annotations

from pathlib import Path

from tests.example_scripts import import_by_path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pipeline"


def test_the_pipeline_example_scores_every_patient_as_the_model_does_and_replaces_the_rows(bep, home, tmp_path):
    # run() itself fails unless the predictions are the model's own predict() on the same rows.
    outputs = import_by_path(EXAMPLE / "run.py", "pipeline_example_run").run(tmp_path, score_mode="replace")

    scores, summary = outputs["scores"], outputs["summary"]
    assert list(scores.columns) == ["file", "prediction"]  # replace: the patients' columns left out
    assert sorted(scores["file"].unique()) == ["patients-0.csv", "patients-1.csv", "patients-2.csv"]
    assert summary["patients"].sum() == len(scores)
    job = bep.service.list_jobs("cancer-pipeline")[0]
    assert [run.status for run in job.pipeline.steps] == ["Completed"] * 3
    assert len(bep.service.list_jobs()) == 1  # the parallel step's own job is the pipeline job's child
