"""Azure ML CLI v2 YAML files (batch endpoint, batch deployment, data asset, invoke), read as they are.

A file becomes a *declaration*: what the user asked for, validated, with local paths made absolute against the
file's folder. Registering the model and code into storage and writing the records is the service's job.

Both layouts of a deployment file load. Azure's CLI before 1.7 put the run settings at the top level
(`mini_batch_size: 10`); since 1.7 (`type: model`) they sit under `settings:`. Internally both become the nested
form, and every error still names the field where the user wrote it. `--set` overrides (set_language) are applied
after the file is read and before anything is validated.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from batch_endpoints import specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.yaml_files.declarations import (
    DataDeclaration,
    DeploymentDeclaration,
    InvokeDeclaration,
    ModelDeclaration,
)
from batch_endpoints.yaml_files.inline_assets import (
    check_model_type,
    inline_environment,
    resolve_code,
    resolve_environment,
    resolve_model,
)
from batch_endpoints.yaml_files.origins import Origin, error, kind, reported
from batch_endpoints.yaml_files.reading import read_yaml
from batch_endpoints.yaml_files.references import local_or_reference
from batch_endpoints.yaml_files.schemas import (
    FLAT_SETTINGS,
    ComputeFile,
    DataFile,
    DeploymentFile,
    EndpointFile,
    EnvironmentFile,
    InvokeFile,
    ModelFile,
    scalar_text,
    text_values,
)
from batch_endpoints.yaml_files.set_language import internal_key, override_value, set_dotted

# Azure's SDK enum spellings of output_action, as `az ml batch-deployment show` prints them.
OUTPUT_ACTIONS = {"appendrow": specs.OutputAction.APPEND_ROW, "summaryonly": specs.OutputAction.SUMMARY_ONLY}


def load_endpoint(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> specs.Endpoint:
    return load_endpoint_mapping(read_yaml(path), overrides=overrides, source=os.fspath(path))


def load_deployment(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> DeploymentDeclaration:
    """Read a deployment file; relative paths in it are relative to the file's folder, as in Azure."""
    mapping = read_yaml(path)
    base_dir = Path(path).expanduser().resolve().parent
    return load_deployment_mapping(mapping, base_dir, overrides=overrides, source=os.fspath(path))


def load_endpoint_mapping(
    mapping: Mapping[str, Any], *, overrides: Mapping[str, Any] | None = None, source: str = "endpoint"
) -> specs.Endpoint:
    """Validate an endpoint given as a mapping in the file's layout (the CLI builds one from its flags, the API's
    body is one): the endpoint as declared, in its record's model, so each field reads as a stored one does."""
    data, origins = _prepare(mapping, overrides, source, settings_block=False)
    with reported(source, origins):
        doc = EndpointFile.model_validate(data)
        return specs.Endpoint.model_validate(
            {
                **doc.model_dump(exclude={"schema_", "defaults"}),
                "default_deployment": doc.defaults.deployment_name if doc.defaults else None,
            }
        )


def load_deployment_mapping(
    mapping: Mapping[str, Any],
    base_dir: str | os.PathLike[str] | None,
    *,
    overrides: Mapping[str, Any] | None = None,
    source: str = "deployment",
) -> DeploymentDeclaration:
    """Validate a deployment given as a mapping in either of Azure's layouts; paths resolve against base_dir.

    The code folder and an inline model may also be storage URIs (s3://...), kept as written: the service checks
    them in storage. Without base_dir (a request over the API) a local path must be absolute, and no conda file
    is read: nothing is relative to a server's working folder.
    """
    base = Path(base_dir).expanduser().resolve() if base_dir is not None else None
    if isinstance(mapping, Mapping) and mapping.get("type") == "pipeline":
        # The component loader reads its files through this module: imported here, where it is needed.
        from batch_endpoints.yaml_files.components import load_pipeline_deployment_mapping

        return load_pipeline_deployment_mapping(mapping, base, overrides=overrides, source=source)
    data, origins = _prepare(mapping, overrides, source, settings_block=True)
    settings = data.pop("settings", {})
    with reported(source, origins):
        doc = DeploymentFile.model_validate(data)
        if not isinstance(settings, Mapping):
            raise ValidationError(f"must be a mapping of run settings (got {kind(settings)})", field="settings")
        run_settings = specs.parse(specs.RunSettings, _azure_settings(settings), prefix="settings")
        model = resolve_model(doc.model, base)
        code, script = resolve_code(doc.code_configuration, base) if doc.code_configuration else (None, None)
        environment = resolve_environment(doc.environment, base)
    return DeploymentDeclaration(
        name=doc.name,
        endpoint_name=doc.endpoint_name,
        description=doc.description,
        model=model,
        code=code,
        scoring_script=script,
        environment=environment,
        compute=doc.compute,
        settings=run_settings,
        tags=dict(doc.tags),
        inputs=dict(doc.inputs),
    )


def load_data(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> DataDeclaration:
    """Read Azure's data asset YAML (`az ml data create --file`); a local path in it is relative to the file."""
    return _from_file(load_data_mapping, path, overrides)


def load_data_mapping(
    mapping: Mapping[str, Any],
    base_dir: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    source: str = "data",
) -> DataDeclaration:
    """Validate a data asset given as a mapping in the file's layout; a local path resolves against base_dir."""
    with _asset_mapping(mapping, base_dir, overrides, source, DataFile) as (doc, base):
        pass
    return DataDeclaration(
        name=doc.name,
        path=local_or_reference(doc.path, str(base)),
        type=doc.type,
        version=doc.version,
        description=doc.description,
        tags=dict(doc.tags),
    )


def load_compute(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> specs.ComputeDeclaration:
    """Read Azure's compute YAML (`az ml compute create --file`)."""
    return load_compute_mapping(read_yaml(path), overrides=overrides, source=os.fspath(path))


def load_compute_mapping(
    mapping: Mapping[str, Any], *, overrides: Mapping[str, Any] | None = None, source: str = "compute"
) -> specs.ComputeDeclaration:
    """Validate a compute given as a mapping in the file's layout (the CLI builds one from its flags)."""
    data, origins = _prepare(mapping, overrides, source, settings_block=False)
    with reported(source, origins):
        doc = ComputeFile.model_validate(data)
        return specs.ComputeDeclaration.model_validate(doc.model_dump(exclude={"schema_", "type", "location"}))


def load_model(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> ModelDeclaration:
    """Read Azure's model YAML (`az ml model create --file`); a local path in it is relative to the file."""
    return _from_file(load_model_mapping, path, overrides)


def load_model_mapping(
    mapping: Mapping[str, Any],
    base_dir: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    source: str = "model",
) -> ModelDeclaration:
    """Validate a model given as a mapping in the file's layout; a local path resolves against base_dir."""
    with _asset_mapping(mapping, base_dir, overrides, source, ModelFile) as (doc, base):
        location = local_or_reference(doc.path, str(base))
        check_model_type(doc.type, location, field="type")
    return ModelDeclaration(
        name=doc.name,
        path=location,
        type=doc.type,
        version=doc.version,
        description=doc.description,
        tags=dict(doc.tags),
    )


def load_environment(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> specs.Environment:
    """Read Azure's environment YAML (`az ml environment create --file`): `image` and `conda_file` (relative to the
    file); `build` (a Docker context) is refused."""
    return _from_file(load_environment_mapping, path, overrides)


def load_environment_mapping(
    mapping: Mapping[str, Any],
    base_dir: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    source: str = "environment",
) -> specs.Environment:
    """Validate an environment given as a mapping in the file's layout; a conda file resolves against base_dir."""
    with _asset_mapping(mapping, base_dir, overrides, source, EnvironmentFile) as (doc, base):
        return inline_environment(doc, base, "")


_File = TypeVar("_File", bound=BaseModel)
_Declared = TypeVar("_Declared")


def _from_file(
    load: Callable[..., _Declared], path: str | os.PathLike[str], overrides: Mapping[str, Any] | None
) -> _Declared:
    """An asset's YAML file read by `load`, its mapping loader: relative paths in it are relative to the file."""
    base = Path(path).expanduser().resolve().parent
    return load(read_yaml(path), base, overrides=overrides, source=os.fspath(path))


@contextmanager
def _asset_mapping(
    mapping: Mapping[str, Any],
    base_dir: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None,
    source: str,
    schema: type[_File],
) -> Iterator[tuple[_File, Path]]:
    """An asset's mapping, validated, and the folder its relative paths are relative to; errors inside the block
    name the source and where each field was written."""
    data, origins = _prepare(mapping, overrides, source, settings_block=False)
    with reported(source, origins):
        yield schema.model_validate(data), Path(base_dir).expanduser().resolve()


def load_invoke(
    path: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None, *, here: str = "."
) -> InvokeDeclaration:
    """Read Azure's batch invoke YAML (`inputs` and `outputs` by name), with `--set inputs.NAME.path=...` and the
    like applied over it. A local path is relative to the file's folder, or to `here` when given by `--set`; a
    data input or output's `mode` is accepted and ignored: jobs read and write storage directly."""
    source = os.fspath(path) if path is not None else "--set"
    given = {
        key: local_or_reference(value, here) if is_path_key(key) else value for key, value in (overrides or {}).items()
    }
    data, origins = _prepare(read_yaml(path) if path is not None else {}, given, source, settings_block=False)
    base = str(Path(path).expanduser().resolve().parent) if path is not None else here
    with reported(source, origins):
        doc = InvokeFile.model_validate(data)
    return InvokeDeclaration(
        inputs={name: located(given, base) for name, given in doc.inputs.items()},
        outputs={name: located(given, base) for name, given in doc.outputs.items()},
        experiment_name=doc.experiment_name,
        display_name=doc.display_name,
        tags=dict(doc.tags),
    )


def is_path_key(key: str) -> bool:
    parts = key.split(".")
    return len(parts) == 3 and parts[0] in ("inputs", "outputs") and parts[2] == "path"


_Located = TypeVar("_Located", specs.NamedInput, specs.NamedOutput)


def located(given: _Located, base: str | None) -> _Located:
    """`given` with its local path made absolute against `base`; as given without a base (a request's paths)."""
    if given.path is None or base is None:
        return given
    return given.model_copy(update={"path": local_or_reference(given.path, base)})


def _prepare(
    mapping: Any, overrides: Mapping[str, Any] | None, source: str, *, settings_block: bool
) -> tuple[dict[str, Any], dict[str, Origin]]:
    """Copy the mapping, move deployment run settings under `settings`, then apply the overrides.

    Returns the data and `origins`: internal dotted path -> where the user wrote it, for error messages.
    """
    if mapping is None:
        raise ValidationError(f"{source}: is empty; expected a mapping of fields such as 'name: ...'")
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{source}: expected a mapping of fields at the top level, got a {kind(mapping)}")
    data = copy.deepcopy(dict(mapping))
    origins: dict[str, Origin] = {}
    if settings_block:
        _gather_settings(data, origins, source)
    for key, raw in (overrides or {}).items():
        written = str(key)
        internal = internal_key(written) if settings_block else written
        set_dotted(data, internal, override_value(raw), written, source)
        origins[internal] = Origin(written, note=f"from override {written}={raw}")
    return data, origins


def _gather_settings(data: dict[str, Any], origins: dict[str, Origin], source: str) -> None:
    nested = data.get("settings")
    if nested is None:
        nested = {}
    elif not isinstance(nested, Mapping):
        raise error(source, "settings", f"must be a mapping of run settings (got {kind(nested)})")
    settings = dict(nested)
    for key in FLAT_SETTINGS:
        if key not in data:
            continue
        if "settings" in data:
            raise error(
                source,
                key,
                f"run settings are given both under 'settings' and at the top level; move '{key}' under 'settings'",
            )
        settings[key] = data.pop(key)
        origins[f"settings.{key}"] = Origin(key)
    resources = data.get("resources")
    if isinstance(resources, Mapping) and "instance_count" in resources:
        resources = dict(resources)
        count = resources.pop("instance_count")
        if "instance_count" in settings and settings["instance_count"] != count:
            raise error(
                source,
                "settings.instance_count",
                f"conflicts with resources.instance_count ({settings['instance_count']!r} vs {count!r}); "
                "give the instance count once, as resources.instance_count",
            )
        settings["instance_count"] = count
        origins["settings.instance_count"] = Origin("resources.instance_count")
        data["resources"] = resources
    data["settings"] = settings


def _azure_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Azure spellings the stored settings do not take: `AppendRow`, numbers where text is meant."""
    settings = dict(settings)
    action = settings.get("output_action")
    if isinstance(action, str):
        settings["output_action"] = OUTPUT_ACTIONS.get(action.replace("_", "").lower(), action)
    if "output_file_name" in settings:
        settings["output_file_name"] = scalar_text(settings["output_file_name"])
    if "environment_variables" in settings:
        settings["environment_variables"] = text_values(settings["environment_variables"])
    return settings
