"""Presigned uploads and signed requests leave no signature, credential or policy in the API's logs."""

from __future__ import annotations

import logging

import pytest

from tests.api_fixtures import Api, Stack, api_fixture, aws_fixture, stack_fixture  # noqa: F401 (pytest fixtures)
from tests.aws_fixtures import AWS_ENVIRONMENT


@pytest.mark.parametrize("stack", ["aws"], indirect=True)
def test_an_upload_flow_logs_no_signature_or_secret(
    stack: Stack, api: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    target = api("POST", "/models/digits/uploads").json()
    assert target["fields"]["x-amz-signature"]  # a presigned policy was made
    api("POST", "/code/uploads", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x, Signature=abc123"})
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    for secret in (
        target["fields"]["x-amz-signature"],
        target["fields"]["policy"],
        AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"] + '"',
        "X-Amz-Signature",
        "Signature=abc123",
    ):
        assert secret not in logged
