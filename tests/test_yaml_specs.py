"""Azure ML CLI v2 endpoint.yml / deployment.yml files load as Azure users write them, or fail naming the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from batch_endpoints import specs
from batch_endpoints.errors import NotFoundError, ValidationError
from batch_endpoints.yaml_specs import (
    DeploymentDeclaration,
    EnvironmentReference,
    ModelReference,
    endpoint_document,
    is_conda_text,
    load_deployment,
    load_deployment_mapping,
    load_endpoint,
    load_endpoint_mapping,
    parse_model_reference,
    parse_overrides,
    read_conda_file,
)

# Azure's MNIST batch example (azureml-examples, cli/endpoints/batch/deploy-models/mnist-classifier).
ENDPOINT_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
name: mnist-batch
description: A batch endpoint for scoring images from the MNIST dataset.
tags:
  type: deep-learning
"""

# The CLI >= 1.7 layout: `type: model` and the run settings under `settings:`.
DEPLOYMENT_NESTED_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: mnist-torch-dpl
description: A deployment using Torch to solve the MNIST classification dataset.
endpoint_name: mnist-batch
type: model
model:
  name: mnist-classifier-torch
  path: model
code_configuration:
  code: code
  scoring_script: batch_driver.py
environment:
  name: batch-torch-py38
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
  conda_file: environment/conda.yaml
compute: azureml:batch-cluster
resources:
  instance_count: 1
settings:
  max_concurrency_per_instance: 2
  mini_batch_size: 10
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 3
    timeout: 30
  error_threshold: -1
  logging_level: info
"""

# The legacy layout (no `type`): the same run settings at the top level.
DEPLOYMENT_FLAT_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
name: mnist-torch-dpl
description: A deployment using Torch to solve the MNIST classification dataset.
endpoint_name: mnist-batch
model:
  name: mnist-classifier-torch
  path: model
code_configuration:
  code: code
  scoring_script: batch_driver.py
environment:
  name: batch-torch-py38
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
  conda_file: environment/conda.yaml
compute: azureml:batch-cluster
resources:
  instance_count: 1
max_concurrency_per_instance: 2
mini_batch_size: 10
output_action: append_row
output_file_name: predictions.csv
retry_settings:
  max_retries: 3
  timeout: 30
error_threshold: -1
logging_level: info
"""

CONDA_YAML = """\
name: mnist-env
channels:
  - conda-forge
dependencies:
  - python=3.8.5
  - pip<22.0
  - pip:
    - torch==1.13.0
    - pillow==8.4.0
    - pandas<2.0.0
"""

# The smallest deployment that loads: everything else takes Azure's defaults.
MINIMAL_YML = """\
name: mnist-torch-dpl
endpoint_name: mnist-batch
model: azureml:mnist-classifier-torch:1
code_configuration:
  code: code
  scoring_script: batch_driver.py
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example's folder: code/, model/ and environment/ beside the YAML files."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "batch_driver.py").write_text(
        "def init():\n    pass\n\n\ndef run(mini_batch):\n    return []\n"
    )
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mnist.pt").write_bytes(b"weights")
    (tmp_path / "environment").mkdir()
    (tmp_path / "environment" / "conda.yaml").write_text(CONDA_YAML)
    return tmp_path


def write(folder: Path, text: str, name: str = "deployment.yml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def refused(path: Path, overrides: dict | None = None) -> ValidationError:
    loader = load_endpoint if path.name.startswith("endpoint") else load_deployment
    with pytest.raises(ValidationError) as caught:
        loader(path, overrides)
    assert path.name in caught.value.message, "every error names the file"
    return caught.value


# --------------------------------------------------------------------------------------------- endpoints
def test_endpoint_yml_loads_as_azure_writes_it(tmp_path):
    endpoint = load_endpoint(write(tmp_path, ENDPOINT_YML, "endpoint.yml"))

    assert endpoint == specs.Endpoint(
        name="mnist-batch",
        description="A batch endpoint for scoring images from the MNIST dataset.",
        auth_mode="aws_iam",
        tags={"type": "deep-learning"},
        default_deployment=None,
        created_at=endpoint.created_at,
    )


def test_endpoint_defaults_deployment_name_is_the_default_deployment(tmp_path):
    path = write(tmp_path, ENDPOINT_YML + "defaults:\n  deployment_name: mnist-torch-dpl\n", "endpoint.yml")

    assert load_endpoint(path).default_deployment == "mnist-torch-dpl"


def test_endpoint_azure_auth_mode_aad_token_becomes_aws_iam(tmp_path):
    path = write(tmp_path, ENDPOINT_YML + "auth_mode: aad_token\n", "endpoint.yml")

    assert load_endpoint(path).auth_mode == "aws_iam"


def test_endpoint_name_override_like_az_ml_batch_endpoint_create_name(tmp_path):
    path = write(tmp_path, ENDPOINT_YML, "endpoint.yml")

    endpoint = load_endpoint(path, {"name": "mnist-batch-x1y2z", "defaults.deployment_name": "mnist-keras-dpl"})

    assert endpoint.name == "mnist-batch-x1y2z"
    assert endpoint.default_deployment == "mnist-keras-dpl"


def test_endpoint_mapping_builds_from_cli_flags_without_a_file():
    endpoint = load_endpoint_mapping({"name": "mnist-batch", "description": "from flags"})

    assert endpoint == specs.Endpoint(name="mnist-batch", description="from flags", created_at=endpoint.created_at)


def test_endpoint_mapping_errors_name_the_source_given():
    with pytest.raises(ValidationError) as caught:
        load_endpoint_mapping({"name": "x"}, source="--name")

    assert caught.value.field == "name"
    assert caught.value.message.startswith("--name: field 'name': 'x' must be 3-32 characters")


# --------------------------------------------------------------------------------------------- deployments
def test_nested_settings_deployment_loads_as_azure_writes_it(project):
    deployment = load_deployment(write(project, DEPLOYMENT_NESTED_YML))

    assert deployment.name == "mnist-torch-dpl"
    assert deployment.endpoint_name == "mnist-batch"
    assert deployment.description == "A deployment using Torch to solve the MNIST classification dataset."
    assert deployment.model == ModelReference(name="mnist-classifier-torch", path=str(project / "model"))
    assert deployment.model.is_inline
    assert deployment.code == str(project / "code")
    assert deployment.scoring_script == "batch_driver.py"
    assert deployment.compute == "batch-cluster"
    assert deployment.environment.name == "batch-torch-py38"
    assert deployment.environment.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    assert deployment.settings == specs.RunSettings(
        mini_batch_size=10,
        instance_count=1,
        max_concurrency_per_instance=2,
        retry_settings=specs.RetrySettings(max_retries=3, timeout=30),
        error_threshold=-1,
        output_action="append_row",
        output_file_name="predictions.csv",
        logging_level="info",
    )


def test_flat_settings_deployment_loads_the_same_as_nested(project):
    flat = load_deployment(write(project, DEPLOYMENT_FLAT_YML, "flat.yml"))
    nested = load_deployment(write(project, DEPLOYMENT_NESTED_YML, "nested.yml"))

    assert flat == nested
    assert flat.settings.max_concurrency_per_instance == 2


def test_flat_settings_environment_variables_at_top_level(project):
    path = write(project, DEPLOYMENT_FLAT_YML + "environment_variables:\n  OMP_NUM_THREADS: 4\n  DEBUG: true\n")

    assert load_deployment(path).settings.environment_variables == {"OMP_NUM_THREADS": "4", "DEBUG": "true"}


def test_defaults_are_azures_when_no_settings_are_given(project):
    deployment = load_deployment(write(project, MINIMAL_YML))

    settings = deployment.settings
    assert settings.mini_batch_size == 10
    assert settings.instance_count == 1
    assert settings.max_concurrency_per_instance == 1
    assert settings.retry_settings.max_retries == 3
    assert settings.retry_settings.timeout == 30
    assert settings.error_threshold == -1
    assert settings.output_action == specs.OutputAction.APPEND_ROW
    assert settings.output_file_name == "predictions.csv"
    assert settings.logging_level == "info"
    assert settings.environment_variables == {}
    assert deployment.compute == "cpu-cluster"
    assert deployment.environment == specs.Environment()
    assert deployment.description == ""
    assert deployment.tags == {}


def test_resources_instance_count_becomes_settings_instance_count(project):
    path = write(project, MINIMAL_YML + "resources:\n  instance_count: 3\n  instance_type: Standard_DS3_v2\n")

    assert load_deployment(path).settings.instance_count == 3


def test_settings_instance_count_is_accepted_when_it_agrees_with_resources(project):
    path = write(project, MINIMAL_YML + "resources:\n  instance_count: 2\nsettings:\n  instance_count: 2\n")

    assert load_deployment(path).settings.instance_count == 2


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("append_row", specs.OutputAction.APPEND_ROW),
        ("summary_only", specs.OutputAction.SUMMARY_ONLY),
        ("AppendRow", specs.OutputAction.APPEND_ROW),
        ("SummaryOnly", specs.OutputAction.SUMMARY_ONLY),
    ],
)
def test_output_action_takes_yaml_and_azure_enum_spellings(project, written, expected):
    path = write(project, MINIMAL_YML + f"settings:\n  output_action: {written}\n")

    assert load_deployment(path).settings.output_action == expected


def test_known_azure_only_keys_are_accepted(project):
    path = write(
        project,
        MINIMAL_YML
        + textwrap.dedent("""\
            $schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
            type: model
            tags:
              team: vision
              epochs: 10
            properties:
              owner: someone
            resources:
              instance_count: 2
              instance_type: Standard_NC6s_v3
              properties:
                ComputeSpecification:
                  Automatic: true
        """),
    )

    deployment = load_deployment(path)

    assert deployment.tags == {"team": "vision", "epochs": "10"}
    assert deployment.settings.instance_count == 2


@pytest.mark.parametrize(
    ("written", "reference"),
    [
        ("azureml:my-env:1", EnvironmentReference(name="my-env", version="1")),
        ("azureml:my-env@latest", EnvironmentReference(name="my-env", label="latest")),
        ("my-env:2", EnvironmentReference(name="my-env", version="2")),
    ],
)
def test_environment_reference_names_a_registered_version(project, written, reference):
    path = write(project, MINIMAL_YML + f"environment: {written}\n")

    assert load_deployment(path).environment == reference


def test_inline_environment_keeps_the_conda_file_text_and_its_pip_requirements(project):
    path = write(
        project,
        MINIMAL_YML
        + textwrap.dedent("""\
            environment:
              image: python:3.11-slim
              conda_file: environment/conda.yaml
              pip_requirements: [scikit-learn]
              os_type: linux
        """),
    )

    environment = load_deployment(path).environment

    assert environment.image == "python:3.11-slim"
    assert environment.conda_file == CONDA_YAML
    assert environment.pip_requirements == ["scikit-learn", "torch==1.13.0", "pillow==8.4.0", "pandas<2.0.0"]


def test_inline_environment_with_name_and_version(project):
    path = write(project, MINIMAL_YML + "environment:\n  name: torch-env\n  version: 3\n  image: img:1\n")

    environment = load_deployment(path).environment

    assert (environment.name, environment.version, environment.ref) == ("torch-env", "3", "torch-env:3")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (CONDA_YAML, True),
        ("{dependencies: [python=3.11]}", True),
        ("environment/conda.yaml", False),
        ("/abs/conda.yml", False),
        ("file:conda.yml", False),
    ],
)
def test_a_conda_file_is_told_from_a_path_by_its_text(value, text):
    assert is_conda_text(value) is text


def test_read_conda_file_takes_the_text_or_reads_a_path(project, monkeypatch):
    monkeypatch.chdir(project)
    pip = ["torch==1.13.0", "pillow==8.4.0", "pandas<2.0.0"]

    assert read_conda_file(CONDA_YAML) == (CONDA_YAML, pip)
    assert read_conda_file("environment/conda.yaml") == (CONDA_YAML, pip)
    assert read_conda_file(str(project / "environment" / "conda.yaml")) == (CONDA_YAML, pip)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("missing/conda.yml", "not a readable text file"),
        ("name: [unclosed\nother: 1\n", "not valid YAML"),
        ("- python=3.11\n- pip\n", "not a conda environment file"),
    ],
)
def test_read_conda_file_refusals_name_the_field(project, monkeypatch, value, says):
    monkeypatch.chdir(project)

    with pytest.raises(ValidationError) as caught:
        read_conda_file(value, field="conda_file")

    assert caught.value.field == "conda_file"
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("written", "compute"), [("azureml:cpu-cluster", "cpu-cluster"), ("gpu-cluster", "gpu-cluster")]
)
def test_compute_drops_the_azureml_prefix(project, written, compute):
    assert load_deployment(write(project, MINIMAL_YML + f"compute: {written}\n")).compute == compute


def test_registered_model_reference_in_a_deployment(project):
    deployment = load_deployment(write(project, MINIMAL_YML))

    assert deployment.model == ModelReference(name="mnist-classifier-torch", version="1")
    assert not deployment.model.is_inline


def test_inline_model_keeps_name_version_description_and_tags(project):
    yml = edit(
        MINIMAL_YML,
        "model: azureml:mnist-classifier-torch:1\n",
        "model:\n  name: digits\n  version: 2\n  path: model/mnist.pt\n  type: custom_model\n"
        "  description: weights\n  tags:\n    epochs: 5\n",
    )

    model = load_deployment(write(project, yml)).model

    assert model == ModelReference(
        name="digits",
        version="2",
        path=str(project / "model" / "mnist.pt"),
        description="weights",
        tags={"epochs": "5"},
    )


def test_paths_resolve_against_the_yaml_folder_not_the_working_directory(project, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))

    deployment = load_deployment(write(project, DEPLOYMENT_NESTED_YML))

    assert deployment.code == str(project / "code")
    assert deployment.model.path == str(project / "model")


def test_code_folder_may_be_the_yaml_folder_itself(project):
    (project / "score.py").write_text("def run(mini_batch):\n    return mini_batch\n")
    yml = edit(MINIMAL_YML, "code: code\n  scoring_script: batch_driver.py", "code: .\n  scoring_script: score.py")

    assert load_deployment(write(project, yml)).code == str(project)


def test_scoring_script_may_sit_in_a_subfolder_of_the_code(project):
    (project / "code" / "pkg").mkdir()
    (project / "code" / "pkg" / "score.py").write_text("")
    yml = edit(MINIMAL_YML, "scoring_script: batch_driver.py", "scoring_script: pkg/score.py")

    assert load_deployment(write(project, yml)).scoring_script == "pkg/score.py"


def test_deployment_mapping_builds_from_cli_flags_without_a_file(project):
    deployment = load_deployment_mapping(
        {
            "name": "mnist-torch-dpl",
            "endpoint_name": "mnist-batch",
            "model": "mnist-classifier-torch@latest",
            "code_configuration": {"code": "code", "scoring_script": "batch_driver.py"},
            "settings": {"mini_batch_size": 5},
        },
        project,
    )

    assert isinstance(deployment, DeploymentDeclaration)
    assert deployment.model == ModelReference(name="mnist-classifier-torch", label="latest")
    assert deployment.code == str(project / "code")
    assert deployment.settings.mini_batch_size == 5


def test_loading_does_not_change_the_callers_mapping(project):
    mapping = {
        "name": "mnist-torch-dpl",
        "endpoint_name": "mnist-batch",
        "model": "m:1",
        "code_configuration": {"code": "code", "scoring_script": "batch_driver.py"},
        "mini_batch_size": 3,
        "resources": {"instance_count": 2},
    }
    before = repr(mapping)

    load_deployment_mapping(mapping, project, overrides={"settings.mini_batch_size": "4"})

    assert repr(mapping) == before


# --------------------------------------------------------------------------------------------- overrides
def test_override_of_a_nested_setting_applies_to_a_flat_file(project):
    path = write(project, DEPLOYMENT_FLAT_YML)

    settings = load_deployment(path, {"settings.mini_batch_size": "5"}).settings

    assert settings.mini_batch_size == 5
    assert settings.max_concurrency_per_instance == 2


def test_override_of_a_flat_setting_applies_to_a_nested_file(project):
    path = write(project, DEPLOYMENT_NESTED_YML)

    settings = load_deployment(path, {"mini_batch_size": "7", "retry_settings.timeout": "300"}).settings

    assert settings.mini_batch_size == 7
    assert settings.retry_settings == specs.RetrySettings(max_retries=3, timeout=300)


def test_override_of_resources_instance_count(project):
    path = write(project, DEPLOYMENT_NESTED_YML)

    assert load_deployment(path, {"resources.instance_count": "2"}).settings.instance_count == 2


def test_override_values_are_read_as_yaml_scalars(project):
    path = write(project, DEPLOYMENT_NESTED_YML)

    deployment = load_deployment(
        path,
        {
            "settings.error_threshold": "5",
            "settings.logging_level": "DEBUG",
            "settings.output_action": "summary_only",
            "description": "Scores: digits",
            "tags.owner": "vision",
            "settings.environment_variables.FAST": "true",
        },
    )

    assert deployment.settings.error_threshold == 5
    assert deployment.settings.logging_level == "debug"
    assert deployment.settings.output_action == specs.OutputAction.SUMMARY_ONLY
    assert deployment.description == "Scores: digits"
    assert deployment.tags == {"owner": "vision"}
    assert deployment.settings.environment_variables == {"FAST": "true"}


def test_override_numbers_where_text_is_meant_stay_text(project):
    path = write(project, DEPLOYMENT_NESTED_YML)

    deployment = load_deployment(path, {"description": "2024", "settings.output_file_name": "7"})

    assert deployment.description == "2024"
    assert deployment.settings.output_file_name == "7"


def test_override_null_restores_the_default(project):
    path = write(project, DEPLOYMENT_NESTED_YML)

    settings = load_deployment(path, {"settings.max_concurrency_per_instance": "null"}).settings

    assert settings.max_concurrency_per_instance == 1


def test_override_can_replace_the_endpoint_name(project):
    path = write(project, DEPLOYMENT_NESTED_YML)

    assert load_deployment(path, {"endpoint_name": "mnist-batch-abc12"}).endpoint_name == "mnist-batch-abc12"


def test_invalid_override_is_refused_naming_the_override(project):
    error = refused(write(project, DEPLOYMENT_NESTED_YML), {"settings.mini_batch_size": "0"})

    assert error.field == "settings.mini_batch_size"
    assert "from override settings.mini_batch_size=0" in error.message
    assert "greater than 0" in error.message


def test_override_into_a_value_that_is_not_a_mapping_is_refused(project):
    error = refused(write(project, MINIMAL_YML), {"model.path": "model"})

    assert error.field == "model.path"
    assert "'model' is a string, not a mapping" in error.message


def test_override_with_an_unknown_key_is_refused(project):
    error = refused(write(project, MINIMAL_YML), {"settings.mini_batch_szie": "5"})

    assert error.field == "settings.mini_batch_szie"
    assert "is not a known field" in error.message


def test_parse_overrides_splits_at_the_first_equals_sign():
    assert parse_overrides(["settings.mini_batch_size=5", "tags.query=a=b", "description="]) == {
        "settings.mini_batch_size": "5",
        "tags.query": "a=b",
        "description": "",
    }


def test_parse_overrides_refuses_an_item_without_a_value():
    with pytest.raises(ValidationError, match="key=value"):
        parse_overrides(["settings.mini_batch_size"])


# --------------------------------------------------------------------------------------------- file errors
def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match=r"deployment\.yml: no such file"):
        load_deployment(tmp_path / "deployment.yml")


def test_a_folder_instead_of_a_file_is_refused(tmp_path):
    (tmp_path / "deployment.yml").mkdir()

    with pytest.raises(ValidationError, match="is a folder"):
        load_deployment(tmp_path / "deployment.yml")


def test_malformed_yaml_names_the_file_and_line(project):
    error = refused(write(project, "name: mnist-torch-dpl\nsettings:\n  mini_batch_size: [10\n  timeout: 3\n"))

    assert "line 4" in error.message
    assert "not valid YAML" in error.message


def test_a_key_given_twice_is_refused_naming_the_line(project):
    error = refused(write(project, MINIMAL_YML + "name: other-dpl\n"))

    assert "'name' appears twice" in error.message
    assert "line 7" in error.message


def test_empty_file_is_refused(project):
    error = refused(write(project, ""))

    assert "is empty" in error.message


def test_a_yaml_list_is_not_a_deployment(project):
    error = refused(write(project, "- name: mnist-torch-dpl\n"))

    assert "expected a mapping of fields at the top level, got a list" in error.message


# --------------------------------------------------------------------------------------------- field errors
def test_unknown_top_level_key_is_refused_naming_it(project):
    error = refused(write(project, MINIMAL_YML + "mini_batch_szie: 5\n"))

    assert error.field == "mini_batch_szie"
    assert "deployment.yml: field 'mini_batch_szie' is not a known field" in error.message


def test_unknown_key_under_settings_is_refused_naming_its_path(project):
    error = refused(write(project, MINIMAL_YML + "settings:\n  mini_batch_szie: 5\n"))

    assert error.field == "settings.mini_batch_szie"
    assert "is not a known field" in error.message


def test_unknown_key_in_endpoint_is_refused(tmp_path):
    error = refused(write(tmp_path, ENDPOINT_YML + "traffic:\n  blue: 100\n", "endpoint.yml"))

    assert error.field == "traffic"
    assert "endpoint.yml: field 'traffic' is not a known field" in error.message


def test_missing_required_field_is_named(project):
    error = refused(write(project, MINIMAL_YML.replace("endpoint_name: mnist-batch\n", "")))

    assert error.field == "endpoint_name"
    assert "field 'endpoint_name' is required" in error.message


@pytest.mark.parametrize("name", ["mnist_batch", "1mnist", "mnist-", "ab", "m" * 33])
def test_endpoint_name_must_match_azures_pattern(tmp_path, name):
    error = refused(write(tmp_path, ENDPOINT_YML.replace("name: mnist-batch", f"name: {name}"), "endpoint.yml"))

    assert error.field == "name"
    assert "start with a letter" in error.message


def test_deployment_name_must_match_the_endpoint_pattern(project):
    error = refused(write(project, MINIMAL_YML.replace("name: mnist-torch-dpl", "name: mnist_torch")))

    assert error.field == "name"
    assert "'mnist_torch' must be 3-32 characters" in error.message


def test_default_deployment_name_must_match_the_pattern(tmp_path):
    error = refused(write(tmp_path, ENDPOINT_YML + "defaults:\n  deployment_name: bad_name\n", "endpoint.yml"))

    assert error.field == "defaults.deployment_name"


def test_nested_setting_out_of_bounds_names_its_path(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "mini_batch_size: 10", "mini_batch_size: 0")))

    assert error.field == "settings.mini_batch_size"
    assert "greater than 0 (got 0)" in error.message


def test_flat_setting_out_of_bounds_names_it_where_it_was_written(project):
    error = refused(write(project, edit(DEPLOYMENT_FLAT_YML, "timeout: 30", "timeout: 0")))

    assert error.field == "retry_settings.timeout"
    assert "field 'retry_settings.timeout'" in error.message


def test_init_timeout_is_read_nested_and_flat_and_a_bad_one_is_named(project):
    nested = edit(DEPLOYMENT_NESTED_YML, "  error_threshold: -1\n", "  error_threshold: -1\n  init_timeout: 1800\n")
    assert load_deployment(write(project, nested)).settings.init_timeout == 1800
    assert load_deployment(write(project, DEPLOYMENT_FLAT_YML + "init_timeout: 45\n")).settings.init_timeout == 45

    error = refused(write(project, DEPLOYMENT_FLAT_YML + "init_timeout: soon\n"))

    assert error.field == "init_timeout"
    assert "field 'init_timeout'" in error.message


def test_resources_instance_count_out_of_bounds_names_resources(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "instance_count: 1", "instance_count: 0")))

    assert error.field == "resources.instance_count"


def test_wrong_type_of_setting_is_refused(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "mini_batch_size: 10", "mini_batch_size: ten")))

    assert error.field == "settings.mini_batch_size"
    assert "must be a count (rows or files) or a size" in error.message
    assert "'ten'" in error.message


def test_settings_both_nested_and_flat_are_refused(project):
    error = refused(write(project, DEPLOYMENT_NESTED_YML + "error_threshold: 5\n"))

    assert error.field == "error_threshold"
    assert "both under 'settings' and at the top level" in error.message


def test_settings_that_are_not_a_mapping_are_refused(project):
    error = refused(write(project, MINIMAL_YML + "settings: 5\n"))

    assert error.field == "settings"
    assert "must be a mapping of run settings" in error.message


def test_settings_replaced_by_a_scalar_override_are_refused(project):
    error = refused(write(project, DEPLOYMENT_NESTED_YML), {"settings": "5"})

    assert error.field == "settings"
    assert "must be a mapping of run settings (got number)" in error.message


def test_conflicting_instance_counts_are_refused(project):
    error = refused(write(project, MINIMAL_YML + "resources:\n  instance_count: 2\nsettings:\n  instance_count: 3\n"))

    assert error.field == "settings.instance_count"
    assert "conflicts with resources.instance_count" in error.message


def test_unknown_output_action_is_refused(project):
    error = refused(write(project, MINIMAL_YML + "settings:\n  output_action: append_file\n"))

    assert error.field == "settings.output_action"
    assert "'append_row' or 'summary_only'" in error.message


def test_output_file_name_with_a_folder_is_refused(project):
    error = refused(write(project, MINIMAL_YML + "settings:\n  output_file_name: out/predictions.csv\n"))

    assert error.field == "settings.output_file_name"
    assert "plain file name" in error.message


def test_missing_code_folder_is_refused(project):
    error = refused(write(project, MINIMAL_YML.replace("code: code", "code: src")))

    assert error.field == "code_configuration.code"
    assert f"resolves to {project / 'src'}, which is not a folder" in error.message


def test_missing_scoring_script_is_refused(project):
    error = refused(write(project, MINIMAL_YML.replace("batch_driver.py", "score.py")))

    assert error.field == "code_configuration.scoring_script"
    assert "'score.py' is not a file in the code folder" in error.message


def test_scoring_script_outside_the_code_folder_is_refused(project):
    error = refused(write(project, MINIMAL_YML.replace("batch_driver.py", "../score.py")))

    assert error.field == "code_configuration.scoring_script"
    assert "inside the code folder" in error.message


def test_missing_scoring_script_key_is_required(project):
    error = refused(write(project, MINIMAL_YML.replace("  scoring_script: batch_driver.py\n", "")))

    assert error.field == "code_configuration.scoring_script"
    assert "is required" in error.message


def test_missing_inline_model_path_is_refused(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "path: model", "path: weights")))

    assert error.field == "model.path"
    assert "which does not exist" in error.message


def test_inline_model_without_a_path_is_refused(project):
    yml = edit(MINIMAL_YML, "model: azureml:mnist-classifier-torch:1", "model:\n  name: mnist\n  version: 1")

    error = refused(write(project, yml))

    assert error.field == "model.path"
    assert "is required" in error.message


def test_inline_model_with_a_cloud_path_is_refused(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "path: model", "path: azureml://datastores/x")))

    assert error.field == "model.path"
    assert "only a local model file or folder" in error.message


def test_unknown_key_in_inline_model_is_refused(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "  path: model\n", "  path: model\n  pth: m\n")))

    assert error.field == "model.pth"


def test_model_without_a_version_asks_for_one(project):
    error = refused(write(project, MINIMAL_YML.replace(":1\n", "\n")))

    assert error.field == "model"
    assert "write mnist-classifier-torch:<version> or mnist-classifier-torch@latest" in error.message


def test_model_that_is_a_list_is_refused(project):
    error = refused(write(project, MINIMAL_YML.replace("model: azureml:mnist-classifier-torch:1", "model: [a]")))

    assert error.field == "model"
    assert "got list" in error.message


def test_a_pipeline_deployment_without_its_component_is_refused_naming_it(project):
    error = refused(write(project, MINIMAL_YML + "type: pipeline\n"))

    assert error.field == "component"


def test_environment_docker_build_is_refused(project):
    error = refused(write(project, MINIMAL_YML + "environment:\n  build:\n    path: docker\n"))

    assert error.field == "environment.build"
    assert "give it as 'image'" in error.message


@pytest.mark.parametrize(
    "written", ["azureml:my-env", "azureml://registries/azureml/environments/sklearn-1.5/labels/latest", "e@v1"]
)
def test_environment_reference_without_version_or_from_a_registry_is_refused(project, written):
    error = refused(write(project, MINIMAL_YML + f"environment: {written}\n"))

    assert error.field == "environment"


def test_missing_conda_file_is_refused(project):
    error = refused(write(project, edit(DEPLOYMENT_NESTED_YML, "environment/conda.yaml", "environment/conda.yml")))

    assert error.field == "environment.conda_file"
    assert "not a readable text file" in error.message


def test_unknown_key_in_inline_environment_is_refused(project):
    error = refused(write(project, MINIMAL_YML + "environment:\n  image: x:1\n  imgae: y\n"))

    assert error.field == "environment.imgae"
    assert "is not a known field" in error.message


def test_compute_with_a_path_is_refused(project):
    error = refused(write(project, MINIMAL_YML + "compute: azureml:/subscriptions/s/computes/c\n"))

    assert error.field == "compute"


def test_wrong_type_under_resources_is_refused(project):
    error = refused(write(project, MINIMAL_YML + "resources:\n  instance_size: 2\n"))

    assert error.field == "resources.instance_size"
    assert "is not a known field" in error.message


# --------------------------------------------------------------------------------------------- model references
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("azureml:mnist-classifier-torch:1", ModelReference(name="mnist-classifier-torch", version="1")),
        ("mnist-classifier-torch:1", ModelReference(name="mnist-classifier-torch", version="1")),
        ("azureml:mnist@latest", ModelReference(name="mnist", label="latest")),
        ("mnist@latest", ModelReference(name="mnist", label="latest")),
        ("digits_v2.onnx:2024.01-rc1", ModelReference(name="digits_v2.onnx", version="2024.01-rc1")),
        ("  mnist:3  ", ModelReference(name="mnist", version="3")),
    ],
)
def test_model_reference_parsing(text, expected):
    assert parse_model_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("mnist", "names no version: write mnist:<version> or mnist@latest"),
        ("azureml:mnist", "names no version"),
        ("azureml://registries/azureml/models/mnist/versions/1", "registry and resource-id references"),
        ("azureml:/subscriptions/s/resourceGroups/r/workspaces/w/models/mnist/versions/1", "not supported"),
        ("mnist@stable", "the only label is @latest"),
        ("mnist:", "the version must be"),
        ("mnist:1:2", "the version must be"),
        (":1", "the model name must"),
        ("mn ist:1", "the model name must"),
    ],
)
def test_model_reference_errors(text, words):
    with pytest.raises(ValidationError) as caught:
        parse_model_reference(text)

    assert caught.value.field == "model"
    assert words in caught.value.message


def test_model_reference_errors_name_the_given_field_and_source():
    with pytest.raises(ValidationError) as caught:
        parse_model_reference("mnist", field="--model", source="bep deployment create")

    assert caught.value.field == "--model"
    assert caught.value.message.startswith("bep deployment create: field '--model': 'mnist' names no version")


def test_model_reference_prints_as_written():
    assert str(parse_model_reference("azureml:mnist:1")) == "mnist:1"
    assert str(parse_model_reference("mnist@latest")) == "mnist@latest"


def test_an_endpoint_as_its_document_loads_back_the_same():
    endpoint = specs.Endpoint(
        name="mnist-batch",
        description="d",
        tags={"team": "a"},
        default_deployment="blue",
        allowed_inputs=["s3://images/a"],
        allowed_outputs=["/data/out"],
    )

    loaded = load_endpoint_mapping(endpoint_document(endpoint))

    assert loaded.model_dump(exclude={"created_at"}) == endpoint.model_dump(exclude={"created_at"})
