"""The confused deputy: a job reads and writes only what its caller may, checked before the job exists.

Allow-lists of storage prefixes (batch_endpoints/data_access.py) on both backends, and on AWS the caller's own
IAM rights through iam:SimulatePrincipalPolicy (adapters/aws/caller_policy.py). moto does not implement
SimulatePrincipalPolicy, so the simulation is tested against botocore's Stubber with IAM's documented answers.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from batch_endpoints.adapters.aws.caller_policy import IamPolicySimulation, principal_arn
from batch_endpoints.data_access import DataAccess, from_environment, within
from batch_endpoints.errors import ForbiddenError
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
    ANN,
    Api,
    Folders,
    Stack,
    api_fixture,
    aws_fixture,
    deployment_body,
    folders_fixture,
    ready_fixture,
    stack_fixture,
)


def test_a_location_is_within_a_prefix_segment_by_segment() -> None:
    assert within("s3://data/team-a/images", "s3://data/team-a")
    assert within("s3://data/team-a", "s3://data/team-a/")
    assert not within("s3://data/team-ab/images", "s3://data/team-a")
    assert not within("s3://database/x", "s3://data")


def test_a_local_path_cannot_leave_its_prefix_by_dot_dot_or_a_link(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "inputs").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (allowed / "link").symlink_to(tmp_path / "secret")
    assert within(str(allowed / "inputs"), str(allowed))
    assert not within(f"{allowed}/../secret", str(allowed))
    assert not within(str(allowed / "link"), str(allowed))


def test_the_default_is_the_systems_own_storage_in_the_cloud_and_anything_locally() -> None:
    assert from_environment("s3://stack-bucket", environ={}).allowed_inputs == ("s3://stack-bucket",)
    assert from_environment("/home/me/.bep/storage", environ={}).allowed_inputs is None
    listed = from_environment("s3://stack-bucket", environ={"BEP_ALLOWED_OUTPUTS": "s3://out/a, s3://out/b"})
    assert listed.allowed_outputs == ("s3://out/a", "s3://out/b")


@pytest.mark.parametrize("refused", ["input", "output.path"])
def test_an_input_or_output_outside_the_allow_list_is_forbidden_and_starts_no_job(
    ready: Stack, api: Api, folders: Folders, refused: str
) -> None:
    inputs = str(Path(folders.inputs).parent) if ready.kind == "local" else folders.inputs.rsplit("/", 1)[0]
    outputs = ready.location("results")
    ready.service.access = DataAccess(
        allowed_inputs=(ready.backend.blobs.root,) if refused == "input" else (inputs,),
        allowed_outputs=(ready.backend.blobs.root,) if refused == "output.path" else (outputs,),
    )
    response = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}, "output": {"path": outputs}})
    assert response.status == 403, response.text
    assert response.json()["code"] == "Forbidden" and response.json()["field"] == refused
    assert ready.started() == [] and ready.service.list_jobs_page("digits", limit=10).items == []


def test_a_denied_caller_is_refused_by_the_policy_simulation_before_any_job(
    ready: Stack, api: Api, folders: Folders
) -> None:
    class DenyAll:
        def denial(self, caller, *, reads, writes):
            return f"{caller} may not read {reads[0]}" if reads else None

    ready.service.access = DataAccess(None, None, permissions=DenyAll())
    response = api("POST", "/endpoints/digits/jobs", {"input": {"uri": folders.inputs}})
    assert response.status == 403 and response.json()["field"] == "input"
    assert ANN in response.json()["message"]
    assert ready.started() == []


def test_assumed_role_sessions_are_simulated_as_their_role() -> None:
    session = "arn:aws:sts::123456789012:assumed-role/scorer/alice"
    assert principal_arn(session) == "arn:aws:iam::123456789012:role/scorer"
    assert principal_arn("arn:aws:iam::123456789012:user/ann") == "arn:aws:iam::123456789012:user/ann"
    assert principal_arn("AIDAEXAMPLE") is None


def _simulation(*decisions: str) -> tuple[IamPolicySimulation, Stubber]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for decision in decisions:
        stubber.add_response(
            "simulate_principal_policy",
            {"EvaluationResults": [{"EvalActionName": "s3:x", "EvalDecision": decision}]},
        )
    stubber.activate()
    return IamPolicySimulation(client), stubber


def test_the_simulation_asks_iam_for_list_get_and_put_as_the_caller() -> None:
    simulation, stubber = _simulation("allowed", "allowed", "allowed")
    user = "arn:aws:iam::123456789012:user/ann"
    asked = []
    stubber.client.meta.events.register(
        "provide-client-params.iam.SimulatePrincipalPolicy", lambda params, **_: asked.append(params)
    )
    assert simulation.denial(user, reads=["s3://images/team-a"], writes=["s3://out/p.csv"]) is None
    assert [(a["PolicySourceArn"], a["ActionNames"], a["ResourceArns"]) for a in asked] == [
        (user, ["s3:ListBucket"], ["arn:aws:s3:::images"]),
        (user, ["s3:GetObject"], ["arn:aws:s3:::images/team-a*"]),
        (user, ["s3:PutObject"], ["arn:aws:s3:::out/p.csv"]),
    ]
    stubber.assert_no_pending_responses()


def test_an_implicit_or_explicit_deny_from_iam_is_a_denial() -> None:
    for decision in ("implicitDeny", "explicitDeny"):
        simulation, _ = _simulation("allowed", decision)
        denial = simulation.denial("arn:aws:iam::123456789012:user/ann", reads=["s3://images/team-b"], writes=[])
        assert denial and "s3:GetObject" in denial and "s3://images/team-b" in denial


def test_a_caller_that_is_no_iam_principal_is_denied_without_asking() -> None:
    simulation, stubber = _simulation()
    assert "anonymous" in simulation.denial("", reads=["s3://images/x"], writes=[])
    stubber.assert_no_pending_responses()


def test_forbidden_is_exit_code_5_in_the_cli() -> None:
    from batch_endpoints.cli.main import EXIT_CODES

    assert EXIT_CODES[ForbiddenError] == 5


def test_a_stored_model_or_code_outside_what_jobs_may_read_is_forbidden_and_registers_nothing(
    ready: Stack, api: Api, folders: Folders
) -> None:
    if ready.kind != "aws":
        pytest.skip("a local folder is uploaded at registration, never read where it is")

    def jobs_may_read(*locations: str) -> None:
        environ = {"BEP_ALLOWED_INPUTS": ",".join(locations)}
        ready.service.access = from_environment(ready.backend.blobs.root, environ=environ)

    elsewhere = ready.location("models/digits")
    jobs_may_read(folders.model, folders.code)
    allowed = api("PUT", "/models/digits/versions/2", {"path": folders.model})
    model = api("PUT", "/models/digits/versions/3", {"path": elsewhere})
    inline_model = api(
        "PUT", "/endpoints/digits/deployments/green", deployment_body(folders, model={"path": elsewhere})
    )
    jobs_may_read(folders.model)
    code = api("PUT", "/endpoints/digits/deployments/green", deployment_body(folders))

    assert allowed.status == 201, allowed.text
    for refused, field in ((model, "path"), (inline_model, "path"), (code, "code_configuration.code")):
        assert refused.status == 403, refused.text
        assert refused.json()["field"] == field and "outside the locations jobs may use" in refused.json()["message"]
    assert [m.version for m in ready.service.list_models("digits")] == ["1", "2"]
    assert [d.name for d in ready.service.list_deployments("digits")] == ["blue"]
