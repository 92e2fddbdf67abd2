"""The spec models: Azure's defaults and limits, and errors that name the field at fault."""

from __future__ import annotations

import pydantic
import pytest

from batch_endpoints import specs
from batch_endpoints.errors import ValidationError


def refused(model, data, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        specs.parse(model, data, **kwargs)
    return caught.value


# --------------------------------------------------------------------------------------------- run settings
def test_run_settings_defaults_are_azures():
    settings = specs.RunSettings()

    assert settings.model_dump() == {
        "mini_batch_size": 10,
        "instance_count": 1,
        "max_concurrency_per_instance": 1,
        "retry_settings": {"max_retries": 3, "timeout": 30},
        "error_threshold": -1,
        "mini_batch_error_threshold": -1,
        "output_action": specs.OutputAction.APPEND_ROW,
        "output_file_name": "predictions.csv",
        "logging_level": "info",
        "environment_variables": {},
        "input_format": "auto",
        "output_format": "auto",
        "keep_input_columns": [],
        "max_mini_batches_per_worker": 0,
        "max_worker_memory_mb": 0,
        "init_timeout": 600,
    }


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mini_batch_size": 0}, "mini_batch_size"),
        ({"mini_batch_size": -5}, "mini_batch_size"),
        ({"instance_count": 0}, "instance_count"),
        ({"instance_count": -1}, "instance_count"),
        ({"max_concurrency_per_instance": 0}, "max_concurrency_per_instance"),
        ({"retry_settings": {"timeout": 0}}, "retry_settings.timeout"),
        ({"retry_settings": {"timeout": -30}}, "retry_settings.timeout"),
        ({"retry_settings": {"max_retries": -1}}, "retry_settings.max_retries"),
        ({"error_threshold": -2}, "error_threshold"),
        ({"max_mini_batches_per_worker": -1}, "max_mini_batches_per_worker"),
        ({"max_worker_memory_mb": -100}, "max_worker_memory_mb"),
        ({"max_worker_memory_mb": "lots"}, "max_worker_memory_mb"),
        ({"init_timeout": 0}, "init_timeout"),
        ({"init_timeout": -600}, "init_timeout"),
        ({"init_timeout": "ten minutes"}, "init_timeout"),
        ({"init_timeout": 8 * 24 * 3600}, "init_timeout"),
    ],
)
def test_run_settings_refuse_zero_and_negative_sizes_naming_the_field(data, field):
    error = refused(specs.RunSettings, data)

    assert error.field == field
    assert "(got " in error.message


def test_run_settings_error_threshold_zero_is_allowed():
    assert specs.RunSettings(error_threshold=0).error_threshold == 0


@pytest.mark.parametrize("name", ["out/predictions.csv", "/tmp/predictions.csv", "a\\b.csv", "..", ".", ""])
def test_output_file_name_with_a_folder_is_refused(name):
    error = refused(specs.RunSettings, {"output_file_name": name})

    assert error.field == "output_file_name"
    assert "must be a plain file name, without folders" in error.message


def test_logging_level_is_read_case_insensitively():
    assert specs.RunSettings(logging_level="WARNING").logging_level == "warning"


def test_unknown_logging_level_is_refused():
    error = refused(specs.RunSettings, {"logging_level": "verbose"})

    assert error.field == "logging_level"
    assert "'verbose'" in error.message


def test_run_settings_are_checked_on_assignment_too():
    settings = specs.RunSettings()

    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        settings.mini_batch_size = 0


# --------------------------------------------------------------------------------------------- invoke overrides
def test_invoke_overrides_win_over_the_deployment_settings():
    deployment = specs.RunSettings(mini_batch_size=10, instance_count=2, error_threshold=5)
    overrides = specs.InvokeOverrides(
        mini_batch_size=20,
        instance_count=5,
        max_retries=0,
        timeout=300,
        error_threshold=0,
        output_file_name="run-7.csv",
    )

    settings = overrides.apply(deployment)

    assert settings.mini_batch_size == 20
    assert settings.instance_count == 5
    assert settings.retry_settings == specs.RetrySettings(max_retries=0, timeout=300)
    assert settings.error_threshold == 0
    assert settings.output_file_name == "run-7.csv"


def test_invoke_overrides_keep_what_they_do_not_name():
    deployment = specs.RunSettings(
        mini_batch_size=3,
        max_concurrency_per_instance=4,
        retry_settings={"max_retries": 1, "timeout": 60},
        output_action="summary_only",
        environment_variables={"A": "1"},
    )

    settings = specs.InvokeOverrides(timeout=90).apply(deployment)

    assert settings == deployment.model_copy(update={"retry_settings": specs.RetrySettings(max_retries=1, timeout=90)})
    assert deployment.retry_settings.timeout == 60, "the deployment's own settings are not changed"


def test_no_invoke_overrides_give_the_deployment_settings():
    deployment = specs.RunSettings(mini_batch_size=7)

    assert specs.InvokeOverrides().apply(deployment) == deployment


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mini_batch_size": 0}, "mini_batch_size"),
        ({"instance_count": -1}, "instance_count"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"error_threshold": -2}, "error_threshold"),
        ({"mini_batch_sise": 5}, "mini_batch_sise"),
    ],
)
def test_invalid_invoke_override_is_refused_naming_the_field(data, field):
    assert refused(specs.InvokeOverrides, data).field == field


def test_invoke_override_output_file_name_with_a_folder_is_refused_when_applied():
    overrides = specs.InvokeOverrides(output_file_name="../predictions.csv")

    with pytest.raises(ValidationError) as caught:
        overrides.apply(specs.RunSettings())

    assert caught.value.field == "output_file_name"


# --------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["mnist-batch", "abc", "a1b", "A-b-9", "m" * 32, "Mnist--batch2"])
def test_endpoint_names_azure_accepts(name):
    assert specs.parse(specs.Endpoint, {"name": name}).name == name


@pytest.mark.parametrize(
    "name", ["ab", "a", "1abc", "-abc", "abc-", "mnist_batch", "mnist batch", "mnist.batch", "m" * 33, "ab\n"]
)
def test_endpoint_names_azure_refuses(name):
    error = refused(specs.Endpoint, {"name": name})

    assert error.field == "name"
    assert "must be 3-32 characters, start with a letter" in error.message


# `$` also matches before a final newline, so `ENDPOINT_NAME.match("abc\n")` succeeds; a name written as a YAML
# block scalar (`name: |`) or sent in JSON would be stored with the newline. specs.py should use fullmatch.
def test_endpoint_name_with_a_trailing_newline_is_refused():
    assert refused(specs.Endpoint, {"name": "abc\n"}).field == "name"


def test_model_name_with_a_trailing_newline_is_refused():
    assert refused(specs.Model, {"name": "mnist\n", "version": "1", "path": "/m"}).field == "name"


def test_deployment_and_endpoint_name_of_a_deployment_follow_the_same_pattern():
    data = {
        "name": "mnist_dpl",
        "endpoint_name": "mnist-batch",
        "model": "mnist:1",
        "code_configuration": {"code": "/code", "scoring_script": "score.py"},
    }

    assert refused(specs.Deployment, data).field == "name"
    assert refused(specs.Deployment, {**data, "name": "mnist-dpl", "endpoint_name": "9batch"}).field == "endpoint_name"


@pytest.mark.parametrize("mode", ["aad_token", "aml_token", "key", "aws_iam"])
def test_azure_auth_modes_become_aws_iam(mode):
    assert specs.Endpoint(name="mnist-batch", auth_mode=mode).auth_mode == "aws_iam"


@pytest.mark.parametrize("script", ["score.txt", "/abs/score.py", "../score.py", "pkg/../../score.py"])
def test_scoring_script_must_be_a_python_file_inside_the_code_folder(script):
    error = refused(specs.CodeConfiguration, {"code": "/code", "scoring_script": script})

    assert error.field == "scoring_script"
    assert "must be a .py file inside the code folder" in error.message


# --------------------------------------------------------------------------------------------- parse() messages
def test_parse_names_an_unknown_field():
    error = refused(specs.RunSettings, {"mini_batch_szie": 5})

    assert error.field == "mini_batch_szie"
    assert error.message == "is not a known field"
    assert str(error) == "mini_batch_szie: is not a known field"


def test_parse_names_a_missing_field():
    error = refused(specs.CodeConfiguration, {"code": "/code"})

    assert error.field == "scoring_script"
    assert error.message == "is required"


def test_parse_names_nested_fields_with_a_prefix():
    error = refused(specs.RunSettings, {"retry_settings": {"timeout": 0}}, prefix="settings")

    assert error.field == "settings.retry_settings.timeout"
    assert error.message == "Input should be greater than 0 (got 0)"


def test_parse_shows_the_value_for_type_errors():
    error = refused(specs.RunSettings, {"instance_count": "ten"})

    assert error.field == "instance_count"
    assert "valid integer" in error.message
    assert "(got 'ten')" in error.message


def test_parse_keeps_our_own_value_error_messages_plain():
    error = refused(specs.RunSettings, {"output_file_name": "a/b.csv"})

    assert error.message == "'a/b.csv' must be a plain file name, without folders"


@pytest.mark.parametrize("model", [specs.RunSettings, specs.InvokeOverrides])
def test_instance_count_above_the_distributed_maps_concurrency_is_refused_naming_the_limit(model):
    assert specs.parse(model, {"instance_count": specs.MAX_INSTANCE_COUNT}).instance_count == 10_000

    error = refused(model, {"instance_count": specs.MAX_INSTANCE_COUNT + 1})

    assert error.field == "instance_count"
    assert error.message.startswith("Input should be at most 10,000 (got 10,001)")
    assert "Distributed Map" in error.message


def test_parse_error_is_a_validation_error_with_status_400():
    error = refused(specs.RunSettings, {"instance_count": 0})

    assert error.status == 400
    assert error.to_dict() == {"code": "ValidationError", "message": error.message, "field": "instance_count"}
