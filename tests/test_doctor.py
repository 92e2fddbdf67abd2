"""`bep doctor --target aws`: each check against an account in moto (STS, CloudFormation, SSM, Batch, and Service
Quotas with EC2's vCPU quotas filled in, which moto lacks), Docker through a stand-in `docker` command, and the
line and exit code the CLI gives for each failure."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.servicequotas.exceptions import NoSuchResource
from moto.servicequotas.models import ServiceQuotasBackend
from moto.servicequotas.responses import ServiceQuotasResponse

from batch_endpoints.adapters.aws.doctor import REQUIRED_OUTPUTS
from batch_endpoints.doctor import (
    BOOTSTRAP_STACK,
    BOOTSTRAP_VERSION_PARAMETER,
    QUOTAS,
    REQUIRED_BOOTSTRAP_VERSION,
    quota_for,
)

REGION = "eu-west-1"
STACK = "BatchEndpoints"
G_ON_DEMAND, STANDARD_ON_DEMAND = QUOTAS[(False, "gpu")], QUOTAS[(False, "standard")]
G_SPOT, STANDARD_SPOT = QUOTAS[(True, "gpu")], QUOTAS[(True, "standard")]
# What a new account gets until it asks for more (Service Quotas' AWS default values).
DEFAULT_QUOTAS = {STANDARD_ON_DEMAND.code: 5.0, G_ON_DEMAND.code: 0.0, STANDARD_SPOT.code: 5.0, G_SPOT.code: 0.0}
DAEMON_DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


# ---------------------------------------------------------------- which quota an instance type counts against
@pytest.mark.parametrize(
    ("instance_type", "spot", "quota"),
    [
        ("g5.xlarge", False, G_ON_DEMAND),
        ("g6", False, G_ON_DEMAND),
        ("vt1.3xlarge", False, G_ON_DEMAND),
        ("c6i", False, STANDARD_ON_DEMAND),
        ("m7i.2xlarge", False, STANDARD_ON_DEMAND),
        ("optimal", False, STANDARD_ON_DEMAND),
        ("g5.2xlarge", True, G_SPOT),
        ("c6i", True, STANDARD_SPOT),
        ("p4d.24xlarge", False, None),
        ("inf2.xlarge", False, None),
    ],
)
def test_instance_families_map_to_their_vcpu_quota(instance_type, spot, quota):
    assert quota_for(instance_type, spot=spot) == quota


def test_the_required_bootstrap_version_is_the_one_the_synthesized_template_checks():
    from tests.infra_fixtures import synthesize

    template = synthesize().template
    assertion = template["Rules"]["CheckBootstrapVersion"]["Assertions"][0]["Assert"]
    refused, _ = assertion["Fn::Not"][0]["Fn::Contains"]

    assert [str(v) for v in range(1, REQUIRED_BOOTSTRAP_VERSION)] == refused
    assert template["Parameters"]["BootstrapVersion"]["Default"] == BOOTSTRAP_VERSION_PARAMETER


def test_the_stack_gives_the_outputs_doctor_reads_and_names_its_queues_after_the_computes():
    from tests.infra_fixtures import synthesize

    synthesis = synthesize()
    queues = {props["JobQueueName"] for props in synthesis.resources("AWS::Batch::JobQueue").values()}

    assert set(REQUIRED_OUTPUTS) <= set(synthesis.template["Outputs"])
    assert queues == {f"{STACK}-cpu-cluster", f"{STACK}-gpu-cluster"}


# ---------------------------------------------------------------- an account in moto
@pytest.fixture(name="quotas")
def quotas_fixture(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """EC2's vCPU quotas as applied in the account, code -> vCPUs; a quota not in it has only AWS's default, and
    GetServiceQuota answers NoSuchResourceException for it, as for a quota never changed."""
    applied: dict[str, float] = {}

    def get_service_quota(backend: ServiceQuotasBackend, service_code: str, quota_code: str) -> dict[str, Any]:
        if service_code != "ec2" or quota_code not in applied:
            raise NoSuchResource
        return _quota(quota_code, applied[quota_code])

    def get_aws_default_service_quota(response: ServiceQuotasResponse) -> str:
        params = json.loads(response.body)
        if params.get("ServiceCode") != "ec2" or params.get("QuotaCode") not in DEFAULT_QUOTAS:
            raise NoSuchResource
        return json.dumps({"Quota": _quota(params["QuotaCode"], DEFAULT_QUOTAS[params["QuotaCode"]])})

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", get_service_quota)
    monkeypatch.setattr(
        ServiceQuotasResponse, "get_aws_default_service_quota", get_aws_default_service_quota, raising=False
    )
    return applied


def _quota(code: str, value: float) -> dict[str, Any]:
    name = next(quota.name for quota in QUOTAS.values() if quota.code == code)
    return {"ServiceCode": "ec2", "QuotaCode": code, "QuotaName": name, "Value": value, "Unit": "None"}


@pytest.fixture(name="docker")
def docker_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that is the whole PATH, with a `docker` whose daemon answers: the only docker there is."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    install_docker(folder, "echo 27.3.1")
    return folder


def install_docker(folder: Path, script: str) -> None:
    command = folder / "docker"
    command.write_text(f"#!/bin/sh\n{script}\n")
    command.chmod(command.stat().st_mode | stat.S_IXUSR)


@pytest.fixture(name="account")
def account_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, quotas, docker) -> Any:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "BEP_TARGET", "BEP_STACK", "BEP_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws(config={"batch": {"use_docker": False}}):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield Account(quotas)


class Account:
    """Builds what a deployment leaves in an account: the stack, its compute environments, the bootstrap stack."""

    def __init__(self, quotas: dict[str, float]) -> None:
        self.quotas = quotas
        self.cloudformation = boto3.client("cloudformation", region_name=REGION)
        self.batch = boto3.client("batch", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        self.group = ec2.create_security_group(GroupName="batch", Description="Batch", VpcId=vpc)["GroupId"]
        iam = boto3.client("iam", region_name=REGION)
        self.service_role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.instance_profile = iam.create_instance_profile(InstanceProfileName="ecs-instance")["InstanceProfile"][
            "Arn"
        ]

    def deploy(
        self,
        *,
        cpu: tuple[list[str], int] = (["c6i", "m6i"], 256),
        gpu: tuple[list[str], int] = (["g5.xlarge", "g6.xlarge"], 32),
        spot: bool = False,
        outputs: tuple[str, ...] = REQUIRED_OUTPUTS,
    ) -> None:
        """The stack as infra/stack.py deploys it: a managed compute environment and a queue per compute."""
        values = {key: f"value-of-{key}" for key in outputs}
        values["ApiUrl"] = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
        for kind, (instance_types, max_vcpus) in (("Cpu", cpu), ("Gpu", gpu)):
            environment = self.batch.create_compute_environment(
                computeEnvironmentName=f"{kind}ClusterEnvironment",
                type="MANAGED",
                serviceRole=self.service_role,
                computeResources={
                    "type": "SPOT" if spot else "EC2",
                    "minvCpus": 0,
                    "maxvCpus": max_vcpus,
                    "instanceTypes": instance_types,
                    "subnets": [self.subnet],
                    "securityGroupIds": [self.group],
                    "instanceRole": self.instance_profile,
                },
            )["computeEnvironmentArn"]
            queue = self.batch.create_job_queue(
                jobQueueName=f"{STACK}-{kind.lower()}-cluster",
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
            )["jobQueueArn"]
            if f"{kind}JobQueueArn" in values:
                values[f"{kind}JobQueueArn"] = queue
        self._stack(STACK, values)

    def bootstrap(self, version: int | None, *, parameter: bool = True) -> None:
        outputs = {} if version is None else {"BootstrapVersion": str(version)}
        self._stack(BOOTSTRAP_STACK, outputs)
        if parameter and version is not None:
            ssm = boto3.client("ssm", region_name=REGION)
            ssm.put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value=str(version), Type="String")

    def ready(self) -> None:
        """Deployed, bootstrapped, with quotas covering both computes."""
        self.deploy()
        self.bootstrap(REQUIRED_BOOTSTRAP_VERSION + 15)
        self.quotas.update({STANDARD_ON_DEMAND.code: 256.0, G_ON_DEMAND.code: 32.0})

    def _stack(self, name: str, outputs: dict[str, str]) -> None:
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        self.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def doctor(bep, *flags: str, ok: bool = False):
    result = bep("--target", "aws", "--region", REGION, "doctor", *flags, ok=ok)
    return result, {line.split(":")[0]: line for line in result.out.splitlines()}


def status(lines: dict[str, str], check: str) -> str:
    return next(line.split()[0] for key, line in lines.items() if key.split(None, 1)[1] == check)


# ---------------------------------------------------------------- the CLI's lines and exit codes
def test_a_ready_account_passes_every_check(bep, account):
    account.ready()

    result, lines = doctor(bep, ok=True)

    assert result.code == 0
    assert [line.split()[0] for line in result.out.splitlines()] == ["ok"] * 6
    assert "account 123456789012" in lines["ok      credentials"]
    assert "(CREATE_COMPLETE): API https://abc123." in lines["ok      stack"]
    assert f"version {REQUIRED_BOOTSTRAP_VERSION + 15}" in lines["ok      bootstrap"]
    assert f"{STANDARD_ON_DEMAND.code}) is 256 vCPUs in {REGION}" in lines["ok      quota for cpu-cluster"]
    assert f"{G_ON_DEMAND.code}) is 32 vCPUs" in lines["ok      quota for gpu-cluster"]
    assert "Docker daemon 27.3.1 answers" in lines["ok      docker"]


def test_no_credentials_is_a_problem_and_nothing_else_is_asked_of_aws(bep, account, monkeypatch):
    account.ready()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result, lines = doctor(bep)

    assert result.code == 1 and "some checks failed" in result.err
    assert "no AWS credentials found" in lines["problem credentials"]
    assert "--profile" in lines["problem credentials"]
    assert set(lines) == {"problem credentials", "ok      docker"}


def test_no_region_is_a_problem_naming_how_to_give_one(bep, account):

    result = bep("--target", "aws", "doctor", ok=False)

    assert result.code == 1
    assert result.out.startswith("problem credentials: no AWS region -> pass --region, set AWS_REGION")


def test_a_missing_stack_is_a_problem_and_quotas_are_not_compared(bep, account):
    account.bootstrap(REQUIRED_BOOTSTRAP_VERSION)

    result, lines = doctor(bep)

    assert result.code == 1
    assert f"stack '{STACK}' in {REGION} does not exist -> deploy it" in lines["problem stack"]
    # Before a deploy, the quotas' values: AWS's defaults here (a new account's 0 G-instance vCPUs among them).
    assert "Running On-Demand G and VT instances 0" in lines["note    quotas"]
    assert "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances 5" in lines["note    quotas"]


def test_before_the_first_deploy_a_missing_stack_is_expected_but_docker_is_required(bep, account, docker):
    account.bootstrap(REQUIRED_BOOTSTRAP_VERSION)

    ready, lines = doctor(bep, "--deploying", ok=True)
    (docker / "docker").unlink()
    without_docker, missing = doctor(bep, "--deploying")

    assert ready.code == 0 and "is not deployed yet -> npx cdk deploy creates it" in lines["note    stack"]
    assert without_docker.code == 1
    assert "no docker command on PATH" in missing["problem docker"]


def test_a_stack_without_the_outputs_is_a_problem_naming_them(bep, account):
    account.ready()
    account.cloudformation.delete_stack(StackName=STACK)
    account._stack(STACK, {"ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"})

    result, lines = doctor(bep)

    assert result.code == 1
    assert "has no output DataBucketName, RecordTableName, StateMachineArn" in lines["problem stack"]


@pytest.mark.parametrize("parameter", [True, False], ids=["ssm-parameter", "stack-output"])
def test_an_old_bootstrap_stack_is_a_problem(bep, account, parameter):
    account.deploy()
    account.bootstrap(REQUIRED_BOOTSTRAP_VERSION - 1, parameter=parameter)
    account.quotas.update({STANDARD_ON_DEMAND.code: 256.0, G_ON_DEMAND.code: 32.0})

    result, lines = doctor(bep)

    assert result.code == 1
    line = lines["problem bootstrap"]
    assert f"is version {REQUIRED_BOOTSTRAP_VERSION - 1}; this stack needs {REQUIRED_BOOTSTRAP_VERSION}" in line
    assert f"npx cdk bootstrap aws://ACCOUNT/{REGION}" in line


def test_no_bootstrap_stack_is_a_problem(bep, account):
    account.deploy()

    result, lines = doctor(bep)

    assert result.code == 1 and f"no CDK bootstrap stack ({BOOTSTRAP_STACK})" in lines["problem bootstrap"]


def test_a_g_instance_quota_of_0_means_gpu_jobs_never_start(bep, account):
    account.ready()
    account.quotas.pop(G_ON_DEMAND.code)  # never changed: the default, 0

    result, lines = doctor(bep)

    assert result.code == 1
    line = lines["problem quota for gpu-cluster"]
    assert f"({G_ON_DEMAND.code}) is 0 vCPUs in {REGION}: no instance starts, jobs wait in RUNNABLE" in line
    assert f"--quota-code {G_ON_DEMAND.code} --desired-value 32" in line
    assert status(lines, "quota for cpu-cluster") == "ok"


def test_a_quota_below_the_computes_ceiling_is_a_problem(bep, account):
    account.ready()
    account.quotas[STANDARD_ON_DEMAND.code] = 64.0

    result, lines = doctor(bep)

    assert result.code == 1
    line = lines["problem quota for cpu-cluster"]
    assert "is 64 vCPUs" in line and "below the 256 vCPUs cpu-cluster may scale to" in line
    assert "--desired-value 256 (or lower the compute's max vCPUs to 64)" in line


def test_computes_of_the_same_family_are_compared_with_the_quota_together(bep, account):
    account.deploy(gpu=(["m6i.xlarge"], 64))
    account.bootstrap(REQUIRED_BOOTSTRAP_VERSION)
    account.quotas[STANDARD_ON_DEMAND.code] = 300.0

    result, lines = doctor(bep)

    assert result.code == 1
    assert (
        "below the 320 vCPUs cpu-cluster and gpu-cluster may scale to"
        in lines["problem quota for cpu-cluster and gpu-cluster"]
    )


def test_spot_computes_are_compared_with_the_spot_quotas(bep, account):
    account.deploy(spot=True)
    account.bootstrap(REQUIRED_BOOTSTRAP_VERSION)
    account.quotas.update({STANDARD_SPOT.code: 256.0, G_SPOT.code: 16.0, G_ON_DEMAND.code: 1000.0})

    result, lines = doctor(bep)

    assert result.code == 1
    assert f"({STANDARD_SPOT.code}) is 256 vCPUs" in lines["ok      quota for cpu-cluster"]
    assert f"({G_SPOT.code}) is 16 vCPUs" in lines["problem quota for gpu-cluster"]


def test_an_instance_family_without_a_known_quota_is_a_note(bep, account):
    account.deploy(gpu=(["p4d.24xlarge"], 96))
    account.bootstrap(REQUIRED_BOOTSTRAP_VERSION)
    account.quotas[STANDARD_ON_DEMAND.code] = 256.0

    result, lines = doctor(bep, ok=True)

    assert result.code == 0
    assert "no known vCPU quota for instance type p4d.24xlarge" in lines["note    quota for gpu-cluster"]


@pytest.mark.parametrize(
    ("script", "said"),
    [(None, "no docker command on PATH"), (f"echo '{DAEMON_DOWN}' >&2; exit 1", DAEMON_DOWN)],
    ids=["no-docker", "daemon-down"],
)
def test_without_docker_is_a_note_unless_deploying(bep, account, docker, script, said):
    account.ready()
    if script is None:
        (docker / "docker").unlink()
    else:
        install_docker(docker, script)

    checking, lines = doctor(bep, ok=True)
    deploying, deploying_lines = doctor(bep, "--deploying")

    assert checking.code == 0 and said in lines["note    docker"]
    assert "(only deploys need it)" in lines["note    docker"]
    assert deploying.code == 1 and said in deploying_lines["problem docker"]


def test_doctor_checks_aws_only(bep, account):
    result = bep("doctor", ok=False)

    assert result.code == 2 and "--target" in result.err and "add --target aws" in result.err


@pytest.mark.parametrize(("option", "value"), [("--stack", "../1-stack"), ("--profile", "my profile")])
def test_a_bad_stack_or_profile_is_refused_before_aws_is_asked(bep, account, option, value):
    result = bep("--target", "aws", "--region", REGION, "doctor", option, value, ok=False)

    assert result.code == 2 and option in result.err and result.out == ""
