"""A pipeline job's child step jobs, as invoke records them: every binding resolved to a value or a storage URI
once, so that a step is a unit any orchestrator runs alone (a process here, one Batch job in the cloud) from its
record, and its outputs' locations are known before it runs.

A step output bound to a pipeline output is written there; any other output gets a folder of its own beside the
pipeline's outputs, `<job folder>/<step>/<output>`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping

from batch_endpoints.component_commands import render_command
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.pipeline_graph import check_pipeline, pipeline_steps
from batch_endpoints.repository import Repository
from batch_endpoints.shard_failures import forget_shard_failures
from batch_endpoints.specs import (
    CodeConfiguration,
    Deployment,
    Job,
    JobInput,
    JobStatus,
    LiteralValue,
    OutputAction,
    RunSettings,
    StepRun,
    StepStatus,
    now,
    parse,
)
from batch_endpoints.specs.components import PARALLEL_OVERRIDES, ParallelComponent, PipelineComponent, PipelineStep
from batch_endpoints.yaml_files.references import AZURE_PREFIX

ResolvePath = Callable[[str, str], str]
"""(a data path a step's input names, its field) -> its storage URI."""


def plan_steps(
    job_id: str,
    pipeline: PipelineComponent,
    *,
    job_folder: str,
    join: Callable[..., str],
    inputs: Mapping[str, LiteralValue],
    outputs: Mapping[str, str],
    resolve_path: ResolvePath,
) -> list[StepRun]:
    """The steps in dependency order, each with its inputs' values or URIs and its outputs' URIs. `inputs` are
    the pipeline's (data by URI), `outputs` its output folders."""
    components = pipeline_steps(pipeline)
    runs: dict[str, StepRun] = {}
    for name in check_pipeline(pipeline, components):
        step, component = pipeline.jobs[name], components[name]
        step_outputs = {output: join(job_folder, name, output) for output in component.outputs}
        for output, written in step.outputs.items():
            if (target := written.binding) is not None:
                step_outputs[output] = outputs[target[1]]
        values: dict[str, LiteralValue] = {}
        depends_on: list[str] = []
        for input_name, given in step.inputs.items():
            bound = given.binding
            if bound is None:
                field = f"jobs.{name}.inputs.{input_name}"
                value = given.value if given.path is None else resolve_path(given.path, field)
            elif bound[0] == "inputs":
                value = inputs.get(bound[1])
            else:
                value = runs[bound[1]].outputs[bound[2]]
                depends_on += [bound[1]] if bound[1] not in depends_on else []
            if value is not None:
                values[input_name] = value
        runs[name] = StepRun(
            name=f"{job_id}-{name}",
            step=name,
            type=step.type,
            display_name=step.display_name or component.display_name or name,
            depends_on=depends_on,
            inputs=values,
            outputs=step_outputs,
        )
    return list(runs.values())


def ready_steps(steps: list[StepRun]) -> list[StepRun]:
    """The steps not started whose every source step has completed."""
    done = {run.step for run in steps if run.status == StepStatus.COMPLETED}
    return [run for run in steps if run.status == StepStatus.NOT_STARTED and set(run.depends_on) <= done]


def blocked_steps(steps: list[StepRun]) -> list[StepRun]:
    """The steps not started that never will: a step they read from ended without completing."""
    ended = {run.step for run in steps if run.status.is_final and run.status != StepStatus.COMPLETED}
    blocked: list[StepRun] = []
    for run in steps:  # in dependency order: a step blocked by a blocked step is found after it
        if run.status == StepStatus.NOT_STARTED and set(run.depends_on) & ended:
            blocked.append(run)
            ended.add(run.step)
    return blocked


def reset_unfinished(run: StepRun) -> StepRun:
    """A resumed job keeps its completed steps and their outputs; the others run again."""
    if run.status == StepStatus.COMPLETED:
        return run
    return run.model_copy(
        update={"status": StepStatus.NOT_STARTED, "started_at": None, "ended_at": None, "error": None}
    )


def failure_summary(steps: list[StepRun]) -> str | None:
    """The job's error: why each failed step failed, or None when none did."""
    failed = [run for run in steps if run.status == StepStatus.FAILED]
    return "; ".join(f"step {run.step} failed: {run.error}" for run in failed) or None


MODEL_TYPES = ("mlflow_model", "custom_model")
# Azure's file for a parallel step's appended rows, in its layout (no header, a row's values joined by a space).
PARALLEL_OUTPUT_FILE = "parallel_run_step.txt"


def parallel_step_job(parent: Job, run: StepRun, step: PipelineStep, component: ParallelComponent) -> Job:
    """The job a parallel step runs: the mini-batch engine over its input_data with its task's entry script, as a
    model deployment's job runs, and its appended rows (or, without append_row_to, only its summary) in its output.
    Its model folder (AZUREML_MODEL_DIR) is the step's first model input, when it has one."""
    data_input = _placeholder_name(component.input_data)
    if data_input not in run.inputs:
        raise ValidationError(
            "is not given, and the step's input_data reads it", field=f"jobs.{run.step}.inputs.{data_input}"
        )
    if component.task.code is None:
        raise ValidationError("is required: the folder holding the entry script", field=f"jobs.{run.step}.task.code")
    overrides = {name: getattr(step, name) for name in PARALLEL_OVERRIDES if getattr(step, name) is not None}
    own = {name: getattr(component, name) for name in PARALLEL_OVERRIDES}
    appends_to = _placeholder_name(component.task.append_row_to) if component.task.append_row_to else None
    output_folder = run.outputs[appends_to] if appends_to else next(iter(run.outputs.values()), None)
    settings = parse(
        RunSettings,
        {
            **own,
            **overrides,
            "instance_count": component.resources.instance_count,
            "output_action": OutputAction.APPEND_ROW if appends_to else OutputAction.SUMMARY_ONLY,
            "output_file_name": PARALLEL_OUTPUT_FILE,
            "output_format": "azure_append_row",
            "environment_variables": {**component.environment_variables, **step.environment_variables},
        },
        prefix=f"jobs.{run.step}",
    )
    models = [
        str(run.inputs[name])
        for name, declared in component.inputs.items()
        if declared.type in MODEL_TYPES and name in run.inputs
    ]
    deployment = Deployment(
        name=parent.deployment.name,
        endpoint_name=parent.deployment.endpoint_name,
        model=component.ref or run.step,
        code_configuration=CodeConfiguration(code=component.task.code, scoring_script=component.task.entry_script),
        compute=step_compute(parent, step),
        settings=settings,
        # The pipeline deployment's registration runs the runner too: the step's code is in the job's record.
        compute_handle=parent.deployment.compute_handle,
    )
    declared_type = component.inputs[data_input].type
    scratch = parent.scratch_uri.rstrip("/") + f"/steps/{run.step}/job"
    return Job(
        id=run.name,
        parent_job_name=parent.id,
        endpoint_name=parent.endpoint_name,
        deployment_name=parent.deployment_name,
        deployment=deployment,
        model_path=models[0] if models else component.task.code,
        input=JobInput(
            uri=str(run.inputs[data_input]), type="uri_file" if declared_type == "uri_file" else "uri_folder"
        ),
        output_uri=f"{output_folder.rstrip('/')}/{PARALLEL_OUTPUT_FILE}" if appends_to and output_folder else None,
        output_folder=output_folder,
        scratch_uri=scratch,
        settings=settings,
        experiment_name=parent.experiment_name,
        created_by=parent.created_by,
        program_arguments=program_arguments(component, run),
    )


def program_arguments(component: ParallelComponent, run: StepRun) -> list[str]:
    """The task's program_arguments as its entry script's argv gets them, each placeholder replaced: a literal by
    its value, a data input or an output by its storage location (a path on the local backend)."""
    text = render_command(component.task.program_arguments, component.inputs, run.inputs, run.outputs)
    return shlex.split(text)


def step_compute(parent: Job, step: PipelineStep) -> str:
    """Where a step runs: its own compute, else the pipeline's default compute."""
    return (step.compute or parent.deployment.compute).removeprefix(AZURE_PREFIX)


def open_step_job(repo: Repository, made: Job) -> Job:
    """A parallel step's job, ready to run: `made` recorded on the step's first run; on a later run (a resumed
    pipeline job) the job already recorded, kept with its finished mini-batches and reopened if it had ended
    without completing (one more resume). A job still open is returned as it is, so running this again (a retried
    call) changes nothing. A Completed job is returned as it is: the step has nothing left to run."""
    try:
        before = repo.get_job(made.id)
    except NotFoundError:
        repo.add_job(made)
        return made

    def reopen(current: Job) -> Job:
        if not current.status.is_final or current.status == JobStatus.COMPLETED:
            return current
        status = JobStatus.RUNNING if current.counts.shards else JobStatus.QUEUED
        update = {"status": status, "error": None, "ended_at": None, "resumes": current.resumes + 1}
        return current.model_copy(update={**update, "updated_at": now()})

    if not before.status.is_final or before.status == JobStatus.COMPLETED:
        return before
    reopened = repo.update_job(made.id, reopen)
    forget_shard_failures(repo.records, made.id)  # as a resumed model job's: its new execution's are to report
    return reopened


def request_cancel(job: Job) -> Job:
    """`job` asked to stop, unless it has ended."""
    return job if job.status.is_final else job.model_copy(update={"status": JobStatus.CANCEL_REQUESTED})


def step_job_failure(child: Job) -> str | None:
    """Why a parallel step failed, from its job's end: None when the job completed."""
    if child.status == JobStatus.COMPLETED:
        return None
    return f"its job {child.id} ended {child.status.value}" + (f": {child.error}" if child.error else "")


def _placeholder_name(text: str) -> str:
    """x of `${{inputs.x}}` or `${{outputs.x}}` (checked when the component was registered)."""
    return text.strip().removeprefix("${{").removesuffix("}}").strip().partition(".")[2]
