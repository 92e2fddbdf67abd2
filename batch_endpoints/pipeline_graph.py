"""The checks of a pipeline component's steps as a graph, made before it is registered: every binding leads to
something declared and of a type that fits, no step waits on itself, each pipeline output has one writer, and each
step is given the inputs its component requires. Errors name the field as the file writes it
(`jobs.score_job.inputs.data`)."""

from __future__ import annotations

from collections.abc import Mapping

from batch_endpoints.errors import ValidationError
from batch_endpoints.specs.components import (
    DATA_TYPES,
    LITERAL_TYPES,
    ComponentInput,
    PipelineComponent,
    PipelineStep,
    StepComponent,
    StepInput,
    fits,
)
from batch_endpoints.specs.endpoints import literal_value


def pipeline_steps(pipeline: PipelineComponent) -> dict[str, StepComponent]:
    """Each step's component, of a pipeline whose steps' components are written inline (a deployment's)."""
    steps: dict[str, StepComponent] = {}
    for name, step in pipeline.jobs.items():
        if isinstance(step.component, str):
            raise ValidationError(
                f"names {step.component}; a deployed pipeline holds its steps' components",
                field=f"jobs.{name}.component",
            )
        steps[name] = step.component
    return steps


def check_pipeline(pipeline: PipelineComponent, components: Mapping[str, StepComponent]) -> list[str]:
    """Check the steps, whose components (inline or registered) are `components[step]`, and return the steps in
    an order that runs each after the steps it reads from."""
    writers: dict[str, str] = {}
    for step_name, step in pipeline.jobs.items():
        component = components[step_name]
        where = f"jobs.{step_name}"
        if component.type != step.type:
            raise ValidationError(
                f"is a {component.type} component, but the step's type is {step.type}", field=f"{where}.component"
            )
        for input_name, given in step.inputs.items():
            field = f"{where}.inputs.{input_name}"
            if input_name not in component.inputs:
                raise ValidationError(_undeclared("input", input_name, component), field=field)
            _check_input(pipeline, components, given, component.inputs[input_name], field=field)
        for input_name, declared in component.inputs.items():
            if declared.required and input_name not in step.inputs:
                raise ValidationError(
                    f"is required by the step's component ({declared.type})", field=f"{where}.inputs.{input_name}"
                )
        _check_outputs(pipeline, step_name, step, component, writers)
    return _in_order(pipeline)


def _check_input(
    pipeline: PipelineComponent,
    components: Mapping[str, StepComponent],
    given: StepInput,
    declared: ComponentInput,
    *,
    field: str,
) -> None:
    bound = given.binding
    if given.path is not None and "${{" in given.path and bound is None:
        raise ValidationError(
            f"{given.path!r}: bind with ${{{{parent.inputs.NAME}}}} or ${{{{parent.jobs.STEP.outputs.NAME}}}}",
            field=field,
        )
    if bound is None:
        _check_given_value(given, declared, field=field)
        return
    if bound[0] == "outputs":
        raise ValidationError("an input cannot read a pipeline output; bind a step's output instead", field=field)
    if bound[0] == "inputs":
        source = pipeline.inputs.get(bound[1])
        if source is None:
            raise ValidationError(f"binds parent.inputs.{bound[1]}, which the pipeline does not declare", field=field)
        source_type, what = source.type, f"parent.inputs.{bound[1]}"
    else:
        _, step_name, output_name = bound
        if step_name not in pipeline.jobs:
            raise ValidationError(
                f"binds the outputs of {step_name!r}, which is not a step of this pipeline", field=field
            )
        outputs = components[step_name].outputs
        if output_name not in outputs:
            raise ValidationError(f"binds {output_name!r}, which step {step_name} does not output", field=field)
        source_type, what = outputs[output_name].type, f"jobs.{step_name}.outputs.{output_name}"
    if not fits(source_type, declared.type):
        raise ValidationError(f"binds {what}, a {source_type}, to a {declared.type} input", field=field)


def _check_given_value(given: StepInput, declared: ComponentInput, *, field: str) -> None:
    if declared.type in LITERAL_TYPES:
        if given.path is not None or given.value is None:
            raise ValidationError(f"is a {declared.type} input: give a value, not data", field=field)
        try:
            literal_value(declared.type, given.value)
        except ValueError as exc:
            raise ValidationError(str(exc), field=field) from None
        return
    if given.value is not None and given.path is None:
        raise ValidationError(
            f"is a {declared.type} input: give data (path and type), not the value {given.value!r}", field=field
        )
    if given.type is not None and given.type not in DATA_TYPES:
        raise ValidationError(f"is a {declared.type} input; the given type {given.type} is not data", field=field)
    if given.type is not None and not fits(given.type, declared.type):
        raise ValidationError(f"gives a {given.type} to a {declared.type} input", field=field)


def _check_outputs(
    pipeline: PipelineComponent, step_name: str, step: PipelineStep, component: StepComponent, writers: dict[str, str]
) -> None:
    for output_name, given in step.outputs.items():
        field = f"jobs.{step_name}.outputs.{output_name}"
        if output_name not in component.outputs:
            raise ValidationError(_undeclared("output", output_name, component), field=field)
        bound = given.binding
        if given.path is not None and bound is None and "${{" in given.path:
            raise ValidationError(
                f"{given.path!r}: bind a pipeline output with ${{{{parent.outputs.NAME}}}}", field=field
            )
        if bound is None:
            continue
        if bound[0] != "outputs":
            raise ValidationError("an output can be bound to a pipeline output only (parent.outputs.NAME)", field=field)
        target = pipeline.outputs.get(bound[1])
        if target is None:
            raise ValidationError(f"binds parent.outputs.{bound[1]}, which the pipeline does not declare", field=field)
        made = component.outputs[output_name].type
        if not fits(made, target.type):
            raise ValidationError(f"writes a {made} to parent.outputs.{bound[1]}, a {target.type}", field=field)
        if bound[1] in writers:
            raise ValidationError(
                f"writes parent.outputs.{bound[1]}, which step {writers[bound[1]]} writes already; an output has one "
                "writer",
                field=field,
            )
        writers[bound[1]] = step_name


def _in_order(pipeline: PipelineComponent) -> list[str]:
    """The steps in dependency order (Kahn's algorithm); a cycle is refused naming an input on it."""
    reads = {
        name: {
            (bound[1], input_name)
            for input_name, given in step.inputs.items()
            if (bound := given.binding) is not None and bound[0] == "jobs"
        }
        for name, step in pipeline.jobs.items()
    }
    readers: dict[str, list[str]] = {name: [] for name in reads}
    for name, sources in reads.items():
        for source in {source for source, _ in sources}:
            readers[source].append(name)
    waiting = {name: len({source for source, _ in sources}) for name, sources in reads.items()}
    order = [name for name, count in waiting.items() if count == 0]
    for name in order:  # grows while it is walked: each step once, so a thousand steps cost a thousand
        for reader in readers[name]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                order.append(reader)
    if len(order) < len(reads):
        raise _cycle(reads, set(order))
    return order


def _cycle(reads: Mapping[str, set[tuple[str, str]]], done: set[str]) -> ValidationError:
    """The error for a cycle among the steps not done: walk back along unfinished sources until a step repeats."""
    walked: list[tuple[str, str]] = []  # (step, the input by which it reads the next one back)
    step = next(name for name in reads if name not in done)
    while step not in [name for name, _ in walked]:
        source, input_name = min(s for s in reads[step] if s[0] not in done)
        walked.append((step, input_name))
        step = source
    cycle = walked[[name for name, _ in walked].index(step) :]
    first, input_name = cycle[0]
    path = " <- ".join([name for name, _ in cycle] + [first])
    return ValidationError(f"makes a cycle between steps: {path}", field=f"jobs.{first}.inputs.{input_name}")


def _undeclared(what: str, name: str, component: StepComponent) -> str:
    declared = component.inputs if what == "input" else component.outputs
    known = ", ".join(declared) or "none"
    return f"the step's component declares no {what} {name!r} (its {what}s: {known})"
