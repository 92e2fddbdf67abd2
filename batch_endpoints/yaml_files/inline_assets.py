"""What a deployment file declares inline: a model, a code folder, an environment (and its conda file), each a
local path resolved against the file's folder or a storage URI kept as written. These raise plain errors (field
+ problem); the caller's `reported` block adds the file name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batch_endpoints import assets, mlflow_models, specs
from batch_endpoints.errors import ValidationError
from batch_endpoints.yaml_files.conda import conda_document, pip_packages, read_text
from batch_endpoints.yaml_files.declarations import EnvironmentReference, ModelReference
from batch_endpoints.yaml_files.origins import kind
from batch_endpoints.yaml_files.references import asset_reference, model_reference
from batch_endpoints.yaml_files.schemas import CodeConfiguration, InlineEnvironment, InlineModel


def resolve_model(value: Any, base: Path | None) -> ModelReference:
    if isinstance(value, str):
        return model_reference(value, "model")
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"must be a reference such as azureml:<name>:<version>, or a mapping with a local 'path' "
            f"(got {kind(value)})",
            field="model",
        )
    inline = specs.parse(InlineModel, value, prefix="model")
    path = _location(inline.path, base, "model.path", what="model file or folder")
    if not assets.is_stored(path) and not os.path.exists(path):
        raise ValidationError(f"{inline.path!r} resolves to {path}, which does not exist", field="model.path")
    check_model_type(inline.type, path, field="model.type")
    return ModelReference(
        name=inline.name, version=inline.version, path=path, description=inline.description, tags=inline.tags
    )


def check_model_type(model_type: str, path: str, *, field: str) -> None:
    """Azure's model types: a custom_model is any folder or file; an mlflow_model must hold an MLmodel file (here
    or in a folder of it) for the built-in scorer; Triton models have no server here."""
    if model_type == "triton_model":
        raise ValidationError(
            "Triton models are not supported: there is no Triton server here; register the model as custom_model "
            "and score it with a scoring script",
            field=field,
        )
    if model_type == "mlflow_model" and not assets.is_stored(path) and mlflow_models.find_local(path) is None:
        raise ValidationError(
            f"an mlflow_model holds an {mlflow_models.MLMODEL} file, in the folder or a folder in it; {path} has none",
            field=field,
        )


def resolve_code(code: CodeConfiguration, base: Path | None) -> tuple[str, str]:
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


def resolve_environment(value: Any, base: Path | None) -> specs.Environment | EnvironmentReference:
    if value is None:
        return specs.Environment()
    if isinstance(value, str):
        name, version, label = asset_reference(value, field="environment", noun="environment")
        return EnvironmentReference(name=name, version=version, label=label)
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"must be a reference such as azureml:<name>:<version>, or a mapping with an 'image' (got {kind(value)})",
            field="environment",
        )
    return inline_environment(specs.parse(InlineEnvironment, value, prefix="environment"), base, "environment.")


def inline_environment(inline: InlineEnvironment, base: Path | None, prefix: str) -> specs.Environment:
    """Azure's environment schema as this project keeps it; `prefix` is where the fields sit ("environment." in a
    deployment file, nothing in an environment file)."""
    if inline.build is not None:
        raise ValidationError(
            "building an image from a Docker context is not supported; build and push the image, then give it "
            "as 'image'",
            field=f"{prefix}build",
        )
    conda_text, pip = None, list(inline.pip_requirements)
    if inline.conda_file and base is None:
        raise ValidationError(
            f"a conda file cannot be read from a request; list its pip packages in {prefix}pip_requirements",
            field=f"{prefix}conda_file",
        )
    if inline.conda_file and base is not None:
        conda_text, conda_pip = _conda(inline.conda_file, base, f"{prefix}conda_file")
        pip += [requirement for requirement in conda_pip if requirement not in pip]
    return specs.parse(
        specs.Environment,
        {
            "name": inline.name,
            "version": inline.version,
            "image": inline.image,
            "conda_file": conda_text,
            "pip_requirements": pip,
            "description": inline.description,
            "tags": inline.tags,
        },
        prefix=prefix.rstrip("."),
    )


def _conda(conda_file: str, base: Path, field: str) -> tuple[str, list[str]]:
    """The conda file's text (kept in the record, so it travels without the local file) and its pip list."""
    path = _local_path(conda_file.removeprefix("file:"), base, field, what="file")
    text = read_text(path, conda_file, field)
    return text, pip_packages(conda_document(text, path, field))


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
