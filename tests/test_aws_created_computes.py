"""Computes users create, on AWS: a Batch compute environment and job queue from the stack's template, made and
removed in the steps and states AWS Batch enforces (tests/batch_states.py), under moto."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ec2.models.instance_types import INSTANCE_TYPES

from batch_endpoints.adapters.aws.compute_environments import ComputeTemplate
from batch_endpoints.adapters.aws.computes import BatchComputeRegistry
from batch_endpoints.adapters.aws.orchestrator import StepFunctionsOrchestrator
from batch_endpoints.compute_sizes import AZURE_SIZES, EC2_SIZES
from batch_endpoints.errors import ConflictError, NotFoundError, ValidationError
from batch_endpoints.service import BatchEndpointService, InvokeRequest
from batch_endpoints.specs import ComputeDeclaration, ComputeUpdate
from tests.aws_fixtures import IMAGES, INPUT_BUCKET, LOG_GROUP, aws_backend, aws_fixture, put_objects, role_arn  # noqa: F401
from tests.batch_states import MAX_ENVIRONMENTS, StrictBatch
from tests.core_fixtures import (
    SCORING_SCRIPT,
    RecordingOrchestrator,
    deployment_declaration,
    endpoint_declaration,
    write_tree,
)

STACK = "BatchEndpoints"


@pytest.fixture(name="batch")
def batch_fixture(aws: None) -> StrictBatch:
    return StrictBatch(boto3.client("batch"), role_arn("AWSServiceRoleForBatch"))


@pytest.fixture(name="service")
def service_fixture(batch: StrictBatch, tmp_path: Path) -> BatchEndpointService:
    """The cloud backend whose registry creates computes from a template of real (moto) networking and roles."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/20")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="bep-batch", Description="batch", VpcId=vpc)["GroupId"]
    iam = boto3.client("iam")
    role_arn("bep-instance")
    profile = iam.create_instance_profile(InstanceProfileName="bep-instance")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="bep-instance", RoleName="bep-instance")
    template = ComputeTemplate(
        prefix=STACK,
        subnets=(subnet,),
        security_groups=(group,),
        instance_role=profile,
        launch_templates={"cpu": "lt-cpu", "gpu": "lt-gpu"},
        runnable_timeout_s=900,
    )
    backend = aws_backend(RecordingOrchestrator())
    registry = BatchComputeRegistry(
        [],  # the stack's own computes are aws_backend's; these tests need only created ones
        IMAGES,
        "arn:aws:iam::123456789012:role/bep-job",
        LOG_GROUP,
        client=batch,
        records=backend.records,
        template=template,
    )
    service = BatchEndpointService(dataclasses.replace(backend, computes=registry))
    service.register_model("digits", str(write_tree(tmp_path / "model", {"weights.txt": "1\n"})))
    service.create_endpoint(endpoint_declaration("digits"))
    return service


def _environment(name: str) -> dict:
    [environment] = boto3.client("batch").describe_compute_environments(computeEnvironments=[f"{STACK}-{name}"])[
        "computeEnvironments"
    ]
    return environment


def _queues(name: str) -> list[dict]:
    return boto3.client("batch").describe_job_queues(jobQueues=[f"{STACK}-{name}"])["jobQueues"]


def test_every_size_is_the_instance_type_ec2_describes() -> None:
    for name, size in EC2_SIZES.items():
        described = INSTANCE_TYPES[name]
        gpus = sum(gpu["Count"] for gpu in described.get("GpuInfo", {}).get("Gpus", []))
        assert (size.vcpus, size.memory_mib, size.gpus) == (
            described["VCpuInfo"]["DefaultVCpus"],
            described["MemoryInfo"]["SizeInMiB"],
            gpus,
        ), name
    assert set(AZURE_SIZES.values()) <= set(EC2_SIZES)


def test_a_compute_is_creating_until_its_environment_is_valid_and_its_queue_made(
    service: BatchEndpointService, batch: StrictBatch
) -> None:
    created = service.create_compute(
        ComputeDeclaration(name="batch-cluster", size="Standard_DS3_v2", min_instances=1, max_instances=5),
        caller="ann",
    )
    environment = _environment("batch-cluster")
    resources = environment["computeResources"]

    assert created.provisioning_state == "Creating" and not created.details["job_queue"]
    assert _queues("batch-cluster") == []
    assert (resources["type"], resources["allocationStrategy"]) == ("EC2", "BEST_FIT_PROGRESSIVE")
    assert (resources["minvCpus"], resources["maxvCpus"], resources["instanceTypes"]) == (4, 20, ["m5.xlarge"])
    assert resources["launchTemplate"]["launchTemplateId"] == "lt-cpu"
    assert resources["ec2Configuration"] == [{"imageType": "ECS_AL2023"}]
    assert environment["tags"] == {"bep:stack": STACK, "bep:compute": "batch-cluster"}
    assert "serviceRole" not in batch.requests["create_compute_environment"][0]

    shown = service.get_compute("batch-cluster")
    [queue] = _queues("batch-cluster")

    assert shown.provisioning_state == "Succeeded" and shown.details["job_queue"] == queue["jobQueueArn"]
    assert queue["computeEnvironmentOrder"][0]["computeEnvironment"] == environment["computeEnvironmentArn"]
    assert queue["tags"] == {"bep:stack": STACK, "bep:compute": "batch-cluster"}
    [limits] = [request["jobStateTimeLimitActions"] for request in batch.requests["create_job_queue"]]
    assert {(a["state"], a["action"], a["maxTimeSeconds"]) for a in limits} == {("RUNNABLE", "CANCEL", 900)}
    assert [call for call, _ in batch.calls] == ["create_compute_environment", "create_job_queue"]


def test_low_priority_is_spot_and_a_gpu_size_uses_the_gpu_machine_image_and_launch_template(
    service: BatchEndpointService,
) -> None:
    service.create_compute(ComputeDeclaration(name="spot-gpus", size="Standard_NC6s_v3", tier="low_priority"))
    resources = _environment("spot-gpus")["computeResources"]

    assert (resources["type"], resources["allocationStrategy"]) == ("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED")
    assert resources["instanceTypes"] == ["g5.2xlarge"] and resources["launchTemplate"]["launchTemplateId"] == "lt-gpu"
    assert resources["ec2Configuration"] == [{"imageType": "ECS_AL2023_NVIDIA"}]
    assert service.get_compute("spot-gpus").kind == "gpu"


def test_a_deployment_on_a_created_compute_runs_its_shards_in_its_queue_with_its_resources(
    service: BatchEndpointService, tmp_path: Path
) -> None:
    service.create_compute(ComputeDeclaration(name="gpu-batch", size="g5.xlarge", max_instances=2))
    compute = service.get_compute("gpu-batch")
    code = write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT})
    deployment = service.create_deployment(deployment_declaration(code, compute="gpu-batch"), set_default=True)
    definition = boto3.client("batch").describe_job_definitions(jobDefinitions=[deployment.compute_handle])
    container = definition["jobDefinitions"][0]["containerProperties"]
    execution = StepFunctionsOrchestrator("arn:state-machine", computes=service.backend.computes)
    job = service.invoke(service_request())

    assert container["image"] == IMAGES["gpu"]
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {
        "VCPU": "4",
        "MEMORY": str(int(16384 * 0.85)),
        "GPU": "1",
    }
    assert execution.execution_input(job)["job_queue"] == compute.details["job_queue"]
    assert execution.execution_input(job)["compute"] == "gpu"


def service_request() -> InvokeRequest:
    put_objects(INPUT_BUCKET, {"in/a.txt": b"a"})
    return InvokeRequest(endpoint_name="digits", input=f"s3://{INPUT_BUCKET}/in/")


def test_an_update_changes_the_environments_vcpus(service: BatchEndpointService, batch: StrictBatch) -> None:
    service.create_compute(ComputeDeclaration(name="batch-cluster", size="m5.large", max_instances=4))
    service.get_compute("batch-cluster")

    updated = service.update_compute("batch-cluster", ComputeUpdate(min_instances=1, max_instances=8))
    [request] = batch.requests["update_compute_environment"]

    assert request["computeResources"] == {"minvCpus": 2, "maxvCpus": 16}
    assert updated.details["max_vcpus"] == 16 and updated.max_instances == 8
    with pytest.raises(ConflictError, match="still applying"):
        service.update_compute("batch-cluster", ComputeUpdate(max_instances=9))
    assert service.get_compute("batch-cluster").max_instances == 8


def test_a_compute_in_use_is_kept_and_a_free_one_is_removed_queue_first_in_batchs_order(
    service: BatchEndpointService, batch: StrictBatch, tmp_path: Path
) -> None:
    service.create_compute(ComputeDeclaration(name="batch-cluster", size="m5.large"))
    service.get_compute("batch-cluster")
    code = write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT})
    service.create_deployment(deployment_declaration(code, compute="batch-cluster"))

    with pytest.raises(ConflictError) as in_use:
        service.delete_compute("batch-cluster")
    assert "digits/blue" in str(in_use.value) and len(_queues("batch-cluster")) == 1

    service.delete_deployment("digits", "blue")
    states = []
    while (remaining := service.delete_compute("batch-cluster")) is not None:
        states.append(remaining.provisioning_state)
        assert len(states) < 20, "the deletion never ends"

    assert set(states) == {"Deleting"} and len(states) > 1
    assert [call for call, _ in batch.calls if call != "create_compute_environment"] == [
        "create_job_queue",
        "update_job_queue",
        "delete_job_queue",
        "update_compute_environment",
        "delete_compute_environment",
    ]
    assert _queues("batch-cluster") == []
    assert "batch-cluster" not in [c.name for c in service.list_computes()]


def test_a_deleting_compute_takes_no_new_deployment(service: BatchEndpointService, tmp_path: Path) -> None:
    service.create_compute(ComputeDeclaration(name="batch-cluster", size="m5.large"))
    service.get_compute("batch-cluster")
    assert service.delete_compute("batch-cluster") is not None
    code = write_tree(tmp_path / "code", {"score.py": SCORING_SCRIPT})

    with pytest.raises(Exception, match="being deleted") as refused:
        service.create_deployment(deployment_declaration(code, compute="batch-cluster"))

    assert getattr(refused.value, "field", None) == "compute"
    assert json.dumps(service.get_compute("batch-cluster").provisioning_state) == '"Deleting"'


def test_more_vcpus_than_batchs_32_bit_maxvcpus_are_refused_before_any_batch_call(
    service: BatchEndpointService, batch: StrictBatch
) -> None:
    with pytest.raises(ValidationError, match="exceed AWS Batch's 2147483647 vCPUs") as refused:
        service.create_compute(ComputeDeclaration(name="huge", size="m5.xlarge", max_instances=2**29))
    assert refused.value.field == "max_instances"
    assert batch.calls == [] and service.list_computes() == []
    # What the service refuses, Batch (tests/batch_states.py) refuses too.
    with pytest.raises(ClientError, match="maxvCpus 2147483648 is not a 32-bit integer"):
        batch.create_compute_environment(
            computeEnvironmentName="direct", type="MANAGED", computeResources={"maxvCpus": 2**31}
        )


def test_a_compute_batch_refuses_past_its_quota_leaves_no_record_and_names_why(
    service: BatchEndpointService, batch: StrictBatch
) -> None:
    for n in range(MAX_ENVIRONMENTS):
        batch._client.create_compute_environment(
            computeEnvironmentName=f"other-{n}", type="UNMANAGED", serviceRole=batch.service_linked_role
        )
    with pytest.raises(ConflictError, match="AWS Batch refused compute 'one-too-many': at most 50"):
        service.create_compute(ComputeDeclaration(name="one-too-many", size="m5.large"))
    assert [c.name for c in service.list_computes()] == []
    with pytest.raises(NotFoundError):
        service.get_compute("one-too-many")


def test_two_threads_creating_one_name_make_one_environment(service: BatchEndpointService, batch: StrictBatch) -> None:
    start, outcomes = threading.Barrier(2), []

    def create(size: str) -> None:
        start.wait()
        try:
            service.create_compute(ComputeDeclaration(name="raced", size=size))
            outcomes.append(size)
        except ConflictError:
            outcomes.append("ConflictError")

    workers = [threading.Thread(target=create, args=(size,)) for size in ("m5.large", "m5.xlarge")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    [won] = [outcome for outcome in outcomes if outcome != "ConflictError"]
    assert sorted(outcomes) == sorted([won, "ConflictError"])
    assert [name for call, name in batch.calls if call == "create_compute_environment"] == [f"{STACK}-raced"]
    assert service.get_compute("raced").size == won
