"""Deployment declarations from API requests: folders are storage URIs (or absolute paths), never relative ones.

A request body has no folder of its own to resolve paths against (`base_dir=None`), unlike a deployment.yml, so
the loader keeps storage URIs as written and refuses relative paths and conda files. A YAML file may name its
code and model by s3:// URI too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batch_endpoints.errors import ValidationError
from batch_endpoints.yaml_specs import load_deployment_mapping


def body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "blue",
        "endpoint_name": "digits",
        "model": {"path": "s3://bucket/uploads/models/digits/1f2e/"},
        "code_configuration": {"code": "s3://bucket/uploads/code/7c2a", "scoring_script": "score.py"},
        **fields,
    }


def test_storage_uris_are_kept_as_written_without_looking_at_any_disk() -> None:
    declaration = load_deployment_mapping(body(), None, source="")

    assert declaration.code == "s3://bucket/uploads/code/7c2a"
    assert declaration.scoring_script == "score.py"
    assert declaration.model.path == "s3://bucket/uploads/models/digits/1f2e/"


def test_an_absolute_path_or_file_uri_is_a_local_location(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text("def run(b): return b\n")
    (tmp_path / "model").mkdir()
    mapping = body(
        model={"path": f"file://{tmp_path}/model"},
        code_configuration={"code": str(tmp_path / "code"), "scoring_script": "score.py"},
    )

    declaration = load_deployment_mapping(mapping, None, source="")

    assert declaration.code == str(tmp_path / "code")
    assert declaration.model.path == str(tmp_path / "model")


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        (body(code_configuration={"code": "./code", "scoring_script": "score.py"}), "code_configuration.code"),
        (body(model={"path": "model"}), "model.path"),
        (body(model={"path": "azureml://datastores/x/paths/model"}), "model.path"),
        (body(environment={"image": "python:3.11", "conda_file": "conda.yml"}), "environment.conda_file"),
        (body(code_configuration={"code": "s3://b/code", "scoring_script": "../score.py"}), "code_configuration"),
    ],
)
def test_a_request_cannot_name_what_only_a_file_on_the_server_could_resolve(mapping: dict, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        load_deployment_mapping(mapping, None, source="")

    assert refused.value.field is not None and refused.value.field.startswith(field)


def test_a_yaml_file_may_name_its_code_and_model_by_s3_uri(tmp_path: Path) -> None:
    declaration = load_deployment_mapping(body(), tmp_path)

    assert declaration.code == "s3://bucket/uploads/code/7c2a"
    assert declaration.model.path == "s3://bucket/uploads/models/digits/1f2e/"


def test_a_yaml_file_still_refuses_other_clouds_paths(tmp_path: Path) -> None:
    mapping = body(code_configuration={"code": "wasbs://container@account/code", "scoring_script": "score.py"})

    with pytest.raises(ValidationError) as refused:
        load_deployment_mapping(mapping, tmp_path)

    assert refused.value.field == "code_configuration.code"
    assert "only a local folder is supported here, relative to the YAML file's folder or an s3:// URI" in str(
        refused.value
    )
