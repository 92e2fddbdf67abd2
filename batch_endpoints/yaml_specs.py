"""Azure ML CLI v2 YAML files (batch endpoint, batch deployment), read as they are.

A file becomes a *declaration*: what the user asked for, validated, with local paths made absolute against the
file's folder. Registering the model and code into storage and writing the records is the service's job.

Both layouts of a deployment file load. Azure's CLI before 1.7 put the run settings at the top level
(`mini_batch_size: 10`); since 1.7 (`type: model`) they sit under `settings:`. Internally both become the nested
form, and every error still names the field where the user wrote it. Keys Azure knows but that mean nothing here
(`$schema`, `resources.instance_type`, ...) are accepted and ignored; any other key is an error, because a typo
such as `mini_batch_szie` silently falling back to the default is worse than a refusal.

`--set key=value` overrides (dotted keys, values read as YAML scalars) are applied after the file is read and
before anything is validated, exactly like Azure's CLI.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from batch_endpoints import assets, specs
from batch_endpoints.errors import NotFoundError, ValidationError

# The run settings Azure's pre-1.7 layout puts at the top level of deployment.yml. `instance_count` is not
# among them: Azure keeps it under `resources:` in both layouts.
FLAT_SETTINGS = (
    "mini_batch_size",
    "max_concurrency_per_instance",
    "retry_settings",
    "error_threshold",
    "output_action",
    "output_file_name",
    "logging_level",
    "environment_variables",
    "input_format",
    "output_format",
    "keep_input_columns",
    "max_mini_batches_per_worker",
    "max_worker_memory_mb",
    "init_timeout",
)
AZURE_PREFIX = "azureml:"
LATEST = "latest"
# `name:version` or `name@label`, the short forms of a registered asset's reference.
ASSET_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(:[A-Za-z0-9][A-Za-z0-9_.-]*|@[A-Za-z]+)$")
_LITERAL_TYPES = {"string", "integer", "number", "boolean"}
DEFAULT_COMPUTE: str = specs.Deployment.model_fields["compute"].default
# Azure's SDK enum spellings of output_action, as `az ml batch-deployment show` prints them.
OUTPUT_ACTIONS = {"appendrow": specs.OutputAction.APPEND_ROW, "summaryonly": specs.OutputAction.SUMMARY_ONLY}


# --------------------------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class ModelReference:
    """A registered model (`name` + `version`, or `name` + label "latest"), or an inline local `path`."""

    name: str | None = None
    version: str | None = None
    label: Literal["latest"] | None = None
    path: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_inline(self) -> bool:
        return self.path is not None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        return f"{self.name}@{self.label}" if self.label else f"{self.name}:{self.version}"


@dataclass(frozen=True)
class EnvironmentReference:
    """A registered environment: `name` + `version`, or `name` + label "latest". The service resolves it when a
    deployment is created or updated, and the deployment keeps the version it found."""

    name: str
    version: str | None = None
    label: Literal["latest"] | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.label}" if self.label else f"{self.name}:{self.version}"


@dataclass(frozen=True)
class EndpointDeclaration:
    name: str
    description: str = ""
    auth_mode: str = "aws_iam"
    tags: dict[str, str] = field(default_factory=dict)
    default_deployment: str | None = None
    allowed_inputs: tuple[str, ...] = ()
    """Storage prefixes the endpoint's jobs may read (within the system's own list); empty: that list."""
    allowed_outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeploymentDeclaration:
    """A deployment as declared. `code` is an absolute local folder or a storage URI (s3://...);
    `scoring_script` is relative to it; both None for an MLflow model scored without code. `environment` is
    inline, or a reference to a registered version."""

    name: str
    endpoint_name: str
    model: ModelReference
    code: str | None
    scoring_script: str | None
    environment: specs.Environment | EnvironmentReference = field(default_factory=specs.Environment)
    compute: str = DEFAULT_COMPUTE
    settings: specs.RunSettings = field(default_factory=specs.RunSettings)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, specs.LiteralInput] = field(default_factory=dict)


@dataclass(frozen=True)
class DataDeclaration:
    """A data asset version as declared (Azure's data.yml): `path` is an absolute local path or a reference to
    data in storage (s3://..., azureml://datastores/<name>/paths/<path>)."""

    name: str
    path: str
    type: specs.DataType = "uri_folder"
    version: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InvokeDeclaration:
    """An invocation as Azure's `az ml batch-endpoint invoke --file` reads it (inputs.yml, inputs-and-outputs.yml).
    Paths are absolute local paths or references to data in storage, as `local_or_reference` returns them."""

    input: str
    input_type: specs.DataType | None = None
    exclude: list[str] = field(default_factory=list)
    """Glob patterns of the input folder's files to leave out (an extension of Azure's file: `exclude:`)."""
    output_path: str | None = None
    """The folder the output file goes to."""
    output_file_name: str | None = None
    """Set when the output is declared as a file (type uri_file): the path's last segment."""
    experiment_name: str | None = None
    display_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- public API
def load_endpoint(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> EndpointDeclaration:
    return load_endpoint_mapping(_read_yaml(path), overrides=overrides, source=os.fspath(path))


def load_deployment(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> DeploymentDeclaration:
    """Read a deployment file; relative paths in it are relative to the file's folder, as in Azure."""
    mapping = _read_yaml(path)
    base_dir = Path(path).expanduser().resolve().parent
    return load_deployment_mapping(mapping, base_dir, overrides=overrides, source=os.fspath(path))


def load_endpoint_mapping(
    mapping: Mapping[str, Any], *, overrides: Mapping[str, Any] | None = None, source: str = "endpoint"
) -> EndpointDeclaration:
    """Validate an endpoint given as a mapping in the file's layout (the CLI builds one from its flags)."""
    data, origins = _prepare(mapping, overrides, source, settings_block=False)
    with _reported(source, origins):
        doc = _EndpointFile.model_validate(data)
        # Through the record's own model, so auth_mode is read exactly as a stored endpoint reads it.
        endpoint = specs.Endpoint.model_validate(
            {
                "name": doc.name,
                "description": doc.description,
                "tags": doc.tags,
                "auth_mode": doc.auth_mode,
                "allowed_inputs": doc.allowed_inputs,
                "allowed_outputs": doc.allowed_outputs,
            }
        )
    return EndpointDeclaration(
        name=endpoint.name,
        description=endpoint.description,
        auth_mode=endpoint.auth_mode,
        tags=dict(endpoint.tags),
        default_deployment=doc.defaults.deployment_name if doc.defaults else None,
        allowed_inputs=tuple(endpoint.allowed_inputs),
        allowed_outputs=tuple(endpoint.allowed_outputs),
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
    data, origins = _prepare(mapping, overrides, source, settings_block=True)
    base = Path(base_dir).expanduser().resolve() if base_dir is not None else None
    settings = data.pop("settings", {})
    with _reported(source, origins):
        if data.get("type") == "pipeline":
            raise ValidationError(
                "pipeline component deployments are not supported; only model deployments (type: model)",
                field="type",
            )
        doc = _DeploymentFile.model_validate(data)
        if not isinstance(settings, Mapping):
            raise ValidationError(f"must be a mapping of run settings (got {_kind(settings)})", field="settings")
        run_settings = specs.parse(specs.RunSettings, _azure_settings(settings), prefix="settings")
        model = _model(doc.model, base)
        code, script = _code(doc.code_configuration, base) if doc.code_configuration else (None, None)
        environment = _environment(doc.environment, base)
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


def parse_model_reference(text: str, *, field: str = "model", source: str | None = None) -> ModelReference:
    """Read `azureml:name:version`, `name:version`, `azureml:name@latest` or `name@latest`."""
    with _reported(source, {}):
        return _model_reference(text, field)


def asset_reference(text: str, *, field: str, noun: str) -> tuple[str, str | None, Literal["latest"] | None]:
    """(name, version, label) of any registered asset's reference: `azureml:name:version`, `name@latest`, ..."""
    return _asset_reference(text, field, noun)


def load_data(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> DataDeclaration:
    """Read Azure's data asset YAML (`az ml data create --file`); a local path in it is relative to the file."""
    source = os.fspath(path)
    data, origins = _prepare(_read_yaml(path), overrides, source, settings_block=False)
    base = str(Path(path).expanduser().resolve().parent)
    with _reported(source, origins):
        doc = _DataFile.model_validate(data)
    return DataDeclaration(
        name=doc.name,
        path=local_or_reference(doc.path, base),
        type=doc.type,
        version=doc.version,
        description=doc.description,
        tags=dict(doc.tags),
    )


def load_invoke(path: str | os.PathLike[str]) -> InvokeDeclaration:
    """Read Azure's batch invoke YAML: one data input under `inputs`, at most one output under `outputs`, each
    `{type, path}` (a `mode` is accepted and ignored: jobs read and write storage directly)."""
    source = os.fspath(path)
    data, origins = _prepare(_read_yaml(path), None, source, settings_block=False)
    base = str(Path(path).expanduser().resolve().parent)
    with _reported(source, origins):
        declared = data.get("inputs")
        for name, value in declared.items() if isinstance(declared, Mapping) else ():
            if isinstance(value, Mapping) and value.get("type") in _LITERAL_TYPES:
                raise ValidationError(
                    "literal inputs are for pipeline deployments; a model deployment takes one data input",
                    field=f"inputs.{name}",
                )
        doc = _InvokeFile.model_validate(data)
        if len(doc.inputs) != 1:
            raise ValidationError(
                f"a model deployment takes exactly one data input (got {len(doc.inputs)}: "
                f"{', '.join(doc.inputs) or 'none'})",
                field="inputs",
            )
        if len(doc.outputs) > 1:
            raise ValidationError(
                f"a model deployment writes one output (got {len(doc.outputs)}: {', '.join(doc.outputs)})",
                field="outputs",
            )
        (input_name, data_input), *_ = doc.inputs.items()
        if data_input.path is None:
            raise ValidationError("is required", field=f"inputs.{input_name}.path")
        output_path = file_name = None
        for output_name, output in doc.outputs.items():
            if output.exclude:
                raise ValidationError("applies to inputs only", field=f"outputs.{output_name}.exclude")
            if output.path is None:
                continue  # Azure's way of asking for the default location
            output_path = local_or_reference(output.path, base)
            if output.type == "uri_file":
                output_path, _, file_name = output_path.rstrip("/").rpartition("/")
    return InvokeDeclaration(
        input=local_or_reference(data_input.path, base),
        input_type=data_input.type,
        exclude=data_input.exclude,
        output_path=output_path,
        output_file_name=file_name,
        experiment_name=doc.experiment_name,
        display_name=doc.display_name,
        tags=dict(doc.tags),
    )


def is_reference(text: str) -> bool:
    """True when `text` names data in storage (a URI, a data asset, a datastore path), not a local file."""
    value = text.strip()
    if "://" in value or value.startswith((AZURE_PREFIX, "/subscriptions/")):
        return True
    return bool(ASSET_REFERENCE.fullmatch(value))


def local_or_reference(text: str, base_dir: str) -> str:
    """A location as a user typed or wrote it: an existing local file or folder (made absolute against base_dir)
    wins; else a reference to data in storage as written; else the local path, which does not exist."""
    value = str(text).strip()
    path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(value.removeprefix("file://"))))
    if os.path.exists(path) or not is_reference(value) or value.startswith("file://"):
        return path
    return value


def is_conda_text(value: str) -> bool:
    """True when `value` is a conda file's text (several lines, or a YAML mapping), False for a path to one."""
    if "\n" in value.strip():
        return True
    try:
        return isinstance(yaml.safe_load(value), Mapping)
    except yaml.YAMLError:
        return False


def read_conda_file(value: str, *, field: str = "conda_file") -> tuple[str, list[str]]:
    """A conda environment file, given as its text or as a local path (read here): its text and pip packages.

    The text is what gets recorded, so a registered environment does not depend on the file staying where it was.
    """
    if is_conda_text(value):
        text, where = value, "the conda file"
    else:
        where = os.path.abspath(os.path.expanduser(value.removeprefix("file:")))
        text = _read_text(where, value, field)
    document = _conda_document(text, where, field)
    if not isinstance(document, Mapping):
        raise ValidationError(
            f"{where} is not a conda environment file: expected a mapping with 'dependencies'", field=field
        )
    return text, _pip_packages(document)


def parse_overrides(items: Iterable[str], *, field: str = "--set") -> dict[str, str]:
    """Turn `--set` arguments (`key=value`) into the overrides mapping the loaders take; also `--tag key=value`."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            example = "settings.mini_batch_size=5" if field == "--set" else "team=vision"
            raise ValidationError(f"{item!r}: write key=value, e.g. {example}", field=field)
        overrides[key.strip()] = value
    return overrides


# --------------------------------------------------------------------------------------------- file schemas
def _text_values(value: Any) -> Any:
    # YAML reads `epochs: 10` as an int; Azure's tags and environment variables are strings.
    if isinstance(value, Mapping):
        return {k: _scalar_text(v) for k, v in value.items()}
    return value


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _version_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _azure_reference(value: Any) -> Any:
    return value.removeprefix(AZURE_PREFIX) if isinstance(value, str) else value


_Tags = Annotated[dict[str, str], pydantic.BeforeValidator(_text_values)]
# `--set description=2024` or `--description 2024` reads as a number; a description is text whatever it says.
_Text = Annotated[str, pydantic.BeforeValidator(_scalar_text)]


class _AzureFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str | None = Field(None, alias="$schema")


class _EndpointDefaults(_AzureFile):
    deployment_name: specs.EndpointName | None = None


class _EndpointFile(_AzureFile):
    name: specs.EndpointName
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    auth_mode: str = "aad_token"
    defaults: _EndpointDefaults | None = None
    # Not Azure's: where this endpoint's jobs may read and write (batch_endpoints.data_access).
    allowed_inputs: list[Any] = Field(default_factory=list)
    allowed_outputs: list[Any] = Field(default_factory=list)


class _Resources(_AzureFile):
    # Azure sizes instances by VM type; here the compute decides the instance type. instance_count has been
    # moved into the run settings before this model sees the mapping.
    instance_type: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class _CodeConfiguration(_AzureFile):
    code: str
    scoring_script: str


class _InlineModel(_AzureFile):
    """Azure's model schema, inline in a deployment: only a local `path` makes sense here."""

    path: str
    name: specs.AssetName | None = None
    version: Annotated[str | None, pydantic.BeforeValidator(_version_text)] = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: Literal["custom_model", "mlflow_model", "triton_model"] = "custom_model"
    properties: dict[str, Any] = Field(default_factory=dict)
    stage: str | None = None


class _InlineEnvironment(_AzureFile):
    """Azure's environment schema, inline in a deployment, plus our `pip_requirements`."""

    name: str | None = None
    version: Annotated[str | None, pydantic.BeforeValidator(_version_text)] = None
    image: str | None = None
    conda_file: str | None = None
    pip_requirements: list[str] = Field(default_factory=list)
    build: Any = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    os_type: Literal["linux", "Linux"] = "linux"
    inference_config: dict[str, Any] = Field(default_factory=dict)


class _DeploymentFile(_AzureFile):
    name: specs.EndpointName
    endpoint_name: specs.EndpointName
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: Literal["model"] = "model"
    model: Any
    # None: an MLflow model, scored by the built-in scorer (Azure's no-code deployment).
    code_configuration: _CodeConfiguration | None = None
    inputs: dict[specs.InputName, specs.LiteralInput] = Field(default_factory=dict)
    environment: Any = None
    compute: Annotated[specs.AssetName, pydantic.BeforeValidator(_azure_reference)] = DEFAULT_COMPUTE
    resources: _Resources = Field(default_factory=_Resources)
    properties: dict[str, Any] = Field(default_factory=dict)


class _DataFile(_AzureFile):
    """Azure's data asset schema (data.yml). mltable assets are Azure's tabular format, which has no reader here."""

    name: specs.AssetName
    version: Annotated[str | None, pydantic.BeforeValidator(_version_text)] = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)
    type: specs.DataType = "uri_folder"
    path: str
    properties: dict[str, Any] = Field(default_factory=dict)


class _JobData(_AzureFile):
    type: specs.DataType | None = None
    path: str | None = None
    exclude: list[str] = Field(default_factory=list)
    mode: Literal["ro_mount", "download", "direct", "rw_mount", "upload"] | None = None


class _InvokeFile(_AzureFile):
    """Azure's batch invoke file: the job's inputs and outputs, and what names the job."""

    inputs: dict[str, _JobData]
    outputs: dict[str, _JobData] = Field(default_factory=dict)
    experiment_name: specs.AssetName | None = None
    display_name: str | None = None
    description: _Text = ""
    tags: _Tags = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------- reading
class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice: PyYAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader itself refuses unhashable keys, with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in this mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def _read_yaml(path: str | os.PathLike[str]) -> Any:
    source = os.fspath(path)
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(f"{source}: is a folder; expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:  # a name too long, a permission denied, a file that cannot be read
        raise ValidationError(f"{source}: cannot be read ({exc.strerror})", field="file") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(f"{source}: {where}not valid YAML: {problem}") from None


# --------------------------------------------------------------------------------------------- preparing
def _prepare(
    mapping: Any, overrides: Mapping[str, Any] | None, source: str, *, settings_block: bool
) -> tuple[dict[str, Any], dict[str, _Origin]]:
    """Copy the mapping, move deployment run settings under `settings`, then apply the overrides.

    Returns the data and `origins`: internal dotted path -> where the user wrote it, for error messages.
    """
    if mapping is None:
        raise ValidationError(f"{source}: is empty; expected a mapping of fields such as 'name: ...'")
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{source}: expected a mapping of fields at the top level, got a {_kind(mapping)}")
    data = copy.deepcopy(dict(mapping))
    origins: dict[str, _Origin] = {}
    if settings_block:
        _gather_settings(data, origins, source)
    for key, raw in (overrides or {}).items():
        written = str(key)
        internal = _internal_key(written) if settings_block else written
        _set_dotted(data, internal, _override_value(raw), written, source)
        origins[internal] = _Origin(written, note=f"from override {written}={raw}")
    return data, origins


def _gather_settings(data: dict[str, Any], origins: dict[str, _Origin], source: str) -> None:
    nested = data.get("settings")
    if nested is None:
        nested = {}
    elif not isinstance(nested, Mapping):
        raise _error(source, "settings", f"must be a mapping of run settings (got {_kind(nested)})")
    settings = dict(nested)
    for key in FLAT_SETTINGS:
        if key not in data:
            continue
        if "settings" in data:
            raise _error(
                source,
                key,
                f"run settings are given both under 'settings' and at the top level; move '{key}' under 'settings'",
            )
        settings[key] = data.pop(key)
        origins[f"settings.{key}"] = _Origin(key)
    resources = data.get("resources")
    if isinstance(resources, Mapping) and "instance_count" in resources:
        resources = dict(resources)
        count = resources.pop("instance_count")
        if "instance_count" in settings and settings["instance_count"] != count:
            raise _error(
                source,
                "settings.instance_count",
                f"conflicts with resources.instance_count ({settings['instance_count']!r} vs {count!r}); "
                "give the instance count once, as resources.instance_count",
            )
        settings["instance_count"] = count
        origins["settings.instance_count"] = _Origin("resources.instance_count")
        data["resources"] = resources
    data["settings"] = settings


def _internal_key(key: str) -> str:
    if key == "resources.instance_count":
        return "settings.instance_count"
    if key.split(".", 1)[0] in FLAT_SETTINGS:
        return f"settings.{key}"
    return key


def _override_value(raw: Any) -> Any:
    """Read a `--set` value as a YAML scalar: `5` -> 5, `true` -> True, `null` -> back to the default."""
    if not isinstance(raw, str):
        return raw
    if raw == "":
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    # A value such as `Scores: digits` or `2024-01-01` is text to the user, not a mapping or a date.
    return value if value is None or isinstance(value, str | int | float | bool) else raw


def _set_dotted(data: dict[str, Any], key: str, value: Any, written: str, source: str) -> None:
    parts = key.split(".")
    if not all(part.strip() for part in parts):
        raise _error(source, written, "is not a valid override key; write dotted names, e.g. settings.timeout")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, Mapping):
            child = node[part] = dict(child)
        else:
            parent = ".".join(parts[: depth + 1])
            raise _error(source, written, f"cannot be set: '{parent}' is a {_kind(child)}, not a mapping")
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _azure_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Azure spellings the stored settings do not take: `AppendRow`, numbers where text is meant."""
    settings = dict(settings)
    action = settings.get("output_action")
    if isinstance(action, str):
        settings["output_action"] = OUTPUT_ACTIONS.get(action.replace("_", "").lower(), action)
    if "output_file_name" in settings:
        settings["output_file_name"] = _scalar_text(settings["output_file_name"])
    if "environment_variables" in settings:
        settings["environment_variables"] = _text_values(settings["environment_variables"])
    return settings


# --------------------------------------------------------------------------------------------- resolving
# These raise plain errors (field + problem); the caller's `_reported` block adds the file name.
def _model_reference(text: str, field: str) -> ModelReference:
    name, version, label = _asset_reference(text, field, "model")
    return ModelReference(name=name, version=version, label=label)


def _asset_reference(text: str, field: str, noun: str) -> tuple[str, str | None, Literal["latest"] | None]:
    """(name, version, label) of `azureml:name:version`, `name:version`, `azureml:name@latest` or `name@latest`."""
    reference = text.strip()
    if reference.startswith(("azureml://", "azureml:/")):
        raise ValidationError(
            f"{text!r}: registry and resource-id references are not supported; register the {noun} here and "
            "refer to it as name:version or name@latest",
            field=field,
        )
    reference = reference.removeprefix(AZURE_PREFIX)
    if "@" in reference:
        name, label = reference.split("@", 1)
        if label != LATEST:
            raise ValidationError(f"{text!r}: the only label is @latest (got @{label})", field=field)
        return _asset_name(name, text, field, noun), None, LATEST
    if ":" in reference:
        name, version = reference.split(":", 1)
        if not specs.VERSION.fullmatch(version):
            raise ValidationError(
                f"{text!r}: the version must be letters, digits and '_.-' (got {version!r})", field=field
            )
        return _asset_name(name, text, field, noun), version, None
    raise ValidationError(
        f"{text!r} names no version: write {reference or '<name>'}:<version> or {reference or '<name>'}@latest",
        field=field,
    )


def _model(value: Any, base: Path | None) -> ModelReference:
    if isinstance(value, str):
        return _model_reference(value, "model")
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"must be a reference such as azureml:<name>:<version>, or a mapping with a local 'path' "
            f"(got {_kind(value)})",
            field="model",
        )
    inline = specs.parse(_InlineModel, value, prefix="model")
    path = _location(inline.path, base, "model.path", what="model file or folder")
    if not assets.is_stored(path) and not os.path.exists(path):
        raise ValidationError(f"{inline.path!r} resolves to {path}, which does not exist", field="model.path")
    return ModelReference(
        name=inline.name, version=inline.version, path=path, description=inline.description, tags=inline.tags
    )


def _code(code: _CodeConfiguration, base: Path | None) -> tuple[str, str]:
    folder = _location(code.code, base, "code_configuration.code", what="folder")
    local = not assets.is_stored(folder)
    if local and not os.path.isdir(folder):
        raise ValidationError(
            f"{code.code!r} resolves to {folder}, which is not a folder", field="code_configuration.code"
        )
    checked = specs.parse(
        specs.CodeConfiguration, {"code": folder, "scoring_script": code.scoring_script}, prefix="code_configuration"
    )
    if local and not os.path.isfile(os.path.join(folder, checked.scoring_script)):
        raise ValidationError(
            f"{checked.scoring_script!r} is not a file in the code folder {folder}",
            field="code_configuration.scoring_script",
        )
    return folder, checked.scoring_script


def _environment(value: Any, base: Path | None) -> specs.Environment | EnvironmentReference:
    if value is None:
        return specs.Environment()
    if isinstance(value, str):
        name, version, label = _asset_reference(value, "environment", "environment")
        return EnvironmentReference(name=name, version=version, label=label)
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"must be a reference such as azureml:<name>:<version>, or a mapping with an 'image' (got {_kind(value)})",
            field="environment",
        )
    inline = specs.parse(_InlineEnvironment, value, prefix="environment")
    if inline.build is not None:
        raise ValidationError(
            "building an image from a Docker context is not supported; build and push the image, then give it "
            "as 'image'",
            field="environment.build",
        )
    conda_text, pip = None, list(inline.pip_requirements)
    if inline.conda_file and base is None:
        raise ValidationError(
            "a conda file cannot be read from a request; list its pip packages in environment.pip_requirements",
            field="environment.conda_file",
        )
    if inline.conda_file and base is not None:
        conda_text, conda_pip = _conda(inline.conda_file, base)
        pip += [requirement for requirement in conda_pip if requirement not in pip]
    return specs.parse(
        specs.Environment,
        {
            "name": inline.name,
            "version": inline.version,
            "image": inline.image,
            "conda_file": conda_text,
            "pip_requirements": pip,
        },
        prefix="environment",
    )


def _conda(conda_file: str, base: Path) -> tuple[str, list[str]]:
    """The conda file's text (kept in the record, so it travels without the local file) and its pip list."""
    field = "environment.conda_file"
    path = _local_path(conda_file.removeprefix("file:"), base, field, what="file")
    text = _read_text(path, conda_file, field)
    return text, _pip_packages(_conda_document(text, path, field))


def _read_text(path: str, written: str, field: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        resolved = "" if written == path else f" resolves to {path}, which"
        raise ValidationError(f"{written!r}{resolved} is not a readable text file", field=field) from None


def _conda_document(text: str, where: str, field: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{where} is not valid YAML: {exc}", field=field) from None


def _pip_packages(document: Any) -> list[str]:
    """The `pip:` section of a conda file: our images come with Python and without conda, so only it can be
    installed."""
    pip: list[str] = []
    dependencies = document.get("dependencies") if isinstance(document, Mapping) else None
    for dependency in dependencies if isinstance(dependencies, list) else []:
        if isinstance(dependency, Mapping) and isinstance(dependency.get("pip"), list):
            pip += [str(requirement) for requirement in dependency["pip"]]
    return pip


def _location(value: str, base: Path | None, field: str, *, what: str) -> str:
    """A storage URI (s3://...) as written, or a local path: relative to base, or absolute when there is none."""
    if assets.is_stored(value) and not value.startswith(_FOREIGN):
        return value
    if base is not None:
        return _local_path(value, base, field, what=what, or_stored=True)
    path = value.removeprefix("file://")
    if not os.path.isabs(path):
        raise ValidationError(f"{value!r}: give the storage URI (s3://...) of the {what}", field=field)
    return os.path.normpath(path)


_FOREIGN = ("azureml:", "http://", "https://", "wasbs://", "abfss://")


def _local_path(value: str, base: Path, field: str, *, what: str, or_stored: bool = False) -> str:
    if value.startswith((*_FOREIGN, "s3://")):
        alternative = " or an s3:// URI" if or_stored else ""
        raise ValidationError(
            f"{value!r}: only a local {what} is supported here, relative to the YAML file's folder{alternative}",
            field=field,
        )
    return str((base / Path(value).expanduser()).resolve())


def _asset_name(name: str, text: str, field: str, noun: str) -> str:
    if not specs.ASSET_NAME.fullmatch(name):
        raise ValidationError(
            f"{text!r}: the {noun} name must start with a letter or digit and contain only letters, digits and "
            f"'_.-' (got {name!r})",
            field=field,
        )
    return name


# --------------------------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class _Origin:
    """Where the user wrote a value that the loader keeps at another path, or that an override set."""

    written: str
    note: str = ""


class _reported:
    """Turn a ValidationError raised inside into one that names the source and the field as the user wrote it.

    Code inside raises plain errors (field + problem) or lets pydantic's through; this adds the rest once.
    """

    def __init__(self, source: str | None, origins: Mapping[str, _Origin]) -> None:
        self.source = source
        self.origins = origins

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, pydantic.ValidationError):
            exc = specs.validation_error(exc.errors())
        if isinstance(exc, ValidationError):
            field, note = self._written(exc.field)
            raise _error(self.source, field, exc.message, note=note) from None

    def _written(self, field: str | None) -> tuple[str | None, str]:
        if not field:
            return field, ""
        parts = field.split(".")
        for cut in range(len(parts), 0, -1):
            origin = self.origins.get(".".join(parts[:cut]))
            if origin is not None:
                return ".".join([origin.written, *parts[cut:]]), origin.note
        return field, ""


def _error(source: str | None, field: str | None, problem: str, *, note: str = "") -> ValidationError:
    """The one message format: `deployment.yml: field 'settings.mini_batch_size': <problem>`."""
    where = ""
    if field:
        where = f"field '{field}'" + (f" ({note})" if note else "")
        where += " " if problem.startswith(("is ", "must ", "cannot ", "conflicts ")) else ": "
    prefix = f"{source}: " if source else ""
    return ValidationError(f"{prefix}{where}{problem}", field=field)


def _kind(value: Any) -> str:
    for kind, word in (
        (bool, "boolean"),
        (int | float, "number"),
        (str, "string"),
        (Mapping, "mapping"),
        (list, "list"),
    ):
        if isinstance(value, kind):
            return word
    return "null" if value is None else type(value).__name__
