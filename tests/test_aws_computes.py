"""AWS Batch as the compute registry: the stack's queues as named computes, deployments as job definitions."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from batch_container import requirements, workers
from batch_endpoints.adapters.aws.computes import (
    INIT_ATTEMPTS,
    INSTALL_REQUIREMENTS_VARIABLE,
    MAX_ATTEMPT_DURATION_S,
    MIN_ATTEMPT_DURATION_S,
    SPEC_TAG,
    STARTUP_ALLOWANCE_S,
    BatchComputeRegistry,
    attempt_duration_seconds,
)
from batch_endpoints.errors import ValidationError
from batch_endpoints.planning import MAX_MINI_BATCHES_PER_SHARD
from batch_endpoints.service import BatchEndpointService
from batch_endpoints.specs import RunSettings
from tests.aws_fixtures import IMAGES, LOG_GROUP, TABLE, aws_backend, aws_fixture  # noqa: F401
from tests.core_fixtures import (
    SCORING_SCRIPT,
    RecordingOrchestrator,
    deployment_declaration,
    endpoint_declaration,
    write_tree,
)


@pytest.fixture(name="service")
def service_fixture(aws: None, tmp_path: Path) -> BatchEndpointService:
    service = BatchEndpointService(aws_backend(RecordingOrchestrator()))
    service.register_model("digits", str(write_tree(tmp_path / "model", {"weights.txt": "1\n"})))
    service.create_endpoint(endpoint_declaration("digits"))
    return service


@pytest.fixture(name="code")
def code_fixture(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT})


def job_definitions(name: str, status: str | None = None) -> list[dict]:
    options = {"status": status} if status else {}
    found = boto3.client("batch").describe_job_definitions(jobDefinitionName=name, **options)["jobDefinitions"]
    return sorted(found, key=lambda d: d["revision"])


def test_computes_are_the_configured_queues_without_calling_aws() -> None:
    registry = BatchComputeRegistry(
        [
            {
                "name": "cpu-cluster",
                "kind": "cpu",
                "job_queue": "arn:aws:batch:us-east-1:123456789012:job-queue/bep-cpu",
                "instance_types": ["c6i"],
                "max_vcpus": 256,
                "vcpus": 2,
                "memory_mib": 4096,
                "gpus": 0,
            }
        ],
        IMAGES,
        "arn:aws:iam::123456789012:role/job",
        LOG_GROUP,
    )

    [cpu] = registry.list()
    assert (cpu.name, cpu.kind, cpu.max_instances) == ("cpu-cluster", "cpu", 128)
    assert cpu.details["job_queue"].endswith("job-queue/bep-cpu")
    assert cpu.details["instance_types"] == ["c6i"] and cpu.details["max_vcpus"] == 256
    assert registry.get("cpu-cluster") == cpu
    assert registry.get("tpu-cluster") is None


def test_an_unknown_compute_is_refused_naming_the_known_ones(service: BatchEndpointService, code: Path) -> None:
    with pytest.raises(ValidationError, match="cpu-cluster, gpu-cluster"):
        service.create_deployment(deployment_declaration(code, compute="tpu-cluster"))


def test_a_cpu_deployment_is_a_job_definition_running_the_runner(service: BatchEndpointService, code: Path) -> None:
    deployment = service.create_deployment(
        deployment_declaration(code, settings={"retry_settings": {"timeout": 60, "max_retries": 2}})
    )

    [definition] = job_definitions("bep-digits_blue")
    assert deployment.compute_handle == definition["jobDefinitionArn"]
    assert definition["revision"] == 1 and definition["status"] == "ACTIVE" and definition["type"] == "container"
    container = definition["containerProperties"]
    assert container["image"] == IMAGES["cpu"]
    assert container["command"] == ["--job-id", "Ref::job_id", "--shard", "Ref::shard"]
    assert container["jobRoleArn"].endswith(":role/bep-job")
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {"VCPU": "2", "MEMORY": "4096"}
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "BEP_BACKEND": "aws",
        "BEP_TABLE": TABLE,
        "BEP_BUCKET": "bep-storage",
        "BEP_CPUS": "2",
        "BEP_INSTALL_REQUIREMENTS": "1",  # our image: the runner installs what the environment needs
    }
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {"awslogs-group": LOG_GROUP, "awslogs-stream-prefix": "bep-digits_blue"},
    }
    assert definition["timeout"] == {
        "attemptDurationSeconds": MAX_MINI_BATCHES_PER_SHARD * 60 * 3 + INIT_ATTEMPTS * 600 + STARTUP_ALLOWANCE_S
    }
    retry = definition["retryStrategy"]
    assert retry["attempts"] == 3
    assert [(e.get("onStatusReason"), e.get("onExitCode"), e["action"].upper()) for e in retry["evaluateOnExit"]] == [
        ("Host EC2*", None, "RETRY"),
        (None, "1", "EXIT"),
    ]
    assert definition["tags"] == {
        "bep:endpoint": "digits",
        "bep:deployment": "blue",
        SPEC_TAG: definition["tags"][SPEC_TAG],
    }


def test_a_gpu_deployment_asks_for_a_gpu_and_runs_the_gpu_image(service: BatchEndpointService, code: Path) -> None:
    service.create_deployment(deployment_declaration(code, name="green", compute="gpu-cluster"))

    [definition] = job_definitions("bep-digits_green")
    container = definition["containerProperties"]
    assert container["image"] == IMAGES["gpu"]
    resources = {r["type"]: r["value"] for r in container["resourceRequirements"]}
    assert resources == {"VCPU": "4", "MEMORY": "15000", "GPU": "1"}


@pytest.mark.parametrize(
    ("image", "runs"),
    [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-scorer:7",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-scorer:7",
        ),
        ("public.ecr.aws/me/scorer:latest", "public.ecr.aws/me/scorer:latest"),
        # Azure's curated images hold no runner: a spec written for Azure runs on the default image.
        ("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest", IMAGES["cpu"]),
    ],
)
def test_the_deployment_image_is_used_unless_it_is_azures(
    service: BatchEndpointService, code: Path, image: str, runs: str
) -> None:
    service.create_deployment(deployment_declaration(code, environment={"image": image}))

    [definition] = job_definitions("bep-digits_blue")
    assert definition["containerProperties"]["image"] == runs
    # A custom image is the user's own: the runner installs nothing into it.
    variables = {e["name"]: e["value"] for e in definition["containerProperties"]["environment"]}
    assert variables.get("BEP_INSTALL_REQUIREMENTS") == ("1" if runs == IMAGES["cpu"] else None)


def test_the_job_definition_names_the_variable_the_runner_reads() -> None:
    assert INSTALL_REQUIREMENTS_VARIABLE == requirements.INSTALL_VARIABLE


def test_updating_a_deployment_registers_a_new_revision(service: BatchEndpointService, code: Path) -> None:
    first = service.create_deployment(deployment_declaration(code))
    second = service.update_deployment(deployment_declaration(code, settings={"max_concurrency_per_instance": 4}))

    assert first.compute_handle.endswith("bep-digits_blue:1") and second.compute_handle.endswith("bep-digits_blue:2")
    # Jobs still running on the first revision keep it: only a delete retires revisions.
    assert [d["status"] for d in job_definitions("bep-digits_blue")] == ["ACTIVE", "ACTIVE"]


def test_an_update_that_changes_nothing_of_the_job_definition_keeps_its_revision(
    service: BatchEndpointService, code: Path
) -> None:
    first = service.create_deployment(deployment_declaration(code))
    second = service.update_deployment(deployment_declaration(code, description="the same job definition"))

    assert second.compute_handle == first.compute_handle
    assert [d["status"] for d in job_definitions("bep-digits_blue")] == ["ACTIVE"]


def test_deleting_a_deployment_deregisters_its_job_definitions(service: BatchEndpointService, code: Path) -> None:
    service.create_deployment(deployment_declaration(code))
    service.update_deployment(deployment_declaration(code, settings={"max_concurrency_per_instance": 4}))
    service.create_deployment(deployment_declaration(code, name="green"))

    service.delete_deployment("digits", "blue")

    assert [d["status"] for d in job_definitions("bep-digits_blue")] == ["INACTIVE", "INACTIVE"]
    assert [d["status"] for d in job_definitions("bep-digits_green")] == ["ACTIVE"]
    # Deregistering what is already gone is not an error (a delete retried after a partial failure).
    service.backend.computes.deregister_deployment(service.get_deployment("digits", "green"))
    service.backend.computes.deregister_deployment(service.get_deployment("digits", "green"))
    assert [d["status"] for d in job_definitions("bep-digits_green")] == ["INACTIVE"]


def test_names_that_differ_only_in_where_the_dash_is_get_their_own_job_definitions(
    service: BatchEndpointService, code: Path
) -> None:
    service.create_endpoint(endpoint_declaration("digits-a"))
    service.create_deployment(deployment_declaration(code, endpoint="digits", name="a-blue"))
    service.create_deployment(deployment_declaration(code, endpoint="digits-a", name="blue"))

    assert len(job_definitions("bep-digits_a-blue")) == 1
    assert len(job_definitions("bep-digits-a_blue")) == 1


def test_the_attempt_timeout_covers_every_mini_batch_timing_out_on_every_try() -> None:
    settings = RunSettings(max_concurrency_per_instance=2, retry_settings={"timeout": 600, "max_retries": 1})

    # 100 mini-batches, 2 at a time, each up to 2 tries of 600 s, plus 3 tries at init() (600 s each by
    # default), plus the startup allowance.
    assert attempt_duration_seconds(settings, 100) == 50 * 600 * 2 + 3 * 600 + STARTUP_ALLOWANCE_S
    assert INIT_ATTEMPTS == workers.INIT_ATTEMPTS, "the runner's tries at init()"
    slow_init = settings.model_copy(update={"init_timeout": 3600})
    assert attempt_duration_seconds(slow_init, 100) == 50 * 600 * 2 + 3 * 3600 + STARTUP_ALLOWANCE_S
    assert attempt_duration_seconds(RunSettings(init_timeout=60), 1) == MIN_ATTEMPT_DURATION_S
    huge = RunSettings(retry_settings={"timeout": 7 * 24 * 3600, "max_retries": 100})
    assert attempt_duration_seconds(huge, MAX_MINI_BATCHES_PER_SHARD) == MAX_ATTEMPT_DURATION_S


def test_a_compute_configured_without_its_queue_is_refused_when_the_registry_is_built() -> None:
    config = {"name": "cpu-cluster", "kind": "cpu", "max_vcpus": 8, "vcpus": 2, "memory_mib": 4096}

    with pytest.raises(ValidationError, match="'cpu-cluster' is configured without job_queue"):
        BatchComputeRegistry([config], IMAGES, "arn:aws:iam::123456789012:role/job", LOG_GROUP)
