"""infra/settings.py: context values as `cdk.json` holds them or as `-c key=value` passes them (strings)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from infra.settings import ComputeSettings, StackSettings


def settings(**context: object) -> StackSettings:
    return StackSettings.from_context(cdk.App(context=context).node)


def test_the_defaults_cost_nothing_idle() -> None:
    defaults = settings()
    assert (defaults.spot, defaults.nat_gateways) == (False, 0)
    assert [c.name for c in defaults.computes] == ["cpu-cluster", "gpu-cluster"]
    assert defaults.gpu.gpus == 1 and defaults.gpu.kind == "gpu"


def test_strings_from_the_command_line_are_parsed() -> None:
    parsed = settings(spot="true", nat_gateways="2", gpu_instance_types="g6.xlarge, g6e.xlarge", cpu_max_vcpus="32")
    assert parsed.spot is True and parsed.nat_gateways == 2
    assert parsed.gpu.instance_types == ("g6.xlarge", "g6e.xlarge")
    assert parsed.cpu.max_vcpus == 32


def test_json_values_from_cdk_json_are_taken_as_they_are() -> None:
    parsed = settings(spot=False, data_buckets=["a", "b"], scratch_expiry_days=3)
    assert (parsed.spot, parsed.data_buckets, parsed.scratch_expiry_days) == (False, ("a", "b"), 3)


def test_a_misspelt_boolean_is_an_error() -> None:
    with pytest.raises(ValueError, match="true or false"):
        settings(spot="yes")


def test_a_compute_must_be_able_to_run_its_own_jobs() -> None:
    with pytest.raises(ValueError, match="exceed max_vcpus"):
        ComputeSettings("cpu-cluster", "cpu", ("c6i",), max_vcpus=2, vcpus=4, memory_mib=1024)
    with pytest.raises(ValueError, match="at least one GPU"):
        ComputeSettings("gpu-cluster", "gpu", ("g5.xlarge",), max_vcpus=8, vcpus=4, memory_mib=1024)


def test_caller_policy_simulation_is_a_boolean_off_by_default() -> None:
    assert settings().simulate_caller_policy is False
    assert settings(simulate_caller_policy="true").simulate_caller_policy is True
    with pytest.raises(ValueError, match="true or false"):
        settings(simulate_caller_policy="on")


def test_scale_settings_have_defaults_and_refuse_nonsense() -> None:
    defaults = settings()
    assert (defaults.upload_expiry_days, defaults.availability_zones, defaults.runnable_timeout_minutes) == (7, 3, 30)
    assert (defaults.workflow_log_level, defaults.workflow_log_execution_data) == ("ERROR", False)
    assert settings(workflow_log_level="all").workflow_log_level == "ALL"
    with pytest.raises(ValueError, match="workflow_log_level must be one of ALL, ERROR, FATAL, OFF"):
        settings(workflow_log_level="verbose")
    with pytest.raises(ValueError, match="runnable_timeout_minutes must be at least 1"):
        settings(runnable_timeout_minutes="0")
