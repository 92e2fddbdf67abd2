"""A pipeline job's child step jobs, as invoke records them: every binding resolved to a value or a storage URI
once, so that a step is a unit any orchestrator runs alone (a process here, one Batch job in the cloud) from its
record, and its outputs' locations are known before it runs.

A step output bound to a pipeline output is written there; any other output gets a folder of its own beside the
pipeline's outputs, `<job folder>/<step>/<output>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from batch_endpoints.pipeline_graph import check_pipeline, pipeline_steps
from batch_endpoints.specs import LiteralValue, StepRun, StepStatus
from batch_endpoints.specs.components import PipelineComponent

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
