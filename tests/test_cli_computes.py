"""`bep compute` as Azure's `az ml compute` scripts use it: create from compute.yml or flags, list, show, update,
delete; deployments that name a created compute (`azureml:batch-cluster`), and a job on it that runs no more
instances than the compute's max_instances."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batch_endpoints.adapters.local.job_host import InstancePool
from batch_endpoints.compute_sizes import AZURE_SIZES, EC2_SIZES

SCRIPT = "def run(mini_batch):\n    return [len(open(path).read()) for path in mini_batch]\n"
COMPUTE_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
name: batch-cluster
type: amlcompute
size: STANDARD_DS3_v2
min_instances: 0
max_instances: 5
idle_time_before_scale_down: 120
tier: dedicated
location: westeurope
description: for nightly scoring
tags:
  team: vision
"""


def _deployment(workspace: Path, compute: str) -> Path:
    code = workspace / "code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(SCRIPT)
    (workspace / "model.bin").write_bytes(b"\0")
    deployment = workspace / "deployment.yml"
    deployment.write_text(
        f"name: blue\nendpoint_name: shop\nmodel:\n  path: {workspace / 'model.bin'}\n"
        f"code_configuration:\n  code: {code}\n  scoring_script: score.py\ncompute: {compute}\n"
        "resources:\n  instance_count: 4\n"
    )
    return deployment


def test_a_compute_from_azures_yaml_is_listed_shown_updated_and_deleted(bep, tmp_path: Path) -> None:
    (tmp_path / "compute.yml").write_text(COMPUTE_YML)

    created = bep("compute", "create", "--file", tmp_path / "compute.yml", "-o", "json").json()
    listed = bep("compute", "list", "--query", "[].name", "-o", "tsv").out.split()
    updated = bep("compute", "update", "-n", "batch-cluster", "--max-instances", "2", "--set", "min_instances=1")
    shown = bep("compute", "show", "--name", "batch-cluster", "-o", "json").json()

    assert created["size"] == "STANDARD_DS3_v2" and created["kind"] == "cpu"
    assert (created["min_instances"], created["max_instances"], created["tier"]) == (0, 5, "dedicated")
    assert created["tags"] == {"team": "vision"} and created["provisioning_state"] == "Succeeded"
    assert listed == ["cpu-cluster", "gpu-cluster", "batch-cluster"]
    assert updated.code == 0 and (shown["min_instances"], shown["max_instances"]) == (1, 2)
    bep("compute", "delete", "-n", "batch-cluster", "--yes")
    assert bep("compute", "show", "-n", "batch-cluster", ok=False).code == 3
    assert bep("compute", "list", "--query", "[].name", "-o", "tsv").out.split() == ["cpu-cluster", "gpu-cluster"]


def test_a_compute_from_flags_with_a_gpu_size_is_a_gpu_compute(bep) -> None:
    shown = bep(
        "compute", "create", "-n", "gpus", "--type", "amlcompute", "--size", "Standard_NC6s_v3",
        "--min-instances", "0", "--max-instances", "3", "--tier", "low_priority", "-o", "json",
    ).json()  # fmt: skip

    assert (shown["kind"], shown["tier"], shown["max_instances"]) == ("gpu", "low_priority", 3)


def test_a_compute_created_without_a_size_has_azures_default_size(bep) -> None:
    # Azure's walk-throughs create their cluster so: az ml compute create -n batch-cluster --type amlcompute ...
    shown = bep(
        "compute", "create", "-n", "batch-cluster", "--type", "amlcompute", "--min-instances", "0",
        "--max-instances", "5", "-o", "json",
    ).json()  # fmt: skip

    assert (shown["size"], shown["kind"], shown["max_instances"]) == ("Standard_DS3_v2", "cpu", 5)


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--size", "Standard_Banana_v9"], "size"),
        (["--size", "m5.large", "--min-instances", "3", "--max-instances", "2"], "min_instances"),
        (["--size", "m5.large", "--max-instances", "0"], "max_instances"),
        (["--size", "m5.large", "--set", "ssh_public_access_enabled=true"], "ssh_public_access_enabled"),
        (["--size", "m5.large", "--set", "tier=premium"], "tier"),
        (["--size", "m5.large", "--idle-time-before-scale-down", "-1"], "idle_time_before_scale_down"),
        (["--size", "", "--max-instances", "2"], "size"),
    ],
)
def test_a_bad_compute_is_refused_naming_the_field_and_nothing_is_created(bep, flags: list[str], field: str) -> None:
    refused = bep("compute", "create", "-n", "bad-cluster", *flags, ok=False)

    assert refused.code == 2 and field in refused.err
    assert "bad-cluster" not in bep("compute", "list", "-o", "tsv").out


def test_the_stacks_computes_cannot_be_deleted_or_updated_and_names_are_unique(bep) -> None:
    bep("compute", "create", "-n", "batch-cluster", "--size", "m5.large")

    assert "cpu-cluster" in bep("compute", "delete", "-n", "cpu-cluster", "--yes", ok=False).err
    assert bep("compute", "update", "-n", "gpu-cluster", "--max-instances", "2", ok=False).code == 2
    assert bep("compute", "create", "-n", "cpu-cluster", "--size", "m5.large", ok=False).code == 4
    assert bep("compute", "create", "-n", "batch-cluster", "--size", "m5.large", ok=False).code == 4
    size_change = bep("compute", "update", "-n", "batch-cluster", "--set", "size=m5.xlarge", ok=False)
    assert size_change.code == 2 and "size" in size_change.err


def test_a_deployment_names_a_created_compute_as_azure_writes_it_and_keeps_it_from_deletion(
    bep, tmp_path: Path
) -> None:
    bep("endpoint", "create", "--name", "shop")
    unknown = bep("deployment", "create", "--file", _deployment(tmp_path, "azureml:batch-cluster"), ok=False)
    assert unknown.code == 2 and "compute" in unknown.err and "cpu-cluster, gpu-cluster" in unknown.err

    bep("compute", "create", "-n", "batch-cluster", "--size", "Standard_DS3_v2", "--max-instances", "2")
    deployed = bep("deployment", "create", "--file", _deployment(tmp_path, "azureml:batch-cluster"), "-o", "json")
    in_use = bep("compute", "delete", "-n", "batch-cluster", "--yes", ok=False)

    assert deployed.json()["compute"] == "batch-cluster"
    assert in_use.code == 4 and "shop/blue" in in_use.err
    bep("deployment", "delete", "--endpoint-name", "shop", "--name", "blue", "--yes")
    bep("compute", "delete", "-n", "batch-cluster", "--yes")


def test_a_job_on_a_created_compute_runs_at_most_its_max_instances(bep, tmp_path: Path) -> None:
    bep("endpoint", "create", "--name", "shop")
    bep("compute", "create", "-n", "batch-cluster", "--size", "Standard_DS3_v2", "--max-instances", "2")
    bep("deployment", "create", "--file", _deployment(tmp_path, "batch-cluster"), "--set-default")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(6):
        (inputs / f"{n}.txt").write_text("x" * n)

    job_id = bep("endpoint", "invoke", "-n", "shop", "--input", inputs, "--mini-batch-size", "1", "--query", "name",
                 "-o", "tsv").out.strip()  # fmt: skip
    bep("job", "stream", "--name", job_id)
    job = bep.service.get_job(job_id)

    assert job.settings.instance_count == 4 and job.status == "Completed"
    assert InstancePool(bep.service.backend, job).instance_count == 2


def test_the_size_table_in_the_cli_guide_is_the_one_bep_uses() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    rows = re.findall(r"^\| `(Standard_\w+)` \| `([\w.]+)` \| (\d+) \| (\d+) GiB \| (\d*) \|$", guide, re.MULTILINE)

    assert {azure: ec2 for azure, ec2, *_ in rows} == AZURE_SIZES
    for _, ec2, vcpus, memory_gib, gpus in rows:
        size = EC2_SIZES[ec2]
        assert (size.vcpus, size.memory_mib // 1024, size.gpus) == (int(vcpus), int(memory_gib), int(gpus or 0))
