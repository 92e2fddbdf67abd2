"""infra/compute.py: Batch compute that scales to zero on a VPC that costs nothing idle, the scoring images, and
the computes as the API Lambda's registry reads them (BEP_COMPUTES)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from batch_endpoints.adapters.aws.computes import BatchComputeRegistry
from tests.infra_fixtures import (
    ACCOUNT,
    OPTIONS,
    REGION,
    Synthesis,
    listed,
    readable,
    resolve,
    role_statements,
    synthesize,
)


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


def environments(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    """Compute environments by their image type."""
    return {
        env["ComputeResources"]["Ec2Configuration"][0]["ImageType"]: env
        for env in synthesis.resources("AWS::Batch::ComputeEnvironment").values()
    }


def test_a_cpu_and_a_gpu_compute_environment_scale_from_zero(synthesis: Synthesis) -> None:
    found = environments(synthesis)
    assert set(found) == {"ECS_AL2023", "ECS_AL2023_NVIDIA"}
    for environment in found.values():
        resources = environment["ComputeResources"]
        assert (environment["Type"], resources["Type"], resources["MinvCpus"]) == ("managed", "EC2", 0)
        assert resources["AllocationStrategy"] == "BEST_FIT_PROGRESSIVE"
    assert found["ECS_AL2023"]["ComputeResources"]["InstanceTypes"] == ["c6i", "m6i"]
    assert found["ECS_AL2023"]["ComputeResources"]["MaxvCpus"] == 256


def test_the_gpu_environment_runs_gpu_instances_on_the_nvidia_ami(synthesis: Synthesis) -> None:
    gpu = environments(synthesis)["ECS_AL2023_NVIDIA"]["ComputeResources"]
    assert gpu["InstanceTypes"] and all(t.split(".")[0] in {"g5", "g6"} for t in gpu["InstanceTypes"])
    queues = {q["JobQueueName"] for q in synthesis.resources("AWS::Batch::JobQueue").values()}
    assert queues == {"BatchEndpoints-cpu-cluster", "BatchEndpoints-gpu-cluster"}


def test_instances_require_imdsv2_out_of_containers_reach_and_encrypt_their_disks(synthesis: Synthesis) -> None:
    templates = synthesis.resources("AWS::EC2::LaunchTemplate").values()
    assert len(templates) == 2
    for template in templates:
        data = template["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        # A bridge-mode container is a second hop: with 1 its code cannot take the instance role's credentials.
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        (device,) = data["BlockDeviceMappings"]
        assert device["Ebs"]["Encrypted"] is True


def test_a_job_that_waits_for_capacity_is_canceled_after_the_runnable_timeout(synthesis: Synthesis) -> None:
    queues = synthesis.resources("AWS::Batch::JobQueue").values()
    assert len(queues) == 2
    for queue in queues:
        actions = queue["JobStateTimeLimitActions"]
        assert {a["Reason"] for a in actions} == {
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        }
        assert all((a["State"], a["Action"], a["MaxTimeSeconds"]) == ("RUNNABLE", "CANCEL", 1800) for a in actions)
    queues = synthesize(runnable_timeout_minutes="90").resources("AWS::Batch::JobQueue").values()
    assert {a["MaxTimeSeconds"] for q in queues for a in q["JobStateTimeLimitActions"]} == {5400}


def test_the_vpc_spans_three_availability_zones_or_the_number_a_deployer_sets(synthesis: Synthesis) -> None:
    def zones(synthesis: Synthesis) -> list[Any]:
        return sorted(s["AvailabilityZone"]["Fn::Select"][0] for s in synthesis.resources("AWS::EC2::Subnet").values())

    assert zones(synthesis) == [0, 1, 2]
    assert zones(synthesize(availability_zones="4")) == [0, 1, 2, 3]


def test_the_vpc_has_no_nat_gateway_and_batch_runs_in_public_subnets(synthesis: Synthesis) -> None:
    assert not synthesis.resources("AWS::EC2::NatGateway")
    subnets = synthesis.resources("AWS::EC2::Subnet")
    assert all(subnet["MapPublicIpOnLaunch"] for subnet in subnets.values())
    for environment in environments(synthesis).values():
        assert {s["Ref"] for s in environment["ComputeResources"]["Subnets"]} <= set(subnets)
    endpoints = synthesis.resources("AWS::EC2::VPCEndpoint").values()
    assert {e["VpcEndpointType"] for e in endpoints} == {"Gateway"}
    assert len(synthesis.resources("AWS::EC2::FlowLog")) == 1


def test_context_asks_for_spot_nat_and_other_instance_types() -> None:
    synthesis = synthesize(**OPTIONS)
    found = environments(synthesis)
    for environment in found.values():
        assert environment["ComputeResources"]["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
        assert environment["ComputeResources"]["Type"] == "SPOT"
    cpu = found["ECS_AL2023"]["ComputeResources"]
    assert (sorted(cpu["InstanceTypes"]), cpu["MaxvCpus"]) == (["c7i", "m7i.2xlarge"], 64)
    assert len(synthesis.resources("AWS::EC2::NatGateway")) == 1
    private = {
        logical_id for logical_id, subnet in synthesis.resources("AWS::EC2::Subnet").items()
        if not subnet["MapPublicIpOnLaunch"]
    }  # fmt: skip
    assert {s["Ref"] for s in cpu["Subnets"]} == private


def test_the_scoring_images_are_built_from_the_batch_container_dockerfiles(synthesis: Synthesis) -> None:
    assets = json.loads((synthesis.outdir / "BatchEndpoints.assets.json").read_text())["dockerImages"]
    files = sorted(asset["source"]["dockerFile"] for asset in assets.values())
    assert files == ["batch_container/Dockerfile", "batch_container/Dockerfile.gpu"]
    for asset in assets.values():
        assert asset["source"]["platform"] == "linux/amd64"
        staged = synthesis.outdir / asset["source"]["directory"]
        # The build context holds the project and nothing else of the repository (.dockerignore says so to Docker).
        assert {p.name for p in staged.iterdir()} == {
            ".dockerignore",
            "README.md",
            "batch_container",
            "batch_endpoints",
            "pyproject.toml",
            "requirements.lock",
        }


def test_the_api_lambda_gets_the_computes_its_registry_needs(synthesis: Synthesis) -> None:
    (api,) = (
        f for f in synthesis.resources("AWS::Lambda::Function").values() if f["Handler"].startswith("lambdas.api")
    )
    variables = api["Environment"]["Variables"]
    references = {
        f"{logical_id}.JobQueueArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{props['JobQueueName']}"
        for logical_id, props in synthesis.resources("AWS::Batch::JobQueue").items()
    }
    computes = json.loads(resolve(variables["BEP_COMPUTES"], references))
    registry = BatchComputeRegistry(computes, {"cpu": "cpu-image", "gpu": "gpu-image"}, "role", "logs")
    by_name = {compute.name: compute for compute in registry.list()}
    assert set(by_name) == {"cpu-cluster", "gpu-cluster"}
    assert by_name["gpu-cluster"].kind == "gpu" and by_name["gpu-cluster"].details["gpus"] == 1
    assert registry.job_queue("cpu-cluster") == f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/BatchEndpoints-cpu-cluster"
    images = variables["BEP_IMAGES"]["Fn::Join"][1]
    assert sum("container-assets" in json.dumps(part) for part in images) == 2


def test_the_job_role_reads_and_writes_the_bucket_and_only_counts_in_the_table(synthesis: Synthesis) -> None:
    statements = role_statements(synthesis, "ComputeJobRole")
    actions = {action for s in statements for action in listed(s["Action"])}
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }


def test_both_images_install_the_same_extras() -> None:
    from tests.infra_fixtures import REPOSITORY_ROOT

    def extras(dockerfile: str) -> set[str]:
        text = (REPOSITORY_ROOT / "batch_container" / dockerfile).read_text()
        return set(re.findall(r"--extras ([a-z,]+)", text))

    assert extras("Dockerfile") == extras("Dockerfile.gpu") == {"runner,torch,mlflow"}


def test_both_images_run_the_python_of_development() -> None:
    from tests.infra_fixtures import REPOSITORY_ROOT

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        text = (REPOSITORY_ROOT / "batch_container" / dockerfile).read_text()
        assert re.findall(r"^FROM (\S+)", text, re.M) == [f"python:{version}-slim"], dockerfile


def test_the_api_lambda_gets_what_created_computes_are_built_from(synthesis: Synthesis) -> None:
    (api,) = (
        f for f in synthesis.resources("AWS::Lambda::Function").values() if f["Handler"].startswith("lambdas.api")
    )
    template = json.loads(readable(api["Environment"]["Variables"]["BEP_COMPUTE_TEMPLATE"]))
    launch_templates = set(synthesis.resources("AWS::EC2::LaunchTemplate"))
    (profile,) = _created_computes_profile(synthesis)
    public_subnets = {
        logical_id for logical_id, subnet in synthesis.resources("AWS::EC2::Subnet").items()
        if subnet["MapPublicIpOnLaunch"]
    }  # fmt: skip

    assert template["prefix"] == "BatchEndpoints" and template["runnable_timeout_s"] == 30 * 60
    assert {_ref(template["launch_templates"][kind]) for kind in ("cpu", "gpu")} == launch_templates
    assert {_ref(subnet) for subnet in template["subnets"]} == public_subnets
    assert template["instance_role"] == f"<{profile}.Arn>"
    assert len(template["security_groups"]) == 1 and "service_role" not in template


def _created_computes_profile(synthesis: Synthesis) -> list[str]:
    return [name for name in synthesis.resources("AWS::IAM::InstanceProfile") if "CreatedComputes" in name]


def _ref(value: str) -> str:
    """The logical id a readable reference names: <Id> or <Id.Attribute>."""
    return value.strip("<>").split(".")[0]


def test_the_api_creates_computes_only_under_the_stacks_names_and_passes_only_their_roles(
    synthesis: Synthesis,
) -> None:
    statements = role_statements(synthesis, "ApiHandlerServiceRole")
    creating = [s for s in statements if "batch:CreateComputeEnvironment" in listed(s["Action"])]
    passing = [s for s in statements if "iam:PassRole" in listed(s["Action"])]
    passed = {readable(resource) for s in passing for resource in listed(s["Resource"])}
    (logical_id,) = _created_computes_profile(synthesis)
    profile = synthesis.resources("AWS::IAM::InstanceProfile")[logical_id]

    (create,) = creating
    assert {readable(r) for r in listed(create["Resource"])} == {
        f"arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:{kind}/BatchEndpoints-*"
        for kind in ("compute-environment", "job-queue")
    }
    assert set(listed(create["Action"])) >= {"batch:DeleteComputeEnvironment", "batch:DeleteJobQueue"}
    assert f"<{profile['Roles'][0]['Ref']}.Arn>" in passed
    assert not any("*" in resource for resource in passed)


def test_the_workflow_submits_shards_to_created_computes_queues(synthesis: Synthesis) -> None:
    statements = role_statements(synthesis, "WorkflowStateMachineRole")
    (submit,) = [s for s in statements if "batch:SubmitJob" in listed(s["Action"])]

    assert "arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job-queue/BatchEndpoints-*" in {
        readable(r) for r in listed(submit["Resource"])
    }
