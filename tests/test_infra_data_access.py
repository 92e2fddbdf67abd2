"""What the stack lets jobs touch, asserted on the synthesized template: the Batch job role's reach, the allow-lists
the API enforces, and the caller policy simulation (context simulate_caller_policy)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest

from batch_endpoints.adapters.aws import backend, caller_policy
from tests.infra_fixtures import OPTIONS, Synthesis, listed, readable, role_statements, synthesize

BUCKET = "<StorageData6BB23F4E.Arn>"
RUNNER_READS = {
    f"{BUCKET}/{prefix}*" for prefix in ("models/", "code/", "uploads/", "data/", "outputs/", "azureml/", "jobs/")
}
DATA_BUCKETS = {"arn:<AWS::Partition>:s3:::user-images", "arn:<AWS::Partition>:s3:::user-outputs"}
S3_WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


@pytest.fixture(scope="module", params=["defaults", "every setting"])
def synthesis(request: pytest.FixtureRequest) -> Synthesis:
    return synthesize() if request.param == "defaults" else synthesize(**OPTIONS)


def grants(synthesis: Synthesis, role_prefix: str) -> dict[str, set[str]]:
    """{action: the resources it is allowed on} for a role, every statement an Allow without conditions."""
    found: dict[str, set[str]] = {}
    for statement in role_statements(synthesis, role_prefix):
        assert statement["Effect"] == "Allow" and "Condition" not in statement and "NotResource" not in statement
        for action in listed(statement["Action"]):
            found.setdefault(action, set()).update(readable(r) for r in listed(statement["Resource"]))
    return found


def _data_buckets(synthesis: Synthesis) -> set[str]:
    return DATA_BUCKETS if "user-images" in str(synthesis.template) else set()


def test_the_job_role_reads_only_models_code_inputs_and_job_files(synthesis: Synthesis) -> None:
    job_role = grants(synthesis, "ComputeJobRole")
    assert job_role["s3:GetObject"] == RUNNER_READS | {f"{bucket}/*" for bucket in _data_buckets(synthesis)}
    assert job_role["s3:ListBucket"] == {BUCKET} | _data_buckets(synthesis)


def test_the_job_role_writes_only_its_jobs_files_and_outputs(synthesis: Synthesis) -> None:
    # The runner writes part files and results under jobs/<job id>/, and the scoring script's own files
    # (AZUREML_BI_OUTPUT_PATH) into the job's output folder; the finalize step writes the output file. A pipeline's
    # command step writes its outputs under azureml/<job id>/.
    job_role = grants(synthesis, "ComputeJobRole")
    data_buckets = {f"{bucket}/*" for bucket in _data_buckets(synthesis)}
    for action in S3_WRITES:
        assert job_role[action] == {f"{BUCKET}/jobs/*", f"{BUCKET}/outputs/*", f"{BUCKET}/azureml/*"} | data_buckets, (
            action
        )


def test_the_job_role_has_no_wildcard_actions_and_only_counts_in_the_stacks_table(synthesis: Synthesis) -> None:
    job_role = grants(synthesis, "ComputeJobRole")
    assert set(job_role) == {"s3:ListBucket", "s3:GetObject", *S3_WRITES, "dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert not any("*" in action for action in job_role)
    assert not any(resource == "*" for resources in job_role.values() for resource in resources)
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert all(r.startswith("<StorageRecords0990588D.Arn>") for r in job_role[action]), job_role[action]


def test_every_input_and_output_the_api_allows_is_within_the_roles_reach(synthesis: Synthesis) -> None:
    """An input the API accepts is one a runner can read; an output it accepts, one finalize and a runner (the
    scoring script's own files) can write."""
    variables = _api_function(synthesis)["Environment"]["Variables"]
    inputs = readable(variables["BEP_ALLOWED_INPUTS"]).split(",")
    outputs = readable(variables["BEP_ALLOWED_OUTPUTS"]).split(",")
    own = "s3://<StorageData6BB23F4E>/"
    named = [f"s3://{arn.rpartition(':')[2]}" for arn in sorted(_data_buckets(synthesis))]
    assert inputs == [f"{own}uploads/", f"{own}data/", f"{own}outputs/", f"{own}azureml/", *named]
    assert outputs == [f"{own}outputs/", f"{own}azureml/", *named]
    runner_reads = grants(synthesis, "ComputeJobRole")["s3:GetObject"]
    finalize_writes = grants(synthesis, "WorkflowFinalizeServiceRole")["s3:PutObject"]
    runner_writes = grants(synthesis, "ComputeJobRole")["s3:PutObject"]
    for prefix in inputs:
        assert _covers(runner_reads, prefix), prefix
    for prefix in outputs:
        assert _covers(finalize_writes, prefix), prefix
        assert _covers(runner_writes, prefix), prefix


def test_caller_policy_simulation_is_off_by_default() -> None:
    synthesis = synthesize()
    assert caller_policy.SETTING not in _api_function(synthesis)["Environment"]["Variables"]
    assert "iam:SimulatePrincipalPolicy" not in str(synthesis.template)


def test_simulate_caller_policy_switches_the_check_on_and_grants_only_the_simulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synthesis = synthesize(**OPTIONS)  # simulate_caller_policy=true among them
    value = _api_function(synthesis)["Environment"]["Variables"][caller_policy.SETTING]
    monkeypatch.setenv(caller_policy.SETTING, value)
    assert isinstance(backend._caller_permissions(), caller_policy.IamPolicySimulation)
    api = grants(synthesis, "ApiHandlerServiceRole")
    assert api["iam:SimulatePrincipalPolicy"] == {
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
        "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
    }
    assert sorted(a for a in api if a.startswith("iam:")) == ["iam:PassRole", "iam:SimulatePrincipalPolicy"]
    # Nobody else may ask IAM about principals.
    others = [s for s in role_statements(synthesis, "") if "iam:SimulatePrincipalPolicy" in listed(s["Action"])]
    assert len(others) == 1
    assert synthesis.violations() == []


def _api_function(synthesis: Synthesis) -> dict[str, Any]:
    (api,) = (
        f for f in synthesis.resources("AWS::Lambda::Function").values() if f["Handler"].startswith("lambdas.api")
    )
    return api


def _covers(object_patterns: set[str], prefix: str) -> bool:
    """Whether an object under the storage prefix (s3://<bucket ref>/key/ or s3://name) matches a granted ARN."""
    location = prefix.removeprefix("s3://").rstrip("/") + "/some-file"
    if location.startswith("<StorageData6BB23F4E>"):
        arn = BUCKET + location.removeprefix("<StorageData6BB23F4E>")
    else:
        arn = f"arn:<AWS::Partition>:s3:::{location}"
    return any(fnmatchcase(arn, pattern) for pattern in object_patterns)
