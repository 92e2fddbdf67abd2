"""Components as versioned assets: Azure's component files load as written, a pipeline's steps are checked as a
graph, and a refused component stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.pipeline_graph import check_pipeline
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs.components import CommandComponent, ParallelComponent, PipelineComponent
from batch_endpoints.yaml_files.components import load_component
from tests.core_fixtures import local_backend_fixture, recorder_fixture, service_fixture, write_tree

__all__ = ["local_backend_fixture", "recorder_fixture", "service_fixture"]

AZURE = Path(__file__).parent / "data" / "azure_pipelines"
SCORING = AZURE / "batch-scoring-with-preprocessing"
TRAINING = AZURE / "training-with-components"


def create(service: BatchEndpointService, path: Path, **fields: Any) -> Any:
    return service.create_component(load_component(path), **fields)


def test_hello_batch_registers_with_its_inline_step_and_code_in_storage(service: BatchEndpointService) -> None:
    pipeline = create(service, AZURE / "hello-batch" / "hello-component" / "hello.yml", caller="ana")
    assert isinstance(pipeline, PipelineComponent)
    assert (pipeline.ref, pipeline.created_by) == ("hello_batch:1", "ana")
    step = pipeline.jobs["main_job"].component
    assert isinstance(step, CommandComponent)
    assert step.environment == "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest"
    assert step.code is not None and service.blobs.exists(service.blobs.join(step.code, "hello.py"))
    assert service.get_component("hello_batch", label="latest") == pipeline


def test_batch_scoring_pins_its_registered_step_and_keeps_its_file_step_inline(
    service: BatchEndpointService,
) -> None:
    prepare = create(service, SCORING / "components" / "prepare" / "prepare.yml")
    pipeline = create(service, SCORING / "pipeline.yml")
    assert prepare.ref == "uci_heart_prepare:1"
    assert pipeline.jobs["preprocess_job"].component == "uci_heart_prepare:1"
    score = pipeline.jobs["score_job"].component
    assert isinstance(score, CommandComponent) and score.name == "uci_heart_score"
    assert pipeline.jobs["score_job"].outputs["scores"].binding == ("outputs", "scores")
    create(service, SCORING / "components" / "prepare" / "prepare.yml")
    assert [c.version for c in service.list_components("uci_heart_prepare")] == ["1", "2"]
    stored = service.get_component("batch_scoring_uci_heart", "1")
    assert isinstance(stored, PipelineComponent) and stored.jobs["preprocess_job"].component == "uci_heart_prepare:1"


def test_training_with_components_binds_literals_and_three_outputs(service: BatchEndpointService) -> None:
    pipeline = create(service, TRAINING / "deployment-ordinal" / "pipeline.yml", version="7")
    assert pipeline.ref == "uci-heart-train-pipeline:7"
    train = pipeline.jobs["train_job"]
    assert (train.inputs["eval_size"].value, train.inputs["register_best_model"].value) == (0.3, False)
    assert [c.ref for c in service.list_components()] == ["uci-heart-train-pipeline:7"]


def test_a_version_is_registered_once(service: BatchEndpointService) -> None:
    create(service, SCORING / "components" / "score" / "score.yml", version="1")
    with pytest.raises(ConflictError) as refused:
        create(service, SCORING / "components" / "score" / "score.yml", version="1")
    assert refused.value.field == "version"


def test_a_parallel_component_reads_azures_fields(service: BatchEndpointService, tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/parallelComponent.schema.json",
            "type": "parallel",
            "name": "score_files",
            "inputs": {"files": {"type": "uri_folder"}, "model": {"type": "mlflow_model"}},
            "outputs": {"scores": {"type": "uri_folder"}},
            "input_data": "${{inputs.files}}",
            "mini_batch_size": "10kb",
            "resources": {"instance_count": 2},
            "max_concurrency_per_instance": 2,
            "error_threshold": 5,
            "retry_settings": {"max_retries": 2, "timeout": 60},
            "logging_level": "DEBUG",
            "task": {
                "type": "run_function",
                "code": "src",
                "entry_script": "score.py",
                "environment": "azureml:sklearn@latest",
                "program_arguments": "--model ${{inputs.model}}",
                "append_row_to": "${{outputs.scores}}",
            },
        },
        files={"src/score.py": "def init():\n    pass\n\n\ndef run(mini_batch):\n    return mini_batch\n"},
    )
    component = create(service, path)
    assert isinstance(component, ParallelComponent)
    assert (component.mini_batch_size, component.logging_level, component.resources.instance_count) == (
        "10KB",
        "debug",
        2,
    )
    assert component.task.code is not None and component.task.code.startswith(str(service.blobs.root))


def write_yaml(folder: Path, document: dict[str, Any], files: dict[str, str] | None = None) -> Path:
    write_tree(folder, {"component.yml": yaml.safe_dump(document, sort_keys=False), **(files or {})})
    return folder / "component.yml"


STEP = {"type": "command", "code": "src", "environment": "azureml:env@latest"}


def pipeline(jobs: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "type": "pipeline",
        "name": "p",
        "inputs": {"data": {"type": "uri_folder"}, "mode": {"type": "string", "default": "append"}},
        "outputs": {"result": {"type": "uri_folder"}},
        "jobs": jobs,
        **fields,
    }


def step(command: str, takes: dict[str, Any], makes: dict[str, Any], **bound: Any) -> dict[str, Any]:
    """A command step with its component inline (declaring `takes` and `makes`) and its bindings."""
    return {
        "type": "command",
        "component": {**STEP, "command": command, "inputs": takes, "outputs": makes},
        **bound,
    }


FOLDER_IN = {"data": {"type": "uri_folder"}}
FOLDER_OUT = {"out": {"type": "uri_folder"}}
COPY = "python copy.py ${{inputs.data}} ${{outputs.out}}"
GOOD_FIRST = step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.inputs.data}}"})


@pytest.mark.parametrize(
    ("jobs", "field", "problem"),
    [
        (
            {"a": step("python a.py ${{inputs.nope}}", FOLDER_IN, {}, inputs={"data": "${{parent.inputs.data}}"})},
            "jobs.a.component.command",
            "${{inputs.nope}}, which the component does not declare",
        ),
        (
            {
                "a": GOOD_FIRST,
                "b": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.jobs.z.outputs.out}}"}),
            },
            "jobs.b.inputs.data",
            "'z', which is not a step",
        ),
        (
            {"a": GOOD_FIRST, "b": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.jobs.a.outputs.x}}"})},
            "jobs.b.inputs.data",
            "'x', which step a does not output",
        ),
        (
            {"a": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.inputs.missing}}"})},
            "jobs.a.inputs.data",
            "parent.inputs.missing, which the pipeline does not declare",
        ),
        (
            {
                "a": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.jobs.b.outputs.out}}"}),
                "b": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.jobs.a.outputs.out}}"}),
            },
            "jobs.a.inputs.data",
            "makes a cycle between steps: a <- b <- a",
        ),
        (
            {
                "a": step(
                    COPY,
                    FOLDER_IN,
                    FOLDER_OUT,
                    inputs={"data": "${{parent.inputs.data}}"},
                    outputs={"out": "${{parent.outputs.result}}"},
                ),
                "b": step(
                    COPY,
                    FOLDER_IN,
                    FOLDER_OUT,
                    inputs={"data": "${{parent.inputs.data}}"},
                    outputs={"out": "${{parent.outputs.result}}"},
                ),
            },
            "jobs.b.outputs.out",
            "which step a writes already",
        ),
        (
            {"a": step(COPY, FOLDER_IN, FOLDER_OUT)},
            "jobs.a.inputs.data",
            "is required by the step's component",
        ),
        (
            {"a": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.inputs.mode}}"})},
            "jobs.a.inputs.data",
            "binds parent.inputs.mode, a string, to a uri_folder input",
        ),
        (
            {"a": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "just text"})},
            "jobs.a.inputs.data",
            "give data (path and type), not the value 'just text'",
        ),
        (
            {"a": step("python a.py ${{inputs.n}}", {"n": {"type": "integer"}}, {}, inputs={"n": "many"})},
            "jobs.a.inputs.n",
            "expected an integer",
        ),
        (
            {
                "a": step(
                    COPY,
                    FOLDER_IN,
                    {"out": {"type": "uri_file"}},
                    inputs={"data": "${{parent.inputs.data}}"},
                    outputs={"out": "${{parent.outputs.result}}"},
                )
            },
            "jobs.a.outputs.out",
            "writes a uri_file to parent.outputs.result, a uri_folder",
        ),
        (
            {"a": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.inputs.data}}", "extra": 1})},
            "jobs.a.inputs.extra",
            "declares no input 'extra'",
        ),
        (
            {"a": step(COPY, FOLDER_IN, FOLDER_OUT, inputs={"data": "${{parent.inputs.data}}/sub"})},
            "jobs.a.inputs.data",
            "bind with ${{parent.inputs.NAME}}",
        ),
        (
            {"a": {**GOOD_FIRST, "type": "parallel"}},
            "jobs.a.component",
            "is a command component, but the step's type is parallel",
        ),
    ],
)
def test_a_bad_pipeline_is_refused_naming_the_field_and_stores_nothing(
    service: BatchEndpointService, tmp_path: Path, jobs: dict[str, Any], field: str, problem: str
) -> None:
    path = write_yaml(tmp_path, pipeline(jobs), files={"src/copy.py": "print(1)\n"})
    with pytest.raises(ValidationError) as refused:
        create(service, path)
    assert refused.value.field == field
    assert problem in refused.value.message
    assert service.list_components() == []
    assert not service.blobs.is_folder(service.blobs.join(service.blobs.root, "code"))


def test_a_step_naming_an_unregistered_component_is_refused_naming_the_step(
    service: BatchEndpointService,
) -> None:
    with pytest.raises(NotFoundError) as refused:
        create(service, SCORING / "pipeline.yml")
    assert refused.value.field == "jobs.preprocess_job.component"
    assert service.list_components() == []


def test_a_step_cannot_run_a_pipeline_component(service: BatchEndpointService, tmp_path: Path) -> None:
    create(service, AZURE / "hello-batch" / "hello-component" / "hello.yml")
    path = write_yaml(tmp_path, pipeline({"a": {"type": "command", "component": "azureml:hello_batch:1"}}))
    with pytest.raises(ValidationError, match="is a pipeline component") as refused:
        create(service, path)
    assert refused.value.field == "jobs.a.component"


@pytest.mark.parametrize(
    ("document", "field", "problem"),
    [
        ({"type": "command", "name": "c"}, "command", "is required"),
        ({"type": "sweep", "name": "c"}, "type", "must be command, parallel or pipeline"),
        ({"type": "command", "name": "c", "command": "x", "code": "nowhere"}, "code", "which is not a folder"),
        ({"type": "command", "name": "c", "command": "x", "comand": "y"}, "comand", "is not a known field"),
        (
            {"type": "command", "name": "c", "command": "x", "inputs": {"a": {"type": "uri_fold"}}},
            "inputs.a.type",
            "uri_folder",
        ),
        (
            {"type": "command", "name": "c", "command": "x", "inputs": {"a": {"type": "integer", "default": "x"}}},
            "inputs.a",
            "expected an integer",
        ),
        (
            pipeline({"a": {"type": "command", "component": "steps/missing.yml"}}),
            "jobs.a.component",
            "which is not a file",
        ),
        (
            pipeline({"a": {"type": "command", "component": "azureml:other@newest"}}),
            "jobs.a.component",
            "the only label is @latest",
        ),
        (
            pipeline({"a": {"type": "command", "component": {"command": "x", "enviroment": "e"}}}),
            "jobs.a.component.enviroment",
            "is not a known field",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, document: dict[str, Any], field: str, problem: str
) -> None:
    path = write_yaml(tmp_path, document)
    with pytest.raises(ValidationError) as refused:
        load_component(path)
    assert refused.value.field == field
    assert str(path) in refused.value.message and problem in refused.value.message


def test_an_error_in_a_step_file_names_both_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"steps/bad.yml": "type: command\nname: bad\ncommand: x\nenviroment: e\n"})
    path = write_yaml(tmp_path, pipeline({"a": {"type": "command", "component": "steps/bad.yml"}}))
    with pytest.raises(ValidationError) as refused:
        load_component(path)
    assert refused.value.field == "jobs.a.component"
    assert "steps/bad.yml: field 'enviroment' is not a known field" in refused.value.message


def test_a_step_file_naming_its_own_pipeline_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, pipeline({"a": {"type": "command", "component": "component.yml"}}))
    with pytest.raises(ValidationError, match="names itself"):
        load_component(path)


def test_overrides_apply_before_validation(tmp_path: Path) -> None:
    component = load_component(SCORING / "components" / "score" / "score.yml", {"version": "3", "name": "renamed"})
    assert component.ref == "renamed:3"


PARALLEL = {
    "type": "parallel",
    "inputs": {"files": {"type": "uri_folder"}, "threshold": {"type": "number", "default": 0.5}},
    "outputs": {"scores": {"type": "uri_folder"}},
    "input_data": "${{inputs.files}}",
    "task": {
        "code": "src",
        "entry_script": "score.py",
        "program_arguments": "--threshold ${{inputs.threshold}}",
        "append_row_to": "${{outputs.scores}}",
    },
}


def test_a_parallel_step_reads_a_command_steps_output(service: BatchEndpointService, tmp_path: Path) -> None:
    jobs = {
        "prepare": GOOD_FIRST,
        "score": {
            "type": "parallel",
            "component": PARALLEL,
            "inputs": {"files": "${{parent.jobs.prepare.outputs.out}}", "threshold": 0.9},
            "outputs": {"scores": "${{parent.outputs.result}}"},
        },
    }
    path = write_yaml(tmp_path, pipeline(jobs), files={"src/copy.py": "print(1)\n", "src/score.py": "print(2)\n"})
    registered = create(service, path)
    score = registered.jobs["score"].component
    assert isinstance(score, ParallelComponent) and score.task.code is not None
    assert service.blobs.exists(service.blobs.join(score.task.code, "score.py"))


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"input_data": "${{inputs.threshold}}"}, "input_data", "must name a uri_folder, uri_file or mltable input"),
        ({"input_data": "${{inputs.nothing}}"}, "input_data", "names inputs.nothing, which the component does not"),
        ({"input_data": "files"}, "input_data", "must be ${{inputs.NAME}}"),
        ({"task": {**PARALLEL["task"], "append_row_to": "${{outputs.other}}"}}, "task.append_row_to", "outputs.other"),
        (
            {"task": {**PARALLEL["task"], "append_row_to": "${{inputs.files}}"}},
            "task.append_row_to",
            "${{outputs.NAME}}",
        ),
        (
            {"task": {**PARALLEL["task"], "program_arguments": "--x ${{inputs.x}}"}},
            "task.program_arguments",
            "${{inputs.x}}, which the component does not declare",
        ),
    ],
)
def test_a_bad_parallel_component_is_refused_naming_the_field(
    service: BatchEndpointService, tmp_path: Path, change: dict[str, Any], field: str, problem: str
) -> None:
    path = write_yaml(tmp_path, {**PARALLEL, "name": "scorer", **change}, files={"src/score.py": "print(2)\n"})
    with pytest.raises(ValidationError) as refused:
        create(service, path)
    assert (refused.value.field, service.list_components()) == (field, [])
    assert problem in refused.value.message


def test_a_parallel_step_may_override_its_run_settings_and_a_command_step_may_not(tmp_path: Path) -> None:
    settings = {"mini_batch_size": 3, "logging_level": "WARNING", "retry_settings": {"max_retries": 1, "timeout": 5}}
    step_fields = {"inputs": {"files": "${{parent.inputs.data}}"}, **settings}
    parallel = write_yaml(
        tmp_path / "p",
        pipeline({"s": {"type": "parallel", "component": PARALLEL, **step_fields}}),
        files={"src/score.py": "print(2)\n"},
    )
    loaded = load_component(parallel)
    assert isinstance(loaded, PipelineComponent)
    assert (loaded.jobs["s"].mini_batch_size, loaded.jobs["s"].logging_level) == (3, "warning")
    command = write_yaml(
        tmp_path / "c", pipeline({"s": {**GOOD_FIRST, "mini_batch_size": 3}}), files={"src/copy.py": "print(1)\n"}
    )
    with pytest.raises(ValidationError, match="mini_batch_size is a parallel step's setting") as refused:
        load_component(command)
    assert refused.value.field == "jobs.s"


def test_the_steps_come_in_the_order_they_read_each_other() -> None:
    loaded = load_component(TRAINING / "deployment-ordinal" / "pipeline.yml")
    assert isinstance(loaded, PipelineComponent)
    reversed_jobs = loaded.model_copy(update={"jobs": dict(reversed(loaded.jobs.items()))})
    steps = {name: step.component for name, step in reversed_jobs.jobs.items() if not isinstance(step.component, str)}
    assert check_pipeline(reversed_jobs, steps) == ["preprocess_job", "train_job"]
