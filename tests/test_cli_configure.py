"""`bep configure` and how a command finds its target: flag > environment > config file > built-in default, the
stack's API URL from its CloudFormation outputs (moto), and the clear errors for bad settings and missing stacks."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from batch_endpoints.cli import config, targets
from batch_endpoints.cli.main import build_parser
from batch_endpoints.cli.remote import RemoteService
from batch_endpoints.service import BatchEndpointService

API_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
AWS_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "BEP_TARGET", "BEP_API_URL", "BEP_STACK")


@pytest.fixture(autouse=True)
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """None of this machine's AWS settings: no region, no profile, no config files."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def stored(home: Path) -> dict[str, str]:
    return json.loads((home / config.FILE_NAME).read_text())


def test_configure_saves_defaults_lists_them_and_clears_one(bep, home):
    bep("configure", "--defaults", "target=aws", "region=eu-west-1", "stack=BatchEndpoints")
    listing = bep("configure", "--list").out

    assert stored(home) == {"region": "eu-west-1", "stack": "BatchEndpoints", "target": "aws"}
    assert listing.splitlines()[1:] == ["region  eu-west-1", "stack   BatchEndpoints", "target  aws"]

    bep("configure", "--defaults", "region=")
    assert stored(home) == {"stack": "BatchEndpoints", "target": "aws"}


@pytest.mark.parametrize(
    ("pairs", "named"),
    [
        (["colour=blue"], "unknown setting 'colour'"),
        (["target=azure"], "one of local, aws, http"),
        (["region=Europe"], "AWS region"),
        (["stack=1-stack"], "CloudFormation stack name"),
        (["api_url=ftp://example.com"], "http(s) URL"),
        (["profile=my profile"], "no spaces"),
        (["target"], "NAME=VALUE"),
        (["region=eu-west-2", "target=azure"], "one of local, aws, http"),
    ],
)
def test_bad_defaults_are_refused_and_change_nothing(bep, home, pairs, named):
    bep("configure", "--defaults", "region=eu-west-1")

    result = bep("configure", "--defaults", *pairs, ok=False)

    assert result.code == 2
    assert "--defaults" in result.err and named in result.err
    assert stored(home) == {"region": "eu-west-1"}


def test_a_damaged_config_file_is_named_in_the_error(bep, home):
    home.mkdir(parents=True)
    (home / config.FILE_NAME).write_text('{"target": "azure"}')

    result = bep("endpoint", "list", ok=False)

    assert result.code == 2 and config.FILE_NAME in result.err and "target" in result.err
    assert bep("configure", "--defaults", "target=local").code == 0  # configure itself still works, to fix it


@pytest.mark.parametrize(
    ("flag", "environ", "configured", "expected"),
    [
        ("eu-west-3", {"AWS_REGION": "eu-west-2"}, {"region": "eu-west-1"}, "eu-west-3"),
        (None, {"AWS_REGION": "eu-west-2"}, {"region": "eu-west-1"}, "eu-west-2"),
        (None, {"AWS_DEFAULT_REGION": "eu-north-1"}, {"region": "eu-west-1"}, "eu-north-1"),
        (None, {}, {"region": "eu-west-1"}, "eu-west-1"),
        (None, {}, {}, None),
    ],
)
def test_a_flag_beats_the_environment_which_beats_the_config_file(flag, environ, configured, expected):
    args = build_parser().parse_args([*(["--region", flag] if flag else []), "endpoint", "list"])

    assert config.resolve(args, configured, environ).get("region") == expected


def test_options_go_before_or_after_the_command():
    before = build_parser().parse_args(["--target", "aws", "--stack", "Mine", "job", "list"])
    after = build_parser().parse_args(["job", "list", "--target", "aws", "--stack", "Mine"])

    assert (before.target, before.stack) == (after.target, after.stack) == ("aws", "Mine")


def test_the_target_environment_variable_beats_the_configured_target(bep, monkeypatch):
    bep("configure", "--defaults", "target=http", "api_url=http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("BEP_TARGET", "local")

    assert bep("endpoint", "list").out.split() == ["NAME", "DEFAULT_DEPLOYMENT", "DESCRIPTION", "SCORING_URI"]


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--target", "http", "endpoint", "list"], "--api-url"),
        (["--target", "local", "--api-url", "http://127.0.0.1:8080", "endpoint", "list"], "--target"),
        (["--target", "azure", "endpoint", "list"], "--target"),
        (["--target", "aws", "--region", "west", "endpoint", "list"], "--region"),
    ],
)
def test_an_incomplete_or_bad_target_is_refused(bep, argv, field):
    result = bep(*argv, ok=False)

    assert result.code == 2 and field in result.err


def test_local_is_the_default_and_an_api_url_alone_means_http(home):
    local = targets.open_operations(build_parser().parse_args(["endpoint", "list"]), environ={})
    remote = targets.open_operations(
        build_parser().parse_args(["--api-url", "http://127.0.0.1:8080", "endpoint", "list"]), environ={}
    )

    assert isinstance(local, BatchEndpointService)
    assert isinstance(remote, RemoteService) and remote.client.connection.base_url == "http://127.0.0.1:8080"


# ---------------------------------------------------------------- the stack's API URL, from CloudFormation
@pytest.fixture(name="cloudformation")
def cloudformation_fixture():
    with mock_aws():
        yield boto3.client("cloudformation", region_name="eu-west-1")


def create_stack(cloudformation, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_the_aws_target_finds_the_api_in_the_stack_outputs(home, cloudformation):
    create_stack(cloudformation, targets.DEFAULT_STACK, {targets.API_URL_OUTPUT: API_URL, "DataBucketName": "b"})
    create_stack(cloudformation, "Staging", {targets.API_URL_OUTPUT: API_URL.replace("abc123", "staging1")})

    default = targets.open_operations(
        build_parser().parse_args(["--target", "aws", "--region", "eu-west-1", "job", "list"])
    )
    configured = config.resolve(build_parser().parse_args(["job", "list"]), {"stack": "Staging"}, {})
    named = targets.open_operations(
        build_parser().parse_args(["--target", "aws", "--region", "eu-west-1", "--stack", "Staging", "job", "list"])
    )

    assert isinstance(default, RemoteService) and isinstance(named, RemoteService)
    assert default.client.connection.base_url == API_URL.rstrip("/")
    assert default.client.region == "eu-west-1"
    assert named.client.connection.base_url.startswith("https://staging1.")
    assert configured["stack"] == "Staging"


def test_a_missing_stack_is_not_found_naming_the_stack_and_region(bep, cloudformation):
    result = bep("--target", "aws", "--region", "eu-west-1", "--stack", "Nowhere", "endpoint", "list", ok=False)

    assert result.code == 3
    assert "'Nowhere' in eu-west-1 does not exist" in result.err and "--stack" in result.err


def test_a_stack_without_the_api_output_is_not_found(bep, cloudformation):
    create_stack(cloudformation, "Other", {"Something": "else"})

    result = bep("--target", "aws", "--region", "eu-west-1", "--stack", "Other", "endpoint", "list", ok=False)

    assert result.code == 3 and f"has no {targets.API_URL_OUTPUT} output" in result.err


def test_the_aws_target_without_a_region_says_how_to_give_one(bep, cloudformation):
    result = bep("--target", "aws", "endpoint", "list", ok=False)

    assert result.code == 2 and "--region" in result.err and "AWS_REGION" in result.err


def test_an_unknown_profile_is_refused(bep):
    result = bep("--target", "aws", "--profile", "nobody", "endpoint", "list", ok=False)

    assert result.code == 2 and "'nobody'" in result.err and "--profile" in result.err


def test_the_default_stack_is_the_one_the_cdk_app_deploys():
    app = ast.parse((Path(__file__).resolve().parents[1] / "app.py").read_text())
    stack_ids = [
        call.args[1].value
        for call in ast.walk(app)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "BatchEndpointsStack"
    ]

    assert stack_ids == [targets.DEFAULT_STACK]
