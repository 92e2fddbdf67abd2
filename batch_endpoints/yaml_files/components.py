"""Azure's component YAML (`az ml component create --file`): command, parallel and pipeline components, read as
they are written. A pipeline's step may name its component by a file (relative to the pipeline's file, loaded
here and kept inline), write it inline, or refer to a registered one (`azureml:name:version`, `name@latest`),
which the service resolves. Local code folders become absolute paths; the service uploads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batch_endpoints import assets, specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.specs.components import CommandComponent, ComponentT, ParallelComponent, PipelineComponent
from batch_endpoints.yaml_files.declarations import DeploymentDeclaration, InvokeDeclaration, PipelineJobDeclaration
from batch_endpoints.yaml_files.inline_assets import inline_environment
from batch_endpoints.yaml_files.loading import _prepare, is_path_key, located
from batch_endpoints.yaml_files.origins import kind, reported
from batch_endpoints.yaml_files.reading import read_yaml
from batch_endpoints.yaml_files.references import AZURE_PREFIX, asset_reference, is_reference, local_or_reference
from batch_endpoints.yaml_files.schemas import InlineEnvironment, PipelineDeploymentFile, PipelineJobFile

# A step runs a command or parallel component (a pipeline step is refused when registered), so a chain of files
# naming files is one or two long in practice; the bound keeps a longer one from exhausting Python's stack.
MAX_NESTED_FILES = 16

_KINDS: dict[str, type[ComponentT]] = {
    "command": CommandComponent,
    "parallel": ParallelComponent,
    "pipeline": PipelineComponent,
}


def load_component(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> ComponentT:
    """Read a component file; `--set` overrides apply to it before it is validated."""
    return _load_file(Path(path).expanduser().resolve(), os.fspath(path), overrides, within=())


def load_pipeline_deployment_mapping(
    mapping: Mapping[str, Any], base: Path | None, *, overrides: Mapping[str, Any] | None, source: str
) -> DeploymentDeclaration:
    """A `type: pipeline` deployment: its component loaded (a file relative to `base`, inline) or referred to."""
    data, origins = _prepare(mapping, overrides, source, settings_block=False)
    with reported(source, origins):
        doc = PipelineDeploymentFile.model_validate(data)
        component: ComponentT | str | None = None
        job_definition = None
        if doc.job_definition is None:
            component = _pipeline_component(doc.component, base)
        elif doc.component is not None:
            raise ValidationError("give a component or a job_definition, not both", field="job_definition")
        else:
            job_definition = doc.job_definition.strip().removeprefix(AZURE_PREFIX)
            if not job_definition:
                raise ValidationError("must name a pipeline job: azureml:JOB_NAME", field="job_definition")
    return DeploymentDeclaration(
        name=doc.name,
        endpoint_name=doc.endpoint_name,
        description=doc.description,
        tags=dict(doc.tags),
        model=None,
        code=None,
        scoring_script=None,
        compute=doc.settings.default_compute,
        component=component,
        pipeline_settings=doc.settings,
        job_definition=job_definition,
    )


def load_pipeline_job(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None, *, here: str = "."
) -> PipelineJobDeclaration:
    """Read Azure's pipeline-job.yml (`az ml job create --file`): its pipeline (`component:` a file, a mapping or
    a registered one; or its steps under `jobs:`, the pipeline's inputs and outputs then those the job gives),
    with `--set` applied. Local paths are relative to the file's folder, or to `here` when given by `--set`."""
    source, file = os.fspath(path), Path(path).expanduser().resolve()
    given = {
        key: local_or_reference(value, here) if is_path_key(key) else value for key, value in (overrides or {}).items()
    }
    return load_pipeline_job_mapping(read_yaml(file), file.parent, overrides=given, source=source)


def load_pipeline_job_mapping(
    mapping: Mapping[str, Any], base: Path | None, *, overrides: Mapping[str, Any] | None = None, source: str = ""
) -> PipelineJobDeclaration:
    """A pipeline job from its mapping in Azure's layout; local paths resolve against `base` (none: a request,
    whose code and data must already be in storage)."""
    data, origins = _prepare(mapping, overrides, source, settings_block=False)
    with reported(source, origins):
        doc = PipelineJobFile.model_validate(data)
        if doc.jobs is None:
            component = _pipeline_component(doc.component, base)
        elif doc.component is not None:
            raise ValidationError("give a component or jobs, not both", field="jobs")
        else:
            component = component_from_mapping(
                {"type": "pipeline", "jobs": doc.jobs, **_declarations(doc.inputs, doc.outputs)}, base
            )
    settings = doc.settings or specs.PipelineSettings()
    if doc.compute and "default_compute" not in settings.model_fields_set:
        settings = settings.model_copy(update={"default_compute": doc.compute})
    folder = str(base) if base is not None else None
    invocation = InvokeDeclaration(
        inputs={name: located(given, folder) for name, given in doc.inputs.items()},
        outputs={name: located(given, folder) for name, given in doc.outputs.items()},
        experiment_name=doc.experiment_name,
        display_name=doc.display_name,
        tags=dict(doc.tags),
    )
    return PipelineJobDeclaration(
        component=component, invocation=invocation, settings=settings, name=doc.name, description=doc.description
    )


def _pipeline_component(written: Any, base: Path | None) -> ComponentT | str:
    """A `component:` that must be a pipeline: a registered one's reference, a file relative to `base`, or inline."""
    component: ComponentT | str
    if isinstance(written, str) and (written.startswith(AZURE_PREFIX) or is_reference(written)):
        return component_reference(written, field="component")
    if isinstance(written, str) and base is not None:
        component = _component_file(written, base, "component", within=())
    elif isinstance(written, Mapping):
        try:
            component = component_from_mapping({"type": "pipeline", **written}, base)
        except ValidationError as exc:
            raise ValidationError(exc.message, field=f"component.{exc.field}" if exc.field else "component") from None
    else:
        raise ValidationError(
            "must be a pipeline component file, a registered component (azureml:name:version) or a mapping "
            f"(got {kind(written)})",
            field="component",
        )
    if not isinstance(component, PipelineComponent):
        raise ValidationError(
            f"is a {component.type} component; a pipeline runs a pipeline component", field="component"
        )
    return component


def _declarations(inputs: Mapping[str, specs.NamedInput], outputs: Mapping[str, specs.NamedOutput]) -> dict[str, Any]:
    """The inputs and outputs of a pipeline written as its steps (`jobs:`), as Azure infers them from what the job
    gives: data of its type (a folder by default), a literal of its value's type."""
    return {
        "inputs": {
            name: {"type": given.type or ("uri_folder" if given.is_data else _literal_type(given.default))}
            for name, given in inputs.items()
        },
        "outputs": {name: {"type": given.type or "uri_folder"} for name, given in outputs.items()},
    }


def _literal_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number"}.get(type(value), "string")


def component_reference(text: str, *, field: str) -> str:
    """`name:version` or `name@latest` for Azure's ways of writing a registered component's reference."""
    name, version, label = asset_reference(text, field=field, noun="component")
    return f"{name}:{version}" if version else f"{name}@{label}"


def _load_file(path: Path, source: str, overrides: Mapping[str, Any] | None, *, within: tuple[Path, ...]) -> ComponentT:
    if path in within:
        raise ValidationError(f"{source} names itself, through the files its steps name")
    if len(within) >= MAX_NESTED_FILES:
        raise ValidationError(
            f"{source} is the {len(within) + 1}th file in a chain of step files; at most {MAX_NESTED_FILES}"
        )
    data, origins = _prepare(read_yaml(path), overrides, source, settings_block=False)
    with reported(source, origins):
        return component_from_mapping(data, path.parent, within=(*within, path))


def component_from_mapping(data: Mapping[str, Any], base: Path | None, *, within: tuple[Path, ...] = ()) -> ComponentT:
    """A component from its mapping in Azure's layout; local paths resolve against `base` (none: a request, where
    code must already be in storage)."""
    fields = {key: value for key, value in data.items() if key != "$schema"}
    if isinstance(fields.get("version"), int | float) and not isinstance(fields["version"], bool):
        fields["version"] = str(fields["version"])
    fields.setdefault("type", "command")
    model = _KINDS.get(fields["type"]) if isinstance(fields["type"], str) else None
    if model is None:
        raise ValidationError(f"must be command, parallel or pipeline (got {fields['type']!r})", field="type")
    if model is CommandComponent:
        _resolve_code_and_environment(fields, base, prefix="")
    elif model is ParallelComponent and isinstance(fields.get("task"), Mapping):
        fields["task"] = dict(fields["task"])
        _resolve_code_and_environment(fields["task"], base, prefix="task.")
    elif model is PipelineComponent and isinstance(fields.get("jobs"), Mapping):
        fields["jobs"] = {name: _step(step, base, f"jobs.{name}", within) for name, step in fields["jobs"].items()}
    return specs.parse(model, fields)


def _step(step: Any, base: Path | None, where: str, within: tuple[Path, ...]) -> Any:
    if not isinstance(step, Mapping):
        return step
    step = dict(step)
    component, field = step.get("component"), f"{where}.component"
    if isinstance(component, str):
        if component.startswith(AZURE_PREFIX) or is_reference(component):
            step["component"] = component_reference(component, field=field)
        elif base is None:
            raise ValidationError(
                "a request cannot name a file; write the component inline or register it", field=field
            )
        else:
            step["component"] = _component_file(component, base, field, within)
    elif isinstance(component, Mapping):
        inline = {"type": step.get("type"), **component}
        try:
            step["component"] = component_from_mapping(inline, base, within=within)
        except ValidationError as exc:
            raise ValidationError(exc.message, field=f"{field}.{exc.field}" if exc.field else field) from None
    else:
        raise ValidationError(
            "must be a component file, a registered component (azureml:name:version) or a mapping "
            f"(got {kind(component)})",
            field=field,
        )
    return step


def _component_file(written: str, base: Path, field: str, within: tuple[Path, ...]) -> ComponentT:
    path = (base / Path(written).expanduser()).resolve()
    if not path.is_file():
        raise ValidationError(f"{written!r} resolves to {path}, which is not a file", field=field)
    try:
        return _load_file(path, written, None, within=within)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=field) from None


def _resolve_code_and_environment(fields: dict[str, Any], base: Path | None, *, prefix: str) -> None:
    code = fields.get("code")
    if isinstance(code, str) and not assets.is_stored(code):
        fields["code"] = _code_folder(code, base, field=f"{prefix}code")
    environment = fields.get("environment")
    if isinstance(environment, str):
        asset_reference(environment, field=f"{prefix}environment", noun="environment")
        fields["environment"] = environment.strip().removeprefix(AZURE_PREFIX)
    elif isinstance(environment, Mapping):
        declared = specs.parse(InlineEnvironment, environment, prefix=f"{prefix}environment")
        fields["environment"] = inline_environment(declared, base, f"{prefix}environment.")


def _code_folder(code: str, base: Path | None, *, field: str) -> str:
    """A local code folder: relative to the file's folder; in a request (no base), an absolute path in the local
    backend's storage, which the API checks, as nothing there is relative to a server's working folder."""
    local = code.removeprefix("file://") if code.startswith("file://") else code.removeprefix("file:")
    if base is None:
        if not os.path.isabs(local):
            raise ValidationError(f"{code!r}: give the code folder's storage URI (s3://...)", field=field)
        return os.path.normpath(local)
    folder = (base / Path(local).expanduser()).resolve()
    if not folder.is_dir():
        raise ValidationError(f"{code!r} resolves to {folder}, which is not a folder", field=field)
    return str(folder)
